//! Sizing analyses to an app's traffic, before a rollout starts: what
//! each analysis step of a plan gets at a request rate ([`needs`]), which
//! of them cannot decide ([`shortfalls`]), and the default plan fitted to
//! the rate ([`fit_default`]) — its first weight and windows chosen so
//! that the judge sees enough requests to decide.
//!
//! The arithmetic: at `weight` %, the canary and its baseline each get
//! `rate × weight / 100` requests a second (the baseline is a copy of
//! stable given the same share), so one window of `interval_ms` brings
//! each side `rate × weight / 100 × interval_s` requests. The judge wants
//! at least `min_samples` per side; an inconclusive window is judged
//! again with the next (up to the step's `inconclusive_limit`), so a step
//! can decide while `rate × weight / 100 × interval_s × (limit + 1)`
//! reaches `min_samples`. Pure: the rate comes in as a number.

use state::rollout::{Plan, Step};

/// The shortest window the default plan uses (its classic interval).
pub const MIN_WINDOW_MS: u64 = 10_000;
/// A window the fitted default plan prefers not to pass: past it, it
/// raises the first weight instead (up to the last of [`FIRST_WEIGHTS`]).
pub const PREFERRED_WINDOW_MS: u64 = 30_000;
/// The longest window the fitted default plan uses.
pub const MAX_WINDOW_MS: u64 = 60_000;
/// The first weights the fitted default plan tries, smallest blast radius
/// first.
pub const FIRST_WEIGHTS: [u32; 3] = [1, 2, 5];
/// How many times `min_samples` a fitted window expects per side, so that
/// a window a little short of traffic (it is random) still decides.
pub const MARGIN: f64 = 1.5;

/// What one analysis step of a plan gets at a rate.
#[derive(Clone, Debug, PartialEq)]
pub struct StepNeed {
    /// The analysis step, counted from 1.
    pub step: usize,
    /// The new version's weight in effect there, in %.
    pub weight: u32,
    /// Its window (the analysis's `interval_ms`).
    pub window_ms: u64,
    /// Windows it may take before an inconclusive verdict aborts
    /// (`inconclusive_limit + 1`).
    pub windows: u32,
    /// Requests each side gets in one window at the rate.
    pub per_side: f64,
    /// Requests each side needs (the judge's `min_samples`).
    pub needed: u64,
    /// The lowest app rate at which the step can decide, in requests/s
    /// (infinite at weight 0).
    pub min_rate_per_s: f64,
}

impl StepNeed {
    /// Whether the step can decide at the rate it was sized for.
    pub fn fed(&self) -> bool {
        self.per_side * f64::from(self.windows) >= self.needed as f64
    }

    /// The window that would bring `needed` requests per side at
    /// `rate_per_s`, in whole seconds (`None` when the rate or weight is 0).
    pub fn window_needed_ms(&self, rate_per_s: f64) -> Option<u64> {
        let per_side_per_s = rate_per_s * f64::from(self.weight) / 100.0;
        (per_side_per_s > 0.0)
            .then(|| ((self.needed as f64 / per_side_per_s).ceil() as u64).max(1) * 1000)
    }
}

/// Every analysis step of `plan`, with what it gets at `rate_per_s`
/// requests a second to the app. Steps inside a region wave are sized
/// against the whole rate (a wave's regions see a part of it).
pub fn needs(plan: &Plan, rate_per_s: f64, min_samples: u64) -> Vec<StepNeed> {
    let mut weight = 0;
    let mut out = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        match step {
            Step::SetWeight { weight: w } => weight = *w,
            Step::Analysis(a) => {
                let window_s = a.interval_ms as f64 / 1000.0;
                let share = f64::from(weight) / 100.0;
                let windows = a.inconclusive_limit.saturating_add(1);
                let per_window = share * window_s;
                out.push(StepNeed {
                    step: i + 1,
                    weight,
                    window_ms: a.interval_ms,
                    windows,
                    per_side: rate_per_s.max(0.0) * per_window,
                    needed: min_samples,
                    min_rate_per_s: if per_window > 0.0 {
                        min_samples as f64 / (per_window * f64::from(windows))
                    } else {
                        f64::INFINITY
                    },
                });
            }
            _ => {}
        }
    }
    out
}

/// The analysis steps of `plan` that cannot decide at `rate_per_s`: they
/// would end inconclusive and abort the rollout.
pub fn shortfalls(plan: &Plan, rate_per_s: f64, min_samples: u64) -> Vec<StepNeed> {
    needs(plan, rate_per_s, min_samples)
        .into_iter()
        .filter(|n| !n.fed())
        .collect()
}

/// The lowest app rate at which every analysis of `plan` can decide, in
/// requests/s (0 for a plan without analyses).
pub fn min_rate_per_s(plan: &Plan, min_samples: u64) -> f64 {
    needs(plan, 0.0, min_samples)
        .iter()
        .map(|n| n.min_rate_per_s)
        .fold(0.0, f64::max)
}

/// The default plan fitted to a rate, and what was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    pub plan: Plan,
    pub first_weight: u32,
    /// The three analyses' windows.
    pub windows_ms: [u64; 3],
    /// Whether every analysis can decide at the rate (false: too little
    /// traffic even for the longest window at the largest first weight).
    pub fed: bool,
}

/// The default plan (first weight, then 10 % and 50 %, each with an
/// analysis, then 100 %) with the smallest first weight of
/// [`FIRST_WEIGHTS`] whose window brings [`MARGIN`] × `min_samples`
/// requests per side within [`PREFERRED_WINDOW_MS`]; failing that, the
/// largest first weight with a window of up to [`MAX_WINDOW_MS`]. Every
/// window is at least [`MIN_WINDOW_MS`], in whole seconds.
///
/// ```
/// // ~50 requests/s: 1 % would need a minute per window, 2 % takes 30 s.
/// let fit = rollout::sizing::fit_default(50.0, 20);
/// assert_eq!((fit.first_weight, fit.windows_ms), (2, [30_000, 10_000, 10_000]));
/// assert!(fit.fed);
/// ```
pub fn fit_default(rate_per_s: f64, min_samples: u64) -> Fitted {
    let wanted = MARGIN * min_samples as f64;
    let window_for = |weight: u32| -> u64 {
        let per_side_per_s = rate_per_s.max(0.0) * f64::from(weight) / 100.0;
        if per_side_per_s <= 0.0 {
            return MAX_WINDOW_MS;
        }
        let ms = ((wanted / per_side_per_s).ceil() as u64).saturating_mul(1000);
        ms.clamp(MIN_WINDOW_MS, MAX_WINDOW_MS)
    };
    let needed_ms = |weight: u32| -> f64 {
        let per_side_per_s = rate_per_s.max(0.0) * f64::from(weight) / 100.0;
        wanted / per_side_per_s * 1000.0
    };
    let last = FIRST_WEIGHTS[FIRST_WEIGHTS.len() - 1];
    let first_weight = FIRST_WEIGHTS
        .into_iter()
        .find(|&w| needed_ms(w) <= PREFERRED_WINDOW_MS as f64)
        .unwrap_or(last);
    let windows_ms = [window_for(first_weight), window_for(10), window_for(50)];
    let plan = Plan::default_with(first_weight, windows_ms);
    let fed = shortfalls(&plan, rate_per_s, min_samples).is_empty();
    Fitted {
        plan,
        first_weight,
        windows_ms,
        fed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_default_plan_needs_about_67_requests_a_second() {
        let plan = Plan::default_plan();
        // 20 per side over three 10 s windows at 1 %: 20 / (0.01 × 30).
        let rate = min_rate_per_s(&plan, 20);
        assert!((rate - 66.67).abs() < 0.01, "{rate}");
        // The issue's case: ~55 req/s gave 16 canary requests in 30 s.
        let short = shortfalls(&plan, 55.0, 20);
        assert_eq!(short.len(), 1);
        assert_eq!((short[0].step, short[0].weight), (2, 1));
        assert!((short[0].per_side * 3.0 - 16.5).abs() < 1e-9);
        assert_eq!(short[0].window_needed_ms(55.0), Some(37_000));
        assert!(shortfalls(&plan, 70.0, 20).is_empty());
    }

    #[test]
    fn the_fitted_plan_raises_the_window_then_the_first_weight() {
        // Plenty of traffic: the classic plan.
        let busy = fit_default(1_000.0, 20);
        assert_eq!(busy.plan, Plan::default_plan());
        assert!(busy.fed);
        // 150 req/s: 1 % gives 1.5/s per side, 30 per side in 20 s.
        let fit = fit_default(150.0, 20);
        assert_eq!(
            (fit.first_weight, fit.windows_ms),
            (1, [20_000, 10_000, 10_000])
        );
        // 10 req/s: 5 % gives 0.5/s, 30 in 60 s.
        let fit = fit_default(10.0, 20);
        assert_eq!(
            (fit.first_weight, fit.windows_ms),
            (5, [60_000, 30_000, 10_000])
        );
        assert!(fit.fed);
        // 2 req/s: nothing fits; said so.
        let slow = fit_default(2.0, 20);
        assert_eq!(slow.first_weight, 5);
        assert!(!slow.fed);
        assert!(!fit_default(0.0, 20).fed);
    }

    #[test]
    fn steps_without_weight_or_analysis() {
        let plan = Plan::parse(
            r#"{"steps": [
                {"analysis": {"checks": [{"metric": "error_rate", "comparator": "<", "threshold": 0.1}]}},
                {"set_weight": {"weight": 100}}
            ]}"#,
        )
        .unwrap();
        let n = needs(&plan, 100.0, 20);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].weight, 0);
        assert!(!n[0].fed() && n[0].min_rate_per_s.is_infinite());
        assert_eq!(n[0].window_needed_ms(100.0), None);
        let pauses = Plan::blue_green_plan("/preview", 1000);
        assert!(needs(&pauses, 0.0, 20).is_empty());
        assert_eq!(min_rate_per_s(&pauses, 20), 0.0);
    }
}
