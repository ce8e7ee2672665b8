//! Merkle root over transaction CIDs, RFC 6962 style: leaves and inner nodes are hashed with
//! distinct prefixes (0x00, 0x01), and an odd node is promoted unchanged — so no two different
//! transaction lists share a root (the duplicated-last-leaf ambiguity of Bitcoin's tree is absent).

use sha2::{Digest, Sha256};

use crate::cid::Cid;

/// The Merkle root of `txs` in order; the empty list hashes to SHA-256 of nothing.
pub fn merkle_root(txs: &[Cid]) -> [u8; 32] {
    if txs.is_empty() {
        return Sha256::digest([]).into();
    }
    let mut level: Vec<[u8; 32]> = txs
        .iter()
        .map(|c| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(c.to_bytes());
            h.finalize().into()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [single] => *single,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_count_matter() {
        let a = Cid::dag_cbor(b"a");
        let b = Cid::dag_cbor(b"b");
        let c = Cid::dag_cbor(b"c");
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
        assert_ne!(merkle_root(&[a]), merkle_root(&[]));
    }
}
