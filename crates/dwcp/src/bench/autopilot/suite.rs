//! `dwcp bench autopilot`: the chaos suite (`crate::chaos`) on a scratch
//! cluster of three `dwcp up` processes, every experiment run with several
//! seeds, first with the autopilot active (destructive actions enabled,
//! as `dwcp autopilot enable destructive` does) and then paused through
//! its kill switch (`PUT /autopilot/controls {"paused": true}`), the
//! baseline, in the same run on the same cluster. Its figures (issue 20):
//! autonomy, MTTR, guardrail breaches (re-checked by the bench over the
//! actions applied, `chaos::acts::breaches`), harmful actions, false
//! actions on healthy runs, approvals asked per critical fault, and the
//! availability of the steady client load.

use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::json;

use crate::bench::progress;
use crate::bench::report::{Report, Series, histogram, record};
use crate::chaos::acts::{self, Applied, Breach};
use crate::chaos::catalog::{self, Experiment, Fault};
use crate::chaos::engine::{self, Autopilot, Resolution, Run, Timing};
use crate::chaos::live::{Live, UP_ARGS};
use crate::chaos::verdict::Objective;

/// The experiments of `--quick`: the control and three kinds of fault.
const QUICK: [&str; 4] = [
    "steady-state",
    "kill-follower",
    "stop-leader",
    "bad-version",
];
/// The scratch cluster's nodes.
const NODES: usize = 3;

/// The figures of one pass (autopilot active, or paused).
#[derive(Default)]
struct Pass {
    runs: Vec<Run>,
    /// The actions the autopilot applied during the pass.
    applied: Vec<Applied>,
    /// Nodes the autopilot had drained at the end of each run.
    drained: Vec<usize>,
    /// Between runs: actions taken back, approvals rejected, and what
    /// could not be tidied.
    undone: usize,
    rejected: usize,
    tidy_failures: Vec<String>,
}

impl Pass {
    fn faults(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.experiment != "steady-state")
    }

    fn healthy(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.experiment == "steady-state")
    }

    /// Fault runs whose fault was injected: a run that ended before (the
    /// steady state did not hold) judged no fault.
    fn injected(&self) -> impl Iterator<Item = &Run> {
        self.faults().filter(|r| r.injected)
    }

    /// Injected faults whose objective came back with nobody's repair (or
    /// never broke), over all injected faults (runs that could not finish
    /// after the injection count as not resolved).
    fn autonomy(&self) -> (f64, u64) {
        let n = self.injected().count() as u64;
        let resolved = self
            .injected()
            .filter(|r| matches!(r.resolution, Resolution::Autonomous | Resolution::NoImpact))
            .count();
        (share(resolved as u64, n), n)
    }

    /// Injection to recovery over the faults that broke the objective and
    /// came back: a fault with no impact has nothing to recover from (its
    /// 0 would only pull the percentiles down).
    fn mttr(&self) -> Histogram<u64> {
        let mut h = histogram();
        for ms in self
            .faults()
            .filter(|r| r.resolution != Resolution::NoImpact)
            .filter_map(|r| r.mttr_ms)
        {
            record(&mut h, Duration::from_millis(ms));
        }
        h
    }

    fn availability(&self) -> (f64, u64) {
        let total: u64 = self.runs.iter().map(|r| r.requests).sum();
        let failed: u64 = self.runs.iter().map(|r| r.failed).sum();
        (1.0 - share(failed, total), total)
    }

    fn count(&self, resolution: Resolution) -> usize {
        self.faults().filter(|r| r.resolution == resolution).count()
    }

    /// A counter of the autopilot's summed over `runs` (runs whose
    /// counters could not be read count nothing).
    fn sum<'a>(runs: impl Iterator<Item = &'a Run>, counter: impl Fn(&Autopilot) -> u64) -> u64 {
        runs.filter_map(|r| r.autopilot.as_ref()).map(counter).sum()
    }
}

fn acted(a: &Autopilot) -> u64 {
    a.decisions.map_or(0, |d| d.acted)
}

fn asked(a: &Autopilot) -> u64 {
    a.decisions.map_or(0, |d| d.approvals_asked)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub fn run(quick: bool, seeds: u32, hold: Option<Duration>) -> Result<Report> {
    let names: Vec<String> = if quick {
        QUICK.iter().map(|s| s.to_string()).collect()
    } else {
        vec!["all".into()]
    };
    let experiments = catalog::select(&names).map_err(anyhow::Error::msg)?;
    let seeds = seeds.max(1);
    let hold = hold.unwrap_or(Duration::from_secs(if quick { 10 } else { 20 }));
    let timing = Timing::new(hold);
    let say = |what: &str| progress("autopilot", what);
    let (active, paused) = super::super::on_runtime(async {
        let mut live = Live::scratch(1, &say).await?;
        if !live
            .set_controls(Some(false), Some(true))
            .await?
            .destructive_enabled
        {
            anyhow::bail!("PUT /api/v1/autopilot/controls left destructive actions disabled");
        }
        say(
            "destructive actions enabled on the scratch cluster (as `dwcp autopilot enable destructive`): drains, rollbacks and scale-ins are applied, not only proposed",
        );
        let mut active = pass(&mut live, &experiments, seeds, &timing, "active").await?;
        // The last runs' drains and throttles back before the kill switch,
        // which would refuse their undos.
        let (undone, failures) = live.settle_undos(Duration::from_secs(75)).await;
        active.undone += undone;
        active.tidy_failures.extend(failures);
        live.set_controls(Some(true), None).await?;
        let paused = pass(&mut live, &experiments, seeds, &timing, "paused").await?;
        live.set_controls(Some(false), None).await?;
        live.finish();
        Ok((active, paused))
    })?;

    let mut report = Report::new(
        "autopilot",
        json!({
            "cluster": "three `dwcp up` processes on 127.0.0.61-63, one region",
            "up_args": UP_ARGS,
            "experiments": experiments.iter().map(|e| e.name).collect::<Vec<_>>(),
            "seeds": seeds,
            "order": "seed by seed, every experiment in each: the same fault comes back after the others, past the default rules' 300 s cool-down",
            "objective": Objective::DEFAULT,
            "timing": timing,
            "load": "4 clients, one POST every 25 ms each, routed by GET /api/v1/nodes health (every 250 ms), 2 s deadline",
            "destructive_enabled": true,
            "baseline": "the same experiments and seeds with the autopilot paused (PUT /api/v1/autopilot/controls {\"paused\": true})",
            "fault_injection_build": cluster::FAULT_INJECTION,
        }),
    );
    let side_by_side = |report: &mut Report, name: &str, active: (f64, u64), paused: (f64, u64)| {
        let baseline = format!("{name}-paused");
        report.series.push(Series::value(
            &baseline,
            "value",
            round6(paused.0),
            paused.1,
            None,
        ));
        report.series.push(Series::value(
            name,
            "value",
            round6(active.0),
            active.1,
            Some(&baseline),
        ));
    };
    side_by_side(
        &mut report,
        "autonomy",
        active.autonomy(),
        paused.autonomy(),
    );
    report
        .series
        .push(Series::latency("mttr-paused", &paused.mttr(), None));
    report
        .series
        .push(Series::latency("mttr", &active.mttr(), Some("mttr-paused")));
    side_by_side(
        &mut report,
        "availability",
        active.availability(),
        paused.availability(),
    );

    let mut applied = active.applied.clone();
    applied.extend(paused.applied.iter().cloned());
    let mut drained = active.drained.clone();
    drained.extend(&paused.drained);
    let breaches = acts::breaches(&applied, &drained, NODES);
    let faults = active.faults().count() as u64;
    let healthy = active.healthy().count() as u64;
    let critical = |r: &&Run| {
        experiments
            .iter()
            .any(|e| e.name == r.experiment && e.critical)
    };
    let critical_runs = active.faults().filter(critical).count() as u64;
    let harm = harmful_actions(&active, &paused);
    let counts = [
        (
            "guardrail-breaches",
            breaches.len() as u64,
            applied.len() as u64,
        ),
        ("harmful-actions", harm.harmful, harm.compared),
        ("false-actions", Pass::sum(active.healthy(), acted), healthy),
        (
            "approvals-asked-outside-critical-faults",
            Pass::sum(active.runs.iter().filter(|r| !critical(r)), asked),
            faults + healthy - critical_runs,
        ),
        (
            "false-detections",
            Pass::sum(active.healthy(), |a| a.detections),
            healthy,
        ),
    ];
    for (name, count, n) in counts {
        report
            .series
            .push(Series::value(name, "count", count as f64, n, None).fewer_is_better());
    }
    let per_fault = [
        (
            "approvals-asked-per-critical-fault",
            Pass::sum(active.faults().filter(critical), asked),
            critical_runs,
        ),
        (
            "actions-per-fault",
            Pass::sum(active.faults(), acted),
            faults,
        ),
        (
            "detections-per-fault",
            Pass::sum(active.faults(), |a| a.detections),
            faults,
        ),
        (
            "predictions-per-fault",
            Pass::sum(active.faults(), |a| a.predictions),
            faults,
        ),
    ];
    for (name, sum, n) in per_fault.into_iter().filter(|(_, _, n)| *n > 0) {
        report
            .series
            .push(Series::value(name, "value", round4(share(sum, n)), n, None));
    }
    let mut report = report.finish();
    report.notes.extend(notes(
        &active,
        &paused,
        &breaches,
        &harm,
        &experiments,
        hold,
    ));
    Ok(report)
}

/// Runs every experiment once per seed, seed by seed, tidying after each
/// run (`Live::tidy`).
async fn pass(
    live: &mut Live,
    experiments: &[Experiment],
    seeds: u32,
    timing: &Timing,
    what: &str,
) -> Result<Pass> {
    let mut pass = Pass::default();
    let say = |s: &str| progress("autopilot", &format!("{what}: {s}"));
    for seed in 1..=u64::from(seeds) {
        for e in experiments {
            live.reseed(seed);
            pass.runs.push(
                engine::run_or_record(live, e, seed, &Objective::DEFAULT, timing, &say).await,
            );
            match live.tidy().await {
                Ok(t) => {
                    pass.drained.push(t.drained);
                    pass.undone += t.undone;
                    pass.rejected += t.rejected;
                    pass.tidy_failures
                        .extend(t.failures.into_iter().map(|f| format!("{}: {f}", e.name)));
                }
                Err(err) => pass.tidy_failures.push(format!("{}: {err:#}", e.name)),
            }
        }
    }
    pass.applied = live.take_applied();
    Ok(pass)
}

/// How the runs in which the autopilot acted compare with the same
/// experiment and seed paused.
#[derive(Debug, Default, PartialEq, Eq)]
struct Harm {
    /// The load lost more than paused (by more than 1 % of the requests):
    /// an action that made the objective worse.
    harmful: u64,
    /// Pairs compared.
    compared: u64,
    /// Pairs with no paused run to compare with: it could not finish
    /// (it measured no load), or is missing.
    unpaired: u64,
}

fn harmful_actions(active: &Pass, paused: &Pass) -> Harm {
    let share_failed = |x: &Run| share(x.failed, x.requests);
    let mut harm = Harm::default();
    for r in active
        .faults()
        .filter(|r| r.autopilot.as_ref().is_some_and(|a| acted(a) > 0))
    {
        let baseline = paused
            .runs
            .iter()
            .find(|p| p.experiment == r.experiment && p.seed == r.seed)
            .filter(|p| p.resolution != Resolution::Error && p.requests > 0);
        match baseline {
            None => harm.unpaired += 1,
            Some(p) => {
                harm.compared += 1;
                if share_failed(r) > share_failed(p) + 0.01 {
                    harm.harmful += 1;
                }
            }
        }
    }
    harm
}

fn notes(
    active: &Pass,
    paused: &Pass,
    breaches: &[Breach],
    harm: &Harm,
    experiments: &[Experiment],
    hold: Duration,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (what, p) in [("active", active), ("paused", paused)] {
        notes.push(format!(
            "{what}: fault runs: {} resolved with no repair (autonomous {}, no impact {}), {} back only after the fault was taken back, {} not back within the settle time, {} stopped by their stop condition, {} could not finish",
            p.count(Resolution::Autonomous) + p.count(Resolution::NoImpact),
            p.count(Resolution::Autonomous),
            p.count(Resolution::NoImpact),
            p.count(Resolution::AfterRestore),
            p.count(Resolution::NotRecovered),
            p.count(Resolution::Aborted),
            p.count(Resolution::Error),
        ));
    }
    notes.push("autonomy: injected faults whose objective (99 % success, p99 <= 1 s per 1 s window, 3 windows in a row) came back while the fault was still in force, or never broke, over all injected faults (a run that could not finish after its injection counts as not resolved); mttr: injection to the objective back, over the faults that broke it and came back (no-impact runs and runs not back have none)".into());
    for (what, p) in [("active", active), ("paused", paused)] {
        let not_injected: Vec<String> = p
            .faults()
            .filter(|r| !r.injected)
            .map(|r| format!("{} seed {}", r.experiment, r.seed))
            .collect();
        if !not_injected.is_empty() {
            notes.push(format!(
                "{what}: {} fault runs ended before their injection (the steady state did not hold) and are left out of autonomy: {}",
                not_injected.len(),
                not_injected.join(", ")
            ));
        }
    }
    notes.push(format!(
        "harmful-actions: over the {} fault runs in which the autopilot acted and whose paused run finished ({} more had no paused run to compare with: it could not finish, so they are left out, not counted harmful)",
        harm.compared, harm.unpaired
    ));
    notes.push(format!(
        "the autopilot applied {} actions over the active pass ({} while paused); between runs the bench took back {} of its cordons, drains, scales and throttles and rejected {} approvals left waiting, as the operator closing the incident would",
        active.applied.len(),
        paused.applied.len(),
        active.undone + paused.undone,
        active.rejected + paused.rejected,
    ));
    let actions: Vec<String> = active
        .applied
        .iter()
        .filter_map(|a| {
            let d = &a.decision;
            d.outcome
                .action()
                .map(|x| format!("{} ({}): {x}", d.id, d.evidence.trouble.class))
        })
        .collect();
    if !actions.is_empty() {
        notes.push(format!("actions applied: {}", actions.join("; ")));
    }
    notes.push("guardrail-breaches: re-checked by the bench over the actions applied, with issue 20's limits (nothing applied while paused; <= 100 sandbox terminations per node a minute; <= 3 failovers an hour; no second action on a target within its rule's cool-down; never more than half the nodes drained, sampled at the end of each run); the cost growth of scaling is not re-checked".into());
    for b in breaches {
        notes.push(format!(
            "breach of {} (decision {}): {}",
            b.guardrail, b.decision, b.detail
        ));
    }
    notes.push(format!(
        "false-actions and false-detections: over {} steady-state runs of {} s each ({:.3} cluster-days)",
        active.healthy().count(),
        hold.as_secs(),
        active.healthy().count() as f64 * hold.as_secs_f64() / 86_400.0
    ));
    for f in active.tidy_failures.iter().chain(&paused.tidy_failures) {
        notes.push(format!("not tidied: {f}"));
    }
    let errors: Vec<String> = active
        .faults()
        .chain(paused.faults())
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.experiment)))
        .collect();
    if !errors.is_empty() {
        notes.push(format!(
            "{} fault runs could not finish (counted as not resolved): {}",
            errors.len(),
            errors.join("; ")
        ));
    }
    for e in experiments {
        let line = |p: &Pass| -> String {
            p.runs
                .iter()
                .filter(|r| r.experiment == e.name)
                .map(|r| {
                    let mttr = r
                        .mttr_ms
                        .map_or("-".into(), |m| format!("{:.1} s", m as f64 / 1000.0));
                    let acted = r.autopilot.as_ref().map_or(0, acted);
                    format!("seed {} {:?} ({mttr}, acted {acted})", r.seed, r.resolution)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        notes.push(format!(
            "{}: active {}; paused {}",
            e.name,
            line(active),
            line(paused)
        ));
    }
    let unsupported: Vec<&str> = catalog::all()
        .into_iter()
        .filter(|e| !e.supported() && e.fault != Fault::None)
        .map(|e| e.name)
        .collect();
    notes.push(format!(
        "not run here (dwcp chaos list says why): {}",
        unsupported.join(", ")
    ));
    notes
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::engine::Decisions;

    fn run(experiment: &str, seed: u64, resolution: Resolution, failed: u64) -> Run {
        Run {
            experiment: experiment.into(),
            seed,
            resolution,
            mttr_ms: match resolution {
                Resolution::NoImpact => Some(0),
                Resolution::Autonomous | Resolution::AfterRestore => Some(4_000),
                _ => None,
            },
            first_bad_ms: None,
            stopped: None,
            targets: Vec::new(),
            requests: if resolution == Resolution::Error {
                0
            } else {
                1_000
            },
            failed,
            autopilot: None,
            error: (resolution == Resolution::Error).then(|| "stalled".into()),
            injected: true,
        }
    }

    fn acting(mut r: Run) -> Run {
        r.autopilot = Some(Autopilot {
            decisions: Some(Decisions {
                acted: 1,
                ..Decisions::default()
            }),
            ..Autopilot::default()
        });
        r
    }

    fn pass(runs: Vec<Run>) -> Pass {
        Pass {
            runs,
            ..Pass::default()
        }
    }

    #[test]
    fn a_paused_run_that_could_not_finish_is_no_baseline() {
        let active = pass(vec![
            acting(run("kill-leader", 1, Resolution::Autonomous, 50)),
            acting(run("kill-leader", 2, Resolution::Autonomous, 50)),
            acting(run("bad-version", 1, Resolution::Autonomous, 50)),
        ]);
        let paused = pass(vec![
            // Unfinished: no load measured, so no comparison.
            run("kill-leader", 1, Resolution::Error, 0),
            // Lost less than the active run: the action made it worse.
            run("kill-leader", 2, Resolution::AfterRestore, 10),
            // Lost more.
            run("bad-version", 1, Resolution::AfterRestore, 400),
        ]);
        assert_eq!(
            harmful_actions(&active, &paused),
            Harm {
                harmful: 1,
                compared: 2,
                unpaired: 1
            }
        );
    }

    #[test]
    fn autonomy_counts_injected_faults_and_mttr_the_ones_that_broke() {
        let mut not_injected = run("stop-leader", 1, Resolution::Error, 0);
        not_injected.injected = false;
        let p = pass(vec![
            run("steady-state", 1, Resolution::NoImpact, 0),
            run("kill-leader", 1, Resolution::NoImpact, 0),
            run("kill-follower", 1, Resolution::Autonomous, 5),
            run("bad-version", 1, Resolution::AfterRestore, 300),
            run("packet-loss", 1, Resolution::Error, 0),
            not_injected,
        ]);
        // Two resolved of four injected faults: the steady state is no
        // fault, and the run that never injected judged none.
        assert_eq!(p.autonomy(), (0.5, 4));
        // The no-impact run's 0 is no recovery.
        let mttr = p.mttr();
        assert_eq!(mttr.len(), 2);
        // Picoseconds: both are the 4 s recoveries.
        assert!(mttr.min() >= 3_900_000_000_000, "{}", mttr.min());
    }
}
