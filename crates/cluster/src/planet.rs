//! [`Planet`]: what a region cell's member holds when it runs in a planet
//! — the global tier's member beside it, its gossip member, and the
//! topology — and the global routing answer drawn from them.

use std::sync::Arc;

use serde::Serialize;

use super::{ClusterNode, GossipMember};
use planet::summary::Health;
use planet::topology::geo::LatLon;
use planet::topology::routing::nearest_healthy;
use planet::topology::{RttModel, Topology};
use state::Name;

/// A node's place in a planet (see [`ClusterNode::set_planet`]).
pub struct Planet {
    /// This node's member of the global tier.
    pub global: Arc<ClusterNode>,
    /// This node's gossip member.
    pub gossip: GossipMember,
    pub topology: Arc<Topology>,
    /// The topology's round-trip model (no jitter), for routing.
    pub model: Arc<RttModel>,
}

/// Where a client should send its requests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    /// The nearest region gossip does not hold down.
    pub region: Name,
    /// The modelled round trip from the client to it, ms.
    pub rtt_ms: f64,
    /// How gossip judges it (healthy or degraded).
    pub judged: Health,
    /// Its nodes' gateways, as the global tier records them.
    pub gateways: Vec<String>,
}

impl Planet {
    /// The route for a client at `at`: the nearest region (by the model)
    /// among those this node's gossip knows members of and does not hold
    /// down; `None` when there is none.
    pub fn route(&self, at: LatLon) -> Option<Route> {
        let sights = self.gossip.view().regions();
        let up: Vec<usize> = sights
            .iter()
            .filter(|s| s.known > 0 && s.judged != Health::Down)
            .filter_map(|s| self.topology.region(s.region.as_str()))
            .collect();
        let best = nearest_healthy(&self.model, at, &up)?;
        let region = self.topology.regions[best].name.clone();
        let judged = sights.iter().find(|s| s.region == region)?.judged;
        let gateways = self
            .global
            .replica()
            .read_local()
            .nodes()
            .filter(|n| n.region == region)
            .filter_map(|n| n.gateway.clone())
            .collect();
        Some(Route {
            rtt_ms: self.model.client_ms(at, best),
            region,
            judged,
            gateways,
        })
    }
}
