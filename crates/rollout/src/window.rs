//! An analysis window: what the canary and its baseline served since the
//! last measurement, and the metrics a plan's checks read from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::judge::{Judgment, Sample, Thresholds, judge};

/// Most latencies kept per side and window: enough for the judge, bounded
/// whatever the traffic.
pub const MAX_LATENCIES: usize = 5_000;

/// What one side served in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub requests: u64,
    /// 5xx answers, timeouts included.
    pub errors: u64,
    pub timeouts: u64,
    /// A sample of its requests' latencies, in microseconds.
    pub latencies_us: Vec<f64>,
}

impl Side {
    /// Adds counts and latencies (beyond [`MAX_LATENCIES`], the rest are
    /// dropped: the sample stays a sample).
    pub fn add(&mut self, requests: u64, errors: u64, timeouts: u64, latencies_us: &[u32]) {
        self.requests += requests;
        self.errors += errors;
        self.timeouts += timeouts;
        let room = MAX_LATENCIES.saturating_sub(self.latencies_us.len());
        self.latencies_us
            .extend(latencies_us.iter().take(room).map(|&l| f64::from(l)));
    }
}

/// Both sides of a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub canary: Side,
    pub baseline: Side,
}

/// The metrics of [`crate::METRICS`] measured over `window`, and the
/// judge's answer when it could judge. A metric that cannot be measured
/// (no canary requests, too few for the judge) is left out, which makes
/// its check inconclusive.
pub fn measure(
    window: &Window,
    thresholds: &Thresholds,
) -> (BTreeMap<String, f64>, Option<Judgment>) {
    let mut m = BTreeMap::new();
    let (c, b) = (&window.canary, &window.baseline);
    m.insert("requests".to_string(), c.requests as f64);
    for (side, name) in [(c, "canary"), (b, "baseline")] {
        m.insert(format!("{name}_requests"), side.requests as f64);
        m.insert(format!("{name}_errors"), side.errors as f64);
        m.insert(format!("{name}_timeouts"), side.timeouts as f64);
    }
    if c.requests > 0 {
        m.insert("error_rate".into(), c.errors as f64 / c.requests as f64);
        m.insert("timeout_rate".into(), c.timeouts as f64 / c.requests as f64);
    }
    if b.requests > 0 {
        m.insert(
            "baseline_error_rate".into(),
            b.errors as f64 / b.requests as f64,
        );
    }
    if !c.latencies_us.is_empty() {
        let mut sorted = c.latencies_us.clone();
        sorted.sort_by(f64::total_cmp);
        for (name, q) in [
            ("latency_p50_ms", 0.50),
            ("latency_p90_ms", 0.90),
            ("latency_p99_ms", 0.99),
        ] {
            m.insert(name.into(), quantile(&sorted, q) / 1000.0);
        }
        if !b.latencies_us.is_empty() {
            let mut base = b.latencies_us.clone();
            base.sort_by(f64::total_cmp);
            for (name, q) in [
                ("baseline_latency_p50_ms", 0.50),
                ("baseline_latency_p90_ms", 0.90),
                ("baseline_latency_p99_ms", 0.99),
            ] {
                m.insert(name.into(), quantile(&base, q) / 1000.0);
            }
            let base_p50 = quantile(&base, 0.5);
            if base_p50 > 0.0 {
                m.insert(
                    "latency_ratio_p50".into(),
                    quantile(&sorted, 0.5) / base_p50,
                );
            }
        }
    }
    let judgment = judge(
        &Sample {
            latencies: &c.latencies_us,
            requests: c.requests,
            errors: c.errors,
        },
        &Sample {
            latencies: &b.latencies_us,
            requests: b.requests,
            errors: b.errors,
        },
        thresholds,
    )
    .ok();
    if let Some(j) = &judgment {
        if let Some(l) = &j.latency {
            // Only a slower canary (past the ratio and the least
            // increase) has a small p-value here: a faster one, or one
            // slower by less than a noisy machine's jitter, is never
            // "worse".
            let slower = thresholds.slower(l.canary_median, l.baseline_median);
            m.insert(
                "judge_latency_p".into(),
                if slower { l.p_value } else { 1.0 },
            );
        }
        let min = thresholds.min_samples as u64;
        if c.requests >= min && b.requests >= min {
            // No error evidence with enough requests: neither side failed.
            m.insert("judge_errors_p".into(), j.errors.map_or(1.0, |e| e.p_value));
        }
    }
    (m, judgment)
}

/// The `q` quantile of sorted, non-empty `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slower_failing_canary_shows_in_every_metric() {
        let mut w = Window::default();
        let fast: Vec<u32> = (0..100).map(|i| 1000 + i).collect();
        let slow: Vec<u32> = fast.iter().map(|l| l * 3).collect();
        w.baseline.add(100, 0, 0, &fast);
        w.canary.add(100, 10, 2, &slow);
        let (m, j) = measure(&w, &Thresholds::default());
        assert_eq!(m["requests"], 100.0);
        assert_eq!(m["error_rate"], 0.1);
        assert_eq!(m["timeout_rate"], 0.02);
        assert!((m["latency_p50_ms"] - 3.147).abs() < 1e-9, "{m:?}");
        assert!(m["latency_ratio_p50"] > 2.9);
        assert!(m["judge_latency_p"] < 1e-6);
        assert!(m["judge_errors_p"] < 0.01);
        assert_eq!(j.unwrap().verdict, crate::Verdict::Fail);
    }

    #[test]
    fn a_canary_slower_by_less_than_a_millisecond_is_not_judged_slower() {
        let mut w = Window::default();
        let base: Vec<u32> = (0..100).map(|i| 800 + i).collect();
        let canary: Vec<u32> = base.iter().map(|l| l + 600).collect();
        w.baseline.add(100, 0, 0, &base);
        w.canary.add(100, 0, 0, &canary);
        let (m, j) = measure(&w, &Thresholds::default());
        assert!(m["latency_ratio_p50"] > 1.5, "{m:?}");
        assert_eq!(m["judge_latency_p"], 1.0, "{m:?}");
        assert_eq!(j.unwrap().verdict, crate::Verdict::Pass);
    }

    #[test]
    fn an_idle_canary_measures_nothing_to_judge() {
        let (m, _) = measure(&Window::default(), &Thresholds::default());
        assert!(!m.contains_key("error_rate"), "{m:?}");
        assert!(!m.contains_key("judge_errors_p"), "{m:?}");
        assert_eq!(m["canary_requests"], 0.0);
        let mut side = Side::default();
        side.add(1, 0, 0, &vec![5; MAX_LATENCIES + 10]);
        assert_eq!(side.latencies_us.len(), MAX_LATENCIES);
    }
}
