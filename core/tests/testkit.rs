//! The negative testkit (`testdata/testkit/cases.txt`, as rage's testkit): malformed envelopes,
//! key files and CARs, each with the error code every implementation must give. Generated once
//! by the ignored test `generate`, checked here and by every binding's test suite.
//!
//! Case kinds: `envelope` (open with the fixture key `key`), `keyfile` (load the text with
//! `passphrase`), `pkcs8` (import the PEM as a patient), `car` (import into an empty store,
//! accepting only the network `genesis`).

mod common;

use std::collections::BTreeMap;

use common::{Rand, identity, key};
use medshare::envelope::{self, DataKey, Encryptor, Header, Metadata, SealOptions, Stanza};
use medshare::ledger::{Endorsement, Policy};
use medshare::{Error, GrantOptions, Identity, RecordId, Role, Store, Vault};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/testkit/cases.txt");
const NOW: u64 = 4_000_000_000;

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

fn unhex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

fn meta(n: usize) -> Metadata {
    Metadata {
        name: "x.bin".into(),
        media_type: "application/octet-stream".into(),
        size: n as u64,
    }
}

fn sealed(data: &[u8]) -> Vec<u8> {
    let p = identity("patient");
    let (mut e, mut out) = Encryptor::new(
        &RecordId::from_bytes([1; 16]),
        1,
        &meta(data.len()),
        &[p.public()],
        SealOptions { chunk_exp: 12 },
    )
    .unwrap();
    e.update(data, &mut out).unwrap();
    e.finish(&mut out).unwrap();
    out
}

struct Case {
    name: &'static str,
    kind: &'static str,
    expect: &'static str,
    extra: Vec<(&'static str, String)>,
    data: Vec<u8>,
}

fn case(name: &'static str, kind: &'static str, expect: &'static str, data: Vec<u8>) -> Case {
    Case {
        name,
        kind,
        expect,
        extra: Vec::new(),
        data,
    }
}

fn envelope_cases() -> Vec<Case> {
    let data = Rand::new(1).bytes(3 * 4096 + 100);
    let good = sealed(&data);
    let start = Header::parse(&good).unwrap().len();
    let c = 4096 + 16;
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let mut cases = vec![
        case(
            "envelope-bad-magic",
            "envelope",
            "MalformedEnvelope",
            with(&|v| v[0] = b'X'),
        ),
        case(
            "envelope-version-9",
            "envelope",
            "UnsupportedVersion",
            with(&|v| v[6] = 9),
        ),
        case(
            "envelope-zero-recipients",
            "envelope",
            "MalformedEnvelope",
            with(&|v| {
                v[92] = 0;
                v[93] = 0;
            }),
        ),
        case(
            "envelope-truncated-final-chunk",
            "envelope",
            "Truncated",
            good[..good.len() - 10].to_vec(),
        ),
        case(
            "envelope-header-only",
            "envelope",
            "Truncated",
            good[..start].to_vec(),
        ),
        case(
            "envelope-trailing-data",
            "envelope",
            "TrailingData",
            with(&|v| v.extend_from_slice(b"more")),
        ),
        case(
            "envelope-tampered-chunk-1",
            "envelope",
            "ChunkAuthentication",
            with(&|v| v[start + c + 5] ^= 1),
        ),
        case(
            "envelope-tampered-metadata",
            "envelope",
            "ChunkAuthentication",
            with(&|v| v[start - 20] ^= 1),
        ),
        case(
            "envelope-tampered-commitment",
            "envelope",
            "KeyCommitment",
            with(&|v| v[70] ^= 1),
        ),
        case(
            "envelope-swapped-chunks",
            "envelope",
            "ChunkAuthentication",
            with(&|v| {
                let a = v[start..start + c].to_vec();
                let b = v[start + c..start + 2 * c].to_vec();
                v[start..start + c].copy_from_slice(&b);
                v[start + c..start + 2 * c].copy_from_slice(&a);
            }),
        ),
    ];
    // Not a recipient: sealed to the doctor only.
    let d = identity("doctor");
    let mut to_doctor = Vec::new();
    envelope::seal(
        &RecordId::from_bytes([2; 16]),
        1,
        &meta(3),
        &[d.public()],
        &b"abc"[..],
        &mut to_doctor,
    )
    .unwrap();
    cases.push(case(
        "envelope-not-a-recipient",
        "envelope",
        "NotARecipient",
        to_doctor,
    ));
    // The patient's stanza wraps another key than the one the header commits to.
    let p = identity("patient");
    let record = RecordId::from_bytes([3; 16]);
    let dek = DataKey::from_bytes([4; 32]);
    let other = DataKey::from_bytes([5; 32]);
    let stanza = Stanza {
        recipient: p.key_id(),
        wrapped_key: other.wrap(p.public(), &record, 1).unwrap(),
    };
    let h = Header::build(&dek, [6; 32], 12, vec![stanza], &record, 1, &meta(3)).unwrap();
    let (mut e, mut out) = Encryptor::from_header(dek, &h).unwrap();
    e.update(b"abc", &mut out).unwrap();
    e.finish(&mut out).unwrap();
    cases.push(case(
        "envelope-wrapped-key-not-committed",
        "envelope",
        "KeyCommitment",
        out,
    ));
    // A wrapped key made for another record.
    let stanza = Stanza {
        recipient: p.key_id(),
        wrapped_key: other
            .wrap(p.public(), &RecordId::from_bytes([9; 16]), 1)
            .unwrap(),
    };
    let h = Header::build(&other, [6; 32], 12, vec![stanza], &record, 1, &meta(3)).unwrap();
    let (mut e, mut out) = Encryptor::from_header(other, &h).unwrap();
    e.update(b"abc", &mut out).unwrap();
    e.finish(&mut out).unwrap();
    cases.push(case(
        "envelope-wrap-for-another-record",
        "envelope",
        "KeyUnwrap",
        out,
    ));
    for c in &mut cases {
        c.extra.push(("key", "patient-2048".into()));
    }
    cases
}

fn keyfile_cases() -> Vec<Case> {
    let p = identity("patient");
    let good = p.to_key_file("correct horse battery").unwrap();
    let mut cases = vec![
        case(
            "keyfile-wrong-passphrase",
            "keyfile",
            "WrongPassphrase",
            good.clone().into_bytes(),
        ),
        case("keyfile-empty", "keyfile", "InvalidKey", Vec::new()),
        case(
            "keyfile-foreign-pem",
            "keyfile",
            "InvalidKey",
            key("patient").as_bytes().to_vec(),
        ),
        case(
            "keyfile-garbage",
            "keyfile",
            "InvalidKey",
            b"-----BEGIN MEDSHARE IDENTITY-----\nAAAA\n-----END MEDSHARE IDENTITY-----\n".to_vec(),
        ),
        case(
            "pkcs8-weak-1024",
            "pkcs8",
            "WeakKey",
            key("weak").as_bytes().to_vec(),
        ),
        case("pkcs8-empty", "pkcs8", "InvalidKey", Vec::new()),
    ];
    // scrypt parameters that used to panic inside the KDF.
    let mut n0 = vec![1u8, 0, 8, 1];
    n0.extend_from_slice(&0u64.to_be_bytes());
    n0.extend_from_slice(&[16]);
    n0.extend_from_slice(&[0xaa; 16]);
    n0.extend_from_slice(&[0xbb; 12]);
    n0.extend_from_slice(&[4]);
    n0.extend_from_slice(&[0xcc; 32]);
    cases.push(case(
        "keyfile-scrypt-n-zero",
        "keyfile",
        "InvalidKey",
        medshare::fuzz::structured_key_file(&n0).into_bytes(),
    ));
    for c in &mut cases {
        c.extra.push(("passphrase", "wrong horse battery".into()));
    }
    cases
}

fn car_cases() -> Vec<Case> {
    pollster::block_on(async {
        let authority = identity("authority");
        let mut v = Vault::create(
            Store::memory(),
            "testkit",
            authority.clone(),
            Policy::default(),
        )
        .await
        .unwrap();
        let (p, d) = (identity("patient"), identity("doctor"));
        v.register(&p, None).await.unwrap();
        let e = Endorsement::sign(&authority, &v.genesis(), &d.id(), "L").unwrap();
        v.register(&d, Some(&e)).await.unwrap();
        let r = v
            .publish_bytes(
                &p,
                &Rand::new(2).bytes(300_000),
                "x",
                "application/octet-stream",
            )
            .await
            .unwrap();
        v.grant(&p, &r, &d.id(), GrantOptions::default())
            .await
            .unwrap();
        let mut good = Vec::new();
        v.export_car(&mut good).await.unwrap();
        let genesis = v.genesis().to_string();
        let other = Vault::create(
            Store::memory(),
            "testkit",
            authority.clone(),
            Policy::default(),
        )
        .await
        .unwrap();
        let mut cases = vec![
            case(
                "car-truncated",
                "car",
                "MalformedCar",
                good[..good.len() - 7].to_vec(),
            ),
            case("car-empty", "car", "MalformedCar", Vec::new()),
        ];
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 100] ^= 1;
        cases.push(case(
            "car-block-bytes-differ",
            "car",
            "CidMismatch",
            flipped,
        ));
        let mut wrong = case("car-another-network", "car", "WrongGenesis", good.clone());
        wrong.extra.push(("genesis", other.genesis().to_string()));
        cases.push(wrong);
        for c in &mut cases {
            if !c.extra.iter().any(|(k, _)| *k == "genesis") {
                c.extra.push(("genesis", genesis.clone()));
            }
        }
        cases
    })
}

#[test]
#[ignore = "regenerates the testkit; run only when a format changes"]
fn generate() {
    let mut text = String::from(
        "# medshare negative testkit (docs/FORMAT.md §8). Each case: what to do with `data` (hex)\n\
         # and the error code it must give. Keys are core/testdata/keys/<key>.pem.\n\n",
    );
    for c in envelope_cases()
        .into_iter()
        .chain(keyfile_cases())
        .chain(car_cases())
    {
        text += &format!("name: {}\nkind: {}\nexpect: {}\n", c.name, c.kind, c.expect);
        for (k, v) in &c.extra {
            text += &format!("{k}: {v}\n");
        }
        text += &format!("data: {}\n\n", hex(&c.data));
    }
    std::fs::create_dir_all(std::path::Path::new(PATH).parent().unwrap()).unwrap();
    std::fs::write(PATH, text).unwrap();
}

fn load() -> Vec<BTreeMap<String, String>> {
    std::fs::read_to_string(PATH)
        .unwrap()
        .split("\n\n")
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

fn run(c: &BTreeMap<String, String>) -> Result<(), Error> {
    let data = unhex(&c["data"]);
    match c["kind"].as_str() {
        "envelope" => {
            let who = Identity::from_pkcs8_pem(
                Role::Patient,
                "k",
                key(c["key"].trim_end_matches("-2048")),
            )
            .unwrap();
            envelope::open(&who, &data[..], &mut Vec::new()).map(drop)
        }
        "keyfile" => {
            Identity::from_key_file(&String::from_utf8(data).unwrap(), &c["passphrase"]).map(drop)
        }
        "pkcs8" => Identity::from_pkcs8_pem(Role::Patient, "k", &String::from_utf8(data).unwrap())
            .map(drop),
        "car" => {
            let genesis = medshare::parse_cid(&c["genesis"]).unwrap();
            pollster::block_on(Vault::import_car(
                Store::memory(),
                &data[..],
                Some(&genesis),
                NOW,
            ))
            .map(drop)
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn every_case_gives_its_code() {
    let cases = load();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for c in &cases {
        match run(c) {
            Err(e) => assert_eq!(e.code(), c["expect"], "{}: {e}", c["name"]),
            Ok(()) => panic!("{}: accepted", c["name"]),
        }
    }
}
