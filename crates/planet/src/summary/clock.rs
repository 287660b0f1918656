//! The hybrid logical clock that stamps every last-writer-wins write.
//!
//! A [`Stamp`] is `(millis, logical, node)`, compared in that order. Why a
//! hybrid logical clock rather than `(epoch, counter)`: a region's status is
//! written by whichever node currently reports for the region (its Raft
//! leader), and leadership moves. With `(epoch, counter)` a new writer must
//! learn the previous writer's counter before its first write wins; with an
//! HLC it only has to have *seen* the previous stamp (every merge feeds
//! [`Hlc::observe`]), and otherwise stays within clock skew of physical time,
//! so "last" means roughly "latest" to an operator reading the summary. The
//! node id as the last component makes stamps from different nodes distinct,
//! so two writes never tie and the winner is the same on every replica.
//!
//! There is no clock in here: the caller passes the current time (wall clock
//! in a node, virtual time in the simulator).

use serde::{Deserialize, Serialize};

/// A node's id, as in the replicated store.
pub type NodeId = u64;

/// The marker of a last-writer-wins write: physical milliseconds, a logical
/// counter for writes within the same millisecond (or while the physical
/// clock lags a stamp already seen), and the writer's node id as the final
/// tie-break. Ordered lexicographically in that order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// Physical time in milliseconds, as the writer's clock said (or later).
    pub millis: u64,
    /// Counter for writes that share `millis`.
    pub logical: u32,
    /// The writer.
    pub node: NodeId,
}

/// One node's hybrid logical clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hlc {
    node: NodeId,
    millis: u64,
    logical: u32,
}

impl Hlc {
    /// A clock for `node` that has seen nothing yet.
    pub fn new(node: NodeId) -> Hlc {
        Hlc {
            node,
            millis: 0,
            logical: 0,
        }
    }

    /// The node this clock stamps for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// A new stamp, later than every stamp this clock issued or observed.
    /// `now_millis` is the caller's physical (or virtual) time.
    pub fn stamp(&mut self, now_millis: u64) -> Stamp {
        if now_millis > self.millis {
            self.millis = now_millis;
            self.logical = 0;
        } else if self.logical == u32::MAX {
            // A burst of 4 billion writes in one millisecond: borrow the next one.
            self.millis += 1;
            self.logical = 0;
        } else {
            self.logical += 1;
        }
        Stamp {
            millis: self.millis,
            logical: self.logical,
            node: self.node,
        }
    }

    /// Takes note of a stamp seen in a merge, so the next local write wins
    /// over it even if this node's physical clock is behind.
    pub fn observe(&mut self, seen: Stamp) {
        if (seen.millis, seen.logical) > (self.millis, self.logical) {
            self.millis = seen.millis;
            self.logical = seen.logical;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_grow_even_when_the_clock_stalls_or_goes_back() {
        let mut clock = Hlc::new(7);
        let a = clock.stamp(100);
        let b = clock.stamp(100);
        let c = clock.stamp(50);
        assert!(a < b && b < c);
        assert_eq!(c.millis, 100);
        assert_eq!(c.node, 7);
    }

    #[test]
    fn a_write_after_observing_a_later_stamp_wins_over_it() {
        let mut ahead = Hlc::new(1);
        let seen = ahead.stamp(10_000);
        let mut behind = Hlc::new(2);
        behind.observe(seen);
        let mine = behind.stamp(5);
        assert!(mine > seen);
    }

    #[test]
    fn equal_times_are_broken_by_node_id() {
        let a = Hlc::new(1).stamp(10);
        let b = Hlc::new(2).stamp(10);
        assert!(a < b);
    }
}
