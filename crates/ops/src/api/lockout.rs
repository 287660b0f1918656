//! Failed authentication is rate-limited per client address (an IPv6 one
//! by its /64): after [`MAX_FAILURES`] requests with an unknown or
//! malformed token within [`WINDOW`], the address gets 429 (with
//! `Retry-After`) until the window ends — except for a request whose token
//! is good, so that nobody sharing the address locks its operators out. A
//! token cannot be guessed by trying; an authenticated request forgets the
//! address's earlier failures. Only a request that sent a token counts: a
//! request with no credential (which any page a browser loads can make)
//! or with only a session cookie (256 random bits, not worth guessing, and
//! a cookie a page on the same host could plant) never does. Health and
//! the OpenAPI document are never refused.
//!
//! The decisions are pure functions of the time they are given; the map
//! is bounded.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::failures::{FailureCounts, address_key};

/// Failed attempts allowed per address and window.
pub const MAX_FAILURES: u32 = 10;
/// The window the failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Failures per address.
pub struct Lockout {
    failures: FailureCounts<IpAddr>,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new(MAX_FAILURES)
    }
}

impl Lockout {
    /// A lockout after `max_failures` failures in a window (at least 1).
    pub fn new(max_failures: u32) -> Lockout {
        Lockout {
            failures: FailureCounts::new(max_failures, WINDOW),
        }
    }

    /// `Err(seconds to wait)` while `ip` is locked out at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        self.failures
            .wait(&address_key(ip), now)
            .map_or(Ok(()), Err)
    }

    /// Counts a failed authentication from `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        self.failures.failed(address_key(ip), now);
    }

    /// Forgets `ip`'s failures (it authenticated).
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.forget(&address_key(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_lock_an_address_out_for_the_window() {
        let lockout = Lockout::default();
        let (ip, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(lockout.check(ip, t0), Ok(()), "after {i} failures");
            lockout.failed(ip, t0 + Duration::from_secs(u64::from(i)));
        }
        assert_eq!(lockout.check(ip, t0 + Duration::from_secs(10)), Err(50));
        assert_eq!(
            lockout.check(other, t0),
            Ok(()),
            "another address is not affected"
        );
        assert_eq!(lockout.check(ip, t0 + WINDOW), Ok(()), "the window ended");
        // A new window starts counting from one.
        lockout.failed(ip, t0 + WINDOW);
        assert_eq!(lockout.check(ip, t0 + WINDOW), Ok(()));
        // Success forgets.
        for _ in 0..MAX_FAILURES {
            lockout.failed(other, t0);
        }
        lockout.succeeded(other);
        assert_eq!(lockout.check(other, t0), Ok(()));
    }
}
