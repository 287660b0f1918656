#![no_main]
//! Fuzz target `gossip_packet`: see `crates/fuzzing` (`fuzzing::gossip_packet`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::gossip_packet(data));
