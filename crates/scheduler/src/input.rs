//! The plain data the scheduler sees: nodes as they are, what is wanted,
//! and what is placed now. Controllers build these from the replicated
//! state and observed health; the scheduler never reads anything else.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use state::{Deployment, Name, Node};

/// A node as placement sees it: where it is, what it offers, whether it
/// is fit to hold sandboxes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: Name,
    pub region: Name,
    pub labels: BTreeMap<String, String>,
    /// Sandboxes it can hold in all.
    pub capacity: u32,
    /// Slots taken by sandboxes the scheduler does not manage (system
    /// sandboxes, ones being drained): never offered to placements.
    /// Placements the scheduler manages are *not* counted here; they come
    /// in as [`Placement`]s.
    pub reserved: u32,
    /// A node that is unhealthy keeps no placements and gets no new ones.
    pub healthy: bool,
}

impl NodeView {
    /// The view of a node from the replicated state, with its observed
    /// health and nothing reserved.
    pub fn of(node: &Node, healthy: bool) -> NodeView {
        NodeView {
            name: node.name.clone(),
            region: node.region.clone(),
            labels: node.labels.clone(),
            capacity: node.capacity,
            reserved: 0,
            healthy,
        }
    }

    /// Slots left for managed placements before any is counted.
    pub(crate) fn offered(&self) -> u32 {
        self.capacity.saturating_sub(self.reserved)
    }
}

/// Which eligible node a new replica goes to.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Fewest replicas of this want on a node first, then the node with the
    /// most free slots, ties by node name: replicas land on as many nodes as
    /// possible, so a node failure takes out as few as possible.
    #[default]
    Spread,
    /// The node with the fewest free slots that still has one, as many
    /// replicas as fit there, ties by node name: fills nodes so that whole
    /// nodes stay free for large wants or can be powered down.
    BinPack,
}

/// A node label that must equal a value: `key=value`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LabelSelector {
    pub key: String,
    pub value: String,
}

impl LabelSelector {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> LabelSelector {
        LabelSelector {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Whether the node carries this label with this value.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.get(&self.key) == Some(&self.value)
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Where a want's replicas may go and how they are spread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    pub policy: Policy,
    /// Every one of these must match a node's labels (required affinity).
    #[serde(default)]
    pub affinity: Vec<LabelSelector>,
    /// None of these may match a node's labels.
    #[serde(default)]
    pub anti_affinity: Vec<LabelSelector>,
    /// Regions the replicas may run in; empty means any region. A want
    /// naming a region outside this set is rejected for that region rather
    /// than silently placed elsewhere.
    #[serde(default)]
    pub pinned_regions: Vec<Name>,
}

impl Constraints {
    /// Whether a node's labels satisfy the affinity and anti-affinity
    /// (region and health are checked elsewhere).
    pub fn admits_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.affinity.iter().all(|s| s.matches(labels))
            && !self.anti_affinity.iter().any(|s| s.matches(labels))
    }

    /// Whether replicas may run in `region` at all.
    pub fn allows_region(&self, region: &Name) -> bool {
        self.pinned_regions.is_empty() || self.pinned_regions.contains(region)
    }

    /// Whether `node` may hold a replica in `region`: healthy, in that
    /// region, and its labels admitted.
    pub fn admits(&self, node: &NodeView, region: &Name) -> bool {
        node.healthy && &node.region == region && self.admits_labels(&node.labels)
    }
}

impl fmt::Display for Constraints {
    /// `affinity [disk=ssd], anti-affinity [zone=a]`, or `no label constraints`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[LabelSelector]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.affinity.is_empty(), self.anti_affinity.is_empty()) {
            (true, true) => f.write_str("no label constraints"),
            (false, true) => write!(f, "affinity [{}]", list(&self.affinity)),
            (true, false) => write!(f, "anti-affinity [{}]", list(&self.anti_affinity)),
            (false, false) => write!(
                f,
                "affinity [{}], anti-affinity [{}]",
                list(&self.affinity),
                list(&self.anti_affinity)
            ),
        }
    }
}

/// Names one want: a version of a tenant's app.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WantKey {
    pub tenant: Name,
    pub app: Name,
    pub version: u64,
}

impl fmt::Display for WantKey {
    /// `acme/web@3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.tenant, self.app, self.version)
    }
}

/// Capacity wanted for one version of an app: replicas per region, and the
/// constraints they run under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    pub tenant: Name,
    pub app: Name,
    pub version: u64,
    /// Replicas wanted in each region.
    pub regions: BTreeMap<Name, u32>,
    #[serde(default)]
    pub constraints: Constraints,
}

impl Want {
    /// The want of a deployment in the replicated state.
    pub fn of(deployment: &Deployment, constraints: Constraints) -> Want {
        Want {
            tenant: deployment.tenant.clone(),
            app: deployment.app.clone(),
            version: deployment.version,
            regions: deployment.regions.clone(),
            constraints,
        }
    }

    pub fn key(&self) -> WantKey {
        WantKey {
            tenant: self.tenant.clone(),
            app: self.app.clone(),
            version: self.version,
        }
    }

    /// Replicas over all regions.
    pub fn replicas(&self) -> u64 {
        self.regions.values().map(|&r| u64::from(r)).sum()
    }

    /// The key, borrowed: for lookups that must not allocate.
    pub(crate) fn key_ref(&self) -> (&Name, &Name, u64) {
        (&self.tenant, &self.app, self.version)
    }
}

/// `count` replicas of a version of an app on one node: the control
/// plane's record, which the scheduler reads and produces.
pub use state::Placement;

/// A placement's want, borrowed: for lookups that must not allocate.
pub(crate) fn placement_key(p: &Placement) -> (&Name, &Name, u64) {
    (&p.tenant, &p.app, p.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new("test", s).expect("test names are valid")
    }

    #[test]
    fn constraints_match_labels() {
        let labels: BTreeMap<String, String> = [("disk", "ssd"), ("zone", "a")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut c = Constraints::default();
        assert!(c.admits_labels(&labels));
        c.affinity.push(LabelSelector::new("disk", "ssd"));
        assert!(c.admits_labels(&labels));
        c.anti_affinity.push(LabelSelector::new("zone", "a"));
        assert!(!c.admits_labels(&labels));
        c.anti_affinity[0].value = "b".into();
        assert!(c.admits_labels(&labels));
        c.affinity.push(LabelSelector::new("gpu", "yes"));
        assert!(!c.admits_labels(&labels));
        assert_eq!(
            c.to_string(),
            "affinity [disk=ssd, gpu=yes], anti-affinity [zone=b]"
        );
    }

    #[test]
    fn pinning_limits_regions() {
        let mut c = Constraints::default();
        assert!(c.allows_region(&name("eu")));
        c.pinned_regions.push(name("us"));
        assert!(!c.allows_region(&name("eu")));
        assert!(c.allows_region(&name("us")));
    }

    #[test]
    fn want_key_displays_tenant_app_version() {
        let w = Want {
            tenant: name("acme"),
            app: name("web"),
            version: 3,
            regions: [(name("eu"), 2), (name("us"), 3)].into(),
            constraints: Constraints::default(),
        };
        assert_eq!(w.key().to_string(), "acme/web@3");
        assert_eq!(w.replicas(), 5);
    }
}
