//! A circuit breaker per app version: a version that fails hard (five
//! failures in a row: traps, timeouts, limits) is taken out of the split
//! for a cool-down, so its share goes to the app's other versions — the
//! stable one during a rollout — until a single trial request succeeds.
//!
//! The state machine is pure ([`Breaker::allows`] and [`Breaker::record`]
//! take the time as an argument); the gateway keeps one per version.

use std::time::{Duration, Instant};

/// Failures in a row that open the breaker.
pub const TRIP_AFTER: u32 = 5;
/// How long an open breaker keeps its version out before one trial.
pub const COOL_DOWN: Duration = Duration::from_secs(5);

/// Closed (serving), open (out until a time), or half-open (one trial
/// request out, waiting for its answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_out: bool },
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::Closed { failures: 0 }
    }
}

impl Breaker {
    /// Whether a request may go to the version at `now`; a half-open
    /// breaker lets exactly one through (this call takes it).
    pub fn allows(&mut self, now: Instant) -> bool {
        match *self {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } if now >= until => {
                *self = Breaker::HalfOpen { trial_out: true };
                true
            }
            Breaker::Open { .. } => false,
            Breaker::HalfOpen { trial_out: false } => {
                *self = Breaker::HalfOpen { trial_out: true };
                true
            }
            Breaker::HalfOpen { trial_out: true } => false,
        }
    }

    /// Notes how a request the version served ended.
    pub fn record(&mut self, ok: bool, now: Instant) {
        *self = match (*self, ok) {
            (Breaker::Closed { .. }, true) | (Breaker::HalfOpen { .. }, true) => {
                Breaker::Closed { failures: 0 }
            }
            (Breaker::Closed { failures }, false) if failures + 1 >= TRIP_AFTER => Breaker::Open {
                until: now + COOL_DOWN,
            },
            (Breaker::Closed { failures }, false) => Breaker::Closed {
                failures: failures + 1,
            },
            (Breaker::HalfOpen { .. }, false) => Breaker::Open {
                until: now + COOL_DOWN,
            },
            // Answers of requests let through before it opened.
            (open @ Breaker::Open { .. }, _) => open,
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(self, Breaker::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_five_failures_then_one_trial_decides() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..4 {
            b.record(false, t0);
        }
        assert!(b.allows(t0), "four failures in a row do not trip it");
        b.record(true, t0);
        for _ in 0..4 {
            b.record(false, t0);
        }
        assert!(b.allows(t0), "a success in between starts the count again");
        b.record(false, t0);
        assert!(!b.allows(t0), "five in a row do");
        assert!(!b.allows(t0 + COOL_DOWN - Duration::from_millis(1)));
        // After the cool-down one trial goes, and only one.
        assert!(b.allows(t0 + COOL_DOWN));
        assert!(!b.allows(t0 + COOL_DOWN));
        b.record(false, t0 + COOL_DOWN);
        assert!(!b.allows(t0 + COOL_DOWN), "a failed trial opens it again");
        let later = t0 + COOL_DOWN * 2;
        assert!(b.allows(later));
        b.record(true, later);
        assert_eq!(b, Breaker::Closed { failures: 0 });
        assert!(b.allows(later) && b.allows(later));
    }
}
