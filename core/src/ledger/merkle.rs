//! The transaction log as an RFC 6962 / RFC 9162 Merkle tree: every transaction's CID, in chain
//! order, is a leaf (`SHA-256(0x00 || cid bytes)`), inner nodes are `SHA-256(0x01 || l || r)`,
//! and a tree of `n` leaves splits at the largest power of two below `n` — the tree Certificate
//! Transparency, Sigstore Rekor and Go's checksum database use, so a checkpoint's root and its
//! proofs mean what they mean there.
//!
//! The chain keeps only the [`Frontier`] (one hash per set bit of the size), so appending costs
//! `O(log n)`. Proofs are built from the list of leaf hashes ([`inclusion_proof`],
//! [`consistency_proof`]) and verified with the `ct-merkle` crate.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A 32-byte SHA-256 hash.
pub type Hash = [u8; 32];

/// The leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The root of a tree whose leaf hashes are `leaves` (RFC 9162 §2.1.1).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly below `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first. Enough
/// to append a leaf and to compute the root, in `O(log n)` space and time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, left to right (sizes decreasing powers of two).
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut n = self.size;
        // Each trailing one bit of the old size is a peak that merges with the new one.
        while n & 1 == 1 {
            let left = self.peaks.pop().unwrap_or_default();
            h = node_hash(&left, &h);
            n >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// The peaks (for persisting the frontier).
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Rebuilds a frontier from its size and peaks; `None` if they do not fit together.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Option<Frontier> {
        (size.count_ones() as usize == peaks.len()).then_some(Frontier { size, peaks })
    }
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves of `leaves`
/// (RFC 9162 §2.1.3.1), leaf to root.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>> {
    if index >= size || size > leaves.len() as u64 {
        return Err(Error::InvalidInput(format!(
            "no leaf {index} in a tree of {size}"
        )));
    }
    let mut out = Vec::new();
    path(index as usize, &leaves[..size as usize], &mut out);
    Ok(out)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof from the tree of the first `old` leaves to the tree of the first
/// `new` leaves (RFC 9162 §2.1.4.1).
pub fn consistency_proof(leaves: &[Hash], old: u64, new: u64) -> Result<Vec<Hash>> {
    if old > new || new > leaves.len() as u64 {
        return Err(Error::InvalidInput(format!(
            "no consistency proof from {old} to {new} leaves"
        )));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old as usize, &leaves[..new as usize], true, &mut out);
    }
    Ok(out)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

fn concat(proof: &[Hash]) -> Vec<u8> {
    proof.iter().flatten().copied().collect()
}

/// The largest log a proof is checked against (2^48 transactions): sizes beyond it are refused
/// before the proof arithmetic (which would overflow near 2^63).
pub const MAX_LOG_SIZE: u64 = 1 << 48;

/// Checks that `leaf_data` (the bytes hashed into the leaf: a transaction CID) is leaf `index`
/// of the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    leaf_data: &[u8],
    index: u64,
    size: u64,
    root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    let bad = || Error::InvalidProof(format!("leaf {index} is not in the tree of {size} leaves"));
    if index >= size || size > MAX_LOG_SIZE {
        return Err(bad());
    }
    let root = ct_merkle::RootHash::<Sha256>::new((*root).into(), size);
    let proof =
        ct_merkle::InclusionProof::<Sha256>::try_from_bytes(concat(proof)).map_err(|_| bad())?;
    root.verify_inclusion(&leaf_data.to_vec(), index, &proof)
        .map_err(|_| bad())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    let bad = || {
        Error::InvalidProof(format!(
            "the log of {new_size} transactions does not extend the log of {old_size}"
        ))
    };
    if old_size > new_size || new_size > MAX_LOG_SIZE {
        return Err(bad());
    }
    if old_size == new_size {
        return if old_root == new_root && proof.is_empty() {
            Ok(())
        } else {
            Err(bad())
        };
    }
    if old_size == 0 {
        return if proof.is_empty() && *old_root == empty_root() {
            Ok(())
        } else {
            Err(bad())
        };
    }
    let old = ct_merkle::RootHash::<Sha256>::new((*old_root).into(), old_size);
    let new = ct_merkle::RootHash::<Sha256>::new((*new_root).into(), new_size);
    let proof =
        ct_merkle::ConsistencyProof::<Sha256>::try_from_bytes(concat(proof)).map_err(|_| bad())?;
    new.verify_consistency(&old, &proof).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hash) -> String {
        data_encoding::HEXLOWER.encode(h)
    }

    fn b64(h: &Hash) -> String {
        data_encoding::BASE64.encode(h)
    }

    // RFC 6962 vectors (transparency-dev/merkle testonly/constants.go).
    const LEAVES: &[&str] = &[
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: &[&str] = &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn data() -> Vec<Vec<u8>> {
        LEAVES
            .iter()
            .map(|l| data_encoding::HEXLOWER.decode(l.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn huge_sizes_are_refused_not_a_panic() {
        let h = [0u8; 32];
        for (index, size) in [
            (u64::MAX - 1, u64::MAX),
            (1 << 62, (1 << 62) + 1),
            (0, MAX_LOG_SIZE + 1),
        ] {
            assert!(matches!(
                verify_inclusion(b"x", index, size, &h, &[h]),
                Err(Error::InvalidProof(_))
            ));
        }
        assert!(matches!(
            verify_consistency(1, &h, u64::MAX, &h, &[h]),
            Err(Error::InvalidProof(_))
        ));
    }

    #[test]
    fn rfc6962_roots_match_the_vectors() {
        let data = data();
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for n in 1..=8 {
            f.push(hashes[n - 1]);
            assert_eq!(hex(&root(&hashes[..n])), ROOTS[n - 1], "root of {n}");
            assert_eq!(hex(&f.root()), ROOTS[n - 1], "frontier of {n}");
        }
        assert_eq!(
            b64(&f.root()),
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
        );
    }

    #[test]
    fn rfc6962_proofs_match_the_vectors_and_verify() {
        let data = data();
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let p: Vec<String> = inclusion_proof(&hashes, 5, 8)
            .unwrap()
            .iter()
            .map(b64)
            .collect();
        assert_eq!(
            p,
            [
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc="
            ]
        );
        let p: Vec<String> = consistency_proof(&hashes, 3, 8)
            .unwrap()
            .iter()
            .map(b64)
            .collect();
        assert_eq!(
            p,
            [
                "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
                "B1Bqhf2d0vEg62lPhgEeW7RmLlxBWmKRcDPUqWJEh+c=",
                "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="
            ]
        );
        let p: Vec<String> = consistency_proof(&hashes, 1, 8)
            .unwrap()
            .iter()
            .map(b64)
            .collect();
        assert_eq!(
            p,
            [
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="
            ]
        );
        for size in 1..=8u64 {
            let r = root(&hashes[..size as usize]);
            for i in 0..size {
                let proof = inclusion_proof(&hashes, i, size).unwrap();
                verify_inclusion(&data[i as usize], i, size, &r, &proof).unwrap();
                // Any other leaf, index or root fails.
                let other = (i + 1) % size;
                if other != i {
                    assert!(verify_inclusion(&data[other as usize], i, size, &r, &proof).is_err());
                }
                assert!(verify_inclusion(&data[i as usize], i, size, &[0; 32], &proof).is_err());
            }
            for old in 0..=size {
                let o = root(&hashes[..old as usize]);
                let proof = consistency_proof(&hashes, old, size).unwrap();
                verify_consistency(old, &o, size, &r, &proof).unwrap();
                if old > 0 && old < size {
                    assert!(verify_consistency(old, &[1; 32], size, &r, &proof).is_err());
                    assert!(verify_consistency(old, &o, size, &[1; 32], &proof).is_err());
                }
            }
        }
    }
}
