//! Key-file, SPKI DER and PEM import.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::keyfile(data));
