//! `dwcp bench nab`: the autopilot's detector on the Numenta Anomaly
//! Benchmark, run exactly as NAB prescribes — every series found under
//! `--nab DIR`, point by point, in order, one fresh detector per series —
//! and scored by the autopilot's Rust implementation of NAB's scorer.
//!
//! NAB's protocol hands each detector, before the first point, the
//! series' minimum and maximum over the whole file and its length
//! ([`NabContext`]); the headline run gives the ensemble that context
//! (`Ensemble::with_known_range`), and a second run gives it nothing, as
//! on a live stream (`live-…`).
//!
//! Series:
//! - `standard`, `reward_low_FP_rate`, `reward_low_FN_rate`: the
//!   ensemble's normalised NAB scores (0 is the null detector, 100 the
//!   perfect one), each profile's threshold optimised over the corpus;
//!   `live-…`: the same without NAB's context.
//! - `numenta-…` (baseline): Numenta HTM's stored results
//!   (`DIR/results/numenta/`, when present) re-scored by the same scorer
//!   in the same run; `windowed-gaussian-…` (a second baseline): NAB's
//!   simplest detector, run and scored in the same run.
//! - `<profile>-even-series`, `<profile>-odd-series` (and `live-…`): each
//!   profile on the even- and odd-numbered series (by name) alone; every
//!   parameter of the ensemble was kept only if it helped both halves.
//! - `scorer-error`: the largest gap between this scorer's figures for
//!   Numenta's results and the official scorer's (`reference-scores.json`).
//! - `points-per-s` (over the detecting thread's CPU time), `observe`
//!   (wall time per point, averaged over batches of
//!   [`BATCH_POINTS`]), `memory-per-series`: the ensemble on one core,
//!   beside the windowed Gaussian's.
//!
//! Published figures of other detectors are fixed numbers from their
//! papers and NAB's scoreboard: they go in `config`, never in `series`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use autopilot::detect::{Ensemble, EnsembleConfig, NAB_WINDOW_POINTS, WindowedGaussian};
use autopilot::nab::{NabContext, ProfileScore, Scored, score::score};
use serde_json::json;

use super::AutopilotArgs;
use super::corpus::{self, Corpus, Entry};
use crate::bench::progress;
use crate::bench::report::{Report, Series, histogram, record_avg};

/// Points timed together for the per-point latency (one `Instant` pair per
/// batch, so the clock costs little beside the detector).
const BATCH_POINTS: usize = 64;
/// The name results are written under (`<out>/dwcp/<category>/dwcp_<file>.csv`).
const DETECTOR: &str = "dwcp";

/// NAB's published scores on the whole benchmark (standard, low FP, low
/// FN), for context only: NAB's scoreboard (numenta/NAB, README).
const PUBLISHED: [(&str, [f64; 3]); 4] = [
    ("ARTime", [74.9, 65.2, 80.4]),
    ("numenta", [70.1, 63.1, 74.3]),
    ("contextOSE", [69.9, 67.0, 73.2]),
    ("windowedGaussian", [39.6, 20.9, 47.4]),
];

/// The goals of issue 19 on the shared series, per profile.
const GOALS: [(&str, f64); 3] = [
    ("standard", 77.0),
    ("reward_low_FP_rate", 68.0),
    ("reward_low_FN_rate", 82.0),
];

/// What one detector did over the corpus.
struct Run {
    scores: BTreeMap<String, Vec<f64>>,
    /// Per batch, the average time per point.
    latency: hdrhistogram::Histogram<u64>,
    elapsed: Duration,
    /// CPU time of the detecting thread, when Linux reports it.
    cpu: Option<Duration>,
    points: u64,
    max_memory_bytes: usize,
}

pub fn run(args: &AutopilotArgs) -> Result<Report> {
    let dir = args.nab_dir();
    let corpus = corpus::load(&dir)?;
    progress(
        "nab",
        &format!("{} series from {}", corpus.entries.len(), dir.display()),
    );
    let cfg = EnsembleConfig::default();
    let ours = detect(
        &corpus,
        |t, v, d: &mut Ensemble| d.observe(t, v).score,
        |e| nab_ensemble(&cfg, e),
        Ensemble::memory_bytes,
    );
    progress("nab", "the ensemble without NAB's context (live)");
    let live = detect(
        &corpus,
        |t, v, d: &mut Ensemble| d.observe(t, v).score,
        |_| Ensemble::new(cfg.clone()),
        Ensemble::memory_bytes,
    );
    progress("nab", "windowed Gaussian baseline");
    let gaussian = detect(
        &corpus,
        |_, v, d: &mut WindowedGaussian| d.observe(v),
        |_| WindowedGaussian::new(NAB_WINDOW_POINTS),
        WindowedGaussian::memory_bytes,
    );
    let numenta = corpus::load_results(&dir.join("results/numenta"), "numenta", &corpus.entries)?;
    let reference = read_reference(&dir)?;

    let mut report = Report::new(
        "nab",
        json!({
            "nab": dir.display().to_string(),
            "series": corpus.entries.len(),
            "points": ours.points,
            "windows": corpus.entries.iter().map(|e| e.windows.len()).sum::<usize>(),
            "detector": format!("{cfg:?}"),
            "published_whole_benchmark": PUBLISHED.iter().map(|(n, s)| (n.to_string(), json!(s))).collect::<serde_json::Map<_, _>>(),
            "official_scorer_on_these_series": reference.as_ref().map(|r| r["scores"].clone()),
            "goals_on_shared_series": GOALS.iter().map(|(n, g)| (n.to_string(), json!(g))).collect::<serde_json::Map<_, _>>(),
        }),
    );
    let ours_scores = profile_scores(&corpus, &ours.scores);
    if let Some(out) = &args.out {
        corpus::write_results(out, DETECTOR, &corpus.entries, &ours.scores)?;
        if let Some(standard) = ours_scores.first() {
            let path = out.join(DETECTOR).join("detections.jsonl");
            write_detections(&path, &corpus, &cfg, standard.threshold)?;
        }
        progress(
            "nab",
            &format!("results written under {}", out.join(DETECTOR).display()),
        );
    }
    let numenta_scores = numenta.as_ref().map(|n| profile_scores(&corpus, n));
    let baseline = numenta_scores.as_ref().map(|_| "numenta-");
    add_scores(
        &mut report,
        &corpus,
        "",
        &ours.scores,
        &ours_scores,
        baseline,
    );
    let live_scores = profile_scores(&corpus, &live.scores);
    add_scores(
        &mut report,
        &corpus,
        "live-",
        &live.scores,
        &live_scores,
        baseline,
    );
    add_baselines(
        &mut report,
        numenta_scores.as_deref(),
        &profile_scores(&corpus, &gaussian.scores),
        reference.as_ref(),
    );
    add_speed(&mut report, corpus.entries.len(), &ours, &gaussian);
    Ok(report.finish())
}

/// The ensemble for one series as NAB's protocol runs it: with the
/// series' range, which NAB hands every detector up front.
fn nab_ensemble(cfg: &EnsembleConfig, e: &Entry) -> Ensemble {
    match NabContext::of(&e.series) {
        Some(c) => Ensemble::with_known_range(cfg.clone(), c.known_range()),
        None => Ensemble::new(cfg.clone()),
    }
}

/// The ensemble's scores per profile, named `prefix` + the profile (each
/// beside `baseline` + the profile's name, if given), on each half of the
/// series, and per category at the standard threshold.
fn add_scores(
    report: &mut Report,
    corpus: &Corpus,
    prefix: &str,
    scores: &BTreeMap<String, Vec<f64>>,
    ours_scores: &[ProfileScore],
    baseline: Option<&str>,
) {
    for p in ours_scores {
        let base = baseline.map(|b| format!("{b}{}", p.profile));
        report.series.push(Series::value(
            &format!("{prefix}{}", p.profile),
            "score",
            round2(p.normalised),
            1,
            base.as_deref(),
        ));
        report.notes.push(format!(
            "{prefix}{}: threshold {:.4}, {}/{} windows detected, {} false-positive points{}",
            p.profile,
            p.threshold,
            p.windows_detected,
            p.windows,
            p.false_positives,
            GOALS
                .iter()
                .find(|(n, _)| *n == p.profile)
                .map_or(String::new(), |(_, g)| format!(
                    "; goal on the shared series {g}"
                ))
        ));
    }
    // Every parameter was kept only if it helped both halves
    // (docs/autopilot.md).
    for (half, parity) in [("even", 0), ("odd", 1)] {
        for p in half_scores(corpus, scores, |i| i % 2 == parity) {
            report.series.push(Series::value(
                &format!("{prefix}{}-{half}-series", p.profile),
                "score",
                round2(p.normalised),
                1,
                None,
            ));
        }
    }
    if let Some(standard) = ours_scores.first() {
        for line in category_tallies(corpus, scores, standard.threshold) {
            report.notes.push(format!("{prefix}{line}"));
        }
    }
}

/// Numenta HTM's stored results and the windowed Gaussian, scored the
/// same way, and the scorer's gap to the official figures.
fn add_baselines(
    report: &mut Report,
    numenta_scores: Option<&[ProfileScore]>,
    gaussian_scores: &[ProfileScore],
    reference: Option<&serde_json::Value>,
) {
    let mut scorer_error: Option<f64> = None;
    if let Some(scores) = numenta_scores {
        for p in scores {
            report.series.push(Series::value(
                &format!("numenta-{}", p.profile),
                "score",
                round2(p.normalised),
                1,
                None,
            ));
            let official = reference.and_then(|r| r["scores"]["numenta"][&p.profile].as_f64());
            if let Some(official) = official {
                let gap = (p.normalised - official).abs();
                scorer_error = Some(scorer_error.map_or(gap, |e: f64| e.max(gap)));
            }
        }
    }
    for p in gaussian_scores {
        report.series.push(Series::value(
            &format!("windowed-gaussian-{}", p.profile),
            "score",
            round2(p.normalised),
            1,
            None,
        ));
    }
    if let Some(gap) = scorer_error {
        report
            .series
            .push(Series::value("scorer-error", "score", round4(gap), 3, None).fewer_is_better());
        report.notes.push(
            "scorer-error: the largest gap, over the profiles, between this scorer on results/numenta and the official scorer's reference-scores.json (tolerance 0.1)"
                .into(),
        );
    }
}

/// Points per second, latency per point and memory per series of the
/// ensemble beside the windowed Gaussian's.
fn add_speed(report: &mut Report, series: usize, ours: &Run, gaussian: &Run) {
    for (name, r, baseline) in [
        ("", ours, Some("windowed-gaussian-")),
        ("windowed-gaussian-", gaussian, None),
    ] {
        let base = |s: &str| baseline.map(|b| format!("{b}{s}"));
        report.series.push(Series::value(
            &format!("{name}points-per-s"),
            "ops/s",
            (r.points as f64 / r.cpu.unwrap_or(r.elapsed).as_secs_f64().max(1e-9)).round(),
            series as u64,
            base("points-per-s").as_deref(),
        ));
        report.series.push(Series::latency(
            &format!("{name}observe"),
            &r.latency,
            base("observe").as_deref(),
        ));
        report.series.push(Series::value(
            &format!("{name}memory-per-series"),
            "bytes",
            r.max_memory_bytes as f64,
            series as u64,
            base("memory-per-series").as_deref(),
        ));
    }
    report.notes.push(
        "scores are NAB's normalised scores on the series under --nab (the shared ones miss NAB's held-back series); the official scorer gives ARTime, the leader, 76.73 / 67.67 / 82.16 on the shared series".into(),
    );
    report.notes.push(format!(
        "points-per-s: all points through one detector per series on one thread, over the thread's CPU time ({}); memory-per-series: the largest heap held by one series' detector state; observe: wall time per point, averaged over batches of {BATCH_POINTS} (on a loaded machine its tail is preemption)",
        if ours.cpu.is_some() { "from /proc/thread-self/schedstat" } else { "not reported here: wall time instead" }
    ));
}

/// Writes, one JSON object a line, every point after the probationary
/// period that scores at least `threshold` (the standard profile's), with
/// the ensemble's whole assessment: the evidence behind each detection.
/// The detector is run again (deterministic: the same scores).
fn write_detections(
    path: &Path,
    corpus: &Corpus,
    cfg: &EnsembleConfig,
    threshold: f64,
) -> Result<()> {
    let mut text = String::new();
    for e in &corpus.entries {
        let mut detector = nab_ensemble(cfg, e);
        let probation = autopilot::nab::probationary_points(e.series.values.len());
        for (i, (t, v)) in e.points().enumerate() {
            let a = detector.observe(t, v);
            if i >= probation && a.score >= threshold {
                let line = json!({
                    "series": e.name,
                    "time": autopilot::time::format_ms(t),
                    "in_window": e.windows.iter().any(|w| w.start_ms <= t && t <= w.end_ms),
                    "assessment": a,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
        }
    }
    let aside = path.with_extension("jsonl.partial");
    std::fs::write(&aside, text).with_context(|| format!("writing {}", aside.display()))?;
    std::fs::rename(&aside, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Runs a fresh detector per series, point by point, timing batches.
fn detect<D>(
    corpus: &Corpus,
    mut observe: impl FnMut(i64, f64, &mut D) -> f64,
    fresh: impl Fn(&Entry) -> D,
    memory: impl Fn(&D) -> usize,
) -> Run {
    let mut run = Run {
        scores: BTreeMap::new(),
        latency: histogram(),
        elapsed: Duration::ZERO,
        cpu: Some(Duration::ZERO),
        points: 0,
        max_memory_bytes: 0,
    };
    for e in &corpus.entries {
        let cpu_before = thread_cpu();
        let mut detector = fresh(e);
        let s = &e.series;
        let mut scores = Vec::with_capacity(s.values.len());
        for (ts, vs) in s
            .timestamps_ms
            .chunks(BATCH_POINTS)
            .zip(s.values.chunks(BATCH_POINTS))
        {
            let start = Instant::now();
            for (&t, &v) in ts.iter().zip(vs) {
                scores.push(observe(t, v, &mut detector));
            }
            let took = start.elapsed();
            run.elapsed += took;
            // A batch holds at most BATCH_POINTS (64) points.
            record_avg(&mut run.latency, took, ts.len() as u32);
        }
        run.cpu = match (run.cpu, cpu_before, thread_cpu()) {
            (Some(total), Some(a), Some(b)) => Some(total + b.saturating_sub(a)),
            _ => None,
        };
        run.points += s.values.len() as u64;
        run.max_memory_bytes = run.max_memory_bytes.max(memory(&detector));
        run.scores.insert(e.name.clone(), scores);
    }
    run
}

/// Per category, at the standard profile's threshold: windows detected
/// and false-positive points.
fn category_tallies(
    corpus: &Corpus,
    scores: &BTreeMap<String, Vec<f64>>,
    threshold: f64,
) -> Vec<String> {
    let mut by_category: BTreeMap<&str, autopilot::nab::Tally> = BTreeMap::new();
    for e in &corpus.entries {
        let s = Scored {
            name: &e.name,
            timestamps_ms: &e.series.timestamps_ms,
            scores: &scores[&e.name],
            windows: &e.windows,
        };
        let t = autopilot::nab::tally(&s, threshold);
        let category = e.name.split_once('/').map_or(e.name.as_str(), |(c, _)| c);
        let sum = by_category.entry(category).or_default();
        sum.windows_detected += t.windows_detected;
        sum.windows += t.windows;
        sum.false_positives += t.false_positives;
    }
    by_category
        .into_iter()
        .map(|(c, t)| {
            format!(
                "standard threshold, {c}: {}/{} windows detected, {} false-positive points",
                t.windows_detected, t.windows, t.false_positives
            )
        })
        .collect()
}

/// The CPU time this thread has used (Linux's schedstat), if reported.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The corpus scored under every profile.
fn profile_scores(corpus: &Corpus, scores: &BTreeMap<String, Vec<f64>>) -> Vec<ProfileScore> {
    half_scores(corpus, scores, |_| true)
}

/// The corpus's series for which `keep(index)` holds (in name order),
/// scored under every profile on their own: threshold and normalisation
/// from those series only.
fn half_scores(
    corpus: &Corpus,
    scores: &BTreeMap<String, Vec<f64>>,
    keep: impl Fn(usize) -> bool,
) -> Vec<ProfileScore> {
    let scored: Vec<Scored<'_>> = corpus
        .entries
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, e)| Scored {
            name: &e.name,
            timestamps_ms: &e.series.timestamps_ms,
            scores: &scores[&e.name],
            windows: &e.windows,
        })
        .collect();
    corpus.profiles.iter().map(|p| score(&scored, p)).collect()
}

/// `DIR/reference-scores.json`, when present.
fn read_reference(dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = dir.join("reference-scores.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value =
        serde_json::from_str(&text).with_context(|| format!("in {}: not JSON", path.display()))?;
    Ok(Some(value))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}
