//! Text formats: certificate notes, endorsements, query answers, identifiers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::text(data));
