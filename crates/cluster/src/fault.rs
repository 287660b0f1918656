//! Network faults for tests, compiled only with the `fault-injection`
//! feature (which `dwcp`'s tests turn on; release builds never have it).
//!
//! A node started with `DWCP_FAULTS_FILE=PATH` drops every request it would
//! send to a peer address listed in that file, one per line, as if the
//! network lost it. A test partitions nodes A and B by listing B in A's
//! file and A in B's; an empty or missing file heals. The file is re-read
//! at most every 20 ms.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Rules {
    read_at: Option<Instant>,
    dropped: BTreeSet<String>,
}

static RULES: Mutex<Rules> = Mutex::new(Rules {
    read_at: None,
    dropped: BTreeSet::new(),
});

/// Whether a request to `address` must be dropped now.
pub fn drops(address: &str) -> bool {
    let Some(path) = std::env::var_os("DWCP_FAULTS_FILE") else {
        return false;
    };
    let mut rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
    if rules
        .read_at
        .is_none_or(|t| t.elapsed() > Duration::from_millis(20))
    {
        rules.dropped = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        rules.read_at = Some(Instant::now());
    }
    rules.dropped.contains(address)
}
