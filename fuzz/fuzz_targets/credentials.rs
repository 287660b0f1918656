#![no_main]
//! Fuzz target `credentials`: see `crates/fuzzing` (`fuzzing::credentials`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::credentials(data));
