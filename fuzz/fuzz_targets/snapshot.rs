//! Chain-state snapshots.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::snapshot(data));
