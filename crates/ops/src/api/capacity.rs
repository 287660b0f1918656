//! `GET /capacity`: use and headroom per node and per region — the
//! sandboxes each node can hold, those the scheduler placed on it, those
//! alive at its last report — for operators deciding where to add nodes.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::Serialize;
use state::State;

use super::auth::Caller;
use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;

/// One node's or one region's numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Use {
    /// Sandboxes it can hold.
    pub capacity: u64,
    /// Sandboxes the scheduler placed on it.
    pub placed: u64,
    /// Capacity not placed yet (0 when over-placed).
    pub headroom: u64,
    /// Sandboxes alive at its last report (`null` for a node that has not
    /// reported).
    pub live: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct NodeUse {
    pub node: String,
    pub region: String,
    #[serde(flatten)]
    pub usage: Use,
}

#[derive(Debug, Serialize)]
pub(crate) struct RegionUse {
    pub region: String,
    pub nodes: usize,
    #[serde(flatten)]
    pub usage: Use,
}

#[derive(Debug, Serialize)]
pub(crate) struct Capacity {
    pub nodes: Vec<NodeUse>,
    pub regions: Vec<RegionUse>,
}

/// The capacity of every node and region in `state`.
pub(crate) fn capacity(state: &State) -> Capacity {
    let nodes: Vec<NodeUse> = state
        .nodes()
        .map(|n| {
            let placed: u64 = state
                .placements_on(&n.name)
                .map(|p| u64::from(p.count))
                .sum();
            let capacity = u64::from(n.capacity);
            NodeUse {
                node: n.name.to_string(),
                region: n.region.to_string(),
                usage: Use {
                    capacity,
                    placed,
                    headroom: capacity.saturating_sub(placed),
                    live: state.report(&n.name).map(|r| r.live_sandboxes),
                },
            }
        })
        .collect();
    let mut regions: BTreeMap<String, (usize, Use)> = state
        .regions()
        .map(|r| (r.name.to_string(), (0, Use::default())))
        .collect();
    for n in &nodes {
        let (count, sum) = regions.entry(n.region.clone()).or_default();
        *count += 1;
        sum.capacity += n.usage.capacity;
        sum.placed += n.usage.placed;
        sum.headroom += n.usage.headroom;
        if let Some(live) = n.usage.live {
            *sum.live.get_or_insert(0) += live;
        }
    }
    Capacity {
        nodes,
        regions: regions
            .into_iter()
            .map(|(region, (nodes, usage))| RegionUse {
                region,
                nodes,
                usage,
            })
            .collect(),
    }
}

/// `GET /capacity` (of the caller's tenants, for a user limited to some).
pub(crate) async fn show<P: ControlPlane>(plane: &P, caller: &Caller) -> Result<Reply, ApiError> {
    let caller = caller.clone();
    let c = plane.read(move |s| capacity(&caller.view(s))).await?;
    json(StatusCode::OK, &c)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use state::{Command, Name, Node, PlacementSpec, Quotas, Region, VersionConfig};

    use super::*;

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    #[test]
    fn use_and_headroom_per_node_and_region() {
        let mut s = State::default();
        let mut commands = vec![
            Command::PutTenant {
                name: n("acme"),
                quotas: Quotas::default(),
            },
            Command::PutRegion {
                region: Region::named(n("eu")),
            },
            Command::PutRegion {
                region: Region::named(n("us")),
            },
        ];
        for (name, capacity) in [("a", 10), ("b", 4)] {
            commands.push(Command::PutNode {
                node: Node {
                    name: n(name),
                    region: n("eu"),
                    address: format!("{name}:7071"),
                    labels: BTreeMap::new(),
                    capacity,
                    api: None,
                    gateway: None,
                    peer_key: None,
                },
            });
        }
        commands.extend([
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: "a".repeat(64),
                config: VersionConfig::default(),
            },
            Command::SetPlacements {
                tenant: n("acme"),
                app: n("shop"),
                placements: vec![
                    PlacementSpec {
                        version: 1,
                        node: n("a"),
                        count: 3,
                    },
                    PlacementSpec {
                        version: 1,
                        node: n("b"),
                        count: 5,
                    },
                ],
            },
        ]);
        for c in commands {
            s.apply(&c).unwrap();
        }
        let c = capacity(&s);
        let a = &c.nodes[0].usage;
        assert_eq!((a.capacity, a.placed, a.headroom, a.live), (10, 3, 7, None));
        let b = &c.nodes[1].usage;
        assert_eq!((b.placed, b.headroom), (5, 0), "over-placed: no headroom");
        let eu = &c.regions[0];
        assert_eq!((eu.region.as_str(), eu.nodes), ("eu", 2));
        assert_eq!(
            (eu.usage.capacity, eu.usage.placed, eu.usage.headroom),
            (14, 8, 7)
        );
        let us = &c.regions[1];
        assert_eq!((us.nodes, us.usage.capacity, us.usage.live), (0, 0, None));
    }
}
