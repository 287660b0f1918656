//! `dwcp autopilot anomalies|forecast|predictions|causes`: what the
//! autopilot sees — detections with their evidence, forecasts with their
//! 90 % bands, failures predicted with an ETA and why, and the causes it
//! ranks. Each is one GET of `/api/v1/…/autopilot/…`, printed as a table
//! or (`--json`, `-o json`) as the API's JSON. The API checks every
//! parameter (a 400 names it); this command only checks that a value can
//! travel in a query string.

use anyhow::{Result, bail};
use serde::Deserialize;
use state::autopilot::{Detection, Diagnosis, Metric, Prediction};

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// What the autopilot sees: anomalies, forecasts, predicted failures and
/// their likely causes.
///
/// Every node samples its reports each round (10 s; `dwcp up
/// --autopilot-every`) into one series per node, app, version and region
/// and metric; the leader runs four streaming detectors on them, fits
/// trends towards each limit (slots, memory, disk, an SLO's error rate or
/// latency, an app's concurrency, a region's capacity) and ranks causes
/// when an SLO alert fires or an anomaly is strong. docs/autopilot.md
/// explains each detector and how to read a prediction.
///
/// Without --tenant the cluster's findings are listed (nodes and regions
/// included; needs a role on every tenant); with --tenant only that
/// tenant's (a role in it is enough). --app needs a tenant (`default`
/// unless given).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
  dwcp autopilot predictions                      # failures foretold, with ETA and why\n  \
  dwcp autopilot predictions --status open --kind disk_full\n  \
  dwcp autopilot anomalies --app hello --metric latency_p99_ms\n  \
  dwcp autopilot causes --app hello               # top five causes per diagnosis\n  \
  dwcp autopilot forecast hello --horizon 15m --horizon 1h\n  \
  dwcp autopilot forecast --node n1 --metric memory_bytes --horizon 6h\n  \
  dwcp -o json autopilot predictions              # the API's JSON\n\n\
Metrics: request_rate, error_ratio, latency_p50_ms, latency_p99_ms, concurrency,\n  \
  live_sandboxes, memory_bytes, disk_bytes, silence_s, reporting_nodes\n\
Failure kinds: slot_exhaustion, memory_exhaustion, disk_full, version_errors,\n  \
  version_latency, node_silent, region_capacity, load_past_capacity\n\
Horizons: 5m to 24h (e.g. 5m, 15m, 1h, 6h, 24h, or milliseconds)")]
pub struct AutopilotArgs {
    #[command(subcommand)]
    command: AutopilotCommand,
}

/// The `dwcp autopilot` subcommands. Part 2's (acting) are added beside
/// these.
#[derive(clap::Subcommand)]
enum AutopilotCommand {
    /// The acting subcommands (pause, resume, log, explain, approve, ...).
    #[command(flatten)]
    Act(crate::cli::autopilot_act::ActCommand),
    /// Anomalies detected, newest first: the value seen, the value and
    /// band expected, the score (0.5 and up is anomalous) and which of
    /// the four detectors fired.
    Anomalies(AnomaliesArgs),
    /// Forecast an app's (or a node's) metric 5 minutes to 24 hours ahead,
    /// with the band the value should fall in 90 % of the time and the
    /// model that gave it.
    Forecast(ForecastArgs),
    /// Failures foretold: what (the kind), where, when (the ETA and its
    /// interval, from the trend's interval) and why; open, happened or
    /// cleared.
    Predictions(PredictionsArgs),
    /// Causes ranked for an SLO alert, a strong anomaly or a prediction:
    /// the top five candidates (a version, node, region, tenant or a
    /// recent change in the store) with their evidence.
    Causes(CausesArgs),
}

/// Which findings: the flags every listing shares.
#[derive(clap::Args)]
struct Scope {
    /// Only this tenant's findings (the tenant-scoped route).
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Only this app's (its tenant is --tenant, `default` unless given).
    #[arg(long, value_name = "APP")]
    app: Option<String>,
    /// Only findings on this node.
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// At most this many, newest first (1 to 500; the API's default 100).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args)]
struct AnomaliesArgs {
    /// Only this metric's anomalies (see the list below `--help`).
    #[arg(long, value_name = "METRIC")]
    metric: Option<String>,
    #[command(flatten)]
    scope: Scope,
}

#[derive(clap::Args)]
struct PredictionsArgs {
    /// Only this kind of failure (see the list below `--help`).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Only open, happened or cleared predictions.
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    #[command(flatten)]
    scope: Scope,
}

#[derive(clap::Args)]
struct CausesArgs {
    #[command(flatten)]
    scope: Scope,
}

#[derive(clap::Args)]
struct ForecastArgs {
    /// The app to forecast (or --node instead).
    #[arg(conflicts_with = "node")]
    app: Option<String>,
    /// The app's tenant.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Forecast a node's series instead of an app's.
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// The metric (default request_rate; a node also has live_sandboxes,
    /// memory_bytes, disk_bytes, ...).
    #[arg(long, value_name = "METRIC")]
    metric: Option<String>,
    /// How far ahead, 5m to 24h (repeatable; default 5m, 15m, 1h, 6h, 24h).
    #[arg(long, value_name = "H")]
    horizon: Vec<String>,
    /// Recent points to include in the JSON (0 to 360; default 60).
    #[arg(long, value_name = "N")]
    points: Option<u32>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: AutopilotArgs) -> Result<()> {
    match args.command {
        AutopilotCommand::Act(command) => crate::cli::autopilot_act::run(command),
        AutopilotCommand::Anomalies(a) => {
            let path = listing("anomalies", &a.scope, &[("metric", a.metric.as_deref())])?;
            let client = Client::new(&a.scope.api)?;
            Ok(client::block_on(client.print(
                &path,
                a.scope.json,
                |l: &Anomalies| render_anomalies(&l.anomalies),
            ))?)
        }
        AutopilotCommand::Predictions(a) => {
            let path = listing(
                "predictions",
                &a.scope,
                &[("kind", a.kind.as_deref()), ("status", a.status.as_deref())],
            )?;
            let client = Client::new(&a.scope.api)?;
            Ok(client::block_on(client.print(
                &path,
                a.scope.json,
                |l: &Predictions| render_predictions(&l.predictions),
            ))?)
        }
        AutopilotCommand::Causes(a) => {
            let path = listing("causes", &a.scope, &[])?;
            let client = Client::new(&a.scope.api)?;
            Ok(client::block_on(client.print(
                &path,
                a.scope.json,
                |l: &Causes| render_causes(&l.diagnoses),
            ))?)
        }
        AutopilotCommand::Forecast(a) => {
            let path = forecast_path(&a)?;
            let client = Client::new(&a.api)?;
            Ok(client::block_on(client.print(
                &path,
                a.json,
                render_forecast,
            ))?)
        }
    }
}

/// A value for a query string: the API's names, metrics, kinds and
/// durations are all made of these characters, so anything else is refused
/// here, naming the flag, rather than sent mangled.
fn query_value(flag: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > 100
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        bail!(
            "--{flag}: `{}` is not a value the API takes (letters, digits, `-`, `_` and `.`; see --help)",
            value.chars().take(100).collect::<String>()
        );
    }
    Ok(())
}

/// `path?k=v&…` from the pairs that are set, each checked.
fn with_query(path: String, pairs: &[(&str, Option<&str>)]) -> Result<String> {
    let mut query = Vec::new();
    for (key, value) in pairs {
        if let Some(v) = value {
            query_value(key, v)?;
            query.push(format!("{key}={v}"));
        }
    }
    Ok(if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    })
}

/// The path of a listing: the tenant's route with --tenant (or --app),
/// else the cluster's.
fn listing(what: &str, scope: &Scope, extra: &[(&str, Option<&str>)]) -> Result<String> {
    let tenant = match (&scope.tenant, &scope.app) {
        (Some(t), _) => Some(t.as_str()),
        (None, Some(_)) => Some("default"),
        (None, None) => None,
    };
    let base = match tenant {
        Some(t) => {
            query_value("tenant", t)?;
            format!("/tenants/{t}/autopilot/{what}")
        }
        None => format!("/autopilot/{what}"),
    };
    let limit = scope.limit.map(|l| l.to_string());
    let mut pairs = vec![
        ("app", scope.app.as_deref()),
        ("node", scope.node.as_deref()),
        ("limit", limit.as_deref()),
    ];
    pairs.extend_from_slice(extra);
    with_query(base, &pairs)
}

fn forecast_path(a: &ForecastArgs) -> Result<String> {
    let base = match (&a.app, &a.node) {
        (Some(app), None) => {
            query_value("tenant", &a.tenant)?;
            query_value("app", app)?;
            format!("/tenants/{}/apps/{app}/autopilot/forecast", a.tenant)
        }
        (None, Some(_)) => "/autopilot/forecast".to_string(),
        _ => bail!("app: name an app (`dwcp autopilot forecast APP`) or a node (`--node NODE`)"),
    };
    let points = a.points.map(|p| p.to_string());
    let mut pairs: Vec<(&str, Option<&str>)> = vec![
        ("node", a.node.as_deref()),
        ("metric", a.metric.as_deref()),
        ("points", points.as_deref()),
    ];
    pairs.extend(a.horizon.iter().map(|h| ("horizon", Some(h.as_str()))));
    with_query(base, &pairs)
}

#[derive(Deserialize)]
struct Anomalies {
    anomalies: Vec<Detection>,
}

#[derive(Deserialize)]
struct Predictions {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Causes {
    diagnoses: Vec<Diagnosis>,
}

/// `GET …/autopilot/forecast`'s answer (`autopilot::pilot::ForecastView`).
#[derive(Deserialize)]
struct Forecast {
    series: state::autopilot::SeriesKey,
    recent: Vec<Point>,
    forecasts: Vec<Horizon>,
    limit: Option<f64>,
}

#[derive(Deserialize)]
struct Point {
    t_ms: u64,
    value: f64,
}

#[derive(Deserialize)]
struct Horizon {
    t_ms: i64,
    horizon_ms: i64,
    value: f64,
    band: Option<Band>,
    coverage: f64,
    model: String,
}

#[derive(Deserialize)]
struct Band {
    low: f64,
    high: f64,
}

fn time(ms: u64) -> String {
    let t = cluster::rfc3339::format_ms(ms);
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

fn num(metric: Metric, v: f64) -> String {
    autopilot::predict::quantity(metric, v)
}

fn render_anomalies(list: &[Detection]) -> String {
    if list.is_empty() {
        return "no anomalies detected\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let num = |v| num(d.series.metric, v);
            let expected = match (d.expected, d.band) {
                (Some(e), Some(b)) => format!("{} ({} .. {})", num(e), num(b.low), num(b.high)),
                (Some(e), None) => num(e),
                _ => "-".into(),
            };
            let fired: Vec<String> = d
                .detectors
                .iter()
                .filter(|v| v.fired)
                .map(|v| format!("{} {:.2}", v.detector, v.strength))
                .collect();
            vec![
                d.id.to_string(),
                time(d.t_ms),
                d.series.to_string(),
                num(d.observed),
                expected,
                format!("{:.2}", d.score),
                if fired.is_empty() {
                    "-".into()
                } else {
                    fired.join(", ")
                },
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "TIME (UTC)",
            "SERIES",
            "OBSERVED",
            "EXPECTED (BAND)",
            "SCORE",
            "FIRED",
        ],
        &rows,
    )
}

fn render_predictions(list: &[Prediction]) -> String {
    if list.is_empty() {
        return "no failures predicted\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            let num = |v| num(p.series.metric, v);
            // The ETA as the prediction saw it when last updated.
            let eta = format!(
                "{} (in {}, {} .. {})",
                time(p.eta.at_ms),
                after(p.updated_ms, p.eta.at_ms),
                after(p.updated_ms, p.eta.earliest_ms),
                after(p.updated_ms, p.eta.latest_ms),
            );
            vec![
                p.id.to_string(),
                p.kind.to_string(),
                p.subject.to_string(),
                p.status.as_str().to_string(),
                eta,
                format!("{} / {}", num(p.value), num(p.limit)),
                p.incident.map_or("-".into(), |i| format!("#{i}")),
                p.why.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "KIND",
            "WHERE",
            "STATUS",
            "ETA (UTC; from the last update)",
            "NOW / LIMIT",
            "INCIDENT",
            "WHY",
        ],
        &rows,
    )
}

/// How long after `from_ms` `at_ms` is; an ETA's open end (no upper
/// bound: the slope's interval reaches zero) says so.
fn after(from_ms: u64, at_ms: u64) -> String {
    if at_ms == u64::MAX {
        "longer".into()
    } else {
        autopilot::predict::duration(at_ms.saturating_sub(from_ms))
    }
}

fn render_causes(list: &[Diagnosis]) -> String {
    if list.is_empty() {
        return "no diagnoses (one is made when an SLO alert fires, an anomaly is strong or a failure is predicted)\n".into();
    }
    let mut out = String::new();
    for d in list {
        out.push_str(&format!(
            "diagnosis {} at {}: {}{}\n",
            d.id,
            time(d.t_ms),
            d.trigger,
            d.onset_ms
                .map_or(String::new(), |o| format!(", began about {}", time(o)))
        ));
        let rows: Vec<Vec<String>> = d
            .causes
            .iter()
            .map(|c| {
                vec![
                    c.rank.to_string(),
                    c.candidate.to_string(),
                    format!("{:.2}", c.score),
                    c.evidence.join("; "),
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str("  no candidate had evidence\n");
        } else {
            for line in table::render(&["RANK", "CANDIDATE", "SCORE", "EVIDENCE"], &rows).lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

fn render_forecast(f: &Forecast) -> String {
    let num = |v| num(f.series.metric, v);
    let mut out = format!("{}", f.series);
    if let Some(last) = f.recent.last() {
        out.push_str(&format!(
            ", last {} at {}",
            num(last.value),
            time(last.t_ms)
        ));
    }
    if let Some(limit) = f.limit {
        out.push_str(&format!(", fails at {}", num(limit)));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = f
        .forecasts
        .iter()
        .map(|h| {
            vec![
                autopilot::predict::duration(h.horizon_ms.max(0) as u64),
                time(h.t_ms.max(0) as u64),
                num(h.value),
                h.band.as_ref().map_or_else(
                    || "learning".to_string(),
                    |b| format!("{} .. {}", num(b.low), num(b.high)),
                ),
                format!("{:.0} %", h.coverage * 100.0),
                h.model.clone(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["HORIZON", "AT (UTC)", "VALUE", "BAND", "COVERAGE", "MODEL"],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_that_cannot_travel_are_refused_naming_the_flag() {
        let e = with_query("/x".into(), &[("horizon", Some("1h&node=x"))]).unwrap_err();
        assert!(e.to_string().starts_with("--horizon:"), "{e}");
        assert_eq!(
            with_query(
                "/x".into(),
                &[("a", Some("1")), ("b", None), ("c", Some("z"))]
            )
            .unwrap(),
            "/x?a=1&c=z"
        );
    }
}
