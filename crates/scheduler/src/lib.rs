//! Placement and admission of sandboxes: which node runs how many replicas
//! of which version of which app, and whether a want may be accepted at
//! all.
//!
//! What goes in is plain data ([`input`]): nodes as the scheduler sees them
//! (region, labels, capacity, reserved slots, health), wants (replicas per
//! region of a version of an app, with [`Constraints`]: spread or
//! bin-pack, label affinity and anti-affinity, region pinning) and the
//! current placements. What comes out is a [`Plan`] — the placements
//! there should be, the changes from now with a [`Reason`] each, and
//! typed [`Rejection`]s that say what could not be met and by how much —
//! or, from [`admit`], a verdict on one want against the tenant's quota
//! and the capacity of its regions.
//!
//! Invariants:
//! - Pure: no I/O, no clock, no randomness, no global state. The
//!   scheduler controller reads the replicated state, calls [`place`] and
//!   writes the result back; the simulator calls the same function.
//! - Deterministic: the same input gives the same output, whatever order
//!   nodes, wants and placements come in (nodes are ordered by name, wants
//!   by key; every tie is broken by name). Nothing here draws random
//!   numbers, so nothing needs a seed.
//! - No node is ever planned past its capacity less its reserved slots,
//!   and no replica lands on an unhealthy node or on one its want's
//!   constraints exclude.
//! - Stable: placements that are still valid stay where they are; a plan
//!   over its own output changes nothing.
//! - Fast enough for a fleet: picking a node costs a few B-tree steps in a
//!   per-class index (see `index.rs`), not a scan of every node.
//!
//! The scheduler controller's part is here too, as pure functions:
//! [`Liveness`] judges nodes alive while their reports keep changing (time
//! is an argument), and [`placement_commands`] turns a [`state::State`]
//! and that judgment into the `SetPlacements` commands to write.
//!
//! This crate depends only on `state` ([`state::Name`], [`state::Node`],
//! [`state::Deployment`], [`state::Quotas`], the pure [`state::State`] and
//! its [`state::Command`]s) — never on the store (`replica`), the running
//! node (`cluster`) or any other DWCP crate; no async runtime, no network,
//! no file system.

mod admission;
mod controller;
mod index;
pub mod input;
mod liveness;
mod plan;
mod rejection;

pub use admission::{Usage, admit};
pub use controller::{Decision, placement_commands};
pub use input::{Constraints, LabelSelector, NodeView, Placement, Policy, Want, WantKey};
pub use liveness::{Beat, DEAD_AFTER, Liveness};
pub use plan::{Change, Plan, Reason, place};
pub use rejection::{InputError, Rejection};
