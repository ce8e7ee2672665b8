//! Chain import of an arbitrary block sequence.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::chain(data));
