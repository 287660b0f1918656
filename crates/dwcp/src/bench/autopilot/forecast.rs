//! `dwcp bench forecast`: the autopilot's forecaster replayed over metric
//! series with rolling origins, every forecast beside the seasonal-naive
//! one (the value at the same time the day before) made at the same
//! origin, as `autopilot::forecast::backtest` does.
//!
//! The series: from `--nab DIR`, the metric-like ones — every series
//! under `realAWSCloudwatch/` (CPU, network, disk, request counts) and
//! `realTweets/` (request volumes), and in `realKnownCause/` the taxi
//! demand, the autoscaling group's CPU, the EC2 request latency and the
//! machine temperature; NAB's price series, road sensors and artificial
//! shapes are left out. Then three synthetic series of 30 days at
//! 5-minute steps from seed [`SEED`] (`autopilot::synth`): a request rate,
//! live sandboxes and memory in bytes. Points that are not after the
//! previous one (NAB has a few repeated timestamps) are dropped.
//!
//! Series, per input: `mae/<name>` (the forecaster's mean absolute error
//! over every horizon and origin; baseline `seasonal-naive-mae/<name>`,
//! so the ratio is the naive error over ours), `mase/<name>` (ours over
//! naive: below 1 is better) and `coverage/<name>` (the share of actual
//! values inside the 90 % bands); then `series-below-mase-1` and
//! `worst-mase`. Per-horizon figures are in the notes.

use std::path::Path;

use anyhow::Result;
use autopilot::forecast::{Backtest, BacktestConfig, ForecasterConfig, backtest};
use autopilot::synth::{self, Shape};
use serde_json::json;

use super::AutopilotArgs;
use super::corpus;
use crate::bench::progress;
use crate::bench::report::{Report, Series};

/// The synthetic series' seed (the number).
pub const SEED: u64 = 19;
/// 2014-04-01 00:00:00 UTC, where the synthetic series start.
const SYNTHETIC_START_MS: i64 = 1_396_310_400_000;
const FIVE_MINUTES_MS: i64 = 300_000;
/// 30 days of 5-minute points.
const SYNTHETIC_POINTS: usize = 30 * 288;

/// The NAB series that look like metrics: (category, file or every file).
const METRIC_LIKE: [(&str, Option<&str>); 6] = [
    ("realAWSCloudwatch", None),
    ("realTweets", None),
    ("realKnownCause", Some("nyc_taxi.csv")),
    (
        "realKnownCause",
        Some("cpu_utilization_asg_misconfiguration.csv"),
    ),
    (
        "realKnownCause",
        Some("ec2_request_latency_system_failure.csv"),
    ),
    (
        "realKnownCause",
        Some("machine_temperature_system_failure.csv"),
    ),
];

/// One series to replay: its name and its points in time order.
struct Input {
    name: String,
    points: Vec<(i64, f64)>,
}

fn metric_like(name: &str) -> bool {
    let (category, file) = name.split_once('/').unwrap_or(("", name));
    METRIC_LIKE
        .iter()
        .any(|(c, f)| *c == category && f.is_none_or(|f| f == file))
}

pub fn run(args: &AutopilotArgs) -> Result<Report> {
    let dir = args.nab_dir();
    let mut inputs = nab_inputs(&dir)?;
    for (shape, name) in [
        (Shape::RequestRate, "synthetic/request_rate"),
        (Shape::LiveSandboxes, "synthetic/live_sandboxes"),
        (Shape::MemoryBytes, "synthetic/memory_bytes"),
    ] {
        let points = synth::series(
            shape,
            SEED,
            SYNTHETIC_START_MS,
            FIVE_MINUTES_MS,
            SYNTHETIC_POINTS,
        );
        inputs.push(Input {
            name: name.to_string(),
            points,
        });
    }
    let cfg = ForecasterConfig::default();
    let bt = BacktestConfig::default();
    let mut report = Report::new(
        "forecast",
        json!({
            "nab": dir.display().to_string(),
            "series": inputs.len(),
            "horizons_ms": bt.horizons_ms,
            "warmup_ms": bt.warmup_ms,
            "origins_per_series": bt.origins,
            "synthetic_seed": SEED,
            "forecaster": format!("{cfg:?}"),
        }),
    );
    let mut below = 0u64;
    let mut worst: Option<f64> = None;
    for Input { name, points } in &inputs {
        progress("forecast", name);
        let r = backtest(points, &cfg, &bt);
        add_series(&mut report, name, &r);
        if let Some(m) = r.mase {
            below += u64::from(m < 1.0);
            worst = Some(worst.map_or(m, |w: f64| w.max(m)));
        }
    }
    let scored = report
        .series
        .iter()
        .filter(|s| s.name.starts_with("mase/"))
        .count() as u64;
    report.series.push(Series::value(
        "series-below-mase-1",
        "count",
        below as f64,
        scored,
        None,
    ));
    if let Some(w) = worst {
        report
            .series
            .push(Series::value("worst-mase", "ratio", round3(w), scored, None).fewer_is_better());
    }
    report.notes.push(format!(
        "MASE here: the forecaster's mean absolute error over the seasonal-naive forecast's (same time the day before the target), both made at the same origins for the same targets; goal < 1 on every series: {below} of {scored} are"
    ));
    Ok(report.finish())
}

/// The metric-like series under `dir`, in time order.
fn nab_inputs(dir: &Path) -> Result<Vec<Input>> {
    let corpus = corpus::load(dir)?;
    let mut out = Vec::new();
    for e in corpus.entries.into_iter().filter(|e| metric_like(&e.name)) {
        let mut last = i64::MIN;
        let points: Vec<(i64, f64)> = e
            .points()
            .filter(|&(t, _)| {
                let after = t > last;
                last = last.max(t);
                after
            })
            .collect();
        out.push(Input {
            name: e.name,
            points,
        });
    }
    Ok(out)
}

fn add_series(report: &mut Report, name: &str, r: &Backtest) {
    let n = r.forecasts as u64;
    let total = |f: fn(&autopilot::forecast::HorizonScore) -> f64| {
        r.horizons
            .iter()
            .map(|h| f(h) * h.forecasts as f64)
            .sum::<f64>()
            / (n.max(1) as f64)
    };
    let naive = format!("seasonal-naive-mae/{name}");
    report.series.push(
        Series::value(
            &format!("mae/{name}"),
            "value",
            round3(total(|h| h.mae)),
            n,
            Some(&naive),
        )
        .fewer_is_better(),
    );
    report.series.push(
        Series::value(&naive, "value", round3(total(|h| h.naive_mae)), n, None).fewer_is_better(),
    );
    if let Some(m) = r.mase {
        report.series.push(
            Series::value(&format!("mase/{name}"), "ratio", round3(m), n, None).fewer_is_better(),
        );
    }
    let banded: Vec<_> = r
        .horizons
        .iter()
        .filter_map(|h| h.coverage.map(|c| (c, h.forecasts)))
        .collect();
    let count: usize = banded.iter().map(|(_, n)| n).sum();
    if count > 0 {
        let coverage = banded.iter().map(|(c, n)| c * *n as f64).sum::<f64>() / count as f64;
        report.series.push(Series::value(
            &format!("coverage/{name}"),
            "ratio",
            round3(coverage),
            count as u64,
            None,
        ));
    }
    let per_horizon: Vec<String> = r
        .horizons
        .iter()
        .map(|h| match h.mase {
            Some(m) => format!("{} {:.2}", horizon_label(h.horizon_ms), m),
            None => format!("{} n/a", horizon_label(h.horizon_ms)),
        })
        .collect();
    report.notes.push(format!(
        "{name}: MASE by horizon: {}",
        per_horizon.join(", ")
    ));
}

fn horizon_label(ms: i64) -> String {
    match ms {
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m => format!("{}m", m / 60_000),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
