//! The `medshare` binary driven as a user would: every command, `--json`, and failures that exit
//! non-zero with one line.

mod common;

use std::path::Path;
use std::process::Command;

use common::{medshare, ok_json};

/// Asserts failure with exactly one line on stderr containing `needle`.
fn fails_with(home: &Path, args: &[&str], needle: &str) {
    let out = medshare(home, args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
}

#[test]
fn the_whole_story_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home = home.as_path();
    let init = ok_json(home, &["init", "--network", "clinic"]);
    assert_eq!(init["network"], "clinic");
    fails_with(home, &["init"], "already initialised");

    let alice = ok_json(
        home,
        &[
            "identity", "new", "--role", "patient", "--name", "alice", "--bits", "2048",
        ],
    );
    let bob = ok_json(
        home,
        &[
            "identity",
            "new",
            "--role",
            "doctor",
            "--name",
            "bob",
            "--bits",
            "2048",
            "--licence",
            "GMC-1",
        ],
    );
    ok_json(
        home,
        &[
            "identity",
            "new",
            "--role",
            "doctor",
            "--name",
            "carol",
            "--bits",
            "2048",
            "--licence",
            "GMC-2",
        ],
    );
    assert!(alice["id"].as_str().unwrap().starts_with("bciq"));
    fails_with(
        home,
        &[
            "identity", "new", "--role", "doctor", "--name", "dan", "--bits", "2048",
        ],
        "needs --licence",
    );
    fails_with(
        home,
        &[
            "identity", "new", "--role", "patient", "--name", "weak", "--bits", "1024",
        ],
        "too weak",
    );
    let list = ok_json(home, &["identity", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 3);

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
            "cardiology",
        ],
    );
    ok_json(
        home,
        &[
            "grant", "--as", "alice", "--record", &r, "--doctor", "carol",
        ],
    );
    let recs = ok_json(home, &["records", "--as", "bob"]);
    assert_eq!(recs[0]["record"], r.as_str());
    assert_eq!(recs[0]["purpose"], "cardiology");
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

    let v = ok_json(home, &["verify"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["blocks"], 8);
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

#[test]
fn failures_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    fails_with(home, &["verify"], "not a medshare home");
    ok_json(home, &["init"]);
    ok_json(
        home,
        &[
            "identity", "new", "--role", "patient", "--name", "p", "--bits", "2048",
        ],
    );
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
    // Wrong passphrase.
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
    // Without a passphrase and without a terminal: a clear error, not a hang.
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
        .stdin(std::process::Stdio::null())
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
