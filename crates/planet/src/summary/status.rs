//! The plain values a summary carries: what a region reports about itself
//! and what it reports about each app it runs. No merge logic here; the
//! CRDTs in [`super::crdt`] decide which value wins.

use serde::{Deserialize, Serialize};

/// How a region judges itself (its own view; the global tier confirms a
/// failure before anything acts on it).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Health {
    /// Serving normally.
    #[default]
    Healthy,
    /// Serving, with part of its capacity or quorum missing.
    Degraded,
    /// Not serving: drained or lost.
    Down,
}

/// What a region can hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capacity {
    /// CPU, in thousandths of a core.
    pub cpu_millis: u64,
    /// Memory, in MiB.
    pub memory_mib: u64,
    /// Sandboxes it admits at most.
    pub sandbox_slots: u64,
}

/// What a region is using.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Load {
    /// CPU in use, in thousandths of a core.
    pub cpu_millis: u64,
    /// Memory in use, in MiB.
    pub memory_mib: u64,
    /// Requests per second over the reporter's last window.
    pub requests_per_sec: u64,
}

/// One region's report about itself: the value of its last-writer-wins
/// register.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegionStatus {
    /// What the region can hold.
    pub capacity: Capacity,
    /// How it judges itself.
    pub health: Health,
    /// What it is using.
    pub load: Load,
}

/// One app's status in one region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppStatus {
    /// Replicas the deployment asks for in the region.
    pub wanted: u32,
    /// Replicas ready to serve.
    pub ready: u32,
    /// Whether the region's gateway routes the app's traffic.
    pub serving: bool,
}
