//! Streaming statistics with bounded memory: a sliding window that keeps
//! its values sorted (median, quantiles and MAD in O(log n) after an
//! O(n) memmove per point).

use std::collections::VecDeque;

/// 1 / Φ⁻¹(3/4): makes a MAD estimate the standard deviation of a normal.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// The last `capacity` values, also kept sorted.
#[derive(Clone, Debug)]
pub struct SortedWindow {
    order: VecDeque<f64>,
    sorted: Vec<f64>,
    capacity: usize,
}

impl SortedWindow {
    /// A window of at most `capacity` values (at least 1).
    pub fn new(capacity: usize) -> SortedWindow {
        let capacity = capacity.max(1);
        SortedWindow {
            order: VecDeque::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds `x` (finite), dropping the oldest value when full.
    pub fn push(&mut self, x: f64) {
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            let at = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            self.sorted.remove(at);
        }
        self.order.push_back(x);
        let at = self.sorted.partition_point(|v| v.total_cmp(&x).is_le());
        self.sorted.insert(at, x);
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `q` quantile (0..=1), interpolated between neighbours; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        quantile_sorted(&self.sorted, q)
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// The median absolute deviation from the median; 0 when empty.
    pub fn mad(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let m = self.median();
        let k = (n - 1) / 2;
        if n % 2 == 1 {
            self.kth_deviation(m, k)
        } else {
            (self.kth_deviation(m, k) + self.kth_deviation(m, k + 1)) / 2.0
        }
    }

    /// A robust estimate of the standard deviation: the larger of the
    /// scaled MAD and the scaled mean absolute deviation from the median,
    /// so that a window where more than half the values are equal (counts
    /// that are mostly 0) still has a scale when anything moves.
    pub fn sigma(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let m = self.median();
        let mean_abs = self.sorted.iter().map(|v| (v - m).abs()).sum::<f64>() / n as f64;
        // For a normal, E|x - median| = σ √(2/π).
        (MAD_TO_SIGMA * self.mad()).max(mean_abs * 1.253_314_137_315_500_3)
    }

    /// The `k`-th smallest (0-based) of |x - m| over the window, by a
    /// binary search over the two sorted runs either side of `m`.
    fn kth_deviation(&self, m: f64, k: usize) -> f64 {
        let a = &self.sorted;
        let p = a.partition_point(|v| *v < m);
        // Left run, increasing: m - a[p-1], m - a[p-2], ...; right run,
        // increasing: a[p] - m, a[p+1] - m, ...
        let left = |i: usize| m - a[p - 1 - i];
        let right = |j: usize| a[p + j] - m;
        let (nl, nr) = (p, a.len() - p);
        let take = k + 1;
        let (mut lo, mut hi) = (take.saturating_sub(nr), take.min(nl));
        while lo < hi {
            let i = (lo + hi) / 2;
            let j = take - i;
            if j > 0 && i < nl && right(j - 1) > left(i) {
                lo = i + 1;
            } else {
                hi = i;
            }
        }
        let (i, j) = (lo, take - lo);
        let l = if i > 0 {
            left(i - 1)
        } else {
            f64::NEG_INFINITY
        };
        let r = if j > 0 {
            right(j - 1)
        } else {
            f64::NEG_INFINITY
        };
        l.max(r)
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        (self.order.capacity() + self.sorted.capacity()) * size_of::<f64>()
    }
}

/// The `q` quantile of sorted values, interpolated; 0 when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            // pos is within [0, n - 1]: both indices are in bounds.
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole numbers in 0..97, many repeated (ties matter for the MAD).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = crate::synth::Rng::new(seed);
        (0..n).map(|_| (rng.next_u64() % 97) as f64).collect()
    }

    fn brute_mad(w: &[f64]) -> f64 {
        let mut s = w.to_vec();
        s.sort_by(f64::total_cmp);
        let m = quantile_sorted(&s, 0.5);
        let mut d: Vec<f64> = s.iter().map(|v| (v - m).abs()).collect();
        d.sort_by(f64::total_cmp);
        quantile_sorted(&d, 0.5)
    }

    #[test]
    fn window_median_and_mad_match_a_brute_force_over_a_slide() {
        let xs = values(500, 7);
        for cap in [1, 2, 5, 64] {
            let mut w = SortedWindow::new(cap);
            for (i, &x) in xs.iter().enumerate() {
                w.push(x);
                let recent = &xs[(i + 1).saturating_sub(cap)..=i];
                let mut s = recent.to_vec();
                s.sort_by(f64::total_cmp);
                assert_eq!(w.median(), quantile_sorted(&s, 0.5));
                assert_eq!(w.mad(), brute_mad(recent), "cap {cap} at {i}");
                assert_eq!(w.len(), recent.len());
            }
        }
    }

    #[test]
    fn sigma_is_not_zero_when_most_values_are_equal() {
        let mut w = SortedWindow::new(100);
        for i in 0..100 {
            w.push(if i % 10 == 0 { 5.0 } else { 0.0 });
        }
        assert_eq!(w.mad(), 0.0);
        assert!(w.sigma() > 0.5);
    }
}
