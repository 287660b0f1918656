//! Which nodes are alive, judged from their reports: a node is healthy
//! while its report (boot and sequence) keeps changing.
//!
//! Time comes in as an argument (a [`Duration`] since any fixed origin,
//! e.g. the controller's start), so the judgment is pure and the simulator
//! can drive it with its own clock. Clocks of different nodes are never
//! compared: only the observer's own clock measures how long a report has
//! stood still, so skew between machines cannot make a node look dead.

use std::collections::BTreeMap;
use std::time::Duration;

use state::Name;

/// A node whose report stands still this long is unhealthy: the
/// scheduler moves its placements to other nodes, and the API, the CLI
/// and the dashboard show it as down. Reports come every second; three
/// missed ones are not a slow write.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// A report as liveness sees it: the node's boot and its sequence.
pub type Beat = (u64, u64);

/// Tracks when each node's report last changed.
///
/// ```
/// use std::time::Duration;
/// use state::Name;
/// use scheduler::Liveness;
///
/// let a = Name::new("node", "a").unwrap();
/// let mut live = Liveness::new(Duration::from_secs(3));
/// let s = Duration::from_secs;
/// live.observe([(&a, Some((1, 1)))], s(0));
/// assert!(live.healthy(&a, s(2)));
/// live.observe([(&a, Some((1, 1)))], s(3)); // no new report
/// assert!(!live.healthy(&a, s(3)));
/// live.observe([(&a, Some((1, 2)))], s(4)); // reporting again
/// assert!(live.healthy(&a, s(4)));
/// ```
#[derive(Clone, Debug)]
pub struct Liveness {
    dead_after: Duration,
    seen: BTreeMap<Name, Seen>,
}

#[derive(Clone, Debug)]
struct Seen {
    beat: Option<Beat>,
    /// When `beat` was first observed.
    since: Duration,
}

impl Liveness {
    /// A node whose report stands still for `dead_after` is unhealthy.
    /// Every node starts with that much grace from when it is first
    /// observed, so an observer that just started (a new leader) does not
    /// judge nodes it has not watched long enough.
    pub fn new(dead_after: Duration) -> Liveness {
        Liveness {
            dead_after,
            seen: BTreeMap::new(),
        }
    }

    /// Notes each node's latest report (`None`: it has sent none) at
    /// `now`. Nodes not listed are forgotten.
    pub fn observe<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = (&'a Name, Option<Beat>)>,
        now: Duration,
    ) {
        let mut seen = BTreeMap::new();
        for (name, beat) in nodes {
            let entry = match self.seen.remove(name) {
                Some(old) if old.beat == beat => old,
                _ => Seen { beat, since: now },
            };
            seen.insert(name.clone(), entry);
        }
        self.seen = seen;
    }

    /// Whether `node`'s report changed less than `dead_after` before `now`.
    /// A node never observed is not healthy.
    pub fn healthy(&self, node: &Name, now: Duration) -> bool {
        self.seen
            .get(node)
            .is_some_and(|s| now.saturating_sub(s.since) < self.dead_after)
    }

    /// How long `node`'s report has stood still at `now` (since it was
    /// first observed, for a node the observer has not seen change yet);
    /// `None` for a node not observed or that never reported.
    pub fn silent_for(&self, node: &Name, now: Duration) -> Option<Duration> {
        self.seen
            .get(node)
            .filter(|s| s.beat.is_some())
            .map(|s| now.saturating_sub(s.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new("node", s).expect("a valid test name")
    }

    #[test]
    fn a_restart_counts_as_a_beat_and_silence_kills() {
        let (a, b) = (name("a"), name("b"));
        let s = Duration::from_secs;
        let mut live = Liveness::new(s(3));
        live.observe([(&a, Some((1, 5))), (&b, None)], s(10));
        // Grace from first sight, even for a node that never reported.
        assert!(live.healthy(&a, s(12)) && live.healthy(&b, s(12)));
        live.observe([(&a, Some((2, 1))), (&b, None)], s(12));
        assert!(live.healthy(&a, s(14)), "a new boot is a beat");
        assert!(!live.healthy(&b, s(13)), "silent since 10");
        // Forgotten once the state no longer lists it.
        live.observe([(&a, Some((2, 1)))], s(14));
        assert!(!live.healthy(&b, s(14)));
        assert!(!live.healthy(&name("never"), s(0)));
        assert_eq!(live.silent_for(&a, s(15)), Some(s(3)));
        assert_eq!(live.silent_for(&b, s(15)), None, "forgotten");
        live.observe([(&b, None)], s(15));
        assert_eq!(live.silent_for(&b, s(16)), None, "never reported");
    }
}
