//! A baseline for comparisons, not a product detector: the windowed
//! Gaussian of NAB's own baselines — the mean and standard deviation of
//! the last points, and the two-sided normal tail of each new point.

use std::collections::VecDeque;

/// The windowed Gaussian baseline detector.
#[derive(Clone, Debug)]
pub struct WindowedGaussian {
    window: VecDeque<f64>,
    capacity: usize,
    sum: f64,
    sum_sq: f64,
}

/// NAB's windowed Gaussian detector looks at this many past points.
pub const NAB_WINDOW_POINTS: usize = 6400;

impl WindowedGaussian {
    pub fn new(capacity: usize) -> WindowedGaussian {
        let capacity = capacity.max(2);
        WindowedGaussian {
            window: VecDeque::with_capacity(capacity),
            capacity,
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    /// The anomaly score of `value` in [0, 1]: 1 minus the two-sided
    /// probability of a value this far from the window's mean.
    pub fn observe(&mut self, value: f64) -> f64 {
        let n = self.window.len() as f64;
        let score = if n >= 2.0 {
            let mean = self.sum / n;
            let var = (self.sum_sq / n - mean * mean).max(0.0);
            let std = var.sqrt();
            if std > 0.0 {
                erf((value - mean).abs() / (std * std::f64::consts::SQRT_2))
            } else if value == mean {
                0.0
            } else {
                1.0
            }
        } else {
            0.0
        };
        if self.window.len() == self.capacity
            && let Some(old) = self.window.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.window.push_back(value);
        self.sum += value;
        self.sum_sq += value * value;
        score
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.window.capacity() * size_of::<f64>()
    }
}

/// The error function, to about 1e-7 (Abramowitz and Stegun 7.1.26).
pub fn erf(x: f64) -> f64 {
    let sign = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(0.0)).abs() < 1e-8);
        assert!((erf(1.0) - 0.842_700_79).abs() < 1e-6);
        assert!((erf(-2.0) + 0.995_322_27).abs() < 1e-6);
    }

    #[test]
    fn an_outlier_scores_near_one() {
        let mut g = WindowedGaussian::new(100);
        for i in 0..100 {
            g.observe(if i % 2 == 0 { 1.0 } else { -1.0 });
        }
        assert!(g.observe(0.0) < 0.1);
        assert!(g.observe(10.0) > 0.999);
    }
}
