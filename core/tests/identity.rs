mod common;

use common::{identity, key};
use medshare::{Error, Identity, IdentityId, PublicKey, Role};

#[test]
fn id_is_multihash_of_spki_and_ignores_the_name() {
    let a = Identity::from_pkcs8_pem(Role::Patient, "Ada", key("patient")).unwrap();
    let b = Identity::from_pkcs8_pem(Role::Patient, "Someone else", key("patient")).unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(a.id(), IdentityId::of_spki_der(a.public().to_spki_der()));
    let text = a.id().to_string();
    assert!(text.starts_with("bciq"), "{text}"); // base32 of 0x12 0x20 …
    assert_eq!(text.parse::<IdentityId>().unwrap(), a.id());
    assert_ne!(a.id(), identity("doctor").id());
}

#[test]
fn spki_der_and_pem_round_trip() {
    let id = identity("doctor");
    let der = id.public().to_spki_der().to_vec();
    assert_eq!(PublicKey::from_spki_der(&der).unwrap(), *id.public());
    let pem = id.public().to_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(PublicKey::from_pem(&pem).unwrap().id(), id.id());
    // Interoperable with OpenSSL's own SPKI encoding of the same key.
    let openssl = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    if let Ok(mut child) = openssl {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(key("doctor").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.stdout, der);
    }
}

#[test]
fn sign_and_verify_pss() {
    let id = identity("patient");
    let sig = id.sign(b"register me").unwrap();
    assert_eq!(sig.len(), 256);
    id.public().verify(b"register me", &sig).unwrap();
    assert!(matches!(
        id.public().verify(b"register mE", &sig),
        Err(Error::BadSignature)
    ));
    let mut forged = sig.clone();
    forged[10] ^= 1;
    assert!(matches!(
        id.public().verify(b"register me", &forged),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        identity("doctor").public().verify(b"register me", &sig),
        Err(Error::BadSignature)
    ));
    assert!(matches!(
        id.public().verify(b"register me", &sig[..255]),
        Err(Error::BadSignature)
    ));
}

#[test]
fn weak_keys_are_refused() {
    assert!(matches!(
        Identity::generate(Role::Patient, "x", 1024),
        Err(Error::WeakKey {
            bits: 1024,
            min: 2048
        })
    ));
    assert!(matches!(
        Identity::generate(Role::Patient, "x", 2047),
        Err(Error::WeakKey {
            bits: 2047,
            min: 2048
        })
    ));
    assert!(matches!(
        Identity::generate(Role::Patient, "x", 2560),
        Err(Error::UnsupportedKeySize { bits: 2560 })
    ));
    assert!(matches!(
        Identity::generate(Role::Patient, "x", 8192),
        Err(Error::UnsupportedKeySize { bits: 8192 })
    ));
    assert!(matches!(
        Identity::from_pkcs8_pem(Role::Patient, "x", key("weak")),
        Err(Error::WeakKey {
            bits: 1024,
            min: 2048
        })
    ));
    let weak_pub = include_str!("../testdata/keys/weak-1024.pub.pem");
    assert!(matches!(
        PublicKey::from_pem(weak_pub),
        Err(Error::WeakKey { bits: 1024, .. })
    ));
}

#[test]
fn generate_each_size() {
    for bits in [2048, 3072] {
        let id = Identity::generate(Role::Doctor, "gen", bits).unwrap();
        assert_eq!(id.public().bits(), bits);
        assert_eq!(id.role(), Role::Doctor);
        let sig = id.sign(b"m").unwrap();
        id.public().verify(b"m", &sig).unwrap();
    }
}

#[test]
fn key_file_round_trip_and_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doctor.key");
    let id = identity("doctor3072");
    id.save(&path, "correct horse battery staple").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN MEDSHARE IDENTITY-----"));
    assert!(!text.contains("PRIVATE KEY"));
    let back = Identity::load(&path, "correct horse battery staple").unwrap();
    assert_eq!(back.id(), id.id());
    assert_eq!(back.role(), Role::Doctor);
    assert_eq!(back.name(), "doctor3072");
    assert_eq!(back.public().bits(), 3072);
    assert!(matches!(
        Identity::load(&path, "wrong"),
        Err(Error::WrongPassphrase)
    ));
}

#[test]
fn malformed_key_files_are_named() {
    assert!(matches!(
        Identity::from_key_file("not pem", "p"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        Identity::from_key_file(key("patient"), "p"),
        Err(Error::InvalidKey(_))
    ));
    let big = "A".repeat(20_000);
    assert!(matches!(
        Identity::from_key_file(&big, "p"),
        Err(Error::TooLarge {
            what: "key file",
            ..
        })
    ));
    assert!(matches!(
        PublicKey::from_spki_der(b"\x30\x03\x02\x01\x01"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        Identity::generate(Role::Patient, &"n".repeat(300), 2048),
        Err(Error::TooLarge {
            what: "identity name",
            ..
        })
    ));
}

#[test]
fn debug_never_prints_key_material() {
    let id = identity("patient");
    let dbg = format!("{id:?}");
    assert!(dbg.contains("Patient") && dbg.contains(&id.id().to_string()));
    assert!(dbg.len() < 300, "{dbg}");
}

#[test]
fn a_key_file_with_bad_scrypt_parameters_is_refused_not_a_panic() {
    // N = 0, N not a power of two, r = 0, p = 0: each was a panic inside the KDF before
    // (issue 13.13); now an InvalidKey before any work. The structured fuzz harness builds
    // such files; these are its regression inputs.
    for (n, r, p) in [
        (0u64, 8u64, 1u64),
        (1, 8, 1),
        (3, 8, 1),
        (1024, 0, 1),
        (1024, 8, 0),
    ] {
        let text = structured(n, r, p);
        match Identity::from_key_file(&text, "pw") {
            Err(Error::InvalidKey(m)) => assert!(m.contains("scrypt"), "{m}"),
            other => panic!("N={n} r={r} p={p}: {other:?}"),
        }
    }
}

#[test]
fn a_key_file_encrypted_otherwise_than_with_aes_256_gcm_is_refused() {
    let mut data = structured_data(1024, 8, 1);
    data[0] |= 0x80; // AES-256-CBC
    data.splice(29..29, [0xbb; 4]); // its IV is 16 bytes
    match Identity::from_key_file(&medshare::fuzz::structured_key_file(&data), "pw") {
        Err(Error::InvalidKey(m)) => assert!(m.contains("AES-256-GCM"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// A key file whose scrypt parameters are given (see `medshare::fuzz::structured_key_file`).
fn structured(n: u64, r: u64, p: u64) -> String {
    medshare::fuzz::structured_key_file(&structured_data(n, r, p))
}

fn structured_data(n: u64, r: u64, p: u64) -> Vec<u8> {
    // The harness reads: selector, N (8 bytes), then salt/nonce/ciphertext lengths.
    let mut data = vec![0u8, (r >> 8) as u8, r as u8, p as u8];
    data[0] = 1; // "raw value" mode for N (n % 70_000)
    data.extend_from_slice(&n.to_be_bytes());
    data.extend_from_slice(&[16]);
    data.extend_from_slice(&[0xaa; 16]);
    data.extend_from_slice(&[0xbb; 12]);
    data.extend_from_slice(&[4]);
    data.extend_from_slice(&[0xcc; 32]);
    data
}

#[test]
fn empty_and_foreign_key_files_say_what_they_are() {
    for text in ["", "   \n"] {
        match Identity::from_key_file(text, "pw") {
            Err(Error::InvalidKey(m)) => assert!(m.contains("empty"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        Identity::from_pkcs8_pem(Role::Patient, "x", ""),
        Err(Error::InvalidKey(m)) if m.contains("empty")
    ));
    // Parse errors of roles and ids are input errors, never key errors.
    assert!(matches!(
        "nurse".parse::<Role>(),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        "not-an-id".parse::<medshare::IdentityId>(),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn rotation_keeps_the_account_across_key_files() {
    let id = identity("patient");
    let next = id.rotated().unwrap();
    assert_eq!(next.id(), id.id());
    assert_ne!(next.key_id(), id.key_id());
    assert_eq!(next.key_id(), next.public().id());
    let text = next.to_key_file("a long passphrase").unwrap();
    let back = Identity::from_key_file(&text, "a long passphrase").unwrap();
    assert_eq!((back.id(), back.key_id()), (id.id(), next.key_id()));
}

#[test]
fn save_never_replaces_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let a = identity("patient");
    a.save(&path, "a long passphrase").unwrap();
    let before = std::fs::read(&path).unwrap();
    match identity("patient2").save(&path, "another passphrase") {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // A missing file is an I/O error (not a backend or key error).
    assert!(matches!(
        Identity::load(dir.path().join("nope"), "x"),
        Err(Error::Io(_))
    ));
}
