//! The planet model: where regions are, how long a round trip between them
//! takes, where the global tier's voters go, and where traffic goes when a
//! region fails. Pure: no I/O except parsing text handed to it, no clock, no
//! global randomness (jitter comes from a seed), so a simulator runs it
//! unchanged.
//!
//! - [`config`]: the topology file (TOML), continent → country → metro →
//!   region → node, validated at start ([`Topology::parse`], [`TopologyError`]).
//! - [`geo`]: great-circle distance and the physical floor of a round trip.
//! - [`fit`]: the route-inflation model fitted on measured RTTs ([`Calibration`]).
//! - [`rtt`]: [`RttModel`], the RTT between any two regions (measured if
//!   known, else modelled) with seeded jitter, never below the floor.
//! - [`placement`]: the global tier's voters, placed to minimise the leader's
//!   quorum round trip ([`place_voters`], [`GlobalFloor`]), and which node of
//!   each voter region is the voter ([`GlobalTier`]).
//! - [`routing`]: nearest healthy region for a client and failover targets.
//! - [`guard`]: at most N automatic failovers an hour, and load moving back
//!   in steps after a recovery.
//!
//! See `docs/planet.md` for the physics and the fitted figures.

pub mod config;
mod error;
pub mod fit;
pub mod geo;
pub mod guard;
pub mod placement;
pub mod routing;
pub mod rtt;
mod tree;

pub use error::TopologyError;
pub use fit::{Calibration, CalibrationError};
pub use placement::{GlobalFloor, GlobalTier, Placement, PlacementError, place_voters};
pub use rtt::{RttMatrix, RttModel};
pub use tree::{DEFAULT_INTRA_REGION_MS, DEFAULT_VOTERS, RegionSpec, RttOverride, Topology};

#[cfg(test)]
mod tests;
