//! Where the SLO evaluator's time comes from: the [`Clock`] trait, the
//! wall clock in production ([`SystemClock`]) and a clock that moves only
//! when told ([`ManualClock`]), for tests that drive hours of burn in
//! seconds (`dwcp up --manual-clock`, `POST /api/v1/test/clock`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Milliseconds since the Unix epoch, as the evaluator sees them.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// This machine's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        cluster::unix_now_ms()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `start_ms`.
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock {
            ms: AtomicU64::new(start_ms),
        }
    }

    /// Moves the clock `by_ms` forward (saturating); the new time.
    pub fn advance(&self, by_ms: u64) -> u64 {
        let before = self
            .ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by_ms))
            })
            // The closure always returns Some, so the update never fails.
            .unwrap_or_else(|t| t);
        before.saturating_add(by_ms)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        assert_eq!(c.advance(500), 1_500);
        assert_eq!(c.now_ms(), 1_500);
        c.advance(u64::MAX);
        assert_eq!(c.now_ms(), u64::MAX);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
