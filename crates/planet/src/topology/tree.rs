//! The validated topology: continent → country → metro → region → node.
//! Built only by [`Topology::parse`](super::Topology::parse), so every value
//! of these types passed validation.

use serde::Serialize;

use super::geo::LatLon;
use state::Name;

/// The default size of the global tier.
pub const DEFAULT_VOTERS: usize = 5;

/// The default round trip between two nodes of one region, in milliseconds.
pub const DEFAULT_INTRA_REGION_MS: f64 = 1.0;

/// A validated topology. Regions are addressed by index (`0..regions.len()`)
/// everywhere in this module; the order is the file's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Topology {
    /// Every region, in the order of the file.
    pub regions: Vec<RegionSpec>,
    /// Voters of the global tier, 1 to `regions.len()`.
    pub voters: usize,
    /// Round trip between two nodes of one region, in milliseconds.
    pub intra_region_ms: f64,
    /// Measured RTTs that override the model, one per unordered pair.
    pub overrides: Vec<RttOverride>,
}

/// One region and its place in the tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionSpec {
    /// The region's name, unique in the topology.
    pub name: Name,
    /// Its metro.
    pub metro: Name,
    /// The metro's country.
    pub country: Name,
    /// The country's continent.
    pub continent: Name,
    /// Where it is.
    pub at: LatLon,
    /// Its nodes (at least one), names unique in the topology.
    pub nodes: Vec<Name>,
}

/// A measured round trip between two regions (indices, `a < b`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RttOverride {
    /// The region with the smaller index.
    pub a: usize,
    /// The region with the larger index.
    pub b: usize,
    /// Round trip in milliseconds, at least the physical floor.
    pub ms: f64,
}

impl Topology {
    /// The index of the region called `name`.
    pub fn region(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.name.as_str() == name)
    }

    /// Every node in the topology.
    pub fn node_count(&self) -> usize {
        self.regions.iter().map(|r| r.nodes.len()).sum()
    }

    /// The distinct values of a region's attribute (metros, countries,
    /// continents), in first-seen order.
    pub fn distinct(&self, of: impl Fn(&RegionSpec) -> &Name) -> Vec<&Name> {
        let mut seen: Vec<&Name> = Vec::new();
        for r in &self.regions {
            let v = of(r);
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen
    }
}
