//! A compact, mergeable histogram of non-negative integers (latencies in
//! µs): what a node's report carries per version so that any aggregate
//! — a version over its nodes, an app over its versions, a region — is an
//! exact merge of its parts, not an average of percentiles.
//!
//! Buckets are log-linear, as HdrHistogram's with four bits of
//! sub-bucket: 0 to 15 have a bucket each; above, every power of two is cut
//! into 16 equal buckets, so a bucket spans at most 1/16 (6.25 %) of its
//! lower bound. Only non-empty buckets are kept, sorted by index: a version
//! whose requests took between 1 ms and 1 s fills at most 160 of them.
//! Counts are totals since the node's process started, like the report's
//! other counters; [`LogHistogram::since`] gives what happened between two
//! reports of one boot.

use serde::{Deserialize, Serialize};

/// Values below this have a bucket of their own.
const EXACT: u64 = 16;
/// log2 of [`EXACT`]: the sub-buckets per power of two.
const SUB_BITS: u32 = 4;
/// The highest bucket index (for `u64::MAX`).
pub const MAX_BUCKET: u16 = bucket_of(u64::MAX);

/// The bucket a value falls in.
pub const fn bucket_of(value: u64) -> u16 {
    if value < EXACT {
        return value as u16;
    }
    // The position of the leading one: at least SUB_BITS here.
    let exp = 63 - value.leading_zeros();
    let sub = (value >> (exp - SUB_BITS)) & (EXACT - 1);
    // exp <= 63, so the index stays below 16 + 60 * 16.
    (EXACT + (exp - SUB_BITS) as u64 * EXACT + sub) as u16
}

/// The smallest and largest value of bucket `index`.
pub const fn bucket_bounds(index: u16) -> (u64, u64) {
    let i = index as u64;
    if i < EXACT {
        return (i, i);
    }
    let exp = (i - EXACT) / EXACT + SUB_BITS as u64;
    let sub = (i - EXACT) % EXACT;
    let width = 1u64 << (exp - SUB_BITS as u64);
    let low = (EXACT + sub) << (exp - SUB_BITS as u64);
    (low, low.saturating_add(width - 1))
}

/// Counts per log-linear bucket, with the sum of the values recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHistogram {
    /// `(bucket index, count)`, by index, no zero counts.
    pub buckets: Vec<(u16, u64)>,
    /// Values recorded (the sum of the counts).
    pub count: u64,
    /// Their sum (saturating).
    pub sum: u64,
}

impl LogHistogram {
    /// Records `value` once.
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `value` `n` times.
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let index = bucket_of(value);
        match self.buckets.binary_search_by_key(&index, |b| b.0) {
            Ok(at) => self.buckets[at].1 = self.buckets[at].1.saturating_add(n),
            Err(at) => self.buckets.insert(at, (index, n)),
        }
        self.count = self.count.saturating_add(n);
        self.sum = self.sum.saturating_add(value.saturating_mul(n));
    }

    /// Adds every count of `other` (an exact merge).
    pub fn merge(&mut self, other: &LogHistogram) {
        let mut out = Vec::with_capacity(self.buckets.len().max(other.buckets.len()));
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1.saturating_add(y.1)));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(**x);
                    a.next();
                }
                (Some(_), Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    out.push(**x);
                    a.next();
                }
                (None, Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = out;
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// What was recorded after `earlier` (an earlier state of this same
    /// histogram): the difference per bucket, none below zero.
    pub fn since(&self, earlier: &LogHistogram) -> LogHistogram {
        let mut out = LogHistogram::default();
        for &(index, n) in &self.buckets {
            let before = earlier
                .buckets
                .binary_search_by_key(&index, |b| b.0)
                .map_or(0, |at| earlier.buckets[at].1);
            let d = n.saturating_sub(before);
            if d > 0 {
                out.buckets.push((index, d));
                out.count += d;
            }
        }
        out.sum = self.sum.saturating_sub(earlier.sum);
        out
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket
    /// holding it (within 3.2 % of any value in that bucket); `None` when
    /// empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            1.0
        };
        // The rank of the value wanted, 1-based: at least the first.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            seen = seen.saturating_add(n);
            if seen >= rank {
                let (low, high) = bucket_bounds(index);
                return Some(low + (high - low) / 2);
            }
        }
        self.buckets.last().map(|&(i, _)| bucket_bounds(i).1)
    }

    /// How many values were above `threshold`: whole buckets above it, and
    /// of the bucket holding it the share above it (values taken as spread
    /// evenly over the bucket).
    pub fn count_above(&self, threshold: u64) -> f64 {
        let mut above = 0.0;
        for &(index, n) in &self.buckets {
            let (low, high) = bucket_bounds(index);
            if low > threshold {
                above += n as f64;
            } else if high > threshold {
                let share = (high - threshold) as f64 / (high - low + 1) as f64;
                above += n as f64 * share;
            }
        }
        above
    }

    /// The mean of the values recorded; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once_and_stay_narrow() {
        let mut last_high = None;
        for index in 0..=MAX_BUCKET {
            let (low, high) = bucket_bounds(index);
            assert!(low <= high);
            if let Some(h) = last_high {
                assert_eq!(
                    low,
                    h + 1,
                    "bucket {index} starts where {} ended",
                    index - 1
                );
            }
            assert_eq!(bucket_of(low), index);
            assert_eq!(bucket_of(high), index);
            if low >= EXACT {
                assert!(
                    (high - low + 1) * 16 <= low,
                    "bucket {index} is at most 1/16 wide"
                );
            }
            last_high = Some(high);
        }
        assert_eq!(last_high, Some(u64::MAX));
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = LogHistogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, exact) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - exact).abs() / exact < 0.04, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.count, 10_000);
        assert_eq!(h.mean(), Some(5_000.5));
        assert_eq!(LogHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn a_merge_is_exact_and_since_undoes_it() {
        let (mut a, mut b) = (LogHistogram::default(), LogHistogram::default());
        for v in [3, 70, 900, 900, 50_000] {
            a.record(v);
        }
        for v in [70, 1_000_000, 2] {
            b.record(v);
        }
        let mut all = LogHistogram::default();
        for v in [3, 70, 900, 900, 50_000, 70, 1_000_000, 2] {
            all.record(v);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        let mut other_way = b.clone();
        other_way.merge(&a);
        assert_eq!(other_way, all);
        assert_eq!(merged.since(&a), b);
        assert_eq!(merged.since(&merged), LogHistogram::default());
    }

    #[test]
    fn count_above_splits_the_bucket_it_falls_in() {
        let mut h = LogHistogram::default();
        h.record_n(100, 10);
        h.record_n(10_000, 5);
        assert_eq!(h.count_above(1_000), 5.0);
        assert_eq!(h.count_above(20_000), 0.0);
        assert_eq!(h.count_above(0), 15.0);
        // 10,000 is in [9,728, 10,239]: a threshold inside counts a share.
        let part = h.count_above(10_000);
        assert!(part > 0.0 && part < 5.0, "{part}");
    }
}
