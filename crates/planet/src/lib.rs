//! The planet, decided: pure models and decisions for many regions, which
//! a running node (`cluster`), the controllers and the simulator (`sim`)
//! all run unchanged.
//!
//! - [`topology`]: where regions are (the topology file), the round-trip
//!   model fitted on measured RTTs, where the global tier's voters go,
//!   routing to the nearest healthy region, failover targets, and the
//!   failover guardrail.
//! - [`summary`]: what must only be *recent* everywhere — state-based CRDT
//!   summaries spread by SWIM gossip — as sans-I/O members ([`summary::Gossip`])
//!   and a deterministic in-memory network for tests and the simulator.
//! - [`tier`]: which tier (global or a region cell) owns a change, and the
//!   region cell's mirror of the global tier.
//! - [`failover`]: region failover and failback plans.
//!
//! Invariants: nothing here reads a clock, opens a socket or a file, or
//! draws from an unseeded random source; time, packets, text and seeds come
//! in as arguments. Among DWCP crates it depends on `state` (names, the
//! records it reads and the commands it returns) and `rng` only — never on
//! `replica`, `cluster` or anything that does I/O; the UDP socket that
//! drives a gossip member lives in `cluster`.

pub mod failover;
pub mod summary;
pub mod tier;
pub mod topology;
