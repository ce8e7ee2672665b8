//! Fuzzing harnesses: one function per parser, shared by the cargo-fuzz targets in `fuzz/` and
//! by the regression test that replays every committed crasher (`core/tests/fuzz_regressions.rs`).
//!
//! Each takes arbitrary bytes and must never panic, loop or allocate without bound; where a
//! parser has an algebraic property (canonical DAG-CBOR re-encodes to the same bytes), the
//! harness asserts it.

use crate::cid::{Cid, DAG_CBOR, DAG_PB};
use crate::envelope::{DataKey, Header, Opener};
use crate::store::Store;

/// Envelope header and chunk parsing; the first 32 bytes serve as the DEK.
pub fn envelope(data: &[u8]) {
    if data.len() < 32 {
        let _ = Header::parse(data);
        return;
    }
    let (key, rest) = data.split_at(32);
    let Ok(header) = Header::parse(rest) else {
        return;
    };
    let dek = DataKey::from_bytes(key.try_into().unwrap_or([0; 32]));
    let _ = header.metadata(&dek);
    if let Ok(mut opener) = Opener::new(&header, &dek) {
        let mut out = Vec::new();
        if opener.update(&rest[header.len()..], &mut out).is_ok() {
            let _ = opener.finish(&mut out);
        }
    }
}

/// DAG-CBOR: anything accepted re-encodes to exactly the same bytes; ledger objects decode
/// without panicking.
pub fn cbor(data: &[u8]) {
    if let Ok(v) = crate::cbor::decode(data) {
        assert_eq!(
            crate::cbor::encode(&v),
            data,
            "accepted DAG-CBOR is not canonical"
        );
    }
    if let Ok(tx) = crate::ledger::SignedTx::decode(data) {
        assert_eq!(tx.bytes, data);
    }
    let _ = crate::ledger::Block::decode(data);
}

/// dag-pb and UnixFS decoding, and one walker step over the node.
pub fn dagpb(data: &[u8]) {
    if let Some(d) = crate::unixfs::pb::decode_node(data)
        .ok()
        .and_then(|n| n.data)
    {
        let _ = crate::unixfs::pb::decode_unixfs(&d);
    }
    let mut walker = crate::unixfs::Walker::new(Cid::v1(DAG_PB, data));
    let _ = walker.visit(data);
    while walker.next_cid().is_some() {
        // Children are never supplied: feed garbage to exercise the size checks.
        if walker.visit_verified(&[]).is_err() {
            break;
        }
    }
}

/// CARv1 reading, every block.
pub fn car(data: &[u8]) {
    if let Ok(mut reader) = crate::car::CarReader::new(data) {
        while let Ok(Some(_)) = reader.next_block() {}
    }
}

/// Key-file, SPKI DER and public-key PEM import.
pub fn keyfile(data: &[u8]) {
    let _ = crate::PublicKey::from_spki_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::PublicKey::from_pem(text);
        let _ = crate::Identity::from_key_file(text, "fuzz passphrase");
    }
}

/// Chain import: the input is a sequence of `u16`-length-prefixed objects stored under their
/// DAG-CBOR CIDs; the last one becomes the head; opening the vault verifies the chain.
pub fn chain(data: &[u8]) {
    let store = Store::memory();
    let mut rest = data;
    let mut last = None;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let obj = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let cid = Cid::v1(DAG_CBOR, obj);
        if pollster::block_on(store.put(&cid, obj)).is_ok() {
            last = Some(cid);
        }
    }
    if let Some(head) = last {
        let _ = pollster::block_on(store.compare_and_swap_head(None, Some(&head)));
        let _ = pollster::block_on(crate::Vault::open(store, None));
    }
}
