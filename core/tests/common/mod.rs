//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod chain;

use medshare::{Identity, Role};

pub fn key(name: &str) -> &'static str {
    match name {
        "patient" => include_str!("../../testdata/keys/patient-2048.pem"),
        "doctor" => include_str!("../../testdata/keys/doctor-2048.pem"),
        "doctor2" => include_str!("../../testdata/keys/doctor2-2048.pem"),
        "authority" => include_str!("../../testdata/keys/authority-2048.pem"),
        "authority2" => include_str!("../../testdata/keys/authority2-2048.pem"),
        "authority3" => include_str!("../../testdata/keys/authority3-2048.pem"),
        "authority4" => include_str!("../../testdata/keys/authority4-2048.pem"),
        "patient2" => include_str!("../../testdata/keys/patient2-2048.pem"),
        "doctor3072" => include_str!("../../testdata/keys/doctor-3072.pem"),
        "weak" => include_str!("../../testdata/keys/weak-1024.pem"),
        other => panic!("no fixture key {other}"),
    }
}

/// Fixture identities (fixed keys, so tests do not spend seconds generating RSA keys).
pub fn identity(name: &str) -> Identity {
    let role = match name {
        n if n.starts_with("patient") => Role::Patient,
        n if n.starts_with("authority") => Role::Authority,
        _ => Role::Doctor,
    };
    Identity::from_pkcs8_pem(role, name, key(name)).unwrap()
}

/// The deterministic pattern of the shared CID vectors: byte i = i % 251.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A fast seeded byte stream (splitmix64), for large random inputs without files.
pub struct Rand {
    state: u64,
}

impl Rand {
    pub fn new(seed: u64) -> Rand {
        Rand { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }

    /// Calls `f` with consecutive pieces of a `len`-byte stream (constant memory).
    pub fn stream(mut self, len: u64, mut f: impl FnMut(&[u8])) {
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            self.fill(&mut buf[..n]);
            f(&buf[..n]);
            left -= n as u64;
        }
    }
}

pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}
