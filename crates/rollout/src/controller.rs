//! The rollout controller's decisions, pure (the loop that runs them on
//! the leader is `controllers::delivery`). Each round, for every running
//! rollout, [`Tracking::commands`] adds what the canary and its baseline
//! served since the last round — differences of the nodes' report
//! counters — to the rollout's analysis [`Window`], asks [`advance`] what
//! to do, and returns the rollout's new progress and audit records as one
//! `AdvanceRollout` command. The gateways derive their weights from the
//! rollout, so that command is the weight change.
//!
//! Counting rules (each pinned by a test in `tests/controller.rs`):
//! - the first round only notes where counting starts (a canary deployed
//!   before the rollout has old counts);
//! - after that, a report of the same boot adds its counters' increase
//!   since the last report read; a report of a new boot (a restarted node)
//!   or of a node first seen adds all its counters (everything since the
//!   restart was served during the rollout);
//! - a conclusive measurement, or a new step, starts a fresh window; an
//!   inconclusive one (too little traffic, most often) keeps its window,
//!   so the next one judges the two together.
//!
//! The [`Tracking`] lives in the leader's memory: a new leader starts with
//! an empty one, so its first measurement may be inconclusive.

use std::collections::HashMap;

use state::{Command, Name, Rollout, State};

use crate::{Action, Input, Judgment, SampleSize, Thresholds, Window, advance, measure};

/// What the controller keeps between rounds, per running rollout.
#[derive(Debug, Default)]
pub struct Tracking {
    rollouts: HashMap<(Name, Name), Tracked>,
}

impl Tracking {
    /// The analysis window of the running rollout of `tenant/app`, while
    /// it is tracked.
    pub fn window(&self, tenant: &Name, app: &Name) -> Option<&Window> {
        self.rollouts
            .get(&(tenant.clone(), app.clone()))
            .map(|t| &t.window)
    }

    /// Forgets every rollout's window (this node no longer leads).
    pub fn clear(&mut self) {
        self.rollouts.clear();
    }

    /// One round at `now_ms` (wall-clock ms: rollouts' times are read by
    /// people): the command of each running rollout that moved, and
    /// nothing for those that did not. Rollouts no longer running are
    /// forgotten.
    pub fn commands(&mut self, state: &State, now_ms: u64) -> Vec<Command> {
        let active: Vec<&Rollout> = state.active_rollouts().collect();
        self.rollouts.retain(|(t, a), k| {
            active
                .iter()
                .any(|r| &r.tenant == t && &r.app == a && r.id == k.id)
        });
        active
            .into_iter()
            .filter_map(|r| {
                let t = self
                    .rollouts
                    .entry((r.tenant.clone(), r.app.clone()))
                    .or_insert_with(|| Tracked {
                        id: r.id,
                        window: Window::default(),
                        window_since_ms: now_ms,
                        last: HashMap::new(),
                        primed: false,
                    });
                step(state, r, t, now_ms)
            })
            .collect()
    }
}

/// A rollout's analysis window and what it has read of the reports.
#[derive(Debug)]
struct Tracked {
    id: u64,
    window: Window,
    /// When the window began collecting (wall-clock ms).
    window_since_ms: u64,
    /// Per (node, version): the node's boot and the counters of its last
    /// report read, to take differences.
    last: HashMap<(Name, u64), Counters>,
    /// Whether the first round has noted where counting starts.
    primed: bool,
}

/// One report's counters of one version, and where they stand in the
/// node's reports (its boot and sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counters {
    boot: u64,
    sequence: u64,
    requests: u64,
    errors: u64,
    timeouts: u64,
}

/// One rollout's round: reads new reports into its window, advances it,
/// and returns the command to store when anything changed.
fn step(state: &State, r: &Rollout, t: &mut Tracked, now_ms: u64) -> Option<Command> {
    absorb(state, r, t);
    let thresholds = Thresholds::default();
    let (metrics, judgment) = measure(&t.window, &thresholds);
    let input = Input {
        now_ms,
        promote: r.promote,
        abort: false,
        metrics,
        sample: Some(SampleSize {
            canary_requests: t.window.canary.requests,
            baseline_requests: t.window.baseline.requests,
            needed: thresholds.min_samples as u64,
            window_ms: now_ms.saturating_sub(t.window_since_ms),
        }),
    };
    let (progress, actions) = advance(&r.plan, &r.progress, &input);
    let mut records = Vec::new();
    // Where the (first) measurement's record is, if this round took one.
    let mut measurement_at = None;
    for action in actions {
        match action {
            Action::Measurement(text) => {
                measurement_at.get_or_insert(records.len());
                records.push(text);
            }
            Action::Record(text) => records.push(text),
            Action::SetWeight(_) => {}
        }
    }
    let same_step = progress.step == r.progress.step && progress.wave == r.progress.wave;
    let measured = !same_step || progress.analysis.measurements != r.progress.analysis.measurements;
    // An inconclusive measurement (too little traffic, most often) keeps
    // its window: the next one judges the two together.
    let inconclusive =
        same_step && progress.analysis.inconclusive > r.progress.analysis.inconclusive;
    // The judge's evidence goes right after the measurement it was part
    // of (before an abort it caused).
    if let Some(j) = &judgment
        && let Some(at) = measurement_at
    {
        records.insert(at + 1, describe(j, &t.window));
    }
    if measured && !inconclusive {
        // A measurement uses its window up; a new step starts a fresh one.
        t.window = Window::default();
        t.window_since_ms = now_ms;
    }
    if progress == r.progress && records.is_empty() && !r.promote {
        return None;
    }
    Some(Command::AdvanceRollout {
        tenant: r.tenant.clone(),
        app: r.app.clone(),
        id: r.id,
        expected: r.updated,
        progress,
        records,
        now_unix_ms: now_ms,
    })
}

/// Adds what the canary and the baseline served since the reports last
/// read. The first round only notes where counting starts (a canary that
/// was deployed before has old counts); a node or boot first seen after
/// that counted everything since the rollout began.
fn absorb(state: &State, r: &Rollout, t: &mut Tracked) {
    for report in state.reports() {
        for v in report
            .versions
            .iter()
            .filter(|v| v.tenant == r.tenant && v.app == r.app)
        {
            let side = if v.version == r.to {
                &mut t.window.canary
            } else if Some(v.version) == r.baseline {
                &mut t.window.baseline
            } else {
                continue;
            };
            let now = Counters {
                boot: report.boot,
                sequence: report.sequence,
                requests: v.requests,
                errors: v.errors,
                timeouts: v.timeouts,
            };
            let before = t.last.insert((report.node.clone(), v.version), now);
            if !t.primed {
                continue;
            }
            match before {
                Some(before) if before.boot == now.boot => {
                    if before.sequence < now.sequence {
                        side.add(
                            now.requests.saturating_sub(before.requests),
                            now.errors.saturating_sub(before.errors),
                            now.timeouts.saturating_sub(before.timeouts),
                            &v.recent_latencies_us,
                        );
                    }
                }
                _ => side.add(
                    now.requests,
                    now.errors,
                    now.timeouts,
                    &v.recent_latencies_us,
                ),
            }
        }
    }
    t.primed = true;
}

/// The judge's evidence, for the audit trail.
fn describe(j: &Judgment, w: &Window) -> String {
    let mut text = format!("judge: {:?}", j.verdict).to_lowercase();
    text.push_str(&format!(
        "; canary {} requests, {} errors; baseline {} requests, {} errors",
        w.canary.requests, w.canary.errors, w.baseline.requests, w.baseline.errors
    ));
    if let Some(l) = &j.latency {
        text.push_str(&format!(
            "; latency median canary {:.0} us vs baseline {:.0} us (Mann-Whitney U {:.1}, p {:.3e})",
            l.canary_median, l.baseline_median, l.u, l.p_value
        ));
    }
    if let Some(e) = &j.errors {
        text.push_str(&format!(
            "; error rate canary {:.4} vs baseline {:.4} (z {:.2}, p {:.3e})",
            e.canary_rate, e.baseline_rate, e.z, e.p_value
        ));
    }
    text
}
