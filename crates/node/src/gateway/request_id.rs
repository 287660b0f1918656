//! Request ids: 16 lowercase hex digits, unique within the process.
//!
//! A counter that starts at a random value is passed through a bijection
//! of `u64` (splitmix64's finalizer), so ids never repeat in a process,
//! rarely collide across nodes, and do not reveal how many requests came
//! before.

use std::sync::atomic::{AtomicU64, Ordering};

use super::routes::mix;

pub(crate) struct RequestIds {
    next: AtomicU64,
}

impl RequestIds {
    pub(crate) fn new() -> RequestIds {
        RequestIds {
            next: AtomicU64::new(random_u64()),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// The next id as a number (also a trace's span and trace ids).
    pub(crate) fn next_u64(&self) -> u64 {
        mix(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// A number that differs between processes: random, or from the clock and
/// the process id when the system has no entropy to give.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_and_distinct() {
        let ids = RequestIds::new();
        let all: std::collections::HashSet<String> = (0..1000).map(|_| ids.next()).collect();
        assert_eq!(all.len(), 1000);
        assert!(
            all.iter()
                .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
