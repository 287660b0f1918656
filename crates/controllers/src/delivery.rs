//! The rollout controller, as `dwcp up` runs it on every node: only the
//! node that leads the cluster acts. Each round it reads the running
//! rollouts and the nodes' reports from the store, adds what the canary and
//! its baseline served since the last round to the rollout's analysis
//! window, asks [`rollout::advance`] what to do, and writes the rollout's
//! new progress and audit records as one command. The gateways derive
//! their weights from the rollout, so that write is the weight change;
//! the decisions are pure, this loop only does I/O.
//!
//! The window lives in the leader's memory: a new leader starts with an
//! empty one, so its first measurement may be inconclusive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cluster::ClusterNode;
use rollout::{Input, Judgment, Thresholds, Window};
use state::{Command, Name, Rollout, State};

/// How often the controller looks again when the state does not change
/// (pauses and analyses move with time alone).
const ROUND: Duration = Duration::from_millis(100);

/// A rollout's analysis window and what it has read of the reports.
struct Tracked {
    id: u64,
    window: Window,
    /// Per (node, version): the node's boot and the counters of its last
    /// report read, to take differences.
    last: HashMap<(Name, u64), Counters>,
    /// Whether the first round has noted where counting starts.
    primed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Counters {
    boot: u64,
    sequence: u64,
    requests: u64,
    errors: u64,
    timeouts: u64,
}

/// Runs until the task is aborted.
pub async fn run(node: Arc<ClusterNode>) {
    let mut tracked: HashMap<(Name, Name), Tracked> = HashMap::new();
    loop {
        let status = node.replica().status();
        let revision = if status.leader != Some(status.id) {
            tracked.clear();
            node.replica().read_local().revision()
        } else {
            let (revision, commands) = {
                let state = node.replica().read_local();
                let now = unix_now_ms();
                let active: Vec<&Rollout> = state.active_rollouts().collect();
                tracked.retain(|(t, a), k| {
                    active
                        .iter()
                        .any(|r| &r.tenant == t && &r.app == a && r.id == k.id)
                });
                let commands: Vec<Command> = active
                    .into_iter()
                    .filter_map(|r| {
                        let t = tracked
                            .entry((r.tenant.clone(), r.app.clone()))
                            .or_insert_with(|| Tracked {
                                id: r.id,
                                window: Window::default(),
                                last: HashMap::new(),
                                primed: false,
                            });
                        step(&state, r, t, now)
                    })
                    .collect();
                (state.revision(), commands)
            };
            for command in commands {
                let what = match &command {
                    Command::AdvanceRollout {
                        tenant,
                        app,
                        id,
                        records,
                        ..
                    } => {
                        for r in records {
                            eprintln!("dwcp rollouts: {tenant}/{app} rollout {id}: {r}");
                        }
                        format!("{tenant}/{app}")
                    }
                    _ => String::new(),
                };
                match node.write(command).await {
                    Ok(response) => {
                        if let Err(r) = response.result {
                            // Most often an operator's abort or promotion
                            // came first: the next round reads it.
                            eprintln!("dwcp rollouts: {what}: step not stored: {r}");
                        }
                    }
                    Err(e) => eprintln!("dwcp rollouts: {what}: writing a step: {e}"),
                }
            }
            revision
        };
        let _ = node.replica().watch(revision, ROUND).await;
    }
}

/// One rollout's round: reads new reports into its window, advances it,
/// and returns the command to store when anything changed.
fn step(state: &State, r: &Rollout, t: &mut Tracked, now_ms: u64) -> Option<Command> {
    absorb(state, r, t);
    let thresholds = Thresholds::default();
    let (metrics, judgment) = rollout::measure(&t.window, &thresholds);
    let input = Input {
        now_ms,
        promote: r.promote,
        abort: false,
        metrics,
    };
    let (progress, actions) = rollout::advance(&r.plan, &r.progress, &input);
    let mut records: Vec<String> = actions
        .into_iter()
        .filter_map(|a| match a {
            rollout::Action::Record(text) => Some(text),
            rollout::Action::SetWeight(_) => None,
        })
        .collect();
    let same_step = progress.step == r.progress.step && progress.wave == r.progress.wave;
    let measured = !same_step || progress.analysis.measurements != r.progress.analysis.measurements;
    // An inconclusive measurement (too little traffic, most often) keeps
    // its window: the next one judges the two together.
    let inconclusive =
        same_step && progress.analysis.inconclusive > r.progress.analysis.inconclusive;
    // The judge's evidence goes right after the measurement it was part
    // of (before an abort it caused).
    if let Some(j) = &judgment
        && let Some(at) = records.iter().position(|r| r.contains(": measurement "))
    {
        records.insert(at + 1, describe(j, &t.window));
    }
    if measured && !inconclusive {
        // A measurement uses its window up; a new step starts a fresh one.
        t.window = Window::default();
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

/// Milliseconds since the Unix epoch on this machine's clock: rollouts'
/// times (steps, the trail) are wall-clock times, readable by people.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
