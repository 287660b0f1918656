//! The steady-state judgement, pure: the load's answers cut into windows,
//! each good or bad against the objective; when the objective came back
//! after a fault; and whether the stop condition fires. Times are ms from
//! the injection (negative before it).

use serde::Serialize;

use super::catalog::StopCondition;

/// One answer (or failure) of the steady load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When the request was sent, ms from the injection.
    pub at_ms: i64,
    /// Which node's gateway it went to (index into the cluster's nodes).
    pub node: usize,
    /// A 200 within the request deadline.
    pub ok: bool,
    pub latency_ms: u64,
}

/// The steady state's objective: in every window, at least `min_success`
/// of the requests succeed and their p99 is at most `p99_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Objective {
    pub min_success: f64,
    pub p99_ms: u64,
    pub window_ms: u64,
    /// Good windows in a row that make the objective "back".
    pub good_windows: usize,
}

impl Objective {
    /// 99 % success and p99 within 1 s (a debug build on a shared 2-core
    /// machine), over 1 s windows, three in a row to count as back.
    pub const DEFAULT: Objective = Objective {
        min_success: 0.99,
        p99_ms: 1_000,
        window_ms: 1_000,
        good_windows: 3,
    };

    /// Whether the samples of one window meet it; a window without a
    /// single answer does not (the load was stuck).
    pub fn met(&self, window: &[Sample]) -> bool {
        if window.is_empty() {
            return false;
        }
        let ok = window.iter().filter(|s| s.ok).count();
        if (ok as f64) < self.min_success * window.len() as f64 {
            return false;
        }
        let mut latencies: Vec<u64> = window.iter().map(|s| s.latency_ms).collect();
        latencies.sort_unstable();
        let at = ((latencies.len() as f64) * 0.99).ceil() as usize;
        latencies[at.clamp(1, latencies.len()) - 1] <= self.p99_ms
    }
}

/// The windows from `from_ms` up to `to_ms` (each `window_ms` long, the
/// last one whole): start and whether it met the objective.
pub fn windows(
    samples: &[Sample],
    objective: &Objective,
    from_ms: i64,
    to_ms: i64,
) -> Vec<(i64, bool)> {
    let w = objective.window_ms as i64;
    let mut out = Vec::new();
    let mut start = from_ms;
    while start + w <= to_ms {
        let inside: Vec<Sample> = samples
            .iter()
            .filter(|s| s.at_ms >= start && s.at_ms < start + w)
            .copied()
            .collect();
        out.push((start, objective.met(&inside)));
        start += w;
    }
    out
}

/// What the objective did after the injection, seen up to `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Course {
    /// The first bad window's start, if any.
    pub first_bad_ms: Option<i64>,
    /// The start of the first run of good windows after the last bad one
    /// (long enough to count as back), if it came back.
    pub back_at_ms: Option<i64>,
}

/// The course of the objective from the injection to `now_ms`.
pub fn course(samples: &[Sample], objective: &Objective, now_ms: i64) -> Course {
    let ws = windows(samples, objective, 0, now_ms);
    let first_bad = ws.iter().find(|(_, good)| !good).map(|(s, _)| *s);
    let Some(first_bad) = first_bad else {
        return Course {
            first_bad_ms: None,
            back_at_ms: None,
        };
    };
    // The good run at the end, if it is long enough.
    let last_bad = ws.iter().rposition(|(_, good)| !good).unwrap_or(0);
    let tail = &ws[last_bad + 1..];
    let back = (tail.len() >= objective.good_windows).then(|| tail[0].0);
    Course {
        first_bad_ms: Some(first_bad),
        back_at_ms: back,
    }
}

/// Whether the steady state holds before a fault: the last
/// `good_windows` windows before `now_ms` are good.
pub fn steady(samples: &[Sample], objective: &Objective, now_ms: i64) -> bool {
    let span = objective.window_ms as i64 * objective.good_windows as i64;
    let ws = windows(samples, objective, now_ms - span, now_ms);
    ws.len() == objective.good_windows && ws.iter().all(|(_, good)| *good)
}

/// Why the stop condition fires at `now_ms`, if it does: requests outside
/// the radius (`radius`: the nodes that may fail) below the share over the
/// last window, or the whole load below it for longer than allowed.
pub fn stop_reason(
    samples: &[Sample],
    radius: &[usize],
    all_nodes: bool,
    stop: &StopCondition,
    now_ms: i64,
) -> Option<String> {
    let from = now_ms - stop.window_ms as i64;
    if !all_nodes && from >= 0 {
        let outside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at_ms >= from && s.at_ms < now_ms && !radius.contains(&s.node))
            .collect();
        // Too few answers is no evidence either way.
        if outside.len() >= 10 {
            let ok = outside.iter().filter(|s| s.ok).count() as f64 / outside.len() as f64;
            if ok < stop.min_success_outside {
                return Some(format!(
                    "outside the blast radius only {:.1} % of {} requests succeeded over the last {} s (at least {:.0} % required)",
                    ok * 100.0,
                    outside.len(),
                    stop.window_ms / 1000,
                    stop.min_success_outside * 100.0
                ));
            }
        }
    }
    // The whole load below the share, window after window, for too long.
    let second = 1_000;
    let mut bad_since: Option<i64> = None;
    let mut start = 0;
    while start + second <= now_ms {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at_ms >= start && s.at_ms < start + second)
            .collect();
        let ok = inside.iter().filter(|s| s.ok).count() as f64;
        let bad = inside.is_empty() || ok < stop.min_success_outside * inside.len() as f64;
        bad_since = if bad { bad_since.or(Some(start)) } else { None };
        start += second;
    }
    match bad_since {
        Some(since) if start - since > stop.max_outage_ms as i64 => Some(format!(
            "the load has been below {:.0} % success for {} s (at most {} s allowed)",
            stop.min_success_outside * 100.0,
            (start - since) / 1000,
            stop.max_outage_ms / 1000
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample every 10 ms on nodes 0..3 from `from` to `to`, failing on
    /// `failing` nodes.
    fn load(from: i64, to: i64, failing: &[usize]) -> Vec<Sample> {
        (from / 10..to / 10)
            .map(|i| {
                let node = (i.rem_euclid(3)) as usize;
                Sample {
                    at_ms: i * 10,
                    node,
                    ok: !failing.contains(&node),
                    latency_ms: 5,
                }
            })
            .collect()
    }

    #[test]
    fn a_window_needs_answers_success_and_a_short_tail() {
        let o = Objective::DEFAULT;
        assert!(!o.met(&[]));
        assert!(o.met(&load(0, 1000, &[])));
        assert!(!o.met(&load(0, 1000, &[1])));
        let mut slow = load(0, 1000, &[]);
        slow[0].latency_ms = 5_000;
        slow[1].latency_ms = 5_000;
        assert!(!o.met(&slow), "2 of 100 over: p99 over");
        slow[1].latency_ms = 5;
        assert!(o.met(&slow), "1 of 100 over: p99 within");
    }

    #[test]
    fn the_course_finds_the_hole_and_the_way_back() {
        let o = Objective::DEFAULT;
        let mut s = load(-3000, 2000, &[]);
        s.extend(load(2000, 6000, &[0]));
        s.extend(load(6000, 10_000, &[]));
        let c = course(&s, &o, 10_000);
        assert_eq!(c.first_bad_ms, Some(2000));
        assert_eq!(c.back_at_ms, Some(6000));
        // Not back yet: two good windows only.
        assert_eq!(course(&s, &o, 8000).back_at_ms, None);
        // Never bad.
        let c = course(&load(0, 5000, &[]), &o, 5000);
        assert_eq!(
            c,
            Course {
                first_bad_ms: None,
                back_at_ms: None
            }
        );
        assert!(steady(&s, &o, 0));
        assert!(!steady(&s, &o, 5000));
    }

    #[test]
    fn the_stop_condition_watches_outside_the_radius_and_the_outage() {
        let stop = StopCondition::DEFAULT;
        // Node 0 failing is inside its radius: no stop.
        let s = load(0, 20_000, &[0]);
        assert_eq!(stop_reason(&s, &[0], false, &stop, 20_000), None);
        // Node 1 failing is outside it: stop.
        let s = load(0, 20_000, &[0, 1]);
        let why = stop_reason(&s, &[0], false, &stop, 20_000).unwrap();
        assert!(why.contains("outside the blast radius"), "{why}");
        // The whole cluster in the radius: only a long outage stops it.
        let s = load(0, 40_000, &[0, 1, 2]);
        assert_eq!(stop_reason(&s, &[], true, &stop, 40_000), None);
        let s = load(0, 50_000, &[0, 1, 2]);
        let why = stop_reason(&s, &[], true, &stop, 50_000).unwrap();
        assert!(why.contains("below 90 % success for 50 s"), "{why}");
    }
}
