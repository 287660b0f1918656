//! Deterministic simulation of DWCP's control plane at planet scale.
//!
//! The Raft groups here are DWCP's own: [`replica::Replica`]s
//! with their redb stores and state machine, started exactly as `dwcp up`
//! starts them. What is simulated is only what lies between them: the
//! network ([`net::SimNetwork`], a replica `Transport` that hands each
//! message to the target replica's inbox after a delay drawn from a latency
//! model, pipes of appends in order, or fails it when the link or node is
//! down) and time (a tokio runtime with a paused clock, which jumps to the
//! next timer whenever every task waits; so a 300 ms round trip costs no
//! wall time, and delays add up exactly). Replicas write their logs inline
//! here (`Replica::start_simulated`), so storage takes no virtual time.
//!
//! Invariants:
//! - Time is virtual: durations measured here are the model's, not the
//!   machine's. Storage work (redb) takes no virtual time; its real cost is
//!   measured by `dwcp bench control`.
//! - The same seed gives the same delays; the scenario's figures depend on
//!   nothing else (a single-threaded runtime, leaders chosen explicitly).
//! - Messages are handed over as values, not serialized: the wire format is
//!   tested elsewhere (the transport's own tests).
//!
//! It runs the pure crates (`state`, `planet`, `scheduler`) and `replica`
//! unchanged, with `rng` for its draws; it must not depend on `cluster`
//! (its network is the simulated one), `node`, `ops`, the controllers or
//! the binary (`dwcp sim` drives it).

pub mod group;
pub mod net;
pub mod planet;
pub mod rng;
pub mod turmoil_gossip;
pub mod turmoil_raft;
