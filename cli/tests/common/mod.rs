//! Helpers shared by the CLI integration tests: driving the `medshare` binary and kubo's `ipfs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The passphrase every test key is saved under.
pub const PASSPHRASE: &str = "a test passphrase";

/// Runs `medshare --home HOME ARGS…` with the test passphrase.
pub fn medshare(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medshare"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("MEDSHARE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap()
}

/// Runs `medshare --json …`, asserts success and returns the parsed output.
pub fn ok_json(home: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = medshare(home, &a);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The kubo binary (`MEDSHARE_IPFS`, or the one scripts/install-tools.sh builds).
pub fn ipfs_bin() -> PathBuf {
    let p = std::env::var_os("MEDSHARE_IPFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/ipfs"));
    assert!(
        p.exists(),
        "kubo not found at {} (scripts/install-tools.sh builds it)",
        p.display()
    );
    p
}

/// Runs `ipfs ARGS…` on the repository `repo`, asserts success, returns stdout.
pub fn ipfs(repo: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(ipfs_bin())
        .args(args)
        .env("IPFS_PATH", repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ipfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts failure with exactly one line on stderr containing `needle`.
pub fn fails_with(home: &Path, args: &[&str], needle: &str) {
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
