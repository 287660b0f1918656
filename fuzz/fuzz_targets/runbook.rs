#![no_main]
//! Fuzz target `runbook`: see `crates/fuzzing` (`fuzzing::runbook`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::runbook(data));
