//! CAR export/import between medshare homes and with the real kubo (`ipfs dag import/get/export`).

mod common;

use common::{fails_with, ipfs, ok_json as run};
use serde_json::Value;

#[test]
fn export_import_round_trip_and_kubo_interop() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let genesis = run(&a, &["init"])["genesis"].as_str().unwrap().to_owned();
    run(
        &a,
        &[
            "identity", "new", "--role", "patient", "--name", "p", "--bits", "2048",
        ],
    );
    let f = dir.path().join("study.bin");
    std::fs::write(
        &f,
        (0..3_000_000u32)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let rec = run(&a, &["record", "add", "--as", "p", f.to_str().unwrap()]);
    let car = dir.path().join("a.car");
    let exp = run(&a, &["export", "--car", car.to_str().unwrap()]);
    let head = exp["head"].as_str().unwrap().to_owned();

    // A fresh home adopts a chain only when told which network to accept.
    let b = dir.path().join("b");
    fails_with(&b, &["import", "--car", car.to_str().unwrap()], "--genesis");
    let other = dir.path().join("other");
    let other_genesis = run(&other, &["init"])["genesis"]
        .as_str()
        .unwrap()
        .to_owned();
    fails_with(
        &b,
        &[
            "import",
            "--car",
            car.to_str().unwrap(),
            "--genesis",
            &other_genesis,
        ],
        "wrong network",
    );
    let imp = run(
        &b,
        &[
            "import",
            "--car",
            car.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(imp["head"], head.as_str());
    assert_eq!(run(&b, &["verify"])["head"], head.as_str());
    assert_eq!(
        run(&b, &["audit", "--record", rec["id"].as_str().unwrap()])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Importing what a home already has changes nothing.
    assert_eq!(
        run(&a, &["import", "--car", car.to_str().unwrap()])["applied"],
        0
    );

    // kubo reads our CAR, shows the certificate and the block as DAG-CBOR, and exports it back.
    let repo = dir.path().join("ipfs");
    ipfs(&repo, &["init", "--profile=test", "--empty-repo"]);
    ipfs(&repo, &["dag", "import", car.to_str().unwrap()]);
    let cert: Value = serde_json::from_slice(&ipfs(&repo, &["dag", "get", &head])).unwrap();
    assert_eq!(cert["type"], "certificate");
    let block_cid = cert["block"]["/"].as_str().unwrap().to_owned();
    let block: Value = serde_json::from_slice(&ipfs(&repo, &["dag", "get", &block_cid])).unwrap();
    assert_eq!(block["height"], 2);
    assert!(
        block["parent"]["/"]
            .as_str()
            .unwrap()
            .starts_with("bafyrei")
    );
    // kubo fetches the record's ciphertext by its root CID, byte for byte what medshare stored.
    let content = rec["content"].as_str().unwrap();
    let cat = ipfs(&repo, &["cat", content]);
    assert!(cat.starts_with(b"MSHENV"));
    assert_eq!(
        medshare::cid(&cat, medshare::Profile::UnixfsV1_2025).to_string(),
        content
    );
    let back = dir.path().join("kubo.car");
    std::fs::write(&back, ipfs(&repo, &["dag", "export", &head])).unwrap();
    let c = dir.path().join("c");
    run(
        &c,
        &[
            "import",
            "--car",
            back.to_str().unwrap(),
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(run(&c, &["verify"])["blocks"], 3);
}
