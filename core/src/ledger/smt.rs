//! The state map: a compact sparse Merkle tree over the access state, so one root in each
//! certificate commits to every record's access list and every doctor's records, and a node can
//! prove one entry (or its absence) to a light client in about `log2(n)` hashes.
//!
//! Keys are 256-bit hashes ([`key`]); the tree is the binary trie of their bits, most
//! significant first, in which every subtree holding a single leaf is replaced by that leaf and
//! an empty subtree hashes to 32 zero bytes (the layout of Diem's and Aptos's sparse Merkle
//! trees):
//!
//! ```text
//! leaf   = SHA-256(0x00 || key || SHA-256(value))
//! branch = SHA-256(0x01 || left || right)
//! empty  = 0x00 * 32
//! ```
//!
//! A proof is the list of sibling hashes from the root down to where the key's path ends (at
//! its leaf, at an empty subtree, or at another key's leaf that proves the key absent). Nodes
//! are shared between versions of the tree (`Arc`), so a clone is `O(1)` and an update rehashes
//! one path, like the rest of the chain state.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ledger::merkle::Hash;

/// Most siblings a proof can have (one per key bit).
pub const MAX_DEPTH: usize = 256;

const EMPTY: Hash = [0; 32];

/// The map key of `name` in domain `kind` (`SHA-256(kind || 0x00 || name)`).
pub fn key(kind: &str, name: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0u8]);
    h.update(name);
    h.finalize().into()
}

/// The hash of a value as the tree commits to it.
pub fn value_hash(value: &[u8]) -> Hash {
    Sha256::digest(value).into()
}

fn leaf(key: &Hash, value: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(key);
    h.update(value);
    h.finalize().into()
}

/// A branch hashes as an inner node of the RFC 6962 log does: `SHA-256(0x01 || l || r)`.
use crate::ledger::merkle::node_hash as branch;

/// Bit `i` of `key`, most significant first.
fn bit(key: &Hash, i: usize) -> bool {
    key[i / 8] & (0x80 >> (i % 8)) != 0
}

#[derive(Clone, Debug)]
enum Node {
    Leaf {
        key: Hash,
        value: Hash,
        hash: Hash,
    },
    Branch {
        left: Option<Arc<Node>>,
        right: Option<Arc<Node>>,
        hash: Hash,
    },
}

impl Node {
    fn hash(&self) -> Hash {
        match self {
            Node::Leaf { hash, .. } | Node::Branch { hash, .. } => *hash,
        }
    }

    fn new_leaf(key: Hash, value: Hash) -> Arc<Node> {
        Arc::new(Node::Leaf {
            hash: leaf(&key, &value),
            key,
            value,
        })
    }

    fn new_branch(left: Option<Arc<Node>>, right: Option<Arc<Node>>) -> Option<Arc<Node>> {
        match (&left, &right) {
            (None, None) => None,
            // A single leaf moves up into the place of its branch.
            (Some(n), None) | (None, Some(n)) if matches!(**n, Node::Leaf { .. }) => {
                Some(n.clone())
            }
            _ => Some(Node::branch_of(left, right)),
        }
    }

    /// A branch over `left` and `right` as they are (no collapsing).
    fn branch_of(left: Option<Arc<Node>>, right: Option<Arc<Node>>) -> Arc<Node> {
        Arc::new(Node::Branch {
            hash: branch(&hash_of(&left), &hash_of(&right)),
            left,
            right,
        })
    }
}

fn hash_of(n: &Option<Arc<Node>>) -> Hash {
    n.as_ref().map_or(EMPTY, |n| n.hash())
}

/// Two leaves whose keys agree on bits `..depth`, placed under one subtree at `depth`.
fn split(depth: usize, a: Arc<Node>, a_key: &Hash, b: Arc<Node>, b_key: &Hash) -> Arc<Node> {
    if depth >= MAX_DEPTH {
        // Distinct keys differ in some bit; equal keys never reach here.
        return b;
    }
    let (l, r) = match (bit(a_key, depth), bit(b_key, depth)) {
        (false, true) => (Some(a), Some(b)),
        (true, false) => (Some(b), Some(a)),
        (false, false) => (Some(split(depth + 1, a, a_key, b, b_key)), None),
        (true, true) => (None, Some(split(depth + 1, a, a_key, b, b_key))),
    };
    Node::branch_of(l, r)
}

fn insert(node: &Option<Arc<Node>>, depth: usize, key: &Hash, value: &Hash) -> Arc<Node> {
    let Some(n) = node else {
        return Node::new_leaf(*key, *value);
    };
    match &**n {
        Node::Leaf { key: k, .. } if k == key => Node::new_leaf(*key, *value),
        Node::Leaf { key: k, .. } => split(depth, n.clone(), k, Node::new_leaf(*key, *value), key),
        Node::Branch { left, right, .. } => {
            if bit(key, depth) {
                Node::branch_of(left.clone(), Some(insert(right, depth + 1, key, value)))
            } else {
                Node::branch_of(Some(insert(left, depth + 1, key, value)), right.clone())
            }
        }
    }
}

fn remove(node: &Option<Arc<Node>>, depth: usize, key: &Hash) -> Option<Arc<Node>> {
    match node.as_deref() {
        None => None,
        Some(Node::Leaf { key: k, .. }) => {
            if k == key {
                None
            } else {
                node.clone()
            }
        }
        Some(Node::Branch { left, right, .. }) => {
            if bit(key, depth) {
                Node::new_branch(left.clone(), remove(right, depth + 1, key))
            } else {
                Node::new_branch(remove(left, depth + 1, key), right.clone())
            }
        }
    }
}

/// Subtrees of at least this many leaves build their two halves side by side (on every core).
const PARALLEL_BUILD: usize = 2048;

/// The subtree at `depth` over `leaves` (sorted by key, distinct, agreeing on bits `..depth`):
/// the tree [`insert`] builds from the same entries, in one pass.
fn build(leaves: &[(Hash, Hash)], depth: usize) -> Option<Arc<Node>> {
    match leaves {
        [] => None,
        [(k, v)] => Some(Node::new_leaf(*k, *v)),
        _ if depth >= MAX_DEPTH => None,
        _ => {
            let mid = leaves.partition_point(|(k, _)| !bit(k, depth));
            let (l, r) = leaves.split_at(mid);
            let (l, r) = if leaves.len() >= PARALLEL_BUILD {
                crate::platform::join(|| build(l, depth + 1), || build(r, depth + 1))
            } else {
                (build(l, depth + 1), build(r, depth + 1))
            };
            Some(Node::branch_of(l, r))
        }
    }
}

/// A persistent compact sparse Merkle tree from 256-bit keys to value hashes.
#[derive(Clone, Debug, Default)]
pub struct StateMap {
    root: Option<Arc<Node>>,
    len: usize,
}

impl StateMap {
    /// The empty map.
    pub fn new() -> StateMap {
        StateMap::default()
    }

    /// The map holding `leaves` (key, value hash), built in `O(n)` hashes rather than the
    /// `O(n log n)` of inserting them one by one; a key given twice keeps its last value.
    pub fn from_leaves(mut leaves: Vec<(Hash, Hash)>) -> StateMap {
        leaves.sort_by_key(|l| l.0);
        leaves.reverse();
        leaves.dedup_by(|a, b| a.0 == b.0);
        leaves.reverse();
        StateMap {
            root: build(&leaves, 0),
            len: leaves.len(),
        }
    }

    /// Its root hash (32 zero bytes when empty).
    pub fn root(&self) -> Hash {
        hash_of(&self.root)
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value hash under `key`, if any.
    pub fn get(&self, key: &Hash) -> Option<Hash> {
        let mut at = self.root.as_deref();
        let mut depth = 0;
        loop {
            match at? {
                Node::Leaf { key: k, value, .. } => return (k == key).then_some(*value),
                Node::Branch { left, right, .. } => {
                    at = if bit(key, depth) { right } else { left }.as_deref();
                    depth += 1;
                }
            }
        }
    }

    /// Sets `key` to `value` (the hash of the value bytes, [`value_hash`]).
    pub fn insert(&mut self, key: &Hash, value: &Hash) {
        if self.get(key).is_none() {
            self.len += 1;
        }
        self.root = Some(insert(&self.root, 0, key, value));
    }

    /// Removes `key` (nothing if absent).
    pub fn remove(&mut self, key: &Hash) {
        if self.get(key).is_some() {
            self.len -= 1;
            self.root = remove(&self.root, 0, key);
        }
    }

    /// The proof of `key`'s entry, or of its absence.
    pub fn prove(&self, key: &Hash) -> Proof {
        let mut siblings = Vec::new();
        let mut at = self.root.as_deref();
        let mut depth = 0;
        loop {
            match at {
                None => {
                    return Proof {
                        siblings,
                        leaf: None,
                    };
                }
                Some(Node::Leaf { key, value, .. }) => {
                    return Proof {
                        siblings,
                        leaf: Some((*key, *value)),
                    };
                }
                Some(Node::Branch { left, right, .. }) => {
                    let (next, other) = if bit(key, depth) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(hash_of(other));
                    at = next.as_deref();
                    depth += 1;
                }
            }
        }
    }
}

/// A proof that a key maps to a value, or to nothing, in a [`StateMap`] of a given root.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Sibling hashes from the root down (base64 in JSON).
    #[serde(with = "crate::serde_util::b64_32_vec")]
    pub siblings: Vec<Hash>,
    /// The leaf where the key's path ends, as (key, value hash); none if it ends at an empty
    /// subtree.
    #[serde(with = "leaf_serde")]
    pub leaf: Option<(Hash, Hash)>,
}

mod leaf_serde {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Leaf {
        #[serde(with = "crate::serde_util::b64_32")]
        key: Hash,
        #[serde(with = "crate::serde_util::b64_32")]
        value: Hash,
    }

    pub fn serialize<S: Serializer>(l: &Option<(Hash, Hash)>, s: S) -> Result<S::Ok, S::Error> {
        l.map(|(key, value)| Leaf { key, value }).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(Hash, Hash)>, D::Error> {
        Ok(Option::<Leaf>::deserialize(d)?.map(|l| (l.key, l.value)))
    }
}

impl Proof {
    /// Checks that `key` maps to `value` (a value hash) — or, with `None`, to nothing — in the
    /// map of root `root`.
    pub fn verify(&self, root: &Hash, key: &Hash, value: Option<&Hash>) -> Result<()> {
        let bad = |why: &str| Error::InvalidProof(format!("state proof: {why}"));
        if self.siblings.len() > MAX_DEPTH {
            return Err(bad("deeper than 256 levels"));
        }
        let depth = self.siblings.len();
        let mut h = match (&self.leaf, value) {
            (Some((k, v)), Some(want)) => {
                if k != key || v != want {
                    return Err(bad("the entry is not the one claimed"));
                }
                leaf(k, v)
            }
            (Some((k, v)), None) => {
                if k == key {
                    return Err(bad("the key is present"));
                }
                // The other key's leaf sits on this key's path: they share its bits.
                if (0..depth).any(|i| bit(k, i) != bit(key, i)) {
                    return Err(bad("the leaf shown is not on the key's path"));
                }
                leaf(k, v)
            }
            (None, Some(_)) => return Err(bad("the key's path ends at an empty subtree")),
            (None, None) => EMPTY,
        };
        for i in (0..depth).rev() {
            let s = &self.siblings[i];
            h = if bit(key, i) {
                branch(s, &h)
            } else {
                branch(&h, s)
            };
        }
        if h != *root {
            return Err(bad("the path does not lead to the certified root"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(i: u32) -> Hash {
        key("test", &i.to_be_bytes())
    }

    /// The root computed from scratch from a sorted list of (key, value) (the definition).
    fn reference(entries: &[(Hash, Hash)], depth: usize) -> Hash {
        match entries {
            [] => EMPTY,
            [(k, v)] => leaf(k, v),
            _ => {
                let (l, r): (Vec<_>, Vec<_>) = entries.iter().partition(|(k, _)| !bit(k, depth));
                branch(&reference(&l, depth + 1), &reference(&r, depth + 1))
            }
        }
    }

    /// Large enough for the halves to be built side by side ([`PARALLEL_BUILD`]): the same root
    /// as the definition and as inserting one by one, and proofs that verify.
    #[test]
    fn a_large_map_built_in_parallel_is_the_same_map() {
        let mut entries: Vec<(Hash, Hash)> = (0..5 * PARALLEL_BUILD as u32)
            .map(|i| (k(i), value_hash(&i.to_le_bytes())))
            .collect();
        let built = StateMap::from_leaves(entries.clone());
        let mut inserted = StateMap::new();
        for (key, v) in &entries {
            inserted.insert(key, v);
        }
        entries.sort();
        assert_eq!(built.root(), reference(&entries, 0));
        assert_eq!(built.root(), inserted.root());
        assert_eq!(built.len(), entries.len());
        for (key, v) in entries.iter().step_by(997) {
            built
                .prove(key)
                .verify(&built.root(), key, Some(v))
                .unwrap();
        }
    }

    #[test]
    fn empty_and_single() {
        let mut m = StateMap::new();
        assert_eq!(m.root(), EMPTY);
        m.prove(&k(1)).verify(&m.root(), &k(1), None).unwrap();
        m.insert(&k(1), &value_hash(b"a"));
        assert_eq!(m.root(), leaf(&k(1), &value_hash(b"a")));
        let p = m.prove(&k(1));
        assert!(p.siblings.is_empty());
        p.verify(&m.root(), &k(1), Some(&value_hash(b"a"))).unwrap();
        m.remove(&k(1));
        assert_eq!(m.root(), EMPTY);
        assert!(m.is_empty());
    }

    #[test]
    fn keys_sharing_a_long_prefix() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a[31] = 0b10;
        b[31] = 0b11;
        let mut m = StateMap::new();
        m.insert(&a, &value_hash(b"a"));
        m.insert(&b, &value_hash(b"b"));
        let p = m.prove(&b);
        assert_eq!(p.siblings.len(), 256);
        p.verify(&m.root(), &b, Some(&value_hash(b"b"))).unwrap();
        assert_eq!(
            m.root(),
            reference(&[(a, value_hash(b"a")), (b, value_hash(b"b"))], 0)
        );
        m.remove(&a);
        assert_eq!(m.root(), leaf(&b, &value_hash(b"b")));
    }

    #[test]
    fn tampering_is_refused() {
        let mut m = StateMap::new();
        for i in 0..50 {
            m.insert(&k(i), &value_hash(&i.to_be_bytes()));
        }
        let root = m.root();
        let v7 = value_hash(&7u32.to_be_bytes());
        let p = m.prove(&k(7));
        p.verify(&root, &k(7), Some(&v7)).unwrap();
        let err = |r: Result<()>| match r {
            Err(Error::InvalidProof(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(p.verify(&root, &k(7), Some(&value_hash(b"other")))).contains("not the one"));
        assert!(err(p.verify(&root, &k(7), None)).contains("present"));
        let mut q = p.clone();
        q.siblings[0][0] ^= 1;
        assert!(err(q.verify(&root, &k(7), Some(&v7))).contains("certified root"));
        let mut q = p.clone();
        q.siblings.push(EMPTY);
        assert!(err(q.verify(&root, &k(7), Some(&v7))).contains("certified root"));
        // Another key's entry does not prove this key absent unless it sits on its path.
        let absent = k(1000);
        let shown = m.prove(&k(8));
        assert!(shown.verify(&root, &absent, None).is_err());
        m.prove(&absent).verify(&root, &absent, None).unwrap();
        // A proof of absence does not survive the key's insertion.
        let before = m.prove(&absent);
        m.insert(&absent, &v7);
        assert!(before.verify(&m.root(), &absent, None).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_the_definition(ops in proptest::collection::vec((0u32..64, any::<bool>(), any::<u8>()), 0..120)) {
            let mut m = StateMap::new();
            let mut model = std::collections::BTreeMap::new();
            for (i, ins, v) in ops {
                if ins {
                    m.insert(&k(i), &value_hash(&[v]));
                    model.insert(k(i), value_hash(&[v]));
                } else {
                    m.remove(&k(i));
                    model.remove(&k(i));
                }
            }
            let entries: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(m.root(), reference(&entries, 0));
            prop_assert_eq!(m.len(), model.len());
            // Built in one pass from the same entries (shuffled, one given twice): the same tree.
            let mut shuffled: Vec<_> = entries.iter().rev().copied().collect();
            if let Some(first) = entries.first() {
                shuffled.insert(0, (first.0, value_hash(b"overwritten")));
            }
            let bulk = StateMap::from_leaves(shuffled);
            prop_assert_eq!(bulk.root(), m.root());
            prop_assert_eq!(bulk.len(), m.len());
            for i in 0..64 {
                let p = m.prove(&k(i));
                prop_assert!(p.verify(&m.root(), &k(i), model.get(&k(i))).is_ok());
                let wrong = if model.contains_key(&k(i)) { None } else { Some(value_hash(b"x")) };
                prop_assert!(p.verify(&m.root(), &k(i), wrong.as_ref()).is_err());
            }
        }
    }
}
