//! dag-pb / UnixFS node decoding, and the file walker over one node.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| medshare::fuzz::dagpb(data));
