#![no_main]
//! Fuzz target `topology`: see `crates/fuzzing` (`fuzzing::topology`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::topology(data));
