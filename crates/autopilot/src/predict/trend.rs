//! A robust linear trend over a window of points: the Theil–Sen slope
//! (the median of the slopes between every pair of points; Sen 1968) with
//! its distribution-free 90 % interval, and the Mann–Kendall test of
//! whether the series really moves one way (Kendall's S, normalised).
//! One wild point moves neither: a pair's slope is one of n(n-1)/2.
//!
//! The work is bounded: a window of more than [`MAX_FIT_POINTS`] points is
//! first cut into that many consecutive blocks of (nearly) equal counts,
//! each standing for its points by their mean time and median value — a
//! blocked Theil–Sen, linear in the window's length — and the slope's
//! median and interval ranks are selected, not sorted. Block medians of
//! independent noise are independent, so the test and the interval keep
//! their meaning (over fewer, less noisy points).

use super::super::signal::Point;

/// The 95th percentile of the standard normal: a two-sided 90 % interval.
const Z_90: f64 = 1.644_853_626_951_472_2;

/// The most points a fit pairs (2,016 pairs); longer windows are blocked.
pub const MAX_FIT_POINTS: usize = 64;

/// A trend fitted to a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// Points in the window.
    pub n: usize,
    /// Time of the last point, ms.
    pub last_ms: u64,
    /// The fitted value at the last point.
    pub level: f64,
    /// The Theil–Sen slope, per millisecond.
    pub slope: f64,
    /// Its 90 % interval (Sen's, from the ranks of the pairwise slopes).
    pub slope_low: f64,
    pub slope_high: f64,
    /// The Mann–Kendall statistic, normalised: above 2.33 the series rises
    /// with one-sided p < 0.01 (for a series with no trend, |z| stays
    /// under it 98 % of the time).
    pub z: f64,
}

impl Trend {
    /// Fits the points (in time order); `None` with fewer than 4 points or
    /// no time between them.
    pub fn fit(points: &[Point]) -> Option<Trend> {
        let n = points.len();
        if n < 4 || points[n - 1].t_ms <= points[0].t_ms {
            return None;
        }
        let (window, last) = (n, points[n - 1]);
        let blocked;
        let points = if n > MAX_FIT_POINTS {
            blocked = blocks(points, MAX_FIT_POINTS);
            &blocked[..]
        } else {
            points
        };
        let n = points.len();
        let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
        let mut s = 0i64;
        for i in 0..n {
            for j in i + 1..n {
                let dy = points[j].value - points[i].value;
                s += match dy.partial_cmp(&0.0) {
                    Some(std::cmp::Ordering::Greater) => 1,
                    Some(std::cmp::Ordering::Less) => -1,
                    _ => 0,
                };
                let dt = points[j].t_ms.saturating_sub(points[i].t_ms);
                if dt > 0 {
                    slopes.push(dy / dt as f64);
                }
            }
        }
        if slopes.is_empty() {
            return None;
        }
        let nf = n as f64;
        // Var(S) without the correction for ties: ties only make it
        // smaller, so the test is (slightly) conservative on flat stretches.
        let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
        let sd = var_s.sqrt();
        let z = match s.signum() {
            0 => 0.0,
            sign => (s - sign) as f64 / sd,
        };
        // Sen's interval: the slopes ranked (N - C) / 2 and (N + C) / 2 + 1.
        let m = slopes.len() as f64;
        let c = Z_90 * sd;
        let lo = (((m - c) / 2.0).floor() as isize - 1).clamp(0, slopes.len() as isize - 1);
        let hi = (((m + c) / 2.0).ceil() as isize).clamp(0, slopes.len() as isize - 1);
        let slope = median(&mut slopes);
        let slope_low = nth(&mut slopes, lo as usize);
        let slope_high = nth(&mut slopes, hi as usize);
        let t0 = points[0].t_ms;
        let mut intercepts: Vec<f64> = points
            .iter()
            .map(|p| p.value - slope * (p.t_ms - t0) as f64)
            .collect();
        let level = median(&mut intercepts) + slope * (last.t_ms - t0) as f64;
        Some(Trend {
            n: window,
            last_ms: last.t_ms,
            level,
            slope,
            slope_low,
            slope_high,
            z,
        })
    }

    /// The slope per hour.
    pub fn per_hour(&self) -> f64 {
        self.slope * 3_600_000.0
    }

    /// When the fitted line reaches `limit` from below, with the times the
    /// slope's interval gives (the steeper end first): `None` unless the
    /// series rises towards the limit. A slope interval that reaches 0
    /// gives no latest time (`u64::MAX`).
    pub fn time_to(&self, limit: f64) -> Option<(u64, u64, u64)> {
        if self.slope <= 0.0 || !limit.is_finite() {
            return None;
        }
        let gap = (limit - self.level).max(0.0);
        let at = |slope: f64| -> u64 {
            if slope <= 0.0 {
                return u64::MAX;
            }
            let ms = gap / slope;
            if ms >= (u64::MAX - self.last_ms) as f64 {
                u64::MAX
            } else {
                self.last_ms + ms as u64
            }
        };
        Some((
            at(self.slope_high.max(self.slope)),
            at(self.slope),
            at(self.slope_low.min(self.slope)),
        ))
    }
}

/// The `k`-th smallest of `v` (reorders `v`; linear on average).
fn nth(v: &mut [f64], k: usize) -> f64 {
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// The median of `v`, not empty (reorders `v`).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let upper = nth(v, n / 2);
    if n % 2 == 1 {
        upper
    } else {
        // After the selection the lower half holds the smaller values.
        let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// `points` (more than `count`) as `count` consecutive blocks of nearly
/// equal counts, each as its mean time and median value.
fn blocks(points: &[Point], count: usize) -> Vec<Point> {
    let n = points.len();
    let mut values = Vec::with_capacity(n / count + 1);
    (0..count)
        .map(|b| {
            let block = &points[b * n / count..(b + 1) * n / count];
            values.clear();
            values.extend(block.iter().map(|p| p.value));
            let t_sum: u128 = block.iter().map(|p| u128::from(p.t_ms)).sum();
            Point {
                // Within the block's times: fits in u64.
                t_ms: (t_sum / block.len() as u128) as u64,
                value: median(&mut values),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64, slope_per_min: f64, noise: &[f64]) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                t_ms: 1_000_000 + i * 60_000,
                value: 10.0 + slope_per_min * i as f64 + noise[i as usize % noise.len()],
            })
            .collect()
    }

    #[test]
    fn a_clean_line_is_found_exactly() {
        let t = Trend::fit(&line(10, 2.0, &[0.0])).unwrap();
        assert!((t.per_hour() - 120.0).abs() < 1e-9);
        assert!((t.level - 28.0).abs() < 1e-9);
        assert!(t.z > 3.0, "{}", t.z);
        // 28 now, 2 a minute: 100 in 36 minutes.
        let (early, at, late) = t.time_to(100.0).unwrap();
        assert_eq!(at - t.last_ms, 36 * 60_000);
        assert!(early <= at && at <= late);
    }

    #[test]
    fn noise_alone_is_no_trend_and_one_spike_moves_nothing() {
        let noise = [0.3, -0.2, 0.5, -0.4, 0.1, -0.3, 0.2, -0.1, 0.4, -0.5];
        let flat = Trend::fit(&line(30, 0.0, &noise)).unwrap();
        assert!(flat.z.abs() < 2.33, "{}", flat.z);
        assert!(flat.slope_low <= 0.0 && flat.slope_high >= 0.0);
        let mut spiked = line(20, 1.0, &[0.0]);
        spiked[10].value += 1_000.0;
        let t = Trend::fit(&spiked).unwrap();
        assert!((t.per_hour() - 60.0).abs() < 1.0, "{}", t.per_hour());
    }

    #[test]
    fn a_long_window_is_blocked_and_gives_the_same_line() {
        let noise = [0.3, -0.2, 0.5, -0.4, 0.1, -0.3, 0.2, -0.1, 0.4, -0.5, 0.0];
        let long = line(1_000, 0.5, &noise);
        let t = Trend::fit(&long).unwrap();
        assert_eq!(t.n, 1_000);
        assert!((t.per_hour() - 30.0).abs() < 0.1, "{}", t.per_hour());
        assert!(t.slope_low <= t.slope && t.slope <= t.slope_high);
        assert!(t.z > 10.0, "{}", t.z);
        // The level is the line's at the last point, not at the last block.
        let end = 10.0 + 0.5 * 999.0;
        assert!((t.level - end).abs() < 1.0, "{} vs {end}", t.level);
        let flat = Trend::fit(&line(1_000, 0.0, &noise)).unwrap();
        assert!(flat.z.abs() < 2.33, "{}", flat.z);
    }

    #[test]
    fn a_falling_series_never_reaches_a_limit_above() {
        let t = Trend::fit(&line(10, -1.0, &[0.0])).unwrap();
        assert!(t.z < -3.0);
        assert_eq!(t.time_to(100.0), None);
        assert_eq!(Trend::fit(&line(3, 1.0, &[0.0])), None);
    }
}
