//! The step machine: what a rollout does next, as one pure function
//! ([`advance`]) of the plan, its progress, what was measured and the
//! time. The controller stores the [`Progress`] (data of the rollout
//! record, in `state::rollout`), applies the [`Action`]s and calls it
//! again; the simulator drives it with its clock.

use std::collections::BTreeMap;

use serde::Serialize;
use state::rollout::{Analysis, Plan, Progress, Status, Step, Tally};

/// What happened since the last call.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub now_ms: u64,
    /// An operator asked to skip the current pause.
    pub promote: bool,
    /// An operator asked to abort.
    pub abort: bool,
    /// The metrics measured now (by name, see [`crate::METRICS`]); a
    /// metric missing here makes its check inconclusive.
    pub metrics: BTreeMap<String, f64>,
    /// What the analysis window held, to say why a measurement was
    /// inconclusive; `None` when unknown.
    pub sample: Option<SampleSize>,
}

/// How much traffic an analysis window held, and how much the judge
/// needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleSize {
    pub canary_requests: u64,
    pub baseline_requests: u64,
    /// Requests the judge needs per side (its `min_samples`).
    pub needed: u64,
    /// How long the window has been collecting, in ms.
    pub window_ms: u64,
}

impl SampleSize {
    /// Why a window this size leaves checks unmeasured, and what would
    /// fix it; `None` when both sides have what the judge needs.
    pub fn shortfall(&self) -> Option<String> {
        let fewest = self.canary_requests.min(self.baseline_requests);
        if fewest >= self.needed {
            return None;
        }
        let seconds = self.window_ms as f64 / 1000.0;
        let fix = if fewest == 0 {
            "send traffic to the app, or raise this step's weight".to_string()
        } else {
            // At the rate seen, the window that would bring enough.
            let wanted_s = (seconds * self.needed as f64 / fewest as f64).ceil();
            format!(
                "send more traffic ({} more requests per side), raise this step's weight, or lengthen interval_ms to about {} ms",
                self.needed - fewest,
                wanted_s as u64 * 1000
            )
        };
        Some(format!(
            "too little traffic: in {seconds:.0} s the window had {} canary and {} baseline requests, the judge needs {} of each; {fix}",
            self.canary_requests, self.baseline_requests, self.needed
        ))
    }
}

/// What the controller must do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Give the new version this share of the traffic (0: all to stable).
    SetWeight(u32),
    /// Write this to the audit trail: a step, a verdict and its evidence.
    Record(String),
    /// Write this to the audit trail: one measurement of an analysis step
    /// (the metrics against the checks). A controller that judged the
    /// window adds the judge's evidence right after it.
    Measurement(String),
}

impl Action {
    /// The audit trail's text of a record or a measurement.
    pub fn trail(&self) -> Option<&str> {
        match self {
            Action::Record(text) | Action::Measurement(text) => Some(text),
            Action::SetWeight(_) => None,
        }
    }
}

/// Runs the rollout as far as it can go now.
pub fn advance(plan: &Plan, progress: &Progress, input: &Input) -> (Progress, Vec<Action>) {
    let mut p = progress.clone();
    let mut actions = Vec::new();
    if matches!(p.status, Status::Succeeded | Status::Aborted { .. }) {
        return (p, actions);
    }
    let abort = |p: &mut Progress, actions: &mut Vec<Action>, reason: String| {
        actions.push(Action::SetWeight(0));
        actions.push(Action::Record(format!(
            "aborted at step {}: {reason}; all traffic to stable",
            p.step + 1
        )));
        p.weight = 0;
        p.status = Status::Aborted { reason };
    };
    if input.abort {
        abort(&mut p, &mut actions, "aborted by an operator".into());
        return (p, actions);
    }
    if let Some(limit) = plan.timeout_ms
        && input.now_ms.saturating_sub(p.started_ms) >= limit
    {
        abort(
            &mut p,
            &mut actions,
            format!("not finished within its timeout of {limit} ms"),
        );
        return (p, actions);
    }
    let mut promote = input.promote;
    p.status = Status::Progressing;
    loop {
        let Some(step) = plan.steps.get(p.step) else {
            // The last step is done: the next wave, or the end.
            let waves = plan.waves().map_or(1, <[_]>::len);
            if p.wave + 1 >= waves {
                break;
            }
            p.wave += 1;
            p.step = 1;
            p.weight = 0;
            p.step_started_ms = input.now_ms;
            p.analysis = Tally::default();
            actions.push(Action::Record(format!(
                "wave {} of {waves} begins: {}",
                p.wave + 1,
                plan.waves()
                    .map(|w| w[p.wave].join(", "))
                    .unwrap_or_default()
            )));
            continue;
        };
        match step {
            Step::RegionWave { waves } => {
                actions.push(Action::Record(format!(
                    "wave 1 of {} begins: {}",
                    waves.len(),
                    waves[0].join(", ")
                )));
            }
            Step::BlueGreen { preview_route } => {
                actions.push(Action::Record(format!(
                    "step {}: preview open at {preview_route}",
                    p.step + 1
                )));
            }
            Step::SetWeight { weight } => {
                if p.weight != *weight {
                    actions.push(Action::SetWeight(*weight));
                    actions.push(Action::Record(format!(
                        "step {}: weight {} -> {weight}",
                        p.step + 1,
                        p.weight
                    )));
                    p.weight = *weight;
                }
            }
            Step::Pause { duration_ms } => {
                let elapsed = input.now_ms.saturating_sub(p.step_started_ms);
                let done = promote || duration_ms.is_some_and(|d| elapsed >= d);
                if !done {
                    if duration_ms.is_none() {
                        p.status = Status::Paused;
                    }
                    return (p, actions);
                }
                if promote {
                    actions.push(Action::Record(format!(
                        "step {}: promoted by an operator",
                        p.step + 1
                    )));
                    promote = false;
                }
            }
            Step::Analysis(_) if promote => {
                actions.push(Action::Record(format!(
                    "step {}: analysis skipped, promoted by an operator",
                    p.step + 1
                )));
                promote = false;
            }
            Step::Analysis(a) => {
                let due = if p.analysis.measurements == 0 {
                    p.step_started_ms + a.interval_ms
                } else {
                    p.analysis.next_ms
                };
                if input.now_ms < due {
                    return (p, actions);
                }
                let measured = measure(a, input, &mut p.analysis);
                let (Measured::Abort(text) | Measured::Continue(text)) = &measured;
                actions.push(Action::Measurement(format!(
                    "step {}: measurement {} of {}: {text}",
                    p.step + 1,
                    p.analysis.measurements,
                    a.count
                )));
                match measured {
                    Measured::Abort(reason) => {
                        abort(&mut p, &mut actions, reason);
                        return (p, actions);
                    }
                    Measured::Continue(_) => {
                        if p.analysis.measurements < a.count {
                            p.analysis.next_ms = input.now_ms + a.interval_ms;
                            return (p, actions);
                        }
                    }
                }
            }
        }
        p.step += 1;
        p.step_started_ms = input.now_ms;
        p.analysis = Tally::default();
    }
    p.status = Status::Succeeded;
    actions.push(Action::Record(
        "succeeded: the new version takes all the traffic".into(),
    ));
    (p, actions)
}

enum Measured {
    /// Within the step's limits; the evidence.
    Continue(String),
    /// Past a limit; why.
    Abort(String),
}

/// One measurement of an analysis step against the metrics now.
fn measure(a: &Analysis, input: &Input, tally: &mut Tally) -> Measured {
    let metrics = &input.metrics;
    tally.measurements += 1;
    let mut evidence = Vec::new();
    let (mut failed, mut inconclusive) = (None, false);
    for check in &a.checks {
        let wanted = format!("{} {} {}", check.metric, check.comparator, check.threshold);
        // Checked when the plan was: a query that does not parse here
        // came from an older plan format, and is inconclusive.
        let value = state::rollout::Query::parse(&check.metric)
            .ok()
            .and_then(|q| q.eval(metrics));
        match value {
            None => {
                inconclusive = true;
                evidence.push(format!("{wanted}: not measured"));
            }
            Some(value) if check.comparator.holds(value, check.threshold) => {
                evidence.push(format!("{wanted}: {} ok", shown(value)));
            }
            Some(value) => {
                evidence.push(format!("{wanted}: {} FAILED", shown(value)));
                failed.get_or_insert(format!(
                    "{} is {}, wanted {} {}",
                    check.metric,
                    shown(value),
                    check.comparator,
                    check.threshold
                ));
            }
        }
    }
    let evidence = evidence.join("; ");
    if let Some(why) = failed {
        tally.failures += 1;
        if tally.failures > a.failure_limit {
            return Measured::Abort(format!("analysis failed: {why} ({evidence})"));
        }
    } else if inconclusive {
        tally.inconclusive += 1;
        let why = input.sample.and_then(|s| s.shortfall());
        if tally.inconclusive > a.inconclusive_limit {
            let why = why.unwrap_or_else(|| "a metric of its checks was not measured".into());
            return Measured::Abort(format!(
                "analysis inconclusive {} times, past its limit of {}: {why} ({evidence})",
                tally.inconclusive, a.inconclusive_limit
            ));
        }
        if let Some(why) = why {
            return Measured::Continue(format!(
                "{evidence}; inconclusive {} of at most {}: {why}",
                tally.inconclusive, a.inconclusive_limit
            ));
        }
    }
    Measured::Continue(evidence)
}

/// A measured value for the trail: whole numbers as they are, others
/// with four significant digits.
fn shown(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value != 0.0 && value.abs() < 1e-3 {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}
