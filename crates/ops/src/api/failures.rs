//! Attempts counted per key in fixed windows: what both the token lockout
//! (per address) and the login limiter (per address) are made of. A key
//! with `max_failures` counted in its window must wait until the window
//! ends. Pure in time (it is an argument); the map is bounded, and when it
//! is full the entry whose window ends first makes room — never the whole
//! map at once, which would free every address being limited.
//!
//! Addresses are keys through [`address_key`]: an IPv6 address by its
//! /64, the smallest network one holder usually gets (counting single
//! addresses would give a /64 2^64 tries).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered.
const MAX_KEYS: usize = 100_000;

/// The key an address is counted under: itself for IPv4, its /64 for
/// IPv6 (an IPv4-mapped IPv6 address counts as the IPv4 one).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Counts per key, each from its first one for one window.
pub(crate) struct FailureCounts<K> {
    max_failures: u32,
    window: Duration,
    limit: usize,
    counts: Mutex<HashMap<K, (u32, Instant)>>,
}

impl<K: Eq + Hash + Clone> FailureCounts<K> {
    /// `max_failures` (at least 1) allowed per key and `window`.
    pub(crate) fn new(max_failures: u32, window: Duration) -> FailureCounts<K> {
        Self::with_limit(max_failures, window, MAX_KEYS)
    }

    fn with_limit(max_failures: u32, window: Duration, limit: usize) -> FailureCounts<K> {
        FailureCounts {
            max_failures: max_failures.max(1),
            window,
            limit: limit.max(1),
            counts: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (u32, Instant)>> {
        // Plain counters: a panic elsewhere leaves them usable.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_in(&self, counts: &HashMap<K, (u32, Instant)>, key: &K, now: Instant) -> Option<u64> {
        match counts.get(key) {
            Some(&(count, since)) if count >= self.max_failures && now < since + self.window => {
                Some((since + self.window - now).as_secs().max(1))
            }
            _ => None,
        }
    }

    /// Seconds `key` must still wait at `now`, if it is limited.
    pub(crate) fn wait(&self, key: &K, now: Instant) -> Option<u64> {
        self.wait_in(&self.lock(), key, now)
    }

    /// Counts a failure of `key` at `now`.
    pub(crate) fn failed(&self, key: K, now: Instant) {
        let mut counts = self.lock();
        self.count(&mut counts, key, now);
    }

    /// Counts an attempt of `key` at `now` *before* it is made, unless
    /// `key` is limited (`Err(seconds to wait)`): the check and the count
    /// are one step, so parallel attempts cannot all pass the check
    /// first. An attempt that turns out well is [`Self::release`]d.
    pub(crate) fn reserve(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut counts = self.lock();
        if let Some(wait) = self.wait_in(&counts, &key, now) {
            return Err(wait);
        }
        self.count(&mut counts, key, now);
        Ok(())
    }

    /// Takes back one attempt [`Self::reserve`]d for `key`.
    pub(crate) fn release(&self, key: &K) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    fn count(&self, counts: &mut HashMap<K, (u32, Instant)>, key: K, now: Instant) {
        let window = self.window;
        if counts.len() >= self.limit && !counts.contains_key(&key) {
            counts.retain(|_, &mut (_, since)| now < since + window);
            if counts.len() >= self.limit {
                // The window that ends first: the least to lose.
                let oldest = counts
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    counts.remove(&oldest);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_the_oldest_window_not_everything() {
        let counts = FailureCounts::with_limit(2, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            counts.failed(key, t0 + Duration::from_secs(i as u64));
            counts.failed(key, t0 + Duration::from_secs(i as u64));
        }
        // A fourth key makes room by dropping `a`, whose window ends first.
        counts.failed("d", t0 + Duration::from_secs(3));
        let now = t0 + Duration::from_secs(4);
        assert_eq!(counts.wait(&"a", now), None);
        assert!(counts.wait(&"b", now).is_some(), "still limited");
        assert!(counts.wait(&"c", now).is_some(), "still limited");
    }

    #[test]
    fn reserving_counts_before_and_releasing_takes_back() {
        let counts = FailureCounts::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(counts.reserve("x", t0), Ok(()));
        assert_eq!(counts.reserve("x", t0), Ok(()));
        assert_eq!(
            counts.reserve("x", t0),
            Err(60),
            "two in flight: a third waits"
        );
        counts.release(&"x");
        assert_eq!(counts.reserve("x", t0), Ok(()));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
