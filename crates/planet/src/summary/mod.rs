//! Cross-region summaries: state-based CRDTs spread by SWIM gossip.
//!
//! What must be consistent everywhere (tenants, app definitions, region
//! membership) lives in the global Raft tier. What only has to be *recent*
//! everywhere — each region's capacity, health and load, each app's status
//! per region, request and sandbox counts — is summarised here, as a
//! [`Summary`] whose merge is a CRDT join: any two members that have seen
//! the same writes hold the same summary, whatever the order, duplication
//! or delay of the messages, and no write waits for a quorum on another
//! continent.
//!
//! Submodules, one job each:
//! - [`clock`]: the hybrid logical clock whose [`Stamp`]s order
//!   last-writer-wins writes;
//! - [`status`]: the plain values (region status, app status);
//! - [`crdt`]: [`Summary`] and its merge;
//! - [`sync`]: [`Digest`] and [`Delta`] for anti-entropy;
//! - [`identity`]: [`Peer`], a member as foca sees it;
//! - [`config`]: SWIM and anti-entropy timing, explicit;
//! - [`gossip`]: [`Gossip`], one member (foca + summary), sans I/O;
//! - [`driver`]: a deterministic in-memory network of members with virtual
//!   time, for tests and the simulator.
//!
//! Invariant: nothing here reads a clock, opens a socket or draws from an
//! unseeded random source; time, packets and seeds come in as arguments,
//! so the same code runs in a node and, unchanged, in the simulator.

pub mod clock;
pub mod config;
pub mod crdt;
pub mod driver;
pub mod gossip;
pub mod identity;
pub mod report;
pub mod status;
pub mod sync;

#[cfg(test)]
mod tests;

pub use clock::{Hlc, NodeId, Stamp};
pub use config::GossipConfig;
pub use crdt::{AppKey, Summary};
pub use driver::{Driver, Link, NoRegions, RestartError, Spread};
pub use gossip::{Exchange, ExchangeMessage, Gossip, GossipError, GossipStats, Output, Tick};
pub use identity::{Peer, seeds};
pub use report::{CellSight, cell_report, requests_served, requests_since};
pub use status::{AppStatus, Capacity, Health, Load, RegionStatus};
pub use sync::{Delta, Digest};
