//! Failures counted per key in fixed windows: what both the token lockout
//! (per address) and the login limiter (per user and per address) are
//! made of. A key with `max_failures` failures in its window must wait
//! until the window ends. Pure in time (it is an argument); the map is
//! bounded.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered; past it, expired entries go first, then all.
const MAX_KEYS: usize = 100_000;

/// Failures per key, each counted from its first failure for one window.
pub(crate) struct FailureCounts<K> {
    max_failures: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (u32, Instant)>>,
}

impl<K: Eq + Hash> FailureCounts<K> {
    /// `max_failures` (at least 1) allowed per key and `window`.
    pub(crate) fn new(max_failures: u32, window: Duration) -> FailureCounts<K> {
        FailureCounts {
            max_failures: max_failures.max(1),
            window,
            counts: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (u32, Instant)>> {
        // Plain counters: a panic elsewhere leaves them usable.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds `key` must still wait at `now`, if it is limited.
    pub(crate) fn wait(&self, key: &K, now: Instant) -> Option<u64> {
        match self.lock().get(key) {
            Some(&(count, since)) if count >= self.max_failures && now < since + self.window => {
                Some((since + self.window - now).as_secs().max(1))
            }
            _ => None,
        }
    }

    /// Counts a failure of `key` at `now`.
    pub(crate) fn failed(&self, key: K, now: Instant) {
        let window = self.window;
        let mut counts = self.lock();
        if counts.len() >= MAX_KEYS && !counts.contains_key(&key) {
            counts.retain(|_, &mut (_, since)| now < since + window);
            if counts.len() >= MAX_KEYS {
                counts.clear();
            }
        }
        let entry = counts.entry(key).or_insert((0, now));
        if now >= entry.1 + window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets `key`'s failures.
    pub(crate) fn forget(&self, key: &K) {
        self.lock().remove(key);
    }
}
