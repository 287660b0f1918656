//! The judge: a canary against a baseline started at the same time on the
//! stable version (not against the long-running primary, whose caches and
//! load differ), on latency and on errors.

use serde::Serialize;

use crate::stats::{mann_whitney_u, two_proportion_z};

/// What one side served during the analysis window.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// Latencies of its requests, in microseconds.
    pub latencies: &'a [f64],
    pub requests: u64,
    /// Failed requests (5xx and timeouts) among `requests`.
    pub errors: u64,
}

/// When a difference counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    /// A worse canary at this p-value or below fails.
    pub fail_p: f64,
    /// A worse canary at this p-value or below (but above `fail_p`) is
    /// marginal.
    pub marginal_p: f64,
    /// The canary's median latency counts as worse only above the
    /// baseline's times this (1.1: 10 % slower)...
    pub latency_ratio: f64,
    /// ... and at least this much above it, in microseconds: below a
    /// millisecond, two sandboxes of the same version on a busy machine
    /// differ by chance (scheduling, a cold instance) as often as a
    /// real change would show.
    pub min_latency_increase_us: f64,
    /// Fewer latencies than this on either side, or fewer requests, is
    /// inconclusive.
    pub min_samples: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            fail_p: 0.01,
            marginal_p: 0.05,
            latency_ratio: 1.1,
            min_latency_increase_us: 1_000.0,
            min_samples: 20,
        }
    }
}

impl Thresholds {
    /// Whether a canary median of `canary_median_us` is slower than a
    /// baseline median of `baseline_median_us` by enough to count: over
    /// `latency_ratio` times it and `min_latency_increase_us` above it.
    pub fn slower(&self, canary_median_us: f64, baseline_median_us: f64) -> bool {
        canary_median_us > baseline_median_us * self.latency_ratio
            && canary_median_us - baseline_median_us >= self.min_latency_increase_us
    }
}

/// The judge's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No evidence the canary is worse.
    Pass,
    /// Some evidence it is worse (between the two p-value thresholds).
    Marginal,
    /// Strong evidence it is worse.
    Fail,
    /// Too few samples to say.
    Inconclusive,
}

/// The latency comparison.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyEvidence {
    pub canary_median: f64,
    pub baseline_median: f64,
    /// Mann-Whitney U of the canary against the baseline.
    pub u: f64,
    pub p_value: f64,
    /// Slower past `latency_ratio` and `min_latency_increase_us`, and
    /// significant at `marginal_p`.
    pub worse: bool,
}

/// The error comparison.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ErrorEvidence {
    pub canary_rate: f64,
    pub baseline_rate: f64,
    pub z: f64,
    /// One-sided: the canary's rate is the larger.
    pub p_value: f64,
}

/// A verdict and what it rests on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Judgment {
    pub verdict: Verdict,
    /// `None` when either side has fewer latencies than `min_samples`.
    pub latency: Option<LatencyEvidence>,
    /// `None` when there are too few requests, or no errors on either side
    /// (nothing to compare: not worse).
    pub errors: Option<ErrorEvidence>,
}

/// Input the judge refuses.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum JudgeError {
    #[error("{side}: {errors} errors out of {requests} requests; errors cannot exceed requests")]
    MoreErrorsThanRequests {
        side: &'static str,
        errors: u64,
        requests: u64,
    },
    #[error("{side}: a latency is not a number")]
    NotANumber { side: &'static str },
    #[error(
        "thresholds: need 0 < fail_p <= marginal_p < 1, latency_ratio >= 1 and min_latency_increase_us >= 0"
    )]
    Thresholds,
}

/// Judges `canary` against `baseline`.
///
/// ```
/// use rollout::{judge, Sample, Thresholds, Verdict};
/// let fast: Vec<f64> = (0..50).map(|i| 1_000.0 + f64::from(i % 7)).collect();
/// let slow: Vec<f64> = fast.iter().map(|l| l * 3.0).collect();
/// let base = Sample { latencies: &fast, requests: 1000, errors: 2 };
/// let canary = Sample { latencies: &slow, requests: 1000, errors: 2 };
/// let j = judge(&canary, &base, &Thresholds::default()).unwrap();
/// assert_eq!(j.verdict, Verdict::Fail);
/// assert!(j.latency.unwrap().worse);
/// ```
pub fn judge(
    canary: &Sample<'_>,
    baseline: &Sample<'_>,
    t: &Thresholds,
) -> Result<Judgment, JudgeError> {
    if !(t.fail_p > 0.0
        && t.fail_p <= t.marginal_p
        && t.marginal_p < 1.0
        && t.latency_ratio >= 1.0
        && t.min_latency_increase_us >= 0.0)
    {
        return Err(JudgeError::Thresholds);
    }
    for (side, s) in [("canary", canary), ("baseline", baseline)] {
        if s.errors > s.requests {
            return Err(JudgeError::MoreErrorsThanRequests {
                side,
                errors: s.errors,
                requests: s.requests,
            });
        }
        if s.latencies.iter().any(|l| l.is_nan()) {
            return Err(JudgeError::NotANumber { side });
        }
    }
    let min = t.min_samples as u64;
    let enough_latencies =
        canary.latencies.len() >= t.min_samples && baseline.latencies.len() >= t.min_samples;
    let enough_requests = canary.requests >= min && baseline.requests >= min;
    let latency = enough_latencies
        .then(|| {
            let test = mann_whitney_u(canary.latencies, baseline.latencies)?;
            let (canary_median, baseline_median) =
                (median(canary.latencies), median(baseline.latencies));
            Some(LatencyEvidence {
                canary_median,
                baseline_median,
                u: test.u,
                p_value: test.p_value,
                worse: t.slower(canary_median, baseline_median) && test.p_value <= t.marginal_p,
            })
        })
        .flatten();
    let errors = enough_requests
        .then(|| {
            let test = two_proportion_z(
                canary.errors,
                canary.requests,
                baseline.errors,
                baseline.requests,
            )?;
            Some(ErrorEvidence {
                canary_rate: canary.errors as f64 / canary.requests as f64,
                baseline_rate: baseline.errors as f64 / baseline.requests as f64,
                z: test.z,
                p_value: test.p_first_larger,
            })
        })
        .flatten();
    let too_few = !(enough_latencies && enough_requests);
    // The strongest evidence that the canary is worse, as a p-value.
    let worst_p = [
        latency.filter(|l| l.worse).map(|l| l.p_value),
        errors.map(|e| e.p_value),
    ]
    .into_iter()
    .flatten()
    .fold(1.0_f64, f64::min);
    let verdict = if worst_p <= t.fail_p {
        Verdict::Fail
    } else if worst_p <= t.marginal_p {
        Verdict::Marginal
    } else if too_few {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    Ok(Judgment {
        verdict,
        latency,
        errors,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
