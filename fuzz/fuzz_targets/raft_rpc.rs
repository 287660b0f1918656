#![no_main]
//! Fuzz target `raft_rpc`: see `crates/fuzzing` (`fuzzing::raft_rpc`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::raft_rpc(data));
