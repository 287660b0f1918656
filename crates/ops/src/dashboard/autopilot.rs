//! The Autopilot page: the failures it predicts (what, where, ETA, why),
//! the forecasts of the predicted series and of the busiest apps with
//! their 90 % bands and limits drawn, the anomalies it detected with
//! their evidence, and the causes it ranked. Findings come from the state
//! (replicated: every node shows the same); forecasts from this node's
//! own signals (`crate::forecasts`), as `GET …/autopilot/forecast` does.
//! The `decisions` section is the acting half's (issue 20,
//! [`super::decisions`]).

use std::collections::BTreeSet;

use autopilot::findings::{Metric, PredictionStatus, SeriesKey, Subject};
use autopilot::predict::{duration, quantity};

use super::chart::{Ahead, forecast};
use super::html::{badge, escape, table, time};
use super::pages::View;

/// Forecast charts drawn at most.
const CHARTS: usize = 6;
/// The forecast's horizons on a chart: the next hour.
const CHART_HORIZONS_MS: [i64; 4] = [300_000, 900_000, 1_800_000, 3_600_000];
/// Recent points on a chart (the rings keep an hour).
const CHART_POINTS: usize = 180;
/// Rows of anomalies and diagnoses shown.
const ANOMALIES_SHOWN: usize = 30;
const DIAGNOSES_SHOWN: usize = 10;
const PREDICTIONS_SHOWN: usize = 50;

/// The page's sections, by id.
pub fn parts(view: &View) -> Vec<(&'static str, String)> {
    vec![
        ("predictions", predictions(view)),
        ("forecasts", forecasts(view)),
        ("anomalies", anomalies(view)),
        ("causes", causes(view)),
        ("decisions", super::decisions::decisions(view)),
    ]
}

fn predictions(view: &View) -> String {
    let mut all: Vec<_> = view.state.predictions().rev().collect();
    // Open first, then the newest.
    all.sort_by_key(|p| {
        (
            p.status != PredictionStatus::Open,
            std::cmp::Reverse(p.updated_ms),
        )
    });
    let rows: Vec<Vec<String>> = all
        .iter()
        .take(PREDICTIONS_SHOWN)
        .map(|p| {
            let status = match p.status {
                PredictionStatus::Open => badge("open", "bad"),
                PredictionStatus::Happened => badge("happened", "warn"),
                PredictionStatus::Cleared => badge("cleared", "good"),
            };
            let from = p.updated_ms;
            let after = |at: u64| {
                if at == u64::MAX {
                    "longer".to_string()
                } else {
                    duration(at.saturating_sub(from))
                }
            };
            let eta = format!(
                r#"<span class="eta" data-eta-ms="{}">in {}</span><br><small>{} .. {} · {}</small>"#,
                p.eta.at_ms,
                after(p.eta.at_ms),
                after(p.eta.earliest_ms),
                after(p.eta.latest_ms),
                time(p.eta.at_ms),
            );
            let metric = p.series.metric;
            vec![
                format!("#{}", p.id),
                format!("<strong>{}</strong>", escape(p.kind.as_str())),
                escape(&p.subject.to_string()),
                status,
                eta,
                format!(
                    "{} / {}",
                    escape(&quantity(metric, p.value)),
                    escape(&quantity(metric, p.limit))
                ),
                p.incident
                    .map_or("–".into(), |i| format!(r##"<a href="/incidents">#{i}</a>"##)),
                format!(r#"<span class="why">{}</span>"#, escape(&p.why)),
            ]
        })
        .collect();
    format!(
        "<h2>Predicted failures</h2>{}",
        table(
            &[
                "id",
                "what",
                "where",
                "status",
                "when (ETA, 90 % interval)",
                "now / limit",
                "incident",
                "why",
            ],
            &rows,
            "No failure predicted: no signal is trending towards its limit within 30 minutes.",
        )
    )
}

/// The series charted: those of open predictions first, then each app's
/// request rate (the apps with the most recent detections first).
fn charted(view: &View) -> Vec<SeriesKey> {
    let mut keys: Vec<SeriesKey> = Vec::new();
    let mut seen = BTreeSet::new();
    let open = view
        .state
        .predictions()
        .rev()
        .filter(|p| p.status == PredictionStatus::Open)
        .map(|p| p.series.clone());
    let apps = view.state.apps().map(|a| SeriesKey {
        subject: Subject::App {
            tenant: a.tenant.clone(),
            app: a.name.clone(),
        },
        metric: Metric::RequestRate,
    });
    for key in open.chain(apps) {
        if keys.len() >= CHARTS {
            break;
        }
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    }
    keys
}

/// Charts read in MiB where the metric is bytes.
fn scale(metric: Metric) -> (f64, &'static str) {
    match metric {
        Metric::MemoryBytes | Metric::DiskBytes => (f64::from(1u32 << 20), "MiB"),
        Metric::ErrorRatio => (0.01, "%"),
        Metric::LatencyP50Ms | Metric::LatencyP99Ms => (1.0, "ms"),
        Metric::RequestRate => (1.0, "req/s"),
        Metric::SilenceS => (1.0, "s"),
        _ => (1.0, ""),
    }
}

fn forecasts(view: &View) -> String {
    let Some(hook) = crate::forecasts::hook() else {
        return r#"<h2>Forecasts</h2><p class="empty">Not supported here: this process runs no autopilot (forecasts come from `dwcp up`'s).</p>"#.into();
    };
    let keys = charted(view);
    if keys.is_empty() {
        return r#"<h2>Forecasts</h2><p class="empty">Nothing to forecast yet: no app and no open prediction.</p>"#.into();
    }
    let mut out =
        String::from(r#"<h2>Forecasts (next hour, 90 % band shaded)</h2><div class="charts">"#);
    for key in keys {
        let (div, unit) = scale(key.metric);
        let title = key.to_string();
        match hook.forecast(&key, &CHART_HORIZONS_MS, CHART_POINTS) {
            Ok(v) => {
                let points: Vec<(u64, f64)> =
                    v.recent.iter().map(|p| (p.t_ms, p.value / div)).collect();
                let ahead: Vec<Ahead> = v
                    .forecasts
                    .iter()
                    .map(|f| {
                        (
                            f.t_ms.max(0) as u64,
                            f.value / div,
                            f.band.map(|b| (b.low / div, b.high / div)),
                        )
                    })
                    .collect();
                out.push_str(&forecast(
                    &title,
                    unit,
                    &points,
                    &ahead,
                    v.limit.map(|l| l / div),
                ));
            }
            Err(e) => {
                // Learning, or no signal yet: the recent points alone
                // would say little; say why instead.
                out.push_str(&format!(
                    r#"<div class="chart-note"><strong>{}</strong><p class="empty">{}</p></div>"#,
                    escape(&title),
                    escape(&e.to_string())
                ));
            }
        }
    }
    out.push_str("</div>");
    out
}

fn anomalies(view: &View) -> String {
    let rows: Vec<Vec<String>> = view
        .state
        .detections()
        .rev()
        .take(ANOMALIES_SHOWN)
        .map(|d| {
            let m = d.series.metric;
            let expected = match (d.expected, d.band) {
                (Some(e), Some(b)) => format!(
                    "{} <small>({} .. {})</small>",
                    escape(&quantity(m, e)),
                    escape(&quantity(m, b.low)),
                    escape(&quantity(m, b.high))
                ),
                (Some(e), None) => escape(&quantity(m, e)),
                _ => "–".into(),
            };
            let detectors = d
                .detectors
                .iter()
                .map(|v| {
                    let text = format!("{} {:.2}", v.detector, v.strength);
                    if v.fired {
                        format!("<strong>{}</strong>", escape(&text))
                    } else {
                        escape(&text)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                format!("#{}", d.id),
                time(d.t_ms),
                escape(&d.series.to_string()),
                escape(&quantity(m, d.observed)),
                expected,
                format!("{:.2}", d.score),
                detectors,
            ]
        })
        .collect();
    format!(
        "<h2>Anomalies</h2>{}",
        table(
            &[
                "id",
                "time (UTC)",
                "series",
                "observed",
                "expected (band)",
                "score",
                "detectors (fired in bold)",
            ],
            &rows,
            "No anomaly detected yet.",
        )
    )
}

fn causes(view: &View) -> String {
    let mut out = String::from("<h2>Likely causes (top five)</h2>");
    let mut any = false;
    for d in view.state.diagnoses().rev().take(DIAGNOSES_SHOWN) {
        any = true;
        let rows: Vec<Vec<String>> = d
            .causes
            .iter()
            .map(|c| {
                vec![
                    c.rank.to_string(),
                    format!("<strong>{}</strong>", escape(&c.candidate.to_string())),
                    format!("{:.2}", c.score),
                    c.evidence
                        .iter()
                        .map(|e| escape(e))
                        .collect::<Vec<_>>()
                        .join("<br>"),
                ]
            })
            .collect();
        out.push_str(&format!(
            r#"<div class="diagnosis"><h3>#{} · {} · {}</h3>{}</div>"#,
            d.id,
            time(d.t_ms),
            escape(&d.trigger.to_string()),
            table(
                &["rank", "candidate", "score", "evidence"],
                &rows,
                "No candidate had evidence.",
            )
        ));
    }
    if !any {
        out.push_str(r#"<p class="empty">No diagnosis yet: one is made when an SLO alert fires, an anomaly is strong or a failure is predicted.</p>"#);
    }
    out
}
