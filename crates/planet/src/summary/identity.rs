//! [`Peer`]: who a gossip member is, as SWIM (foca) sees it.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::clock::NodeId;
use state::{Name, State};

/// A gossip member: its node id, region, address and a `bump` that grows
/// each time the node rejoins after being declared down.
///
/// foca identifies a member by [`foca::Identity::addr`], here the node id:
/// two identities with the same node id are the same member at different
/// times, and the one with the higher `bump` wins. The socket address is
/// carried for a real transport; the in-memory driver routes by node id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Peer {
    /// The node's id in the replicated store.
    pub node: NodeId,
    /// The region the node belongs to.
    pub region: Name,
    /// Where the node listens for gossip.
    pub addr: SocketAddr,
    /// Incremented on every rejoin, so a node that was declared down can
    /// come back under a fresh identity.
    pub bump: u16,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} ({}, {}#{})",
            self.node, self.region, self.addr, self.bump
        )
    }
}

impl foca::Identity for Peer {
    type Addr = NodeId;

    fn renew(&self) -> Option<Self> {
        Some(Peer {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> NodeId {
        self.node
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Wrapping comparison, so a bump that rolled over still wins (a node
        // does not rejoin 32,768 times between two of a peer's views).
        let ahead = self.bump.wrapping_sub(adversary.bump);
        ahead != 0 && ahead < u16::MAX / 2
    }
}

/// The global tier's members as gossip seeds, from the node records of
/// its state: a member is recorded as `node-<id>` at its global peer
/// address, which is also where its gossip socket listens. Records that
/// do not have that form are not members of the tier and are skipped.
pub fn seeds(global: &State) -> Vec<Peer> {
    global
        .nodes()
        .filter_map(|n| {
            Some(Peer {
                node: n.name.as_str().strip_prefix("node-")?.parse().ok()?,
                region: n.region.clone(),
                addr: n.address.parse().ok()?,
                bump: 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    fn peer(bump: u16) -> Peer {
        Peer {
            node: 3,
            region: Name::new("region", "eu-west").unwrap(),
            addr: "10.0.0.3:7946".parse().unwrap(),
            bump,
        }
    }

    #[test]
    fn a_renewed_identity_wins_over_the_old_one() {
        let old = peer(u16::MAX);
        let new = old.renew().unwrap();
        assert_eq!(new.bump, 0);
        assert_eq!(new.addr(), old.addr());
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
        assert!(!old.win_addr_conflict(&old));
        assert!(peer(5).win_addr_conflict(&peer(4)));
    }

    #[test]
    fn seeds_are_the_node_records_named_by_id_at_an_address() {
        use state::{Command, Node, Region};
        let region = Name::new("region", "eu-west").unwrap();
        let mut state = State::default();
        let put_region = Command::PutRegion {
            region: Region {
                name: region.clone(),
                metro: "par".into(),
                country: "fr".into(),
                continent: "eu".into(),
            },
        };
        state.apply(&put_region).unwrap();
        for (name, address) in [
            ("node-7", "10.0.0.7:7072"),
            ("edge", "10.0.0.8:7072"),
            ("node-9", "not an address"),
        ] {
            let node = Node {
                name: Name::new("node", name).unwrap(),
                region: region.clone(),
                address: address.into(),
                labels: Default::default(),
                capacity: 1,
                api: None,
                gateway: None,
                peer_key: None,
            };
            state.apply(&Command::PutNode { node }).unwrap();
        }
        let seeds = seeds(&state);
        assert_eq!(seeds.len(), 1, "{seeds:?}");
        assert_eq!(seeds[0].node, 7);
        assert_eq!(seeds[0].addr, "10.0.0.7:7072".parse().unwrap());
        assert_eq!(seeds[0].region, region);
        assert_eq!(seeds[0].bump, 0);
    }
}
