mod common;

use std::io::Cursor;

use common::{Rand, identity};
use medshare::envelope::{
    self, DataKey, Decryptor, Encryptor, Header, Metadata, SealOptions, Stanza, TAG_LEN, padded_len,
};
use medshare::{Error, Identity, RecordId};
use proptest::prelude::*;

fn meta(size: usize) -> Metadata {
    Metadata {
        name: "scan.dcm".into(),
        media_type: "application/dicom".into(),
        size: size as u64,
    }
}

/// Seals `data` with small (4 KiB) chunks so that tests see many chunks.
fn seal_small(data: &[u8], to: &[&Identity]) -> (RecordId, Vec<u8>, DataKey) {
    let record = RecordId::random().unwrap();
    let pks: Vec<_> = to.iter().map(|i| i.public()).collect();
    let (mut sealer, mut out) = Encryptor::new(
        &record,
        1,
        &meta(data.len()),
        &pks,
        SealOptions { chunk_exp: 12 },
    )
    .unwrap();
    sealer.update(data, &mut out).unwrap();
    let dek = sealer.finish(&mut out).unwrap();
    (record, out, dek)
}

fn open_all(id: &Identity, sealed: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    envelope::open(id, sealed, &mut out)?;
    Ok(out)
}

fn payload_start(sealed: &[u8]) -> usize {
    Header::parse(sealed).unwrap().len()
}

/// An envelope built from explicit parts (its own DEK, salt and stanzas).
fn from_parts(
    dek: DataKey,
    salt: [u8; 32],
    stanzas: Vec<Stanza>,
    record: &RecordId,
    plain: &[u8],
) -> Vec<u8> {
    let h = Header::build(&dek, salt, 16, stanzas, record, 1, &meta(plain.len())).unwrap();
    let (mut s, mut out) = Encryptor::from_header(dek, &h).unwrap();
    s.update(plain, &mut out).unwrap();
    s.finish(&mut out).unwrap();
    out
}

#[test]
fn round_trip_for_every_recipient() {
    let (p, d) = (identity("patient"), identity("doctor"));
    let data = Rand::new(1).bytes(50_000);
    let (record, sealed, _) = seal_small(&data, &[&p, &d]);
    assert_eq!(open_all(&p, &sealed).unwrap(), data);
    assert_eq!(open_all(&d, &sealed).unwrap(), data);
    let h = Header::parse(&sealed).unwrap();
    assert_eq!((h.record(), h.version(), h.stanzas().len()), (record, 1, 2));
    // Exactly header + padded plaintext + one tag per chunk.
    let padded = padded_len(data.len() as u64) as usize;
    assert_eq!(
        sealed.len(),
        h.len() + padded + padded.div_ceil(4096) * TAG_LEN
    );
}

#[test]
fn metadata_is_encrypted_and_padded() {
    let p = identity("patient");
    let (_, sealed, dek) = seal_small(b"{}", &[&p]);
    let h = Header::parse(&sealed).unwrap();
    let m = h.metadata(&dek).unwrap();
    assert_eq!(m, meta(2));
    // Nothing of the metadata shows in clear.
    for needle in [&b"dicom"[..], b"scan.dcm", b"application"] {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn empty_and_boundary_sizes() {
    let p = identity("patient");
    for len in [0usize, 1, 4095, 4096, 4097, 8192, 3 * 4096 + 5] {
        let data = Rand::new(len as u64).bytes(len);
        let (_, sealed, _) = seal_small(&data, &[&p]);
        assert_eq!(open_all(&p, &sealed).unwrap(), data, "len {len}");
    }
}

#[test]
fn not_a_recipient() {
    let (_, sealed, _) = seal_small(b"secret", &[&identity("patient")]);
    assert!(matches!(
        open_all(&identity("doctor"), &sealed),
        Err(Error::NotARecipient)
    ));
}

#[test]
fn wrong_key_for_a_stanza_fails_unwrap() {
    // A stanza claiming the doctor's id but wrapped to the patient's key.
    let (p, d) = (identity("patient"), identity("doctor"));
    let record = RecordId::random().unwrap();
    let dek = DataKey::generate().unwrap();
    let stanza = Stanza {
        recipient: d.id(),
        wrapped_key: dek.wrap(p.public(), &record, 1).unwrap(),
    };
    let out = from_parts(dek, [7; 32], vec![stanza], &record, b"abc");
    assert!(matches!(open_all(&d, &out), Err(Error::KeyUnwrap)));
}

#[test]
fn wrong_oaep_label_fails_unwrap() {
    let d = identity("doctor");
    let record = RecordId::random().unwrap();
    let other = RecordId::random().unwrap();
    let dek = DataKey::generate().unwrap();
    let wrapped = dek.wrap(d.public(), &record, 1).unwrap();
    assert_eq!(
        DataKey::unwrap(&d, &wrapped, &record, 1).unwrap().expose(),
        dek.expose()
    );
    assert!(matches!(
        DataKey::unwrap(&d, &wrapped, &other, 1),
        Err(Error::KeyUnwrap)
    ));
    assert!(matches!(
        DataKey::unwrap(&d, &wrapped, &record, 2),
        Err(Error::KeyUnwrap)
    ));
    // Replaying the wrapped key of one record into an envelope of another record.
    let stanza = Stanza {
        recipient: d.id(),
        wrapped_key: wrapped,
    };
    let out = from_parts(dek, [1; 32], vec![stanza], &other, b"x");
    assert!(matches!(open_all(&d, &out), Err(Error::KeyUnwrap)));
}

#[test]
fn a_reader_given_another_key_is_refused_before_any_plaintext() {
    // "Invisible salamanders": the publisher wraps one key for the patient and another for the
    // doctor. AES-GCM alone would let both keys "open" crafted chunks to different plaintexts;
    // the key commitment in the header refuses the doctor's key before anything is decrypted.
    let (p, d) = (identity("patient"), identity("doctor"));
    let record = RecordId::random().unwrap();
    let dek = DataKey::generate().unwrap();
    let other = DataKey::generate().unwrap();
    let stanzas = vec![
        Stanza {
            recipient: p.id(),
            wrapped_key: dek.wrap(p.public(), &record, 1).unwrap(),
        },
        Stanza {
            recipient: d.id(),
            wrapped_key: other.wrap(d.public(), &record, 1).unwrap(),
        },
    ];
    let sealed = from_parts(dek, [3; 32], stanzas, &record, b"the patient's plaintext");
    assert_eq!(open_all(&p, &sealed).unwrap(), b"the patient's plaintext");
    let mut out = Vec::new();
    assert!(matches!(
        envelope::open(&d, &sealed[..], &mut out),
        Err(Error::KeyCommitment)
    ));
    assert!(
        out.is_empty(),
        "nothing may be released to a reader holding another key"
    );
    let h = Header::parse(&sealed).unwrap();
    assert!(matches!(h.metadata(&other), Err(Error::KeyCommitment)));
    assert!(matches!(
        Decryptor::new(&h, &other),
        Err(Error::KeyCommitment)
    ));
    assert!(matches!(
        envelope::open_range(&other, Cursor::new(&sealed), 0, 1, &mut Vec::new()),
        Err(Error::KeyCommitment)
    ));
}

#[test]
fn the_envelope_size_reveals_only_the_padded_size() {
    let p = identity("patient");
    // Sizes that pad to the same length give envelopes of the same length.
    let (_, a, _) = seal_small(&Rand::new(1).bytes(1000), &[&p]);
    let (_, b, _) = seal_small(&Rand::new(2).bytes(1005), &[&p]);
    assert_eq!(padded_len(1000), padded_len(1005));
    assert_eq!(a.len(), b.len());
    // Tiny records all look like 256 bytes.
    let (_, c, _) = seal_small(b"", &[&p]);
    let (_, e, _) = seal_small(&[7u8; 200], &[&p]);
    assert_eq!(c.len(), e.len());
    // What the size still says: within ~12% (docs/SECURITY.md).
    for n in [300u64, 5_000, 1 << 20, 123_456_789] {
        assert!(padded_len(n) >= n && padded_len(n) - n <= n / 8);
    }
}

#[test]
fn tampered_chunk() {
    let p = identity("patient");
    let data = Rand::new(2).bytes(20_000);
    let (_, mut sealed, _) = seal_small(&data, &[&p]);
    let start = payload_start(&sealed);
    sealed[start + 2 * (4096 + TAG_LEN) + 100] ^= 0x40;
    assert!(matches!(
        open_all(&p, &sealed),
        Err(Error::ChunkAuthentication { chunk: Some(2) })
    ));
}

#[test]
fn tampered_tag_and_metadata_and_header() {
    let p = identity("patient");
    let (_, sealed, _) = seal_small(&Rand::new(3).bytes(5000), &[&p]);
    let start = payload_start(&sealed);
    let mut t = sealed.clone();
    t[start + 4096 + TAG_LEN - 1] ^= 1; // tag of chunk 0
    assert!(matches!(
        open_all(&p, &t),
        Err(Error::ChunkAuthentication { chunk: Some(0) })
    ));
    let mut t = sealed.clone();
    t[start - 20] ^= 1; // inside the metadata ciphertext
    assert!(matches!(
        open_all(&p, &t),
        Err(Error::ChunkAuthentication { chunk: None })
    ));
    let mut t = sealed.clone();
    t[40] ^= 1; // the salt: the key commitment no longer matches
    assert!(matches!(open_all(&p, &t), Err(Error::KeyCommitment)));
    let mut t = sealed.clone();
    t[70] ^= 1; // the commitment itself
    assert!(matches!(open_all(&p, &t), Err(Error::KeyCommitment)));
}

#[test]
fn swapped_and_reordered_chunks() {
    let p = identity("patient");
    let data = Rand::new(4).bytes(4 * 4096 + 10);
    let (_, sealed, _) = seal_small(&data, &[&p]);
    let start = payload_start(&sealed);
    let c = 4096 + TAG_LEN;
    let chunk = |i: usize| sealed[start + i * c..start + (i + 1) * c].to_vec();
    // Swap chunks 1 and 2.
    let mut swapped = sealed[..start].to_vec();
    for i in [0, 2, 1, 3] {
        swapped.extend_from_slice(&chunk(i));
    }
    swapped.extend_from_slice(&sealed[start + 4 * c..]);
    assert!(matches!(
        open_all(&p, &swapped),
        Err(Error::ChunkAuthentication { chunk: Some(1) })
    ));
    // Rotate the full chunks.
    let mut reordered = sealed[..start].to_vec();
    for i in [1, 2, 3, 0] {
        reordered.extend_from_slice(&chunk(i));
    }
    reordered.extend_from_slice(&sealed[start + 4 * c..]);
    assert!(matches!(
        open_all(&p, &reordered),
        Err(Error::ChunkAuthentication { chunk: Some(0) })
    ));
    // A chunk taken from another envelope sealed to the same recipient.
    let (_, other, _) = seal_small(&data, &[&p]);
    let mut mixed = sealed.clone();
    mixed[start + c..start + 2 * c].copy_from_slice(&other[start + c..start + 2 * c]);
    assert!(matches!(
        open_all(&p, &mixed),
        Err(Error::ChunkAuthentication { chunk: Some(1) })
    ));
}

#[test]
fn truncated_envelopes() {
    let p = identity("patient");
    let data = Rand::new(5).bytes(3 * 4096);
    let (_, sealed, _) = seal_small(&data, &[&p]);
    let start = payload_start(&sealed);
    let c = 4096 + TAG_LEN;
    // 3 * 4096 is already a Padmé length: three whole chunks.
    assert_eq!(padded_len(3 * 4096), 3 * 4096);
    // Cut at a chunk boundary (dropping the final chunk), in the middle of a chunk, and inside the header.
    for cut in [start + 2 * c, start + c + 77, start, start - 1, 10, 0] {
        assert!(
            matches!(open_all(&p, &sealed[..cut]), Err(Error::Truncated)),
            "cut at {cut}"
        );
    }
}

#[test]
fn trailing_data_after_final_chunk() {
    let p = identity("patient");
    let (_, mut sealed, _) = seal_small(b"short", &[&p]);
    sealed.extend_from_slice(&[0u8; 32]);
    assert!(matches!(open_all(&p, &sealed), Err(Error::TrailingData)));
}

#[test]
fn malformed_headers() {
    let p = identity("patient");
    let (_, sealed, _) = seal_small(b"x", &[&p]);
    let mut t = sealed.clone();
    t[0] = b'X';
    assert!(matches!(open_all(&p, &t), Err(Error::MalformedEnvelope(_))));
    let mut t = sealed.clone();
    t[6] = 9;
    assert!(matches!(
        open_all(&p, &t),
        Err(Error::UnsupportedVersion(9))
    ));
    let mut t = sealed.clone();
    t[7] = 40; // chunk exponent
    assert!(matches!(open_all(&p, &t), Err(Error::MalformedEnvelope(_))));
    let mut t = sealed.clone();
    t[92] = 0;
    t[93] = 0; // zero recipients
    assert!(matches!(open_all(&p, &t), Err(Error::MalformedEnvelope(_))));
    let mut t = sealed.clone();
    t[94 + 34] = 0xff; // wrapped key length
    assert!(matches!(open_all(&p, &t), Err(Error::MalformedEnvelope(_))));
    assert!(matches!(open_all(&p, b""), Err(Error::Truncated)));
}

#[test]
fn declared_size_is_enforced() {
    let p = identity("patient");
    let record = RecordId::random().unwrap();
    let (mut s, mut out) =
        Encryptor::new(&record, 1, &meta(10), &[p.public()], SealOptions::default()).unwrap();
    s.update(b"12345", &mut out).unwrap();
    assert!(matches!(
        s.finish(&mut out),
        Err(Error::SizeMismatch {
            expected: 10,
            actual: 5
        })
    ));
    let (mut s, mut out) =
        Encryptor::new(&record, 1, &meta(3), &[p.public()], SealOptions::default()).unwrap();
    assert!(matches!(
        s.update(b"12345", &mut out),
        Err(Error::SizeMismatch {
            expected: 3,
            actual: 5
        })
    ));
}

#[test]
fn oversize_inputs_are_refused() {
    let p = identity("patient");
    let record = RecordId::random().unwrap();
    let huge = Metadata {
        size: (1u64 << 40) + 1,
        ..meta(0)
    };
    assert!(matches!(
        Encryptor::new(&record, 1, &huge, &[p.public()], SealOptions::default()),
        Err(Error::TooLarge { what: "record", .. })
    ));
    let long_name = Metadata {
        name: "n".repeat(2000),
        ..meta(0)
    };
    assert!(matches!(
        Encryptor::new(
            &record,
            1,
            &long_name,
            &[p.public()],
            SealOptions::default()
        ),
        Err(Error::TooLarge {
            what: "file name",
            ..
        })
    ));
    assert!(matches!(
        Encryptor::new(&record, 1, &meta(0), &[], SealOptions::default()),
        Err(Error::TooLarge {
            what: "recipient list",
            ..
        })
    ));
    assert!(matches!(
        Encryptor::new(
            &record,
            1,
            &meta(0),
            &[p.public()],
            SealOptions { chunk_exp: 30 }
        ),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn byte_ranges_decrypt_alone() {
    let p = identity("patient");
    let data = Rand::new(6).bytes(5 * 4096 + 123);
    let (_, sealed, dek) = seal_small(&data, &[&p]);
    for (start, len) in [
        (0u64, 1u64),
        (4095, 2),
        (4096, 4096),
        (100, 20_000),
        (20_000, 600),
        (0, data.len() as u64),
        (7, 0),
    ] {
        let mut out = Vec::new();
        envelope::open_range(&dek, Cursor::new(&sealed), start, len, &mut out).unwrap();
        assert_eq!(
            out,
            &data[start as usize..(start + len) as usize],
            "{start}+{len}"
        );
    }
    let mut out = Vec::new();
    assert!(matches!(
        envelope::open_range(
            &dek,
            Cursor::new(&sealed),
            data.len() as u64 - 1,
            2,
            &mut out
        ),
        Err(Error::RangeOutOfBounds { .. })
    ));
    // A range read still authenticates the chunks it touches.
    let start = payload_start(&sealed);
    let mut t = sealed.clone();
    t[start + 4096 + TAG_LEN + 5] ^= 1;
    assert!(matches!(
        envelope::open_range(&dek, Cursor::new(&t), 4096, 10, &mut Vec::new()),
        Err(Error::ChunkAuthentication { chunk: Some(1) })
    ));
    assert!(matches!(
        envelope::open_range(
            &dek,
            Cursor::new(&sealed[..sealed.len() - 1]),
            0,
            1,
            &mut Vec::new()
        ),
        Err(Error::Truncated)
    ));
}

#[test]
fn streaming_read_write_api_round_trip() {
    let (p, d) = (identity("patient"), identity("doctor"));
    let data = Rand::new(7).bytes(3 << 20);
    let record = RecordId::random().unwrap();
    let mut sealed = Vec::new();
    let out = envelope::seal(
        &record,
        4,
        &meta(data.len()),
        &[p.public(), d.public()],
        &data[..],
        &mut sealed,
    )
    .unwrap();
    assert_eq!(out.len, sealed.len() as u64);
    let mut plain = Vec::new();
    let m = envelope::open_with_key(&out.key, &sealed[..], &mut plain).unwrap();
    assert_eq!((m, plain.len()), (meta(data.len()), data.len()));
    assert_eq!(plain, data);
}

#[test]
fn decryptor_accepts_any_split() {
    let p = identity("patient");
    let data = Rand::new(8).bytes(10_000);
    let (_, sealed, dek) = seal_small(&data, &[&p]);
    let h = Header::parse(&sealed).unwrap();
    for step in [1usize, 7, 4096, 4112, 5000] {
        let mut dec = Decryptor::new(&h, &dek).unwrap();
        let mut out = Vec::new();
        for piece in sealed[h.len()..].chunks(step) {
            dec.update(piece, &mut out).unwrap();
        }
        dec.finish().unwrap();
        assert_eq!(out, data, "step {step}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trip(data in proptest::collection::vec(any::<u8>(), 0..20_000), exp in 12u8..=14, split in 1usize..5000) {
        let p = identity("patient");
        let record = RecordId::random().unwrap();
        let (mut s, mut sealed) = Encryptor::new(&record, 3, &meta(data.len()), &[p.public()], SealOptions { chunk_exp: exp }).unwrap();
        for piece in data.chunks(split) {
            s.update(piece, &mut sealed).unwrap();
        }
        s.finish(&mut sealed).unwrap();
        prop_assert_eq!(open_all(&p, &sealed).unwrap(), data);
    }

    #[test]
    fn any_flipped_payload_bit_is_detected(len in 1usize..12_000, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let p = identity("patient");
        let data = Rand::new(len as u64).bytes(len);
        let (_, mut sealed, _) = seal_small(&data, &[&p]);
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        prop_assert!(open_all(&p, &sealed).is_err());
    }
}
