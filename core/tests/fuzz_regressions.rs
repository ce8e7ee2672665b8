//! Replays every input committed under `fuzz/regressions/<target>/` through the same harness the
//! cargo-fuzz target runs (`medshare::fuzz`): crashers found by fuzzing stay fixed.

use std::path::PathBuf;

fn replay(target: &str, harness: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        harness(&data);
        n += 1;
    }
    assert!(n > 0, "no regression inputs for {target}");
    n
}

#[test]
fn envelope() {
    replay("envelope", medshare::fuzz::envelope);
}

#[test]
fn cbor() {
    replay("cbor", medshare::fuzz::cbor);
}

#[test]
fn dagpb() {
    replay("dagpb", medshare::fuzz::dagpb);
}

#[test]
fn car() {
    replay("car", medshare::fuzz::car);
}

#[test]
fn keyfile() {
    replay("keyfile", medshare::fuzz::keyfile);
}

#[test]
fn chain() {
    replay("chain", medshare::fuzz::chain);
}

#[test]
fn text() {
    replay("text", medshare::fuzz::text);
}

#[test]
fn snapshot() {
    replay("snapshot", medshare::fuzz::snapshot);
}
