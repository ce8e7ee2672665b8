//! Envelope header and chunk parsing: any bytes, opened with a key taken from the input.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::envelope(data));
