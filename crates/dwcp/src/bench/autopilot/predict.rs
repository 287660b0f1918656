//! `dwcp bench predict`, simulated: the autopilot's failure predictor
//! (`autopilot::predict::Predictor`, the code the leader runs each
//! round) on seeded signals of a three-node cluster in virtual time, with
//! one gradual fault injected per run — slots filling, memory leaking, a
//! disk filling, a version's errors or latency creeping up, a node that
//! slows then dies, load rising past an app's concurrency limit — and as
//! many healthy runs. Every run is one seed; the fault's start, speed and
//! place, and the noise, come from it.
//!
//! Scored as the issue asks: a fault run is a hit when the right
//! prediction (its kind, its subject) opens before the failure (the
//! signal reaching its limit, or the node dying); precision counts every
//! other prediction opened, in fault and healthy runs, as false; false
//! alarms per node-day are the predictions opened in healthy runs; lead
//! time is the failure's time minus the prediction's. The baseline, run
//! on the same signals: a static alert at 90 % of each limit (what an
//! operator would set without a predictor), scored the same way.
//!
//! The signals are the sampler's shapes (points every 10 s, each with its
//! limit), not a cluster's reports: this is the lab variant
//! (`sim-…` series). The real-process tests are `tests/autopilot.rs`.

use std::collections::BTreeMap;

use anyhow::Result;
use autopilot::findings::{FailureKind, PredictionStatus};
use autopilot::predict::{PredictConfig, Predictor};
use autopilot::signal::{Metric, Sample, SeriesKey, Signals, SignalsConfig, Subject};
use hdrhistogram::Histogram;
use rng::SplitMix64;
use serde_json::json;
use state::Name;

use crate::bench::report::{Report, Series};

/// The autopilot's round, as `dwcp up` runs it by default (the full run);
/// `--quick` samples every 30 s (a third of the points, a ninth of the
/// predictor's work per round).
const ROUND_MS: u64 = 10_000;
const QUICK_ROUND_MS: u64 = 30_000;
const NODES: usize = 3;
const SLOTS: f64 = 1_000.0;
const MEMORY_LIMIT: f64 = 8.0 * GIB;
const DISK_LIMIT: f64 = 100.0 * GIB;
const TIMEOUT_MS: f64 = 1_000.0;
/// The version's latency SLO threshold and the error rate at which its
/// availability SLO (99.9 %) pages: 14.4 times the budget.
const LATENCY_LIMIT_MS: f64 = 300.0;
const ERROR_LIMIT: f64 = 14.4 * 0.001;
const CONCURRENCY_LIMIT: f64 = 100.0;
const SILENT_AFTER_S: f64 = 30.0;
const GIB: f64 = 1_073_741_824.0;
const MIB: f64 = 1_048_576.0;
/// Virtual time before a fault starts (the predictor's window is 30 min).
const WARM_MS: u64 = 60 * 60_000;

/// The faults injected, one per run (`dwcp bench rca` injects the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fault {
    Slots,
    Memory,
    Disk,
    VersionErrors,
    VersionLatency,
    NodeSlowThenDies,
    LoadPastCapacity,
}

pub(super) const FAULTS: [Fault; 7] = [
    Fault::Slots,
    Fault::Memory,
    Fault::Disk,
    Fault::VersionErrors,
    Fault::VersionLatency,
    Fault::NodeSlowThenDies,
    Fault::LoadPastCapacity,
];

impl Fault {
    pub(super) fn name(self) -> &'static str {
        match self {
            Fault::Slots => "slot-exhaustion",
            Fault::Memory => "memory-growth",
            Fault::Disk => "disk-fill",
            Fault::VersionErrors => "version-errors",
            Fault::VersionLatency => "version-latency",
            Fault::NodeSlowThenDies => "node-slows-then-dies",
            Fault::LoadPastCapacity => "load-past-capacity",
        }
    }

    fn kind(self) -> FailureKind {
        match self {
            Fault::Slots => FailureKind::SlotExhaustion,
            Fault::Memory => FailureKind::MemoryExhaustion,
            Fault::Disk => FailureKind::DiskFull,
            Fault::VersionErrors => FailureKind::VersionErrors,
            Fault::VersionLatency => FailureKind::VersionLatency,
            Fault::NodeSlowThenDies => FailureKind::NodeSilent,
            Fault::LoadPastCapacity => FailureKind::LoadPastCapacity,
        }
    }
}

fn name(s: &str) -> Name {
    // The names below are constants that are valid DNS labels.
    Name::new("bench", s).expect("a valid name")
}

fn node(i: usize) -> Subject {
    Subject::Node {
        node: name(&format!("n{}", i + 1)),
    }
}

fn version() -> Subject {
    Subject::Version {
        tenant: name("acme"),
        app: name("shop"),
        version: 1,
    }
}

fn app() -> Subject {
    Subject::App {
        tenant: name("acme"),
        app: name("shop"),
    }
}

/// A gaussian draw (Box–Muller).
pub(super) fn normal(r: &mut SplitMix64) -> f64 {
    let (u, v) = (r.next_f64().max(1e-12), r.next_f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// One run's world: the healthy levels of every series and, for a fault
/// run, where the fault is, when it starts and how long it takes to fail.
struct World {
    rng: SplitMix64,
    fault: Option<Fault>,
    /// The faulty node (for node faults).
    at_node: usize,
    start_ms: u64,
    ramp_ms: u64,
    /// Each node's healthy levels, and the diurnal phase.
    sandboxes: [f64; NODES],
    memory: [f64; NODES],
    disk: [f64; NODES],
    phase: f64,
    /// When the faulty node died, once it has.
    died_ms: Option<u64>,
}

impl World {
    fn new(seed: u64, fault: Option<Fault>) -> World {
        let mut rng = SplitMix64::new(seed);
        let at_node = rng.below(NODES);
        // Gradual faults: 20 to 90 minutes from the start to the failure.
        let ramp_ms = (20 + rng.below_u64(71)) * 60_000;
        let start_ms = WARM_MS + rng.below_u64(30) * 60_000;
        let mut level = |lo: f64, hi: f64| lo + (hi - lo) * rng.next_f64();
        let sandboxes = [
            level(200.0, 450.0),
            level(200.0, 450.0),
            level(200.0, 450.0),
        ];
        let memory = [
            level(1.5, 3.5) * GIB,
            level(1.5, 3.5) * GIB,
            level(1.5, 3.5) * GIB,
        ];
        let disk = [
            level(20.0, 50.0) * GIB,
            level(20.0, 50.0) * GIB,
            level(20.0, 50.0) * GIB,
        ];
        let phase = level(0.0, std::f64::consts::TAU);
        World {
            rng,
            fault,
            at_node,
            start_ms,
            ramp_ms,
            sandboxes,
            memory,
            disk,
            phase,
            died_ms: None,
        }
    }

    /// How far the fault has gone at `t_ms`: 0 before it starts, 1 at the
    /// failure, more after.
    fn progress(&self, fault: Fault, t_ms: u64) -> f64 {
        if self.fault != Some(fault) || t_ms < self.start_ms {
            return 0.0;
        }
        (t_ms - self.start_ms) as f64 / self.ramp_ms as f64
    }

    /// The samples of the round at `t_ms`, as the sampler would give them.
    fn samples(&mut self, t_ms: u64) -> Vec<Sample> {
        let day = (t_ms as f64 / 86_400_000.0) * std::f64::consts::TAU + self.phase;
        let diurnal = 1.0 + 0.3 * day.sin();
        let mut out = Vec::new();
        let key = |subject: Subject, metric| SeriesKey { subject, metric };
        for i in 0..NODES {
            let faulty = i == self.at_node;
            let grow = |f: Fault, w: &World| if faulty { w.progress(f, t_ms) } else { 0.0 };
            // Node slows then dies: p99 climbs to its timeout, then it
            // stops reporting.
            let slow = grow(Fault::NodeSlowThenDies, self);
            if slow >= 1.0 && self.died_ms.is_none() && faulty {
                self.died_ms = Some(t_ms);
            }
            let dead = faulty && self.died_ms.is_some();
            if dead {
                let silent = (t_ms - self.died_ms.unwrap_or(t_ms)) as f64 / 1000.0;
                out.push(Sample {
                    key: key(node(i), Metric::SilenceS),
                    value: silent,
                    limit: Some(SILENT_AFTER_S),
                });
                continue;
            }
            // Reports come each second: a round sees a silence of 0-1 s.
            let silence = self.rng.next_f64();
            out.push(Sample {
                key: key(node(i), Metric::SilenceS),
                value: silence,
                limit: Some(SILENT_AFTER_S),
            });
            let base = self.sandboxes[i] * diurnal;
            let live = base
                + (SLOTS - base) * grow(Fault::Slots, self).min(1.2)
                + base * 0.05 * normal(&mut self.rng);
            out.push(Sample {
                key: key(node(i), Metric::LiveSandboxes),
                value: live.max(0.0).round(),
                limit: Some(SLOTS),
            });
            // A collector's sawtooth (5 minutes) over the working set.
            let saw = (t_ms % 300_000) as f64 / 300_000.0;
            let mem = self.memory[i] * (1.0 + 0.08 * saw)
                + (MEMORY_LIMIT - self.memory[i]) * grow(Fault::Memory, self).min(1.2)
                + 20.0 * MIB * normal(&mut self.rng);
            out.push(Sample {
                key: key(node(i), Metric::MemoryBytes),
                value: mem.max(0.0),
                limit: Some(MEMORY_LIMIT),
            });
            // Logs grow 50 MiB an hour and are compacted every 2 hours.
            let logs = 50.0 * MIB * ((t_ms % 7_200_000) as f64 / 3_600_000.0);
            let disk = self.disk[i]
                + logs
                + (DISK_LIMIT - self.disk[i]) * grow(Fault::Disk, self).min(1.2);
            out.push(Sample {
                key: key(node(i), Metric::DiskBytes),
                value: disk,
                limit: Some(DISK_LIMIT),
            });
            let p99 = 40.0 * (0.25 * normal(&mut self.rng)).exp()
                + (TIMEOUT_MS * 1.05 - 40.0) * slow.min(1.0);
            out.push(Sample {
                key: key(node(i), Metric::LatencyP99Ms),
                value: p99,
                limit: Some(TIMEOUT_MS),
            });
        }
        // The version on every node: ~1,000 requests a round.
        let p = 0.0004 + (ERROR_LIMIT * 1.1 - 0.0004) * self.progress(Fault::VersionErrors, t_ms);
        let requests = 1_000.0 * diurnal;
        let errors = (p * requests + (p * requests).sqrt() * normal(&mut self.rng))
            .round()
            .max(0.0);
        out.push(Sample {
            key: key(version(), Metric::ErrorRatio),
            value: (errors / requests).min(1.0),
            limit: Some(ERROR_LIMIT),
        });
        let lat = 60.0 * (0.2 * normal(&mut self.rng)).exp()
            + (LATENCY_LIMIT_MS * 1.05 - 60.0) * self.progress(Fault::VersionLatency, t_ms);
        out.push(Sample {
            key: key(version(), Metric::LatencyP99Ms),
            value: lat,
            limit: Some(LATENCY_LIMIT_MS),
        });
        let conc = 25.0 * diurnal * (1.0 + 0.1 * normal(&mut self.rng))
            + (CONCURRENCY_LIMIT * 1.05 - 25.0 * diurnal)
                * self.progress(Fault::LoadPastCapacity, t_ms);
        out.push(Sample {
            key: key(app(), Metric::Concurrency),
            value: conc.max(0.0),
            limit: Some(CONCURRENCY_LIMIT),
        });
        out
    }

    /// Where the fault's failure shows.
    fn subject(&self) -> Subject {
        match self.fault {
            Some(Fault::VersionErrors | Fault::VersionLatency) => version(),
            Some(Fault::LoadPastCapacity) => app(),
            _ => node(self.at_node),
        }
    }
}

/// What one run gave one predictor.
#[derive(Default)]
struct Outcome {
    /// The right prediction opened this long before the failure.
    lead_ms: Option<u64>,
    /// Its ETA when it opened minus the failure's time (late: positive).
    eta_error_ms: Option<i64>,
    /// Predictions opened that were not the right one.
    false_alarms: u64,
    /// The failure happened (fault runs).
    failed: bool,
    /// Wall time in the predictor's rounds, and the series they judged.
    round_ns: u128,
    series_judged: u64,
}

/// The baseline: an alert when a signal passes 90 % of its limit (a
/// node's silence: when it is taken for dead).
struct Threshold {
    fired: BTreeMap<(FailureKind, Subject), bool>,
}

impl Threshold {
    fn round(&mut self, samples: &[Sample]) -> Vec<(FailureKind, Subject)> {
        let mut out = Vec::new();
        for s in samples {
            let Some(kind) = autopilot::predict::failure_of(&s.key) else {
                continue;
            };
            let Some(limit) = s.limit else { continue };
            let share = if s.key.metric == Metric::SilenceS {
                1.0
            } else {
                0.9
            };
            let k = (kind, s.key.subject.clone());
            let over = s.value >= share * limit;
            let was = self.fired.insert(k.clone(), over).unwrap_or(false);
            if over && !was {
                out.push(k);
            }
        }
        out
    }
}

/// Runs one seed: the predictor and the baseline on the same signals.
fn run_one(seed: u64, fault: Option<Fault>, length_ms: u64, round_ms: u64) -> (Outcome, Outcome) {
    let mut world = World::new(seed, fault);
    let mut signals = Signals::new(SignalsConfig::default());
    let mut predictor = Predictor::new(PredictConfig::default());
    let mut threshold = Threshold {
        fired: BTreeMap::new(),
    };
    let (mut ours, mut base) = (Outcome::default(), Outcome::default());
    let (mut ours_first, mut base_first) = (None, None);
    let mut ours_eta: Option<u64> = None;
    let right = fault.map(|f| (f.kind(), world.subject()));
    let mut failure_ms = None;
    let mut t = round_ms;
    while t <= length_ms {
        let samples = world.samples(t);
        signals.record(t, &samples);
        // The failure: the faulty signal at its limit, or the node dead.
        if failure_ms.is_none()
            && let Some((kind, subject)) = &right
        {
            let reached = if fault == Some(Fault::NodeSlowThenDies) {
                world.died_ms.is_some()
            } else {
                samples.iter().any(|s| {
                    &s.key.subject == subject
                        && autopilot::predict::failure_of(&s.key) == Some(*kind)
                        && s.limit.is_some_and(|l| s.value >= l)
                })
            };
            if reached {
                failure_ms = Some(t);
            }
        }
        let began = std::time::Instant::now();
        let found = predictor.round(&signals, t);
        ours.round_ns += began.elapsed().as_nanos();
        ours.series_judged += signals.len() as u64;
        for p in found {
            if p.status != PredictionStatus::Open || p.first_ms != p.updated_ms {
                continue;
            }
            let is_right = right
                .as_ref()
                .is_some_and(|(k, s)| p.kind == *k && &p.subject == s);
            if is_right && failure_ms.is_none() {
                ours_first.get_or_insert(t);
                ours_eta.get_or_insert(p.eta.at_ms);
            } else if !is_right {
                ours.false_alarms += 1;
            }
        }
        for (kind, subject) in threshold.round(&samples) {
            let is_right = right
                .as_ref()
                .is_some_and(|(k, s)| kind == *k && &subject == s);
            if is_right && failure_ms.is_none() {
                base_first.get_or_insert(t);
            } else if !is_right {
                base.false_alarms += 1;
            }
        }
        // A fault run ends a little after its failure.
        if failure_ms.is_some_and(|f| t >= f + 10 * 60_000) {
            break;
        }
        t += round_ms;
    }
    for (out, first) in [(&mut ours, ours_first), (&mut base, base_first)] {
        out.failed = failure_ms.is_some();
        if let (Some(f), Some(p)) = (failure_ms, first) {
            out.lead_ms = Some(f.saturating_sub(p));
        }
    }
    if let (Some(f), Some(eta), true) = (failure_ms, ours_eta, ours.lead_ms.is_some()) {
        ours.eta_error_ms = Some(eta as i64 - f as i64);
    }
    (ours, base)
}

/// Totals of one predictor over the suite.
#[derive(Default)]
struct Score {
    fault_runs: u64,
    hits: u64,
    false_alarms_fault_runs: u64,
    false_alarms_healthy: u64,
    node_days: f64,
    lead_ms: Vec<u64>,
    round_ns: u128,
    series_judged: u64,
    /// ETA errors of the hits (late: positive), ms.
    eta_error_ms: Vec<i64>,
    by_fault: BTreeMap<Fault, (u64, u64, Vec<u64>)>,
}

impl Score {
    fn add_fault(&mut self, fault: Fault, o: &Outcome) {
        self.fault_runs += 1;
        self.add_time(o);
        self.false_alarms_fault_runs += o.false_alarms;
        let e = self.by_fault.entry(fault).or_default();
        e.0 += 1;
        if let Some(lead) = o.lead_ms {
            self.hits += 1;
            self.lead_ms.push(lead);
            self.eta_error_ms.extend(o.eta_error_ms);
            e.1 += 1;
            e.2.push(lead);
        }
    }

    fn add_time(&mut self, o: &Outcome) {
        self.round_ns += o.round_ns;
        self.series_judged += o.series_judged;
    }

    fn precision(&self) -> f64 {
        let fp = self.false_alarms_fault_runs + self.false_alarms_healthy;
        if self.hits + fp == 0 {
            return 0.0;
        }
        self.hits as f64 / (self.hits + fp) as f64
    }

    fn recall(&self) -> f64 {
        self.hits as f64 / self.fault_runs.max(1) as f64
    }

    fn per_node_day(&self) -> f64 {
        self.false_alarms_healthy as f64 / self.node_days.max(f64::MIN_POSITIVE)
    }
}

/// The median (0 of nothing).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_min(leads: &[u64]) -> f64 {
    median(leads.iter().map(|l| *l as f64 / 60_000.0).collect())
}

/// Lead times in minutes as a latency-style series (p50/p90/p99 from
/// hdrhistogram); its `unit` is minutes, so its percentiles read as such.
fn lead_series(name: &str, leads: &[u64], baseline: Option<&str>) -> Series {
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits is a valid histogram");
    for l in leads {
        // Lead times are whole rounds of 10 s: seconds fit.
        let _ = h.record(l / 1000);
    }
    let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 60.0);
    let mut s = Series::value(name, "min", median_min(leads), leads.len() as u64, baseline);
    s.p50 = q(0.5);
    s.p90 = q(0.9);
    s.p99 = q(0.99);
    s.p999 = q(0.999);
    s.max = (!h.is_empty()).then(|| h.max() as f64 / 60.0);
    s
}

pub fn run(quick: bool) -> Result<Report> {
    let seeds: u64 = if quick { 3 } else { 20 };
    let round_ms = if quick { QUICK_ROUND_MS } else { ROUND_MS };
    let healthy_ms: u64 = if quick { 6 } else { 24 } * 3_600_000;
    let fault_ms = WARM_MS + 30 * 60_000 + 100 * 60_000;
    let mut report = Report::new(
        "predict",
        json!({
            "variant": "simulated signals (lab): the product's Predictor on seeded series in virtual time",
            "round_ms": round_ms,
            "nodes": NODES,
            "seeds_per_fault": seeds,
            "faults": FAULTS.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "fault_ramp_min": "20..90",
            "healthy_runs": seeds,
            "healthy_run_h": healthy_ms / 3_600_000,
            "predict_config": format!("{:?}", PredictConfig::default()),
            "baseline": "static alert at 90 % of each limit (silence: at the limit)",
        }),
    );
    let (mut ours, mut base) = (Score::default(), Score::default());
    for fault in FAULTS {
        for s in 0..seeds {
            let seed = 19_000 + s * 31 + fault as u64 * 1_000;
            let (o, b) = run_one(seed, Some(fault), fault_ms, round_ms);
            anyhow::ensure!(
                o.failed,
                "internal: the {} run of seed {seed} never failed",
                fault.name()
            );
            ours.add_fault(fault, &o);
            base.add_fault(fault, &b);
        }
        crate::cli::progress::line(format!("predict: {} done", fault.name()));
    }
    for s in 0..seeds {
        let seed = 90_000 + s * 17;
        let (o, b) = run_one(seed, None, healthy_ms, round_ms);
        let node_days = NODES as f64 * healthy_ms as f64 / 86_400_000.0;
        for (score, out) in [(&mut ours, &o), (&mut base, &b)] {
            score.false_alarms_healthy += out.false_alarms;
            score.add_time(out);
            score.node_days += node_days;
        }
    }
    crate::cli::progress::line("predict: healthy runs done");
    let base_name = |n: &str| format!("threshold-90-{n}");
    for (prefix, score, baseline) in [("sim-", &ours, true), ("threshold-90-", &base, false)] {
        let b = |n: &str| baseline.then(|| base_name(n));
        report.series.push(Series::value(
            &format!("{prefix}recall"),
            "ratio",
            score.recall(),
            score.fault_runs,
            b("recall").as_deref(),
        ));
        report.series.push(Series::value(
            &format!("{prefix}precision"),
            "ratio",
            score.precision(),
            score.hits + score.false_alarms_fault_runs + score.false_alarms_healthy,
            b("precision").as_deref(),
        ));
        report.series.push(
            Series::value(
                &format!("{prefix}false-alarms-per-node-day"),
                "alarms",
                score.per_node_day(),
                score.false_alarms_healthy,
                b("false-alarms-per-node-day").as_deref(),
            )
            .fewer_is_better(),
        );
        report.series.push(lead_series(
            &format!("{prefix}lead-time"),
            &score.lead_ms,
            b("lead-time").as_deref(),
        ));
    }
    // How far the first ETA was from the failure: the median of the
    // signed errors (late: positive) and of their sizes, in minutes.
    let errors: Vec<f64> = ours
        .eta_error_ms
        .iter()
        .map(|e| *e as f64 / 60_000.0)
        .collect();
    report.series.push(Series::value(
        "sim-eta-error",
        "min",
        median(errors.clone()),
        errors.len() as u64,
        None,
    ));
    report.series.push(
        Series::value(
            "sim-eta-abs-error",
            "min",
            median(errors.iter().map(|e| e.abs()).collect()),
            errors.len() as u64,
            None,
        )
        .fewer_is_better(),
    );
    report.series.push(
        Series::value(
            "sim-predictor-us-per-series-round",
            "us",
            ours.round_ns as f64 / 1000.0 / ours.series_judged.max(1) as f64,
            ours.series_judged,
            None,
        )
        .fewer_is_better(),
    );
    for (fault, (runs, hits, leads)) in &ours.by_fault {
        report.series.push(Series::value(
            &format!("sim-recall-{}", fault.name()),
            "ratio",
            *hits as f64 / (*runs).max(1) as f64,
            *runs,
            None,
        ));
        report.series.push(Series::value(
            &format!("sim-lead-time-{}", fault.name()),
            "min",
            median_min(leads),
            leads.len() as u64,
            None,
        ));
    }
    report.notes.push(format!(
        "goals (issue 19): recall >= 0.9 and precision >= 0.9 with median lead >= 5 min for the gradual faults, <= 1 false alarm per node-day; measured (simulated signals): recall {:.3}, precision {:.3}, median lead {:.1} min, {:.3} false alarms per node-day ({} in {:.0} node-days of healthy runs, {} wrong predictions in fault runs)",
        ours.recall(),
        ours.precision(),
        median_min(&ours.lead_ms),
        ours.per_node_day(),
        ours.false_alarms_healthy,
        ours.node_days,
        ours.false_alarms_fault_runs,
    ));
    report.notes.push(
        "this is the lab variant: signals simulated in virtual time and fed to the product's Predictor; the fault-injection suite on real `dwcp up` processes is not part of this bench (tests/autopilot.rs runs disk fill and creeping latency on a real node)".into(),
    );
    Ok(report.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_fill_is_predicted_before_it_fails_and_a_healthy_hour_is_quiet() {
        let (ours, _) = run_one(7, Some(Fault::Disk), WARM_MS + 130 * 60_000, QUICK_ROUND_MS);
        assert!(ours.failed);
        assert!(
            ours.lead_ms.is_some_and(|l| l >= 5 * 60_000),
            "lead {:?}",
            ours.lead_ms
        );
        let (healthy, _) = run_one(8, None, 2 * 3_600_000, QUICK_ROUND_MS);
        assert_eq!(healthy.false_alarms, 0);
    }
}
