//! CARv1 reading.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::car(data));
