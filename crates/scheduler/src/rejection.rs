//! Why a want, or part of it, cannot be placed or admitted. Every variant
//! names what was asked and by how much it falls short, so an operator
//! reading it knows what to change.

use serde::{Deserialize, Serialize};
use state::Name;

use crate::input::WantKey;

/// A want that cannot be met (in one region, or at all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// The tenant's replicas over all its wants would pass its quota.
    #[error(
        "tenant `{tenant}` would run {wanted} replicas, over its quota of {limit} by {}",
        wanted.saturating_sub(u64::from(*limit))
    )]
    Quota {
        tenant: Name,
        limit: u32,
        wanted: u64,
    },
    /// The want names a region its constraints do not pin it to.
    #[error(
        "{want} wants replicas in region `{region}`, but is pinned to [{}]",
        join(pinned)
    )]
    RegionNotAllowed {
        want: WantKey,
        region: Name,
        pinned: Vec<Name>,
    },
    /// No healthy node of the region satisfies the want's constraints.
    #[error("{want}: no healthy node in region `{region}` has {constraints}")]
    NoEligibleNode {
        want: WantKey,
        region: Name,
        /// The constraints, as text (`affinity [disk=ssd]`, ...).
        constraints: String,
    },
    /// Eligible nodes exist but have too few free slots.
    #[error(
        "{want}: not enough capacity in region `{region}`: wanted {wanted} replicas, {available} fit ({} short)",
        wanted.saturating_sub(*available)
    )]
    InsufficientCapacity {
        want: WantKey,
        region: Name,
        wanted: u32,
        /// Replicas that fit (placed, or free slots on eligible nodes).
        available: u32,
    },
}

fn join(names: &[Name]) -> String {
    names
        .iter()
        .map(Name::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Input that the scheduler refuses as a whole: it would make the result
/// depend on which of two records came first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("node `{0}` is given more than once")]
    DuplicateNode(Name),
    #[error("want {0} is given more than once")]
    DuplicateWant(WantKey),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new("test", s).expect("test names are valid")
    }

    fn key() -> WantKey {
        WantKey {
            tenant: name("acme"),
            app: name("web"),
            version: 2,
        }
    }

    #[test]
    fn messages_say_what_and_by_how_much() {
        let q = Rejection::Quota {
            tenant: name("acme"),
            limit: 1000,
            wanted: 1200,
        };
        assert_eq!(
            q.to_string(),
            "tenant `acme` would run 1200 replicas, over its quota of 1000 by 200"
        );
        let c = Rejection::InsufficientCapacity {
            want: key(),
            region: name("eu"),
            wanted: 10,
            available: 7,
        };
        assert_eq!(
            c.to_string(),
            "acme/web@2: not enough capacity in region `eu`: wanted 10 replicas, 7 fit (3 short)"
        );
        let p = Rejection::RegionNotAllowed {
            want: key(),
            region: name("eu"),
            pinned: vec![name("us"), name("ap")],
        };
        assert_eq!(
            p.to_string(),
            "acme/web@2 wants replicas in region `eu`, but is pinned to [us, ap]"
        );
        let n = Rejection::NoEligibleNode {
            want: key(),
            region: name("eu"),
            constraints: "affinity [disk=ssd]".into(),
        };
        assert_eq!(
            n.to_string(),
            "acme/web@2: no healthy node in region `eu` has affinity [disk=ssd]"
        );
    }
}
