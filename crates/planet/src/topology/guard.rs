//! The guardrails around automatic region failover: at most a few
//! failovers an hour happen by themselves; past that, each waits for an
//! operator's approval (a fleet losing region after region is more likely
//! to have a problem of its own — a bad config, a gossip fault — than that
//! many real region losses). And when a region recovers, its load comes
//! back in steps, not all at once. Pure: time is an argument.

use std::collections::VecDeque;

/// One hour, in ms.
pub const HOUR_MS: u64 = 3_600_000;

/// What to do about a region judged failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fail it over now.
    Proceed,
    /// Wait for an operator: `limit` failovers already happened in the last
    /// hour; without approval the next may proceed at `next_free_ms`.
    AwaitApproval { limit: u32, next_free_ms: u64 },
}

/// Counts automatic failovers over a sliding hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverGuard {
    per_hour: u32,
    /// When the failovers of the last hour happened, oldest first.
    recent: VecDeque<u64>,
}

impl FailoverGuard {
    /// At most `per_hour` automatic failovers in any hour (0: every
    /// failover waits for approval).
    pub fn new(per_hour: u32) -> FailoverGuard {
        FailoverGuard {
            per_hour,
            recent: VecDeque::new(),
        }
    }

    /// Whether a failover judged at `now_ms` may proceed by itself; one
    /// that may is counted.
    ///
    /// ```
    /// use planet::topology::guard::{FailoverGuard, Verdict};
    /// let mut guard = FailoverGuard::new(2);
    /// assert_eq!(guard.judge(0), Verdict::Proceed);
    /// assert_eq!(guard.judge(1_000), Verdict::Proceed);
    /// assert_eq!(
    ///     guard.judge(2_000),
    ///     Verdict::AwaitApproval { limit: 2, next_free_ms: 3_600_000 }
    /// );
    /// assert_eq!(guard.judge(3_600_000), Verdict::Proceed);
    /// ```
    pub fn judge(&mut self, now_ms: u64) -> Verdict {
        while self
            .recent
            .front()
            .is_some_and(|&t| now_ms.saturating_sub(t) >= HOUR_MS)
        {
            self.recent.pop_front();
        }
        if (self.recent.len() as u32) < self.per_hour {
            self.recent.push_back(now_ms);
            return Verdict::Proceed;
        }
        Verdict::AwaitApproval {
            limit: self.per_hour,
            next_free_ms: self.recent.front().map_or(now_ms, |&t| t + HOUR_MS),
        }
    }

    /// An operator approved a failover at `now_ms`: it proceeds, and counts.
    pub fn approved(&mut self, now_ms: u64) {
        self.recent.push_back(now_ms);
    }
}

/// The share of a recovered region's own load it takes back at `elapsed_ms`
/// after it was judged healthy again: `steps` equal steps, one every
/// `step_ms` (so 4 steps of 5 minutes give 25, 50, 75 and 100 %), the
/// first at once. Between steps the rest stays on the failover targets.
pub fn share_back(elapsed_ms: u64, steps: u32, step_ms: u64) -> f64 {
    if steps == 0 || step_ms == 0 {
        return 1.0;
    }
    let done = (elapsed_ms / step_ms + 1).min(u64::from(steps));
    done as f64 / f64::from(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hour_slides() {
        let mut g = FailoverGuard::new(3);
        for t in [0, 10, 20] {
            assert_eq!(g.judge(t), Verdict::Proceed);
        }
        assert_eq!(
            g.judge(30),
            Verdict::AwaitApproval {
                limit: 3,
                next_free_ms: HOUR_MS
            }
        );
        // An approved one counts too: at the hour, only the first has
        // left the window.
        g.approved(40);
        assert_eq!(
            g.judge(HOUR_MS),
            Verdict::AwaitApproval {
                limit: 3,
                next_free_ms: HOUR_MS + 10
            }
        );
        assert_eq!(g.judge(HOUR_MS + 10), Verdict::Proceed);
        assert_eq!(
            g.judge(HOUR_MS + 11),
            Verdict::AwaitApproval {
                limit: 3,
                next_free_ms: HOUR_MS + 20
            }
        );
    }

    #[test]
    fn zero_means_every_failover_waits() {
        let mut g = FailoverGuard::new(0);
        assert!(matches!(
            g.judge(5),
            Verdict::AwaitApproval { limit: 0, .. }
        ));
    }

    #[test]
    fn load_comes_back_in_steps() {
        let shares: Vec<f64> = [0, 299_999, 300_000, 600_000, 900_000, 5_000_000]
            .into_iter()
            .map(|t| share_back(t, 4, 300_000))
            .collect();
        assert_eq!(shares, [0.25, 0.25, 0.5, 0.75, 1.0, 1.0]);
        assert_eq!(share_back(0, 0, 300_000), 1.0);
    }
}
