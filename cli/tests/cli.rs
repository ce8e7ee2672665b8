//! The `medshare` binary driven as a user would: every command, `--json`, failures that exit
//! non-zero with one line, and the hardening findings that concern the CLI.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{PASSPHRASE, fails_with, medshare, ok_json};

fn new_patient(home: &Path, name: &str) -> serde_json::Value {
    ok_json(
        home,
        &[
            "identity", "new", "--role", "patient", "--name", name, "--bits", "2048",
        ],
    )
}

fn new_doctor(home: &Path, name: &str, licence: &str) -> serde_json::Value {
    ok_json(
        home,
        &[
            "identity",
            "new",
            "--role",
            "doctor",
            "--name",
            name,
            "--bits",
            "2048",
            "--licence",
            licence,
        ],
    )
}

#[test]
fn the_whole_story_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home = home.as_path();
    let init = ok_json(home, &["init", "--name", "clinic"]);
    assert_eq!(init["network"], "clinic");
    let genesis = init["genesis"].as_str().unwrap().to_owned();
    let alice = new_patient(home, "alice");
    let bob = new_doctor(home, "bob", "GMC-1");
    new_doctor(home, "carol", "GMC-2");
    assert!(alice["id"].as_str().unwrap().starts_with("bciq"));
    // A doctor without an endorsement yet is created here, not registered; endorsed (here by
    // this home's own authority), it registers.
    let dan = ok_json(
        home,
        &[
            "identity", "new", "--role", "doctor", "--name", "dan", "--bits", "2048",
        ],
    );
    assert_eq!(dan["registered"], false);
    let endorsement = dir.path().join("dan.endorsement");
    ok_json(
        home,
        &[
            "endorse",
            "--doctor",
            dan["id"].as_str().unwrap(),
            "--licence",
            "GMC-4",
            "-o",
            endorsement.to_str().unwrap(),
        ],
    );
    ok_json(
        home,
        &[
            "identity",
            "register",
            "--as",
            "dan",
            "--endorsement",
            endorsement.to_str().unwrap(),
        ],
    );
    fails_with(
        home,
        &[
            "identity", "new", "--role", "patient", "--name", "weak", "--bits", "1024",
        ],
        "too weak",
    );
    let list = ok_json(home, &["identity", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 4);

    let file = dir.path().join("labs.json");
    std::fs::write(&file, br#"{"resourceType":"Bundle"}"#).unwrap();
    let rec = ok_json(
        home,
        &["record", "add", "--as", "alice", file.to_str().unwrap()],
    );
    let r = rec["id"].as_str().unwrap().to_owned();
    ok_json(
        home,
        &[
            "grant",
            "--as",
            "alice",
            "--record",
            &r,
            "--doctor",
            "bob",
            "--expires",
            "30d",
            "--purpose",
            "COC",
            "--note",
            "HIV treatment follow-up",
        ],
    );
    ok_json(
        home,
        &[
            "grant", "--as", "alice", "--record", &r, "--doctor", "carol",
        ],
    );
    // The free text is nowhere in clear: not in the records listing, the audit, or the store.
    let recs = ok_json(home, &["records", "--as", "bob"]);
    assert_eq!(recs[0]["record"], r.as_str());
    assert_eq!(recs[0]["purpose"], "COC");
    assert!(!recs.to_string().contains("HIV"));
    let audit = ok_json(home, &["audit", "--record", &r]);
    assert!(!audit.to_string().contains("HIV"));
    for entry in walkdir(&home.join("store")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(3).any(|w| w == b"HIV"),
            "{} holds the note in clear",
            entry.display()
        );
    }
    // The patient and the doctor read it.
    let note = ok_json(home, &["record", "note", "--as", "bob", "--record", &r]);
    assert_eq!(note["note"], "HIV treatment follow-up");
    let owned = ok_json(home, &["records", "--as", "alice"]);
    assert_eq!(owned[0]["status"], "owner");

    let out = dir.path().join("bob.json");
    ok_json(
        home,
        &[
            "record",
            "get",
            "--as",
            "bob",
            "--record",
            &r,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());

    let rev = ok_json(
        home,
        &[
            "revoke",
            "--as",
            "alice",
            "--record",
            &r,
            "--doctor",
            bob["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(rev["version"], 2);
    let refused = dir.path().join("refused.json");
    fails_with(
        home,
        &[
            "record",
            "get",
            "--as",
            "bob",
            "--record",
            &r,
            "-o",
            refused.to_str().unwrap(),
        ],
        "revoked",
    );
    assert!(!refused.exists(), "a refused read left a file behind");
    let carol_out = dir.path().join("carol.json");
    ok_json(
        home,
        &[
            "record",
            "get",
            "--as",
            "carol",
            "--record",
            &r,
            "-o",
            carol_out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(&carol_out).unwrap(),
        std::fs::read(&file).unwrap()
    );

    let v = ok_json(home, &["verify", "--content"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["blocks"], 9);
    assert_eq!(v["genesis"], genesis.as_str());
    let audit = ok_json(home, &["audit", "--record", &r]);
    let events: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "published",
            "granted",
            "granted",
            "revoked",
            "published",
            "granted"
        ]
    );
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// How many blocks the filesystem store at `store` holds: files under `blocks/` and rows of
/// `blocks.db` (read with no process holding the store).
fn stored_blocks(store: &Path) -> usize {
    let db = rusqlite::Connection::open(store.join("blocks.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM blocks", [], |r| r.get(0))
        .unwrap();
    walkdir(&store.join("blocks")).len() + rows as usize
}

#[test]
fn init_never_replaces_a_key_or_an_identity() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    let key = std::fs::read(home.join("authority.key")).unwrap();
    new_patient(home, "p");
    fails_with(home, &["init"], "refusing to initialise");
    // Whatever the store: a kubo URL does not make the existing key replaceable.
    fails_with(
        home,
        &["--store", "kubo=http://127.0.0.1:9", "init"],
        "refusing to initialise",
    );
    assert_eq!(std::fs::read(home.join("authority.key")).unwrap(), key);
    // A home with only an identity (a doctor's laptop) is not initialised over either.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("identities")).unwrap();
    std::fs::write(other.join("identities/x.key"), b"keep me").unwrap();
    fails_with(&other, &["init"], "refusing to initialise");
    assert_eq!(
        std::fs::read(other.join("identities/x.key")).unwrap(),
        b"keep me"
    );
}

#[test]
fn an_endorsement_made_elsewhere_registers_a_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let hospital = dir.path().join("hospital");
    ok_json(&hospital, &["init"]);
    // The doctor's key is made on the doctor's machine; only the id travels to the hospital.
    let key = dir.path().join("doctor.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success());
    let pem = std::fs::read_to_string(&key).unwrap();
    let doctor_id = medshare::Identity::from_pkcs8_pem(medshare::Role::Doctor, "d", &pem)
        .unwrap()
        .id();
    let endorsement = dir.path().join("endorsement.txt");
    ok_json(
        &hospital,
        &[
            "endorse",
            "--doctor",
            &doctor_id.to_string(),
            "--licence",
            "GMC-42",
            "-o",
            endorsement.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read_to_string(&endorsement)
            .unwrap()
            .starts_with("medshare-endorsement/v2")
    );
    let reg = ok_json(
        &hospital,
        &[
            "identity",
            "new",
            "--role",
            "doctor",
            "--name",
            "dr",
            "--key",
            key.to_str().unwrap(),
            "--endorsement",
            endorsement.to_str().unwrap(),
        ],
    );
    assert_eq!(reg["id"], doctor_id.to_string());
    // The same endorsement does not register another doctor.
    fails_with(
        &hospital,
        &[
            "identity",
            "new",
            "--role",
            "doctor",
            "--name",
            "eve",
            "--bits",
            "2048",
            "--endorsement",
            endorsement.to_str().unwrap(),
        ],
        "the endorsement is for",
    );
}

#[test]
fn rotating_a_key_keeps_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    let p = new_patient(home, "p");
    new_doctor(home, "d", "L-1");
    let f = dir.path().join("x.txt");
    std::fs::write(&f, b"before rotation").unwrap();
    let r = ok_json(home, &["record", "add", "--as", "p", f.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_json(
        home,
        &["grant", "--as", "p", "--record", &r, "--doctor", "d"],
    );
    let rot = ok_json(home, &["identity", "rotate", "--as", "p"]);
    assert_eq!(rot["id"], p["id"]);
    assert_ne!(rot["key"], p["id"]);
    assert_eq!(rot["rekeyed"].as_array().unwrap().len(), 1);
    let retired = rot["retired"].as_str().unwrap();
    assert!(
        Path::new(retired).exists(),
        "the old key file is kept aside"
    );
    // The owner still reads, grants and revokes as the same account.
    let out = dir.path().join("out.txt");
    ok_json(
        home,
        &[
            "record",
            "get",
            "--as",
            "p",
            "--record",
            &r,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"before rotation");
    ok_json(
        home,
        &["revoke", "--as", "p", "--record", &r, "--doctor", "d"],
    );
    assert_eq!(ok_json(home, &["identity", "list"])[1]["id"], p["id"]);
    ok_json(home, &["verify"]);
}

#[test]
fn terminal_escapes_in_names_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    new_patient(home, "p");
    let f = dir.path().join("evil\x1b]0;pwned\x07\x1b[2J.txt");
    std::fs::write(&f, b"x").unwrap();
    let r = ok_json(home, &["record", "add", "--as", "p", f.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = dir.path().join("o");
    let human = medshare(
        home,
        &[
            "record",
            "get",
            "--as",
            "p",
            "--record",
            &r,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success());
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("\\u{1b}"), "{text}");
}

#[test]
fn small_things() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    new_patient(home, "p");
    new_doctor(home, "d", "L");
    let f = dir.path().join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    let r = ok_json(home, &["record", "add", "--as", "p", f.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An empty passphrase is refused like a short one on a terminal.
    let out = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "identity",
            "new",
            "--role",
            "patient",
            "--name",
            "q",
            "--bits",
            "2048",
        ])
        .env("MEDSHARE_PASSPHRASE", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    // A huge expiry is refused, not wrapped around.
    fails_with(
        home,
        &[
            "grant",
            "--as",
            "p",
            "--record",
            &r,
            "--doctor",
            "d",
            "--expires",
            "18446744073709551615s",
        ],
        "longer than a hundred years",
    );
    // A purpose outside the vocabulary is an input error naming the codes.
    fails_with(
        home,
        &[
            "grant",
            "--as",
            "p",
            "--record",
            &r,
            "--doctor",
            "d",
            "--purpose",
            "HIV follow-up",
        ],
        "unknown purpose code",
    );
    // -o through a symlink writes the file it points to, and leaves the link.
    let target = dir.path().join("target.txt");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ok_json(
        home,
        &[
            "record",
            "get",
            "--as",
            "p",
            "--record",
            &r,
            "-o",
            link.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"x");
    // A closed pipe ends the command quietly (no panic, no backtrace).
    for _ in 0..30 {
        ok_json(home, &["record", "add", "--as", "p", f.to_str().unwrap()]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "--json",
            "records",
            "--as",
            "p",
        ])
        .env("MEDSHARE_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101), "{err}");
}

#[test]
fn a_damaged_head_is_repaired_from_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    new_patient(home, "p");
    let head = ok_json(home, &["verify"])["head"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(home.join("store/HEAD")).unwrap();
    std::fs::write(home.join("store/HEAD"), &text[..10]).unwrap();
    fails_with(home, &["verify"], "medshare repair");
    let fixed = ok_json(home, &["repair"]);
    assert_eq!(fixed["head"], head.as_str());
    assert_eq!(ok_json(home, &["verify"])["head"], head.as_str());
}

#[test]
fn gc_reclaims_killed_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    new_patient(home, "p");
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 40 << 20]).unwrap();
    let blocks = home.join("store/blocks");
    let tmp = home.join("store/tmp");
    // A block on no chain, as a publish killed after its blocks were flushed (and before its
    // transaction committed) leaves: gc deletes it.
    // (Large, so a file: small blocks live in the store's database.)
    let orphan = vec![0x6fu8; medshare::store::fs::SMALL_BLOCK + 1];
    let key = medshare::Cid::v1(0x55, &orphan).storage_key();
    let path = blocks.join(&key[key.len() - 3..key.len() - 1]).join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &orphan).unwrap();
    // Kill a publish of 40 MB midway: its blocks are staged in tmp/, on no chain.
    let mut child = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "record",
            "add",
            "--as",
            "p",
            big.to_str().unwrap(),
        ])
        .env("MEDSHARE_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while walkdir(&tmp).len() < 12 && start.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Whatever the moment of the kill, the next command finds a consistent store: nothing
    // staged survives, gc deletes every block on no chain, and the chain verifies.
    let before = stored_blocks(&home.join("store"));
    let report = ok_json(home, &["gc"]);
    let deleted = report["deleted"].as_u64().unwrap() as usize;
    assert!(deleted >= 1, "{report}");
    assert!(!path.exists(), "the orphan survived gc");
    assert_eq!(stored_blocks(&home.join("store")), before - deleted);
    assert!(walkdir(&tmp).is_empty(), "staged blocks survived the kill");
    assert_eq!(
        ok_json(home, &["gc"])["deleted"],
        0,
        "a second gc finds nothing"
    );
    ok_json(home, &["verify"]);
}

#[test]
fn failures_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    fails_with(home, &["verify"], "run `medshare init`");
    ok_json(home, &["init"]);
    new_patient(home, "p");
    fails_with(
        home,
        &["audit", "--record", "bnotarecord"],
        "not a record id",
    );
    fails_with(
        home,
        &["audit", "--record", "baaaaaaaaaaaaaaaaaaaaaaaaaa"],
        "unknown record",
    );
    fails_with(
        home,
        &["record", "add", "--as", "p", "/nonexistent/file"],
        "opening /nonexistent/file",
    );
    fails_with(
        home,
        &["records", "--as", "nobody"],
        "neither an identity id nor the name",
    );
    fails_with(
        home,
        &[
            "grant",
            "--as",
            "p",
            "--record",
            "baaaaaaaaaaaaaaaaaaaaaaaaaa",
            "--doctor",
            "p",
            "--expires",
            "3x",
        ],
        "bad duration",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args(["--home", home.to_str().unwrap(), "records", "--as", "p"])
        .env("MEDSHARE_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(out.status.success(), "listing needs no private key");
    let f = dir.path().join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "record",
            "add",
            "--as",
            "p",
            f.to_str().unwrap(),
        ])
        .env("MEDSHARE_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    let out = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "record",
            "add",
            "--as",
            "p",
            f.to_str().unwrap(),
        ])
        .env_remove("MEDSHARE_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("set MEDSHARE_PASSPHRASE"));
}

#[test]
fn cid_matches_ipfs_add() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v");
    std::fs::write(
        &f,
        (0..262_145usize)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let v1 = ok_json(dir.path(), &["cid", f.to_str().unwrap()]);
    assert_eq!(
        v1["cid"],
        "bafkreidkcavdl3yt2jt36sd4cuqnqk2p6vaxq66iykemz6mk527hnbqbni"
    );
    let v0 = ok_json(
        dir.path(),
        &["cid", "--profile", "unixfs-v0-2015", f.to_str().unwrap()],
    );
    assert_eq!(v0["cid"], "QmUSjGawaz4ptvREcMKSMJneWCa5j8dAz2wSAAvHtW2rnB");
}

#[test]
fn demo_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = medshare(&dir.path().join("demo-home"), &["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "[9/9]",
        "AccessRevoked",
        "Dr. Carol: read version 2",
        "blocks",
        "Done in",
    ] {
        assert!(
            text.contains(needle),
            "demo output lacks `{needle}`:\n{text}"
        );
    }
}

#[test]
fn an_interrupted_read_leaves_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok_json(&home, &["init"]);
    new_patient(&home, "p");
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0x5au8; 300 << 20]).unwrap();
    let r = ok_json(
        &home,
        &["record", "add", "--as", "p", big.to_str().unwrap()],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::remove_file(&big).unwrap();
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let target = outdir.join("scan.bin");
    let child = Command::new(env!("CARGO_BIN_EXE_medshare"))
        .args([
            "--home",
            home.to_str().unwrap(),
            "record",
            "get",
            "--as",
            "p",
            "--record",
            &r,
            "-o",
        ])
        .arg(&target)
        .env("MEDSHARE_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt while the plaintext is being written (the key file's scrypt takes ~0.3 s, the
    // decryption of 300 MB a few tenths more).
    std::thread::sleep(std::time::Duration::from_millis(600));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the read should have been interrupted"
    );
    let left: Vec<_> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "an interrupted read left {left:?}");
}

#[test]
fn a_shifted_clock_does_not_brick_the_home() {
    // A block certified by a clock one day fast, then every command with an honest clock, and
    // a reader ten minutes slow (libfaketime shifts the process clock).
    let faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        Path::new(faketime).exists(),
        "libfaketime (Debian `faketime`, installed by scripts/install-tools.sh)"
    );
    let shifted = |home: &Path, offset: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_medshare"))
            .arg("--home")
            .arg(home)
            .arg("--json")
            .args(args)
            .env("MEDSHARE_PASSPHRASE", PASSPHRASE)
            .env("LD_PRELOAD", faketime)
            .env("FAKETIME", offset)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} at {offset}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok_json(home, &["init"]);
    new_patient(home, "p");
    new_doctor(home, "d", "L");
    let f = dir.path().join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    let r = shifted(
        home,
        "+1d",
        &["record", "add", "--as", "p", f.to_str().unwrap()],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = dir.path().join("o");
    for args in [
        vec!["verify"],
        vec!["records", "--as", "p"],
        vec![
            "record",
            "get",
            "--as",
            "p",
            "--record",
            &r,
            "-o",
            out.to_str().unwrap(),
        ],
        vec![
            "export",
            "--car",
            dir.path().join("c.car").to_str().unwrap(),
        ],
        vec!["grant", "--as", "p", "--record", &r, "--doctor", "d"],
        vec!["revoke", "--as", "p", "--record", &r, "--doctor", "d"],
    ] {
        ok_json(home, &args);
    }
    shifted(home, "-10m", &["verify"]);
    shifted(
        home,
        "-10m",
        &[
            "record",
            "get",
            "--as",
            "p",
            "--record",
            &r,
            "-o",
            out.to_str().unwrap(),
        ],
    );
}

#[test]
fn receipts_prove_a_grant_and_a_revocation_offline() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home = home.as_path();
    let genesis = ok_json(home, &["init"])["genesis"]
        .as_str()
        .unwrap()
        .to_owned();
    new_patient(home, "alice");
    let bob = new_doctor(home, "bob", "GMC-1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = dir.path().join("labs.json");
    std::fs::write(&file, br#"{"resourceType":"Bundle"}"#).unwrap();
    let r = ok_json(
        home,
        &["record", "add", "--as", "alice", file.to_str().unwrap()],
    )["record"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_json(
        home,
        &[
            "grant",
            "--as",
            "alice",
            "--record",
            &r,
            "--doctor",
            "bob",
            "--purpose",
            "COC",
        ],
    );
    let granted = dir.path().join("grant.receipt");
    let made = ok_json(
        home,
        &["receipt", "--record", &r, "-o", granted.to_str().unwrap()],
    );
    assert!(made["bytes"].as_u64().unwrap() < 8192, "{made}");
    ok_json(
        home,
        &["revoke", "--as", "alice", "--record", &r, "--doctor", "bob"],
    );
    let audit = ok_json(home, &["audit", "--record", &r]);
    let revoke_tx = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "revoked")
        .unwrap()["tx"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = dir.path().join("revoke.receipt");
    ok_json(
        home,
        &[
            "receipt",
            "--tx",
            &revoke_tx,
            "-o",
            revoked.to_str().unwrap(),
        ],
    );
    // Anyone, anywhere, with only the genesis CID: no home, no chain.
    let nowhere = dir.path().join("nowhere");
    let g = ok_json(
        &nowhere,
        &[
            "verify-receipt",
            granted.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(g["kind"], "Grant");
    assert_eq!(g["doctor"], bob.as_str());
    assert_eq!(g["purpose"], "COC");
    let v = ok_json(
        &nowhere,
        &[
            "verify-receipt",
            revoked.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(v["kind"], "Revoke");
    assert_eq!(v["record"], r.as_str());
    assert!(!nowhere.exists(), "verifying a receipt needs no home");
    // Another network, or a changed byte: refused.
    fails_with(
        &nowhere,
        &[
            "verify-receipt",
            granted.to_str().unwrap(),
            "--genesis",
            "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        ],
        "network",
    );
    let text = std::fs::read_to_string(&granted).unwrap();
    let forged = text.replacen("\"index\": ", "\"index\": 1", 1);
    std::fs::write(&granted, forged).unwrap();
    fails_with(
        &nowhere,
        &[
            "verify-receipt",
            granted.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
        "invalid proof: leaf 13 is not in the tree",
    );
}

#[test]
fn fhir_bundles_of_a_record_and_a_patient() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home = home.as_path();
    ok_json(home, &["init"]);
    let alice = new_patient(home, "alice")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    new_doctor(home, "bob", "GMC-1");
    let file = dir.path().join("labs.json");
    std::fs::write(&file, br#"{"resourceType":"Bundle"}"#).unwrap();
    let r = ok_json(
        home,
        &["record", "add", "--as", "alice", file.to_str().unwrap()],
    )["record"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_json(
        home,
        &[
            "grant",
            "--as",
            "alice",
            "--record",
            &r,
            "--doctor",
            "bob",
            "--purpose",
            "COC",
            "--note",
            "private words",
        ],
    );
    let b = ok_json(home, &["fhir", "--record", &r]);
    assert_eq!(b["resourceType"], "Bundle");
    let kinds: Vec<&str> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Patient",
            "Practitioner",
            "DocumentReference",
            "Provenance",
            "AuditEvent",
            "Consent",
            "AuditEvent"
        ]
    );
    assert!(!b.to_string().contains("private words"));
    let out = dir.path().join("alice.fhir.json");
    let made = ok_json(
        home,
        &[
            "fhir",
            "--patient",
            "alice",
            "--fhir-version",
            "R4",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(made["resources"], 7);
    let r4: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        r4["id"],
        format!("patient-{alice}")
            .chars()
            .take(64)
            .collect::<String>()
    );
    fails_with(
        home,
        &["fhir", "--patient", "bob"],
        "is not a registered patient",
    );
    fails_with(
        home,
        &["fhir", "--record", &r, "--fhir-version", "R3"],
        "expected R5 or R4",
    );
}
