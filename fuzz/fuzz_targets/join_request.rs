#![no_main]
//! Fuzz target `join_request`: see `crates/fuzzing` (`fuzzing::join_request`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::join_request(data));
