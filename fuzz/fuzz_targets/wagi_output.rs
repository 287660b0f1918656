#![no_main]
//! Fuzz target `wagi_output`: see `crates/fuzzing` (`fuzzing::wagi_output`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::wagi_output(data));
