//! A bounded history of one SLI's cumulative counters (good events and
//! valid events, as a node's metrics report them), and the share of bad
//! events in a window ending now.
//!
//! Counters only grow, except when the process that counts restarts: a
//! reading lower than the one before is a reset, and the new reading counts
//! as events since 0. The first reading only sets the baseline, since the
//! events it holds happened at unknown times.
//!
//! Memory is bounded by keeping one point per bucket (the first reading in
//! it), with coarser buckets for older history (see [`TIERS`]): at most
//! about 5,300 points (some 130 KB) per series, whatever the reading rate.
//! A window ends exactly at the latest reading, and starts at the first
//! reading of the bucket that holds its start, so it may count up to one
//! bucket more: 10 s for windows up to 6 h, 5 min up to 3 days, 1 h up to
//! 90 days. A window longer than the history counts the whole history.
//! Readings on bucket boundaries (every 10 s from a multiple of 10 s) give
//! exact windows of whole buckets.

use std::collections::VecDeque;

const SECOND_MS: u64 = 1000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// `(resolution_ms, span_ms)` per tier, newest first: a point older than
/// its tier's span moves to the next, coarser tier, and leaves the series
/// after the last. The spans cover the alert rules' windows (6 h and 3
/// days, see [`super::burn::RULES`]) and the longest SLO period (90 days),
/// each with a margin of one bucket of the next tier at least.
pub const TIERS: [(u64, u64); 3] = [
    (10 * SECOND_MS, 6 * HOUR_MS + 10 * MINUTE_MS),
    (5 * MINUTE_MS, 3 * DAY_MS + HOUR_MS),
    (HOUR_MS, 90 * DAY_MS + 2 * HOUR_MS),
];

/// The cumulative counts up to `at_ms`, as reconstructed across resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    at_ms: u64,
    bad: u64,
    valid: u64,
}

/// One SLI's history; feed it with [`Series::observe`].
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// One deque per entry of [`TIERS`]; all points of tier `i + 1` are
    /// older than those of tier `i`.
    tiers: [VecDeque<Point>; 3],
    /// The last raw reading `(good, valid)`, to find increments and resets.
    last_raw: Option<(u64, u64)>,
    /// The latest reading, where every window ends (the tiers hold only
    /// the first reading of each bucket).
    last: Option<Point>,
    /// Reconstructed totals since the first reading.
    bad: u64,
    valid: u64,
}

impl Series {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a reading of the counters at `now_ms`. A reading earlier
    /// than the last one is taken as made at the last one's time, so the
    /// history stays ordered and no event is lost.
    pub fn observe(&mut self, now_ms: u64, good_total: u64, valid_total: u64) {
        let (good_inc, valid_inc) = match self.last_raw {
            None => (0, 0),
            // Either counter going down means the counting process restarted
            // (both restart together); what it counted since is all new.
            Some((good, valid)) if good_total < good || valid_total < valid => {
                (good_total, valid_total)
            }
            Some((good, valid)) => (good_total - good, valid_total - valid),
        };
        self.last_raw = Some((good_total, valid_total));
        // Good can only exceed valid in a bad reading; count no negative bad.
        self.bad += valid_inc.saturating_sub(good_inc);
        self.valid += valid_inc;
        let at_ms = self.last.map_or(now_ms, |p| p.at_ms.max(now_ms));
        let point = Point {
            at_ms,
            bad: self.bad,
            valid: self.valid,
        };
        self.last = Some(point);
        push(&mut self.tiers[0], TIERS[0].0, point);
        self.age(at_ms);
    }

    /// Bad events over valid events in `(now_ms - window_ms, now_ms]`, or
    /// `None` when there were no valid events in it.
    pub fn ratio_bad(&self, window_ms: u64, now_ms: u64) -> Option<f64> {
        let end = self.at_or_before(now_ms)?;
        let start = self
            .at_or_before(now_ms.saturating_sub(window_ms))
            .or_else(|| self.earliest())?;
        let valid = end.valid - start.valid;
        if valid == 0 {
            return None;
        }
        Some((end.bad - start.bad) as f64 / valid as f64)
    }

    /// How many points the tiers hold (the latest reading aside), to show
    /// the bound.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves points past their tier's span down a tier, and drops those past
    /// the last.
    fn age(&mut self, now_ms: u64) {
        for (i, &(_, span)) in TIERS.iter().enumerate() {
            while let Some(&front) = self.tiers[i].front() {
                if now_ms - front.at_ms <= span {
                    break;
                }
                self.tiers[i].pop_front();
                if let Some(&(resolution, _)) = TIERS.get(i + 1) {
                    push(&mut self.tiers[i + 1], resolution, front);
                }
            }
        }
    }

    /// How long the series has been fed at `now_ms`: from its first
    /// reading held (the history is bounded by the last tier's span).
    pub fn history_ms(&self, now_ms: u64) -> u64 {
        self.earliest()
            .map_or(0, |first| now_ms.saturating_sub(first.at_ms))
    }

    fn earliest(&self) -> Option<Point> {
        self.tiers.iter().rev().find_map(|t| t.front().copied())
    }

    /// The newest point at or before `t`.
    fn at_or_before(&self, t: u64) -> Option<Point> {
        if let Some(last) = self.last
            && last.at_ms <= t
        {
            return Some(last);
        }
        for tier in &self.tiers {
            match tier.front() {
                Some(front) if front.at_ms <= t => {
                    let after = tier.partition_point(|p| p.at_ms <= t);
                    return Some(tier[after - 1]);
                }
                _ => continue,
            }
        }
        None
    }
}

/// Appends `point` unless the tier already holds a point of its bucket: the
/// first reading of a bucket is kept, so the first reading of all (the
/// baseline) is never lost, and a window never starts later than asked.
fn push(tier: &mut VecDeque<Point>, resolution_ms: u64, point: Point) {
    if let Some(back) = tier.back()
        && back.at_ms / resolution_ms == point.at_ms / resolution_ms
    {
        return;
    }
    tier.push_back(point);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_events_means_no_ratio() {
        let mut s = Series::new();
        assert_eq!(s.ratio_bad(MINUTE_MS, 0), None);
        s.observe(0, 100, 100);
        // The first reading is only a baseline.
        assert_eq!(s.ratio_bad(MINUTE_MS, 0), None);
        s.observe(10_000, 100, 100);
        assert_eq!(s.ratio_bad(MINUTE_MS, 10_000), None);
    }

    #[test]
    fn windows_count_exactly_the_events_inside_them() {
        let mut s = Series::new();
        // Every 10 s, 100 requests; 0 bad in the first minute, then 10 bad
        // per reading.
        let (mut good, mut valid) = (0, 0);
        for i in 0..=12u64 {
            s.observe(i * 10_000, good, valid);
            valid += 100;
            good += if i < 6 { 100 } else { 90 };
        }
        // Readings at 10 s .. 60 s carried good-only increments; 70 .. 120 s
        // carried 10 bad each.
        let now = 120_000;
        assert_eq!(s.ratio_bad(60_000, now), Some(0.1));
        assert_eq!(s.ratio_bad(120_000, now), Some(60.0 / 1200.0));
        assert_eq!(s.ratio_bad(30_000, 60_000), Some(0.0));
        // A window longer than the history counts the whole history.
        assert_eq!(s.ratio_bad(DAY_MS, now), Some(60.0 / 1200.0));
        // Windows ending in the past are answered from the history.
        assert_eq!(s.ratio_bad(20_000, 80_000), Some(20.0 / 200.0));
    }

    #[test]
    fn a_counter_that_goes_down_is_a_reset_from_zero() {
        let mut s = Series::new();
        s.observe(0, 900, 1000);
        s.observe(10_000, 990, 1100); // +100 valid, +10 bad
        s.observe(20_000, 45, 50); // restart: +50 valid, +5 bad
        s.observe(30_000, 135, 150); // +100 valid, +10 bad
        assert_eq!(s.ratio_bad(HOUR_MS, 30_000), Some(25.0 / 250.0));
        assert_eq!(s.ratio_bad(10_000, 20_000), Some(5.0 / 50.0));
        // Good above valid in a reading never counts negative bad events.
        s.observe(40_000, 300, 250); // +100 valid, +165 good: 0 bad
        assert_eq!(s.ratio_bad(10_000, 40_000), Some(0.0));
    }

    #[test]
    fn readings_in_one_bucket_are_merged_and_time_never_goes_back() {
        let mut s = Series::new();
        s.observe(0, 0, 0);
        for ms in (1_000..=9_000).step_by(1_000) {
            s.observe(ms, ms / 100, ms / 100 + 1);
        }
        assert_eq!(s.len(), 1);
        // A reading from the past is counted at the latest time.
        s.observe(5_000, 200, 205);
        assert_eq!(s.len(), 1);
        assert_eq!(s.ratio_bad(MINUTE_MS, 9_000), Some(5.0 / 205.0));
    }

    #[test]
    fn memory_stays_bounded_and_long_windows_stay_close() {
        let mut s = Series::new();
        // A reading every second for 4 days: 1 bad in 1000 during the
        // first day, none after.
        let (mut good, mut valid) = (0u64, 0u64);
        let end = 4 * DAY_MS;
        let mut t = 0;
        while t <= end {
            s.observe(t, good, valid);
            valid += 1000;
            good += if t < DAY_MS { 999 } else { 1000 };
            t += SECOND_MS;
        }
        let bound = TIERS.iter().map(|&(r, span)| span / r + 2).sum::<u64>() as usize;
        assert!(s.len() <= bound, "{} points, bound {bound}", s.len());
        assert!(s.len() < 6_000);
        // The last 3 days hold no bad event (day 1 ended 3 days ago, within
        // the 5 min resolution of that tier).
        let three_days = s.ratio_bad(3 * DAY_MS, end).unwrap();
        assert!(three_days < 0.000_01, "{three_days}");
        // The last hour, from the 10 s tier, is exact.
        assert_eq!(s.ratio_bad(HOUR_MS, end), Some(0.0));
        // 4 days from the 1 h tier: one day of 0.1 % in four, to within
        // the hour the window's start may be off by (about 1 %).
        let four_days = s.ratio_bad(4 * DAY_MS, end).unwrap();
        assert!((four_days - 0.000_25).abs() < 0.000_005, "{four_days}");
    }
}
