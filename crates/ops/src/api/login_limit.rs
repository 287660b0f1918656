//! Logins are limited per client address on each node, and per user over
//! the whole cluster.
//!
//! - Per user: each attempt is reserved in the replicated state
//!   ([`state::Command::ReserveLogin`]) before the password is checked, so
//!   a user gets [`state::users::LOGIN_ATTEMPTS`] attempts per window
//!   however many requests arrive at once and at however many nodes; a
//!   successful login clears them.
//! - Per address (an IPv6 one by its /64), on this node: [`MAX_ATTEMPTS`]
//!   failed logins in [`WINDOW`], each likewise counted before its password
//!   is checked and taken back when it succeeds; past them the address
//!   gets 429 with `Retry-After` until the window ends, for every user.
//!   A successful login takes back only its own attempt (one good account
//!   must not reset the count of guesses at others).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::failures::{FailureCounts, address_key};

/// Failed logins allowed per address in a window.
pub const MAX_ATTEMPTS: u32 = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Failed logins per address.
pub struct LoginLimiter {
    attempts: FailureCounts<IpAddr>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            attempts: FailureCounts::new(MAX_ATTEMPTS, WINDOW),
        }
    }
}

/// An attempt counted for an address until it succeeds.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    ip: Option<IpAddr>,
}

impl Attempt<'_> {
    /// The login succeeded: it does not count against the address.
    pub fn succeeded(self) {
        if let Some(ip) = self.ip {
            self.limiter.attempts.release(&ip);
        }
    }
}

impl LoginLimiter {
    /// Counts a login attempt from `ip` at `now` before it is made, or
    /// `Err(seconds to wait)` while the address is limited.
    pub fn reserve(&self, ip: Option<IpAddr>, now: Instant) -> Result<Attempt<'_>, u64> {
        let ip = ip.map(address_key);
        if let Some(ip) = ip {
            self.attempts.reserve(ip, now)?;
        }
        Ok(Attempt { limiter: self, ip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_five_failed_attempts_per_window() {
        let limiter = LoginLimiter::default();
        let (ip, other) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        let t0 = Instant::now();
        // A good login takes back its attempt.
        limiter.reserve(ip, t0).unwrap().succeeded();
        for i in 0..MAX_ATTEMPTS {
            assert!(limiter.reserve(ip, t0).is_ok(), "attempt {i}");
        }
        assert_eq!(limiter.reserve(ip, t0).err(), Some(300));
        assert!(limiter.reserve(other, t0).is_ok(), "another address");
        assert!(limiter.reserve(ip, t0 + WINDOW).is_ok(), "window over");
        assert!(limiter.reserve(None, t0).is_ok(), "no address known");
    }
}
