#![no_main]
//! Fuzz target `rollout_plan`: see `crates/fuzzing` (`fuzzing::rollout_plan`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::rollout_plan(data));
