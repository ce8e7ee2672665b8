//! Pinned test vectors for the envelope format (docs/FORMAT.md), shared with every binding's
//! tests through `testdata/vectors/envelope-v2.txt`.
//!
//! The file was produced once by `cargo test --test vectors -- --ignored generate` and is checked
//! forever after: sealing the same inputs must give the same bytes, and opening the pinned bytes
//! with the pinned key must give the pinned plaintext.

mod common;

use std::collections::BTreeMap;

use common::{identity, pattern};
use medshare::envelope::{self, DataKey, Encryptor, Header, Metadata, Stanza};
use medshare::{Profile, RecordId, unixfs};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/vectors/envelope-v2.txt"
);

struct Case {
    name: &'static str,
    chunk_exp: u8,
    plaintext: Vec<u8>,
    file_name: &'static str,
    media_type: &'static str,
    version: u32,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "empty",
            chunk_exp: 12,
            plaintext: vec![],
            file_name: "",
            media_type: "text/plain",
            version: 1,
        },
        Case {
            name: "fhir-small",
            chunk_exp: 16,
            plaintext: br#"{"resourceType":"Bundle","type":"collection","entry":[]}"#.to_vec(),
            file_name: "labs.json",
            media_type: "application/fhir+json",
            version: 1,
        },
        Case {
            name: "multi-chunk",
            chunk_exp: 12,
            plaintext: pattern(3 * 4096 + 17),
            file_name: "scan.dcm",
            media_type: "application/dicom",
            version: 7,
        },
    ]
}

fn seq(start: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| start.wrapping_add(i as u8)).collect()
}

fn seal_case(c: &Case, wrapped: Vec<u8>) -> Vec<u8> {
    let patient = identity("patient");
    let dek = DataKey::from_bytes(seq(0x00, 32).try_into().unwrap());
    let salt: [u8; 32] = seq(0x20, 32).try_into().unwrap();
    let record = RecordId::from_bytes(seq(0x40, 16).try_into().unwrap());
    let meta = Metadata {
        name: c.file_name.into(),
        media_type: c.media_type.into(),
        size: c.plaintext.len() as u64,
    };
    let stanza = Stanza {
        recipient: patient.key_id(),
        wrapped_key: wrapped,
    };
    let header = Header::build(
        &dek,
        salt,
        c.chunk_exp,
        vec![stanza],
        &record,
        c.version,
        &meta,
    )
    .unwrap();
    let (mut s, mut out) = Encryptor::from_header(dek, &header).unwrap();
    s.update(&c.plaintext, &mut out).unwrap();
    s.finish(&mut out).unwrap();
    out
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

fn unhex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

#[test]
#[ignore = "regenerates the pinned vectors; run only when the format version changes"]
fn generate() {
    let patient = identity("patient");
    let mut text = String::from(
        "# medshare envelope format v2 test vectors (docs/FORMAT.md).\n\
         # Recipient private key: testdata/keys/patient-2048.pem. All binary fields are lower-case hex.\n\
         # dek = 00..1f, salt = 20..3f, record = 40..4f (bytes counting up).\n\n",
    );
    for c in cases() {
        let record = RecordId::from_bytes(seq(0x40, 16).try_into().unwrap());
        let dek = DataKey::from_bytes(seq(0x00, 32).try_into().unwrap());
        let wrapped = dek.wrap(patient.public(), &record, c.version).unwrap();
        let env = seal_case(&c, wrapped.clone());
        text += &format!(
            "name: {}\nrecord: {}\nversion: {}\nchunk_exp: {}\nfile_name: {}\nmedia_type: {}\nrecipient: {}\nwrapped_key: {}\ncommitment: {}\nplaintext: {}\nenvelope: {}\ncid_v1: {}\ncid_v0: {}\n\n",
            c.name,
            record,
            c.version,
            c.chunk_exp,
            c.file_name,
            c.media_type,
            patient.key_id(),
            hex(&wrapped),
            hex(&dek.commitment(&seq(0x20, 32).try_into().unwrap())),
            hex(&c.plaintext),
            hex(&env),
            unixfs::cid(&env, Profile::UnixfsV1_2025),
            unixfs::cid(&env, Profile::UnixfsV0_2015),
        );
    }
    std::fs::write(PATH, text).unwrap();
}

fn load() -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(PATH).unwrap();
    text.split("\n\n")
        .filter(|b| b.lines().any(|l| l.starts_with("name:")))
        .map(|b| {
            b.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    l.split_once(": ")
                        .or_else(|| l.strip_suffix(':').map(|k| (k, "")))
                })
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn pinned_envelopes_are_reproduced_and_open() {
    let patient = identity("patient");
    let vectors = load();
    assert_eq!(vectors.len(), cases().len());
    for (c, v) in cases().iter().zip(&vectors) {
        assert_eq!(v["name"], c.name);
        let env = unhex(&v["envelope"]);
        // Same inputs, same bytes.
        assert_eq!(
            seal_case(c, unhex(&v["wrapped_key"])),
            env,
            "{}: sealing drifted from the pinned bytes",
            c.name
        );
        // The pinned bytes open with the pinned key.
        let mut plain = Vec::new();
        let meta = envelope::open(&patient, &env[..], &mut plain).unwrap();
        assert_eq!(plain, unhex(&v["plaintext"]));
        assert_eq!(
            (meta.name.as_str(), meta.media_type.as_str()),
            (c.file_name, c.media_type)
        );
        assert_eq!(
            v["record"],
            RecordId::from_bytes(seq(0x40, 16).try_into().unwrap()).to_string()
        );
        assert_eq!(v["recipient"], patient.key_id().to_string());
        let dek = DataKey::from_bytes(seq(0x00, 32).try_into().unwrap());
        assert_eq!(
            v["commitment"],
            hex(&dek.commitment(&seq(0x20, 32).try_into().unwrap()))
        );
        assert_eq!(
            unixfs::cid(&env, Profile::UnixfsV1_2025).to_string(),
            v["cid_v1"]
        );
        assert_eq!(
            unixfs::cid(&env, Profile::UnixfsV0_2015).to_string(),
            v["cid_v0"]
        );
    }
}

const CERT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/vectors/certificate-v2.note"
);

/// The certificate vector: a C2SP signed note of a real one-block chain, signed by the
/// `authority-2048` fixture key; `tests/go-note` opens the same file with Go's
/// `golang.org/x/mod/sumdb/note`. Produced once by
/// `cargo test --test vectors -- --ignored generate_certificate`.
#[test]
#[ignore = "writes the certificate vector file"]
fn generate_certificate() {
    let mut c = common::chain::Chain::one();
    c.push(vec![c.reg_patient(&identity("patient"))]);
    let cert = c.certify_head(&c.state, 1);
    std::fs::write(CERT_PATH, cert.certificate.to_note()).unwrap();
}

#[test]
fn certificate_vector_parses_verifies_and_is_canonical() {
    let note = std::fs::read_to_string(CERT_PATH).unwrap();
    let cert = medshare::ledger::Certificate::parse(&note).unwrap();
    assert_eq!(cert.to_note(), note);
    let a = identity("authority");
    let authorities = BTreeMap::from([(a.id(), a.public().clone())]);
    assert_eq!(cert.verify(&authorities).unwrap(), vec![a.id()]);
    assert_eq!(cert.checkpoint.size, 1);
    assert_eq!(cert.checkpoint.height, 1);
    assert!(note.starts_with(&format!("medshare/{}\n1\n", cert.checkpoint.genesis)));
    // One bit off anywhere in the signed text: refused.
    let tampered = note.replacen("\n1\n", "\n2\n", 1);
    let cert = medshare::ledger::Certificate::parse(&tampered).unwrap();
    assert!(cert.verify(&authorities).is_err());
}

const STATE_MAP_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/vectors/state-map-v1.json"
);

/// The state map of docs/FORMAT.md §12: 40 entries under record keys, its root, and proofs of
/// present and absent keys (each in the JSON a node sends).
fn state_map_vector() -> serde_json::Value {
    use medshare::ledger::smt::{StateMap, key, value_hash};
    let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
    let mut m = StateMap::new();
    let mut entries = Vec::new();
    for i in 0u8..40 {
        let k = key("medshare/state/record", &[i; 16]);
        let value = vec![i; usize::from(i % 7) + 1];
        m.insert(&k, &value_hash(&value));
        entries.push(serde_json::json!({"key": hex(&k), "value": hex(&value)}));
    }
    let mut proofs = Vec::new();
    // Present; absent at another key's leaf (200, 201); absent at an empty subtree (41).
    for i in [0u8, 7, 39, 200, 201, 41] {
        let k = key("medshare/state/record", &[i; 16]);
        let value = (i < 40).then(|| vec![i; usize::from(i % 7) + 1]);
        proofs.push(serde_json::json!({
            "key": hex(&k),
            "value": value.as_deref().map(hex),
            "proof": serde_json::to_value(m.prove(&k)).unwrap(),
        }));
    }
    serde_json::json!({
        "description": "docs/FORMAT.md §12: keys = SHA-256(\"medshare/state/record\" || 0x00 || [i; 16]), values as hex",
        "entries": entries,
        "root": hex(&m.root()),
        "proofs": proofs,
    })
}

/// Produced once by `cargo test --test vectors -- --ignored generate_state_map`; read by
/// `check_state_map.py`, an independent verifier written from the format document.
#[test]
#[ignore = "writes the state-map vector file"]
fn generate_state_map() {
    let text = serde_json::to_string_pretty(&state_map_vector()).unwrap();
    std::fs::write(STATE_MAP_PATH, text + "\n").unwrap();
}

#[test]
fn state_map_vector_is_what_the_code_computes() {
    let pinned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(STATE_MAP_PATH).unwrap()).unwrap();
    assert_eq!(pinned, state_map_vector());
    // And every pinned proof verifies with the core's verifier.
    let unhex = |s: &str| data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
    let root: [u8; 32] = unhex(pinned["root"].as_str().unwrap()).try_into().unwrap();
    for p in pinned["proofs"].as_array().unwrap() {
        let proof: medshare::ledger::smt::Proof =
            serde_json::from_value(p["proof"].clone()).unwrap();
        let k: [u8; 32] = unhex(p["key"].as_str().unwrap()).try_into().unwrap();
        let v = p["value"]
            .as_str()
            .map(|v| medshare::ledger::smt::value_hash(&unhex(v)));
        proof.verify(&root, &k, v.as_ref()).unwrap();
    }
}

const SHARES_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/vectors/emergency-shares-v1.json"
);

/// Produced once by `cargo test --test vectors -- --ignored generate_emergency_shares` (the
/// split is random); read by `check_emergency_shares.py`, an independent checker written from
/// docs/FORMAT.md §6.10.
#[test]
#[ignore = "writes the emergency-shares vector file"]
fn generate_emergency_shares() {
    use medshare::envelope::shares;
    let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
    let key = medshare::DataKey::generate().unwrap();
    let record = medshare::RecordId::from_bytes([0x5a; 16]);
    let split = shares::split(&key, 3, 5).unwrap();
    let share_json = |s: &shares::KeyShare| {
        serde_json::json!({
            "index": s.index,
            "share": hex(s.expose()),
            "salt": hex(s.salt()),
            "commitment": hex(&s.commitment(&record, 7)),
        })
    };
    let mut altered = *split[1].expose();
    altered[31] ^= 0x80;
    let bad = shares::KeyShare::from_parts(2, altered, *split[1].salt());
    let mut bad_json = share_json(&bad);
    bad_json["commitment"] = serde_json::json!(hex(&split[1].commitment(&record, 7)));
    let v = serde_json::json!({
        "description": "docs/FORMAT.md §6.10: a data key split 3 of 5 over GF(2^8) (AES polynomial); commitments for record 5a5a…5a version 7; `altered` is share 2 with one bit flipped, under share 2's commitment",
        "record": hex(record.as_bytes()),
        "version": 7,
        "key": hex(key.expose()),
        "threshold": 3,
        "shares": split.iter().map(share_json).collect::<Vec<_>>(),
        "altered": bad_json,
    });
    let text = serde_json::to_string_pretty(&v).unwrap();
    std::fs::write(SHARES_PATH, text + "\n").unwrap();
}

#[test]
fn emergency_shares_vector_is_what_the_code_computes() {
    use medshare::envelope::shares::{self, KeyShare};
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SHARES_PATH).unwrap()).unwrap();
    let unhex = |s: &serde_json::Value| -> [u8; 32] {
        data_encoding::HEXLOWER
            .decode(s.as_str().unwrap().as_bytes())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let record = medshare::RecordId::from_bytes(
        data_encoding::HEXLOWER
            .decode(v["record"].as_str().unwrap().as_bytes())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let version = v["version"].as_u64().unwrap() as u32;
    let key = unhex(&v["key"]);
    let parse = |s: &serde_json::Value| {
        KeyShare::from_parts(
            s["index"].as_u64().unwrap() as u8,
            unhex(&s["share"]),
            unhex(&s["salt"]),
        )
    };
    let all: Vec<KeyShare> = v["shares"].as_array().unwrap().iter().map(parse).collect();
    for (s, j) in all.iter().zip(v["shares"].as_array().unwrap()) {
        assert!(s.matches(&record, version, &unhex(&j["commitment"])));
    }
    // Every 3 of the 5 give the key; 2 do not.
    for a in 0..5 {
        for b in a + 1..5 {
            let two = shares::combine(&[all[a].clone(), all[b].clone()]).unwrap();
            assert_ne!(*two.expose(), key);
            for c in b + 1..5 {
                let three =
                    shares::combine(&[all[a].clone(), all[b].clone(), all[c].clone()]).unwrap();
                assert_eq!(*three.expose(), key);
            }
        }
    }
    let bad = parse(&v["altered"]);
    assert!(!bad.matches(&record, version, &unhex(&v["altered"]["commitment"])));
}

const DOCTOR_ENTRY_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/vectors/doctor-entry-v1.json"
);

/// A doctor's state-map entry (ledger v4, docs/FORMAT.md §12.2): three records granted to her
/// (no expiry, one in 32 bits, one past 32 bits), her entry and the leaf values of her own tree, as a
/// node's answer carries them.
fn doctor_entry_vector() -> serde_json::Value {
    use medshare::ledger::light::StateQuery;
    let mut c = common::chain::Chain::one();
    let (p, d) = (identity("patient"), identity("doctor"));
    c.push(vec![c.reg_patient(&p), c.reg_doctor(&d)]);
    let rid = |n: u8| RecordId::from_bytes([n; 16]);
    c.push(vec![
        c.publish(&p, 2, rid(1), 1),
        c.publish(&p, 3, rid(2), 1),
        c.publish(&p, 4, rid(3), 1),
    ]);
    let expiries = [None, Some(4_000_000_000u64), Some(5_000_000_000_000)];
    c.push(vec![
        c.grant(&p, 5, rid(1), 1, &d, expiries[0]),
        c.grant(&p, 6, rid(2), 1, &d, expiries[1]),
        c.grant(&p, 7, rid(3), 1, &d, expiries[2]),
    ]);
    let answer = c.state.prove(&StateQuery::Doctor(d.id()), "unused");
    let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
    let records: Vec<serde_json::Value> = answer
        .records
        .unwrap()
        .iter()
        .zip(1u8..)
        .zip(expiries)
        .map(|((v, n), e)| {
            serde_json::json!({"record": hex(&[n; 16]), "version": 1, "expires": e, "value": hex(v)})
        })
        .collect();
    serde_json::json!({
        "description": "docs/FORMAT.md §12.2: a doctor's entry {doctor, records, root} and the leaves of her own tree (key SHA-256(\"medshare/state/doctor-record\" || 0x00 || record id), value {record, expires?, version}), values as hex",
        "doctor": hex(d.id().as_bytes()),
        "records": records,
        "entry": hex(answer.entry.value.as_ref().unwrap()),
    })
}

/// Produced once by `cargo test --test vectors -- --ignored generate_doctor_entry`; read by
/// `check_state_map.py`.
#[test]
#[ignore = "writes the doctor-entry vector file"]
fn generate_doctor_entry() {
    let text = serde_json::to_string_pretty(&doctor_entry_vector()).unwrap();
    std::fs::write(DOCTOR_ENTRY_PATH, text + "\n").unwrap();
}

#[test]
fn doctor_entry_vector_is_what_the_code_computes() {
    let pinned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DOCTOR_ENTRY_PATH).unwrap()).unwrap();
    assert_eq!(pinned, doctor_entry_vector());
}
