//! The CLI with its blocks on a real kubo node (`--store kubo=URL`): the story, records that
//! survive `ipfs repo gc`, and a replica home following the head over IPNS.

mod common;

#[path = "../../node/src/kubo.rs"]
#[allow(dead_code)]
mod kubo;

use common::{ipfs_bin, ok_json};

#[test]
fn cli_runs_on_a_kubo_node() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("ipfs");
    kubo::init(&ipfs_bin(), &repo, kubo::KuboPorts::default()).unwrap();
    let d = kubo::Kubo::start(&ipfs_bin(), &repo, false).unwrap();
    let store = format!("kubo={},ipns-key=medshare-head", d.url);
    let home = dir.path().join("home");
    let run = |args: &[&str]| {
        let mut a = vec!["--store", store.as_str()];
        a.extend_from_slice(args);
        ok_json(&home, &a)
    };
    let init = run(&["init"]);
    let ipns = init["ipns"].as_str().unwrap().to_owned();
    run(&[
        "identity", "new", "--role", "patient", "--name", "alice", "--bits", "2048",
    ]);
    run(&[
        "identity",
        "new",
        "--role",
        "doctor",
        "--name",
        "bob",
        "--bits",
        "2048",
        "--licence",
        "L-1",
    ]);
    let src = dir.path().join("scan.bin");
    std::fs::write(
        &src,
        (0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let rec = run(&["record", "add", "--as", "alice", src.to_str().unwrap()]);
    let r = rec["id"].as_str().unwrap();
    run(&["grant", "--as", "alice", "--record", r, "--doctor", "bob"]);
    // The node's garbage collector keeps every current record (pinned).
    d.ipfs(&["repo", "gc", "--silent"]).unwrap();
    let v = run(&["verify", "--content"]);
    assert_eq!(v["content"]["missing"].as_array().unwrap().len(), 0);
    let out = dir.path().join("out.bin");
    run(&[
        "record",
        "get",
        "--as",
        "bob",
        "--record",
        r,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    // Revocation works after a gc, and the revoked version is gone after the next one.
    let old = rec["content"].as_str().unwrap().to_owned();
    run(&["revoke", "--as", "alice", "--record", r, "--doctor", "bob"]);
    d.ipfs(&["repo", "gc", "--silent"]).unwrap();
    assert!(d.ipfs(&["block", "stat", "--offline", &old]).is_err());
    assert_eq!(run(&["verify", "--content"])["ok"], true);
    // Nothing of the chain or the record is in the home: the blocks are on the node.
    assert!(!home.join("store").exists());
    // A replica home follows the head through IPNS: same chain, verified, read-only.
    let replica = dir.path().join("replica");
    let follow = format!("kubo={},follow={ipns}", d.url);
    let genesis = init["genesis"].as_str().unwrap();
    std::fs::create_dir_all(&replica).unwrap();
    std::fs::write(replica.join("genesis"), format!("{genesis}\n")).unwrap();
    let v = ok_json(&replica, &["--store", &follow, "verify"]);
    assert_eq!(v["blocks"], 6);
}
