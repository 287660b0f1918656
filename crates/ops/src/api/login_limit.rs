//! Failed logins are rate-limited per user name and per client address:
//! after [`MAX_FAILURES`] failures (wrong password, wrong or replayed TOTP
//! code, unknown user) within [`WINDOW`], logins for that user, and from
//! that address, get 429 with `Retry-After` until the window ends —
//! without the password being checked. A successful login forgets the
//! user's failures (not the address's: one good account must not reset
//! the count of guesses at others).
//!
//! Per node: each API node counts what it sees (a cluster of N nodes lets
//! N times as many guesses through, still a handful per window).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::failures::FailureCounts;

/// Failed logins allowed per user and per address in a window.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// Failures per user and per address.
pub struct LoginLimiter {
    failures: FailureCounts<Key>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            failures: FailureCounts::new(MAX_FAILURES, WINDOW),
        }
    }
}

impl LoginLimiter {
    fn keys(user: &str, ip: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::User(user.to_string())];
        keys.extend(ip.map(Key::Address));
        keys
    }

    /// `Err(seconds to wait)` while `user` or `ip` is limited at `now`.
    pub fn check(&self, user: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let wait = Self::keys(user, ip)
            .iter()
            .filter_map(|k| self.failures.wait(k, now))
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Counts a failed login for `user` from `ip` at `now`.
    pub fn failed(&self, user: &str, ip: Option<IpAddr>, now: Instant) {
        for key in Self::keys(user, ip) {
            self.failures.failed(key, now);
        }
    }

    /// Forgets `user`'s failures (they logged in).
    pub fn succeeded(&self, user: &str) {
        self.failures.forget(&Key::User(user.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_limit_the_user_and_the_address() {
        let limiter = LoginLimiter::default();
        let (ip, other) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(limiter.check("ann", ip, t0), Ok(()), "after {i}");
            limiter.failed("ann", ip, t0);
        }
        assert_eq!(limiter.check("ann", ip, t0), Err(300));
        assert_eq!(limiter.check("ann", other, t0), Err(300), "the user");
        assert_eq!(limiter.check("bob", ip, t0), Err(300), "the address");
        assert_eq!(limiter.check("bob", other, t0), Ok(()));
        assert_eq!(limiter.check("ann", ip, t0 + WINDOW), Ok(()), "window over");
        limiter.succeeded("ann");
        assert_eq!(limiter.check("ann", other, t0), Ok(()));
        assert_eq!(
            limiter.check("bob", ip, t0),
            Err(300),
            "address still counted"
        );
    }
}
