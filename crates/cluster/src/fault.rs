//! Network faults for tests and `dwcp chaos`, compiled only with the
//! `fault-injection` feature (which `dwcp`'s tests turn on, and `dwcp`'s
//! own `fault-injection` feature for a chaos build; release builds never
//! have it).
//!
//! A node started with `DWCP_FAULTS_FILE=PATH` drops requests it would
//! send to a peer address listed in that file, one per line, as if the
//! network lost them: `ADDR` alone drops every one (a partition),
//! `ADDR SHARE` (a share in (0, 1], e.g. `0.3`) drops that share of them,
//! spread evenly (a lossy link; deterministic, so a run repeats). A test
//! partitions nodes A and B by listing B in A's file and A in B's; an
//! empty or missing file heals. The file is re-read at most every 20 ms;
//! a line that does not parse drops nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Rules {
    read_at: Option<Instant>,
    /// Address → the share of its requests dropped.
    dropped: BTreeMap<String, f64>,
    /// Address → requests seen while it had a share below 1.
    seen: BTreeMap<String, u64>,
}

static RULES: Mutex<Rules> = Mutex::new(Rules {
    read_at: None,
    dropped: BTreeMap::new(),
    seen: BTreeMap::new(),
});

/// One line of the file: the address and the share dropped.
fn parse_line(line: &str) -> Option<(String, f64)> {
    let mut words = line.split_whitespace();
    let address = words.next()?.to_string();
    let share = match words.next() {
        None => 1.0,
        Some(w) => w.parse::<f64>().ok().filter(|s| *s > 0.0 && *s <= 1.0)?,
    };
    words.next().is_none().then_some((address, share))
}

/// Whether the `n`th request (0-based) to a link dropping `share` is
/// dropped: exactly `share` of every run of requests, spread evenly.
fn nth_dropped(n: u64, share: f64) -> bool {
    ((n + 1) as f64 * share).floor() > (n as f64 * share).floor()
}

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
            .filter_map(parse_line)
            .collect();
        rules.read_at = Some(Instant::now());
    }
    let Some(&share) = rules.dropped.get(address) else {
        return false;
    };
    if share >= 1.0 {
        return true;
    }
    let n = rules.seen.entry(address.to_string()).or_insert(0);
    let dropped = nth_dropped(*n, share);
    *n += 1;
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_an_address_and_maybe_a_share() {
        assert_eq!(
            parse_line("10.0.0.1:7071"),
            Some(("10.0.0.1:7071".into(), 1.0))
        );
        assert_eq!(parse_line(" a:1  0.25 "), Some(("a:1".into(), 0.25)));
        assert_eq!(parse_line("a:1 0"), None);
        assert_eq!(parse_line("a:1 1.5"), None);
        assert_eq!(parse_line("a:1 x"), None);
        assert_eq!(parse_line("a:1 0.5 more"), None);
        assert_eq!(parse_line("   "), None);
    }

    #[test]
    fn a_share_drops_that_share_evenly() {
        for share in [0.1, 0.3, 0.5, 1.0] {
            let dropped = (0..1000).filter(|&n| nth_dropped(n, share)).count();
            assert!(
                (dropped as f64 - 1000.0 * share).abs() <= 1.0,
                "{share}: {dropped}"
            );
            // Never two drops in a row below a half.
            if share < 0.5 {
                assert!((0..1000).all(|n| !(nth_dropped(n, share) && nth_dropped(n + 1, share))));
            }
        }
    }
}
