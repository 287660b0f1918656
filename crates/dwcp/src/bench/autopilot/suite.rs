//! `dwcp bench autopilot`: the chaos suite (`crate::chaos`) on a scratch
//! cluster of three `dwcp up` processes, every experiment run with several
//! seeds, first with the autopilot active and then — when the build has
//! the kill switch (`PUT /autopilot/controls {"paused": true}`) — paused,
//! the baseline, in the same run on the same cluster. Its figures
//! (issue 20): autonomy, MTTR, guardrail breaches, harmful actions, false
//! actions on healthy runs, approvals asked per critical fault, and the
//! availability of the steady client load.

use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::json;

use crate::bench::progress;
use crate::bench::report::{Report, Series, histogram, record};
use crate::chaos::catalog::{self, Experiment, Fault};
use crate::chaos::engine::{self, Resolution, Run, Timing};
use crate::chaos::live::{Live, UP_ARGS};
use crate::chaos::verdict::Objective;

/// The experiments of `--quick`: the control and three kinds of fault.
const QUICK: [&str; 4] = [
    "steady-state",
    "kill-follower",
    "stop-leader",
    "bad-version",
];

/// The figures of one pass (autopilot active, or paused).
struct Pass {
    runs: Vec<Run>,
}

impl Pass {
    fn faults(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.experiment != "steady-state")
    }

    /// Fault runs whose objective came back with nobody's repair (or never
    /// broke), over all fault runs.
    fn autonomy(&self) -> (f64, u64) {
        let n = self.faults().count() as u64;
        let resolved = self
            .faults()
            .filter(|r| matches!(r.resolution, Resolution::Autonomous | Resolution::NoImpact))
            .count();
        (
            if n == 0 {
                0.0
            } else {
                resolved as f64 / n as f64
            },
            n,
        )
    }

    fn mttr(&self) -> Result<Histogram<u64>> {
        let mut h = histogram();
        for r in self.faults() {
            if let Some(ms) = r.mttr_ms {
                record(&mut h, Duration::from_millis(ms));
            }
        }
        Ok(h)
    }

    fn availability(&self) -> (f64, u64) {
        let total: u64 = self.runs.iter().map(|r| r.requests).sum();
        let failed: u64 = self.runs.iter().map(|r| r.failed).sum();
        (
            if total == 0 {
                0.0
            } else {
                1.0 - failed as f64 / total as f64
            },
            total,
        )
    }

    fn count(&self, resolution: Resolution) -> usize {
        self.faults().filter(|r| r.resolution == resolution).count()
    }

    fn acted(&self, healthy: bool) -> Option<u64> {
        let mut any = false;
        let mut acted = 0;
        for r in self
            .runs
            .iter()
            .filter(|r| (r.experiment == "steady-state") == healthy)
        {
            if let Some(d) = r.autopilot.and_then(|a| a.decisions) {
                any = true;
                acted += d.acted;
            }
        }
        any.then_some(acted)
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
    let (active, paused, kill_switch) = super::super::on_runtime(async {
        let mut live = Live::scratch(1, &say).await?;
        let kill_switch = live.set_paused(false).await.is_ok();
        let active = pass(&mut live, &experiments, seeds, &timing, "active").await?;
        let paused = if kill_switch {
            live.set_paused(true).await?;
            let p = pass(&mut live, &experiments, seeds, &timing, "paused").await?;
            live.set_paused(false).await?;
            Some(p)
        } else {
            say(
                "no kill switch in this build (PUT /api/v1/autopilot/controls): the paused baseline is not run",
            );
            None
        };
        live.finish();
        Ok((active, paused, kill_switch))
    })?;

    let mut report = Report::new(
        "autopilot",
        json!({
            "cluster": "three `dwcp up` processes on 127.0.0.61-63, one region",
            "up_args": UP_ARGS,
            "experiments": experiments.iter().map(|e| e.name).collect::<Vec<_>>(),
            "seeds": seeds,
            "objective": Objective::DEFAULT,
            "timing": timing,
            "load": "4 clients, one POST every 25 ms each, routed by GET /api/v1/nodes health (every 250 ms), 2 s deadline",
            "kill_switch": kill_switch,
            "fault_injection_build": cluster::FAULT_INJECTION,
        }),
    );
    let (autonomy, faults) = active.autonomy();
    report.series.push(Series::value(
        "autonomy",
        "value",
        round4(autonomy),
        faults,
        None,
    ));
    if let Some(p) = &paused {
        let (a, n) = p.autonomy();
        report.series.push(Series::value(
            "autonomy-paused",
            "value",
            round4(a),
            n,
            None,
        ));
    }
    let mttr = active.mttr()?;
    let paused_mttr = paused.as_ref().map(Pass::mttr).transpose()?;
    if let Some(h) = &paused_mttr {
        report.series.push(Series::latency("mttr-paused", h, None));
    }
    report.series.push(Series::latency(
        "mttr",
        &mttr,
        paused_mttr.as_ref().map(|_| "mttr-paused"),
    ));
    let (availability, requests) = active.availability();
    if let Some(p) = &paused {
        let (a, n) = p.availability();
        report.series.push(Series::value(
            "availability-paused",
            "value",
            round6(a),
            n,
            None,
        ));
    }
    report.series.push(Series::value(
        "availability",
        "value",
        round6(availability),
        requests,
        paused.as_ref().map(|_| "availability-paused"),
    ));
    // Actions: only a build with the act loop records decisions.
    let acted_faults = active.acted(false);
    let acted_healthy = active.acted(true);
    let healthy_runs = active
        .runs
        .iter()
        .filter(|r| r.experiment == "steady-state")
        .count() as u64;
    let breaches = paused.as_ref().and_then(|p| {
        let a = p.acted(false)?;
        let h = p.acted(true)?;
        Some(a + h)
    });
    if let Some(b) = breaches {
        report.series.push(
            Series::value("guardrail-breaches", "count", b as f64, faults, None).fewer_is_better(),
        );
    }
    if let Some(h) = acted_healthy {
        report.series.push(
            Series::value("false-actions", "count", h as f64, healthy_runs, None).fewer_is_better(),
        );
    }
    let harmful = paused.as_ref().and_then(|p| harmful_actions(&active, p));
    if let Some(h) = harmful {
        report.series.push(
            Series::value("harmful-actions", "count", h as f64, faults, None).fewer_is_better(),
        );
    }
    let critical: Vec<&Run> = active
        .faults()
        .filter(|r| {
            experiments
                .iter()
                .any(|e| e.name == r.experiment && e.critical)
        })
        .collect();
    let asked: Option<u64> = critical
        .iter()
        .map(|r| {
            r.autopilot
                .and_then(|a| a.decisions)
                .map(|d| d.approvals_asked)
        })
        .sum();
    if let Some(asked) = asked.filter(|_| !critical.is_empty()) {
        report.series.push(Series::value(
            "approvals-asked-per-critical-fault",
            "value",
            asked as f64 / critical.len() as f64,
            critical.len() as u64,
            None,
        ));
    }
    let detections: u64 = active
        .faults()
        .filter_map(|r| r.autopilot)
        .map(|a| a.detections)
        .sum();
    report.series.push(Series::value(
        "detections-per-fault",
        "value",
        round4(detections as f64 / faults.max(1) as f64),
        faults,
        None,
    ));
    let predictions: u64 = active
        .faults()
        .filter_map(|r| r.autopilot)
        .map(|a| a.predictions)
        .sum();
    report.series.push(Series::value(
        "predictions-per-fault",
        "value",
        round4(predictions as f64 / faults.max(1) as f64),
        faults,
        None,
    ));
    let false_detections: u64 = active
        .runs
        .iter()
        .filter(|r| r.experiment == "steady-state")
        .filter_map(|r| r.autopilot)
        .map(|a| a.detections)
        .sum();
    report.series.push(
        Series::value(
            "false-detections",
            "count",
            false_detections as f64,
            healthy_runs,
            None,
        )
        .fewer_is_better(),
    );
    let mut report = report.finish();
    report
        .notes
        .extend(notes(&active, paused.as_ref(), acted_faults, &experiments));
    Ok(report)
}

/// Runs every experiment `seeds` times.
async fn pass(
    live: &mut Live,
    experiments: &[Experiment],
    seeds: u32,
    timing: &Timing,
    what: &str,
) -> Result<Pass> {
    let mut runs = Vec::new();
    let say = |s: &str| progress("autopilot", &format!("{what}: {s}"));
    for e in experiments {
        for seed in 1..=u64::from(seeds) {
            live.reseed(seed);
            runs.push(
                engine::run_or_record(live, e, seed, &Objective::DEFAULT, timing, &say).await,
            );
        }
    }
    Ok(Pass { runs })
}

/// Fault runs in which the autopilot acted and the load lost more than in
/// the same experiment and seed with it paused (by more than 1 % of the
/// requests): an action that made the objective worse.
fn harmful_actions(active: &Pass, paused: &Pass) -> Option<u64> {
    let mut harmful = 0;
    for r in active.faults() {
        let acted = r.autopilot?.decisions?.acted;
        if acted == 0 {
            continue;
        }
        let Some(p) = paused
            .runs
            .iter()
            .find(|p| p.experiment == r.experiment && p.seed == r.seed)
        else {
            continue;
        };
        let share = |x: &Run| x.failed as f64 / x.requests.max(1) as f64;
        if share(r) > share(p) + 0.01 {
            harmful += 1;
        }
    }
    Some(harmful)
}

fn notes(
    active: &Pass,
    paused: Option<&Pass>,
    acted: Option<u64>,
    experiments: &[Experiment],
) -> Vec<String> {
    let mut notes = vec![
        format!(
            "fault runs: {} resolved with no repair (autonomous {}, no impact {}), {} back only after the fault was taken back, {} not back within the settle time, {} stopped by their stop condition",
            active.count(Resolution::Autonomous) + active.count(Resolution::NoImpact),
            active.count(Resolution::Autonomous),
            active.count(Resolution::NoImpact),
            active.count(Resolution::AfterRestore),
            active.count(Resolution::NotRecovered),
            active.count(Resolution::Aborted),
        ),
        "autonomy: fault runs whose objective (99 % success, p99 <= 1 s per 1 s window, 3 windows in a row) came back while the fault was still in force, or never broke, over all fault runs; mttr: injection to the objective back (0 when it never broke; a run not back has none)".into(),
    ];
    let errors: Vec<String> = active
        .faults()
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
        let runs: Vec<String> = active
            .runs
            .iter()
            .filter(|r| r.experiment == e.name)
            .map(|r| {
                let mttr = r
                    .mttr_ms
                    .map_or("-".into(), |m| format!("{:.1} s", m as f64 / 1000.0));
                format!("seed {} {:?} ({mttr})", r.seed, r.resolution)
            })
            .collect();
        notes.push(format!("{}: {}", e.name, runs.join(", ")));
    }
    match acted {
        None => notes.push(
            "this build has no act loop (no GET /api/v1/autopilot/decisions): the autopilot only detects (part 1), so what recovered did so through the scheduler, the rollout controller, Raft elections and the clients' health-view routing; guardrail-breaches, harmful-actions, false-actions and approvals-asked are not reported, since no action was taken to count".into(),
        ),
        Some(n) => notes.push(format!("the autopilot acted {n} times over the fault runs")),
    }
    if paused.is_none() {
        notes.push(
            "no paused baseline: this build has no kill switch (PUT /api/v1/autopilot/controls)"
                .into(),
        );
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
