//! This node's wall clock, in the one form DWCP stores it: milliseconds
//! since the Unix epoch. Records people read (audit entries, rollout
//! trails, incident timelines, failover records) carry it; decisions take
//! it as an argument (`now_ms`), never read it themselves.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now (0 if the clock is before it).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
