//! What the autopilot acts on: a [`Trouble`], made by its callers from
//! part 1's findings (a detection, a prediction, a diagnosis) — plain data
//! here, so that the decisions stay pure and replayable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kind of fault DWCP can have; policies map each to actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    /// A node stopped reporting (dead, stopped, partitioned).
    NodeSilent,
    /// A node answers, slowly (slow disk, noisy neighbour, pressure).
    NodeSlow,
    /// A node's sandboxes reach its engine's slots.
    SlotExhaustion,
    /// A node's memory reaches its limit.
    MemoryExhaustion,
    /// A node's data directory reaches its disk limit.
    DiskFull,
    /// A version's warm pool fails (sandboxes crash or hang on one node).
    PoolUnhealthy,
    /// A version's errors rise.
    VersionErrors,
    /// A version's latency rises.
    VersionLatency,
    /// An app's requests in flight reach its capacity.
    LoadPastCapacity,
    /// One tenant's load crowds out others.
    TenantFlood,
    /// A region's nodes are gone or unreachable.
    RegionLost,
    /// A region's sandboxes reach what its nodes can hold.
    RegionCapacity,
}

/// Every fault class, in order.
pub const FAULT_CLASSES: [FaultClass; 12] = [
    FaultClass::NodeSilent,
    FaultClass::NodeSlow,
    FaultClass::SlotExhaustion,
    FaultClass::MemoryExhaustion,
    FaultClass::DiskFull,
    FaultClass::PoolUnhealthy,
    FaultClass::VersionErrors,
    FaultClass::VersionLatency,
    FaultClass::LoadPastCapacity,
    FaultClass::TenantFlood,
    FaultClass::RegionLost,
    FaultClass::RegionCapacity,
];

impl FaultClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultClass::NodeSilent => "node_silent",
            FaultClass::NodeSlow => "node_slow",
            FaultClass::SlotExhaustion => "slot_exhaustion",
            FaultClass::MemoryExhaustion => "memory_exhaustion",
            FaultClass::DiskFull => "disk_full",
            FaultClass::PoolUnhealthy => "pool_unhealthy",
            FaultClass::VersionErrors => "version_errors",
            FaultClass::VersionLatency => "version_latency",
            FaultClass::LoadPastCapacity => "load_past_capacity",
            FaultClass::TenantFlood => "tenant_flood",
            FaultClass::RegionLost => "region_lost",
            FaultClass::RegionCapacity => "region_capacity",
        }
    }

    pub fn parse(name: &str) -> Option<FaultClass> {
        FAULT_CLASSES.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the trouble is seen or only forecast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Measured now (a detection, an alert, a prediction that happened).
    Observed,
    /// Expected (an open prediction): may prepare, never destroy.
    Forecast,
}

/// Where the trouble is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Node {
        node: String,
    },
    Region {
        region: String,
    },
    Tenant {
        tenant: String,
    },
    App {
        tenant: String,
        app: String,
    },
    Version {
        tenant: String,
        app: String,
        version: u64,
    },
    VersionOnNode {
        tenant: String,
        app: String,
        version: u64,
        node: String,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Node { node } => write!(f, "node {node}"),
            Place::Region { region } => write!(f, "region {region}"),
            Place::Tenant { tenant } => write!(f, "tenant {tenant}"),
            Place::App { tenant, app } => write!(f, "app {tenant}/{app}"),
            Place::Version {
                tenant,
                app,
                version,
            } => write!(f, "version {tenant}/{app}@{version}"),
            Place::VersionOnNode {
                tenant,
                app,
                version,
                node,
            } => write!(f, "version {tenant}/{app}@{version} on {node}"),
        }
    }
}

impl Place {
    /// The node, if it names one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Place::Node { node } | Place::VersionOnNode { node, .. } => Some(node),
            _ => None,
        }
    }

    /// The `(tenant, app)`, if it names an app.
    pub fn app(&self) -> Option<(&str, &str)> {
        match self {
            Place::App { tenant, app }
            | Place::Version { tenant, app, .. }
            | Place::VersionOnNode { tenant, app, .. } => Some((tenant, app)),
            _ => None,
        }
    }

    /// The tenant, if it names one.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Place::Tenant { tenant }
            | Place::App { tenant, .. }
            | Place::Version { tenant, .. }
            | Place::VersionOnNode { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    /// The version, if it names one.
    pub fn version(&self) -> Option<u64> {
        match self {
            Place::Version { version, .. } | Place::VersionOnNode { version, .. } => Some(*version),
            _ => None,
        }
    }
}

/// The signal that showed the trouble, and where it should have stayed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalEvidence {
    /// The series, as an operator reads it (`p99 latency of version
    /// shop/web@3`).
    pub series: String,
    pub observed: f64,
    /// The band it was expected in (the detection's), if known.
    pub band_low: Option<f64>,
    pub band_high: Option<f64>,
    /// The limit that matters (an SLO's threshold, a node's slots), if
    /// one.
    pub limit: Option<f64>,
}

/// One piece of trouble to decide about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trouble {
    /// What found it: `detection 12`, `prediction 4`, `alert shop/web
    /// latency`, `chaos node-kill` — for the record.
    pub source: String,
    pub class: FaultClass,
    pub place: Place,
    pub basis: Basis,
    /// How sure: the detection's score, 0 to 1 (1 for an alert).
    pub score: f64,
    /// When it was seen, ms since the Unix epoch (the autopilot's clock).
    pub seen_ms: u64,
    pub signal: SignalEvidence,
}
