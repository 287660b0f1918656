//! Fuzz entry points: one function per parser of bytes DWCP takes from
//! people it does not trust — API JSON bodies, WAGI/CGI output of guests,
//! rollout plans, topology files, runbook front matter, gossip packets,
//! Raft RPC bodies, join requests, bearer tokens and cookies.
//!
//! Each `fn(&[u8])` must return for any input without panicking, aborting
//! or hanging; what a parser answers (accepted or refused) is not judged
//! here, only that it answers. The libFuzzer targets in `fuzz/` call these
//! functions (`scripts/fuzz.sh` runs them), and `tests/replay.rs` replays
//! the seeds and every crash found so far (`fuzz/regressions/`) through
//! them in ordinary `cargo test`, so CI checks them without building the
//! fuzzers.
//!
//! It depends on the crates whose parsers it drives and is depended on by
//! nothing in the workspace.

mod api;
mod targets;

pub use api::api_request;
pub use targets::*;

/// One fuzz target: its name (of `fuzz/fuzz_targets/<name>.rs` and the
/// directories under `fuzz/seeds/` and `fuzz/regressions/`) and its entry.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

const fn target(name: &'static str, run: fn(&[u8])) -> Target {
    Target { name, run }
}

/// Every target.
pub const TARGETS: &[Target] = &[
    target("api_json", api_request),
    target("wagi_output", wagi_output),
    target("rollout_plan", rollout_plan),
    target("topology", topology),
    target("runbook", runbook),
    target("gossip_packet", gossip_packet),
    target("raft_rpc", raft_rpc),
    target("join_request", join_request),
    target("credentials", credentials),
];
