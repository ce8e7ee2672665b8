//! Fuzzing harnesses: one function per parser, shared by the cargo-fuzz targets in `fuzz/` and
//! by the regression test that replays every committed crasher (`core/tests/fuzz_regressions.rs`).
//!
//! Each takes arbitrary bytes and must never panic, loop or allocate without bound; where a
//! parser has an algebraic property (canonical DAG-CBOR re-encodes to the same bytes), the
//! harness asserts it.

use crate::cid::{Cid, DAG_CBOR, DAG_PB};
use crate::envelope::{DataKey, Decryptor, Header};
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
    if let Ok(mut dec) = Decryptor::new(&header, &dek) {
        let mut out = Vec::new();
        if dec.update(&rest[header.len()..], &mut out).is_ok() {
            let _ = dec.finish();
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
    // Every accepted ledger object is the one encoding of its fields (no malleability).
    if let Ok(tx) = crate::ledger::SignedTx::decode(data) {
        let again = crate::ledger::SignedTx::assemble(tx.tx.clone(), tx.sig.clone(), tx.cosig);
        assert_eq!(
            again.bytes, data,
            "an accepted transaction re-encodes differently"
        );
    }
    if let Ok(b) = crate::ledger::Block::decode(data) {
        assert_eq!(crate::ledger::Block::new(b.header).bytes, data);
    }
    if let Ok(g) = crate::ledger::GenesisBlock::decode(data) {
        assert_eq!(crate::ledger::GenesisBlock::new(g.genesis).bytes, data);
    }
    let _ = crate::ledger::CertificateObject::decode(data);
    let _ = crate::ledger::Submission::decode(data);
}

/// The text formats a peer or a user hands over: certificate notes (canonical: what is accepted
/// prints back identically), endorsements (what is accepted re-parses to the same value), the
/// validators' query answers, receipts, checkpoints and light-client answers and trust (JSON),
/// and every identifier parser.
pub fn text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = crate::ledger::Certificate::parse(text) {
        assert_eq!(
            c.to_note(),
            text,
            "accepted certificate note is not canonical"
        );
    }
    if let Ok(e) = crate::Endorsement::from_text(text) {
        let again = crate::Endorsement::from_text(&e.to_text());
        assert!(
            again.is_ok_and(|a| a.to_text() == e.to_text()),
            "an accepted endorsement does not round-trip"
        );
    }
    // Receipts are checked by people who hold nothing else: any text must give an answer.
    if let Ok(r) = crate::ledger::Receipt::from_json(text) {
        let genesis = r.genesis;
        let _ = r.verify(&genesis);
    }
    let _ = crate::ledger::Checkpoint::from_json(text);
    // What a light client is sent by a node it does not trust.
    if let Ok(a) = crate::ledger::light::StateAnswer::from_json(data) {
        if let Ok(c) = crate::ledger::Certificate::parse(&a.certificate) {
            let hash = a.entry.value.as_deref().map(crate::ledger::smt::value_hash);
            let _ = a
                .entry
                .proof
                .verify(&c.checkpoint.state, &a.query.key(), hash.as_ref());
        }
        for v in [&a.entry.value, &a.authorities.value].into_iter().flatten() {
            let _ = crate::ledger::light::decode_record(v);
            let _ =
                crate::ledger::light::decode_doctor(v, a.records.as_deref().unwrap_or_default());
            let _ = crate::ledger::light::decode_authorities(v);
        }
    }
    let _ = crate::ledger::light::Verifier::from_json(text, &crate::Cid::dag_cbor(b""));
    let _ = serde_json::from_str::<crate::sequencer::comet::HeadAnswer>(text);
    let _ = serde_json::from_str::<crate::sequencer::comet::TxAnswer>(text);
    let _ = crate::sequencer::comet::parse_refusal(text);
    for word in text.split_whitespace().take(64) {
        let _ = word.parse::<crate::RecordId>();
        let _ = word.parse::<crate::IdentityId>();
        let _ = word.parse::<Cid>();
        let _ = word.parse::<crate::Purpose>();
        let _ = word.parse::<crate::ErrorCode>();
    }
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

/// Key-file, SPKI DER and public-key PEM import, and structured key files (below).
pub fn keyfile(data: &[u8]) {
    let _ = crate::PublicKey::from_spki_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::PublicKey::from_pem(text);
        let _ = crate::Identity::from_key_file(text, "fuzz passphrase");
    }
    let _ = crate::Identity::from_key_file(&structured_key_file(data), "fuzz passphrase");
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

fn der_uint(v: u64) -> Vec<u8> {
    let mut b: Vec<u8> = v
        .to_be_bytes()
        .into_iter()
        .skip_while(|&x| x == 0)
        .collect();
    if b.first().is_none_or(|&x| x & 0x80 != 0) {
        b.insert(0, 0);
    }
    der(0x02, &b)
}

fn der_oid(arcs: &[u8]) -> Vec<u8> {
    der(0x06, arcs)
}

/// A syntactically valid key file whose KDF parameters, salt, nonce, role, name and ciphertext
/// come from `data`: it reaches the checks past the DER parser (scrypt N, r, p; the cipher).
pub fn structured_key_file(data: &[u8]) -> String {
    let mut d = data.iter().copied().chain(std::iter::repeat(0));
    let mut take = |n: usize| -> Vec<u8> { (&mut d).take(n).collect() };
    let sel = take(4);
    let n_choice = u64::from_be_bytes(take(8).try_into().unwrap_or([0; 8]));
    // Mostly small exponents, sometimes raw values (0, odd, huge).
    let cost = match (sel[0] & 0x7f) % 4 {
        0 => 1u64 << (n_choice % 24),
        1 => n_choice % 70_000,
        _ => n_choice,
    };
    let r = u64::from(u16::from_be_bytes([sel[1], sel[2]])) % 40;
    let p = u64::from(sel[3] % 6);
    let salt_len = usize::from(take(1)[0] % 40);
    let salt = take(salt_len);
    // The selector's top bit picks AES-256-CBC (16-byte IV) instead of AES-256-GCM.
    let cbc = sel[0] & 0x80 != 0;
    let nonce = take(if cbc { 16 } else { 12 });
    let ct_len = usize::from(take(1)[0]) * 8;
    let ct = take(ct_len);
    let scrypt = der(
        0x30,
        &[der(0x04, &salt), der_uint(cost), der_uint(r), der_uint(p)].concat(),
    );
    // 1.3.6.1.4.1.11591.4.11 (scrypt), 1.2.840.113549.1.5.13 (PBES2), 2.16.840.1.101.3.4.1.46
    // (AES-256-GCM).
    let kdf = der(
        0x30,
        &[
            der_oid(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b]),
            scrypt,
        ]
        .concat(),
    );
    let cipher = der(
        0x30,
        &[
            der_oid(&[
                0x60,
                0x86,
                0x48,
                0x01,
                0x65,
                0x03,
                0x04,
                0x01,
                if cbc { 0x2a } else { 0x2e },
            ]),
            der(0x04, &nonce),
        ]
        .concat(),
    );
    let alg = der(
        0x30,
        &[
            der_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]),
            der(0x30, &[kdf, cipher].concat()),
        ]
        .concat(),
    );
    let epki = der(0x30, &[alg, der(0x04, &ct)].concat());
    let mut body = b"MSID".to_vec();
    body.push(2);
    body.push(1 + (data.first().copied().unwrap_or(0) & 0x7f) % 3);
    body.extend_from_slice(&crate::IdentityId::of_spki_der(b"fuzz").as_bytes()[..]);
    body.extend_from_slice(&4u16.to_be_bytes());
    body.extend_from_slice(b"fuzz");
    body.extend_from_slice(&epki);
    pkcs8::der::pem::encode_string("MEDSHARE IDENTITY", pkcs8::LineEnding::LF, &body)
        .unwrap_or_default()
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
        let _ = pollster::block_on(crate::Vault::open(store, None, None));
    }
}

/// State snapshots (`ledger::snapshot`): the input is a snapshot without its CRC-32 trailer
/// (appended here, so the fuzzer explores the fields rather than the checksum). Whatever decodes
/// re-encodes to a canonical form that decodes to itself.
pub fn snapshot(data: &[u8]) {
    let genesis = crate::ledger::GenesisBlock::new(crate::ledger::Genesis {
        network: "fuzz".into(),
        time: 0,
        nonce: [0; 16],
        authorities: Vec::new(),
        policy: crate::ledger::Policy::default(),
    });
    let mut bytes = data.to_vec();
    bytes.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    if let Ok((state, _)) = crate::ledger::snapshot::decode(&bytes, &genesis)
        && let Some(canonical) = state.snapshot()
    {
        let (again, _) = crate::ledger::snapshot::decode(&canonical, &genesis)
            .unwrap_or_else(|e| panic!("a re-encoded snapshot does not decode: {e}"));
        assert_eq!(
            again.snapshot().as_deref(),
            Some(&canonical[..]),
            "a snapshot's canonical form is not stable"
        );
    }
}
