//! A rollout plan: the steps that move an app's traffic from its stable
//! version to a new one, read from JSON and checked whole before anything
//! changes. Every error names the step (counted from 1) and the field.
//!
//! ```
//! let plan = state::rollout::Plan::from_json(r#"{"steps": [
//!     {"set_weight": {"weight": 10}},
//!     {"analysis": {"checks": [{"metric": "error_rate", "comparator": "<=", "threshold": 0.01}]}},
//!     {"set_weight": {"weight": 100}}
//! ]}"#).unwrap();
//! assert_eq!(plan.steps.len(), 3);
//! ```

use serde::{Deserialize, Serialize};

/// Steps, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The whole rollout is aborted when it has not finished after this
    /// many milliseconds (a stuck rollout); `None`: no limit.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Sends `weight` % of the traffic to the new version.
    SetWeight { weight: u32 },
    /// Waits `duration_ms`, or until promoted when it is absent.
    Pause {
        #[serde(default)]
        duration_ms: Option<u64>,
    },
    /// Measures `count` times, `interval_ms` apart; aborts once more than
    /// `failure_limit` measurements failed or more than
    /// `inconclusive_limit` were inconclusive.
    Analysis(Analysis),
    /// Runs the steps after it once per wave of regions: the first wave's
    /// regions alone, then the next wave's, and so on; a finished wave
    /// keeps the new version at 100 %. Regions the app is deployed in but
    /// no wave names join the last wave. Only as the first step.
    RegionWave { waves: Vec<Vec<String>> },
    /// Opens a preview: the new version answers at `preview_route` (a path
    /// prefix) while the app's own route stays on stable; later
    /// `set_weight` steps switch all traffic at once (0 or 100 only).
    BlueGreen { preview_route: String },
}

/// An analysis step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    pub checks: Vec<Check>,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_count")]
    pub count: u32,
    #[serde(default)]
    pub failure_limit: u32,
    #[serde(default = "default_inconclusive_limit")]
    pub inconclusive_limit: u32,
}

fn default_interval_ms() -> u64 {
    10_000
}
fn default_count() -> u32 {
    3
}
fn default_inconclusive_limit() -> u32 {
    1
}

/// One condition the new version must meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// One of [`METRICS`], or a query over them: `+ - * /`, numbers and
    /// parentheses, e.g. `canary_errors / canary_requests - baseline_error_rate`.
    pub metric: String,
    pub comparator: Comparator,
    pub threshold: f64,
}

/// How a measured value is compared with a check's threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    AtLeast,
}

impl std::fmt::Display for Comparator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Comparator::Less => "<",
            Comparator::AtMost => "<=",
            Comparator::Greater => ">",
            Comparator::AtLeast => ">=",
        })
    }
}

impl Comparator {
    /// Whether `value` meets `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparator::Less => value < threshold,
            Comparator::AtMost => value <= threshold,
            Comparator::Greater => value > threshold,
            Comparator::AtLeast => value >= threshold,
        }
    }
}

/// The metrics a check may name, alone or in arithmetic (see
/// [`super::Query`]): what DWCP measures of the canary and its baseline
/// over one analysis window (see `docs/rollouts.md` for each).
pub const METRICS: &[&str] = &[
    "error_rate",
    "timeout_rate",
    "requests",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_ratio_p50",
    "baseline_error_rate",
    "judge_latency_p",
    "judge_errors_p",
    "canary_requests",
    "canary_errors",
    "canary_timeouts",
    "baseline_requests",
    "baseline_errors",
    "baseline_timeouts",
    "baseline_latency_p50_ms",
    "baseline_latency_p90_ms",
    "baseline_latency_p99_ms",
];

/// A plan that cannot be run: which step, which field, and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", step.map(|s| format!("step {s}: ")).unwrap_or_default())]
pub struct PlanError {
    /// Counted from 1; `None` for the plan as a whole.
    pub step: Option<usize>,
    pub field: String,
    pub message: String,
}

fn error(step: Option<usize>, field: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        step,
        field: field.to_string(),
        message: message.into(),
    }
}

const STEP_KINDS: &str = "set_weight, pause, analysis, region_wave, blue_green";

/// The p-value at or below which the default plan's latency check fails
/// (a slower canary's, see `rollout::Thresholds`).
const DEFAULT_LATENCY_P: f64 = 0.001;

impl Plan {
    /// The default plan: 1 %, 10 %, 50 %, 100 %, with an analysis of
    /// error rate and latency against the baseline after each of the first
    /// three (three measurements 10 s apart), aborted if not done in 30
    /// minutes. `rollout::sizing::fit_default` fits it to an app's rate.
    pub fn default_plan() -> Plan {
        Plan::default_with(1, [default_interval_ms(); 3])
    }

    /// The default plan's shape with a first weight of `first_weight` %
    /// (then 10 % and 50 %, each raised to at least the one before) and
    /// the three analyses' intervals `intervals_ms`: what
    /// `rollout::sizing::fit_default` chooses for an app's rate.
    pub fn default_with(first_weight: u32, intervals_ms: [u64; 3]) -> Plan {
        let analysis = |interval_ms: u64| {
            Step::Analysis(Analysis {
                checks: vec![
                    Check {
                        metric: "judge_errors_p".into(),
                        comparator: Comparator::Greater,
                        threshold: 0.01,
                    },
                    // Stricter than errors: nine windows each judged at
                    // 0.01 could abort up to one rollout of identical
                    // versions in twelve by chance (a crashing canary is
                    // still caught at its first window, by errors).
                    Check {
                        metric: "judge_latency_p".into(),
                        comparator: Comparator::Greater,
                        threshold: DEFAULT_LATENCY_P,
                    },
                ],
                interval_ms,
                count: default_count(),
                failure_limit: 0,
                // Two windows short of traffic may pass (the controller
                // then judges them with the next); a third aborts.
                inconclusive_limit: 2,
            })
        };
        let mut steps = Vec::new();
        let mut weight = 0;
        for (next, interval_ms) in [first_weight, 10, 50].into_iter().zip(intervals_ms) {
            weight = next.clamp(weight.max(1), 99);
            steps.push(Step::SetWeight { weight });
            steps.push(analysis(interval_ms));
        }
        steps.push(Step::SetWeight { weight: 100 });
        Plan {
            steps,
            // Its analyses take minutes at most: a rollout still going
            // after 30 minutes is stuck (its metrics never came, say).
            timeout_ms: Some(30 * 60 * 1000),
        }
    }

    /// A blue-green plan: the new version answers at `preview_route`
    /// until promoted, then takes all the traffic at once; the stable
    /// version stays ready for `hold_ms` after the switch, when an abort
    /// still switches back at once.
    pub fn blue_green_plan(preview_route: &str, hold_ms: u64) -> Plan {
        Plan {
            steps: vec![
                Step::BlueGreen {
                    preview_route: preview_route.to_string(),
                },
                Step::Pause { duration_ms: None },
                Step::SetWeight { weight: 100 },
                Step::Pause {
                    duration_ms: Some(hold_ms.max(1)),
                },
            ],
            timeout_ms: None,
        }
    }

    /// Reads and checks a plan in JSON (text starting with `{`) or TOML
    /// (anything else), e.g.
    ///
    /// ```toml
    /// [[steps]]
    /// set_weight = { weight = 20 }
    /// [[steps]]
    /// analysis = { checks = [{ metric = "error_rate", comparator = "<", threshold = 0.01 }] }
    /// [[steps]]
    /// set_weight = { weight = 100 }
    /// ```
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        if text.trim_start().starts_with('{') {
            return Plan::from_json(text);
        }
        let value: toml::Value = toml::from_str(text)
            .map_err(|e| error(None, "plan", format!("neither JSON nor TOML: {e}")))?;
        let json = serde_json::to_string(&value)
            .map_err(|e| error(None, "plan", format!("not representable as JSON: {e}")))?;
        Plan::from_json(&json)
    }

    /// Reads and checks a plan in JSON.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| error(None, "plan", format!("not JSON: {e}")))?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(error(None, "plan", "must be an object with `steps`"));
        };
        if let Some(unknown) = object.keys().find(|k| *k != "steps" && *k != "timeout_ms") {
            return Err(error(
                None,
                unknown,
                "unknown field; a plan has `steps` and `timeout_ms`",
            ));
        }
        let Some(serde_json::Value::Array(raw_steps)) = object.remove("steps") else {
            return Err(error(None, "steps", "required: a list of steps"));
        };
        let timeout_ms =
            match object.remove("timeout_ms") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|&t| t > 0).ok_or_else(|| {
                    error(None, "timeout_ms", "a positive number of milliseconds")
                })?),
            };
        let mut steps = Vec::with_capacity(raw_steps.len());
        for (i, raw) in raw_steps.into_iter().enumerate() {
            let n = Some(i + 1);
            let kind = match &raw {
                serde_json::Value::Object(o) if o.len() == 1 => o.keys().next().cloned(),
                _ => None,
            }
            .ok_or_else(|| {
                error(
                    n,
                    "step",
                    format!("must be an object with one key, the step's kind ({STEP_KINDS})"),
                )
            })?;
            let step: Step = serde_json::from_value(raw).map_err(|e| {
                if e.to_string().starts_with("unknown variant") {
                    error(n, &kind, format!("unknown step; allowed: {STEP_KINDS}"))
                } else {
                    error(n, &kind, e.to_string())
                }
            })?;
            steps.push(step);
        }
        let plan = Plan { steps, timeout_ms };
        plan.check()?;
        Ok(plan)
    }

    /// Checks the plan's values: weights 0 to 100 that never go down and
    /// reach 100 at the end, analyses of known metrics with sane limits.
    pub fn check(&self) -> Result<(), PlanError> {
        if self.steps.is_empty() {
            return Err(error(None, "steps", "at least one step"));
        }
        let mut weight = 0;
        let mut blue_green = false;
        for (i, step) in self.steps.iter().enumerate() {
            let n = Some(i + 1);
            match step {
                Step::RegionWave { waves } => {
                    if i != 0 {
                        return Err(error(
                            n,
                            "region_wave",
                            "only as the first step (the steps after it run once per wave)",
                        ));
                    }
                    check_waves(n, waves)?;
                }
                Step::BlueGreen { preview_route } => {
                    if blue_green {
                        return Err(error(n, "blue_green", "at most one blue_green step"));
                    }
                    if weight > 0 {
                        return Err(error(
                            n,
                            "blue_green",
                            format!(
                                "comes before any weight above 0 (this plan is at {weight} already)"
                            ),
                        ));
                    }
                    check_preview_route(n, preview_route)?;
                    blue_green = true;
                }
                Step::SetWeight { weight: w } if blue_green && *w != 0 && *w != 100 => {
                    return Err(error(
                        n,
                        "set_weight.weight",
                        format!("{w} after a blue_green step; a blue-green switch is 0 or 100"),
                    ));
                }
                Step::SetWeight { weight: w } => {
                    if *w > 100 {
                        return Err(error(
                            n,
                            "set_weight.weight",
                            format!("{w} is not a percentage from 0 to 100"),
                        ));
                    }
                    if *w < weight {
                        return Err(error(
                            n,
                            "set_weight.weight",
                            format!(
                                "{w} is below the {weight} of an earlier step; weights never go down (abort to go back)"
                            ),
                        ));
                    }
                    weight = *w;
                }
                Step::Pause { duration_ms } => {
                    if *duration_ms == Some(0) {
                        return Err(error(
                            n,
                            "pause.duration_ms",
                            "a positive duration, or none to wait until promoted",
                        ));
                    }
                }
                Step::Analysis(a) => check_analysis(n, a)?,
            }
        }
        if weight != 100 {
            return Err(error(
                None,
                "steps",
                format!("the last weight is {weight}; a plan ends with set_weight 100"),
            ));
        }
        Ok(())
    }
}

fn check_waves(n: Option<usize>, waves: &[Vec<String>]) -> Result<(), PlanError> {
    if waves.is_empty() || waves.iter().any(Vec::is_empty) {
        return Err(error(
            n,
            "region_wave.waves",
            "a list of waves, each a non-empty list of region names",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for region in waves.iter().flatten() {
        if region.is_empty() || region.len() > 63 {
            return Err(error(
                n,
                "region_wave.waves",
                "region names of 1 to 63 characters",
            ));
        }
        if !seen.insert(region) {
            return Err(error(
                n,
                "region_wave.waves",
                format!("region `{region}` is in two waves; each region is in one"),
            ));
        }
    }
    Ok(())
}

fn check_preview_route(n: Option<usize>, route: &str) -> Result<(), PlanError> {
    let ok = route.len() > 1
        && route.len() <= 200
        && route.starts_with('/')
        && !route.ends_with('/')
        && route
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error(
            n,
            "blue_green.preview_route",
            format!(
                "`{}` is not a path prefix like `/preview/shop` (starts with `/`, no trailing `/`, letters, digits and - _ . ~)",
                route.chars().take(80).collect::<String>()
            ),
        ))
    }
}

impl Plan {
    /// The waves of regions, when the plan has a `region_wave` step.
    pub fn waves(&self) -> Option<&[Vec<String>]> {
        match self.steps.first() {
            Some(Step::RegionWave { waves }) => Some(waves),
            _ => None,
        }
    }

    /// The preview route of a blue-green plan.
    pub fn preview_route(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match s {
            Step::BlueGreen { preview_route } => Some(preview_route.as_str()),
            _ => None,
        })
    }
}

fn check_analysis(n: Option<usize>, a: &Analysis) -> Result<(), PlanError> {
    if a.checks.is_empty() {
        return Err(error(n, "analysis.checks", "at least one check"));
    }
    for check in &a.checks {
        let query = super::Query::parse(&check.metric).map_err(|e| {
            error(
                n,
                "analysis.checks.metric",
                format!(
                    "`{}` is not a metric or a query over metrics: {e}",
                    check.metric.chars().take(80).collect::<String>()
                ),
            )
        })?;
        if let Some(unknown) = query.metrics().into_iter().find(|m| !METRICS.contains(m)) {
            return Err(error(
                n,
                "analysis.checks.metric",
                format!(
                    "no metric `{}`; available: {}",
                    unknown.chars().take(80).collect::<String>(),
                    METRICS.join(", ")
                ),
            ));
        }
        if !check.threshold.is_finite() {
            return Err(error(n, "analysis.checks.threshold", "a finite number"));
        }
    }
    if a.interval_ms == 0 {
        return Err(error(n, "analysis.interval_ms", "a positive duration"));
    }
    if a.count == 0 {
        return Err(error(n, "analysis.count", "at least 1 measurement"));
    }
    if a.failure_limit >= a.count {
        return Err(error(
            n,
            "analysis.failure_limit",
            format!(
                "{} would never fail in {} measurements; below count",
                a.failure_limit, a.count
            ),
        ));
    }
    Ok(())
}
