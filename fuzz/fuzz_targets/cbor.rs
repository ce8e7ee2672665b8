//! DAG-CBOR decoding (canonical round trip) and ledger block/transaction decoding.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::cbor(data));
