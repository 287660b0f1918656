#![no_main]
//! Fuzz target `api_json`: see `crates/fuzzing` (`fuzzing::api_request`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::api_request(data));
