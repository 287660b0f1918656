//! `dwcp slo list|put|delete`: an app's service level objectives, and
//! every SLO's burn rates and error budget left.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use state::Name;

use crate::cli::client::{self, ApiArgs, Client, ListArgs};
use crate::cli::table;

/// Set, list and delete SLOs: what share of an app's requests must be good
/// over a rolling window, and where its alerts go.
///
/// An availability SLO counts requests answered without a 5xx; a latency
/// SLO counts requests answered within --latency-ms. The leader evaluates
/// every SLO each second with the SRE workbook's multiwindow burn-rate
/// rules: 14.4x the allowed error rate over 1 h and 5 min, or 6x over 6 h
/// and 30 min, pages (alert SloBurnRateFast); 1x over 3 days and 6 h opens
/// a ticket (SloErrorBudgetTicket). A firing alert opens one incident
/// (`dwcp incident list`) and notifies the SLO's targets: an Alertmanager
/// (alerts pushed to its /api/v2/alerts as Prometheus does, re-sent every
/// minute while firing, with endsAt when resolved), receivers of
/// Alertmanager's webhook JSON, PagerDuty Events v2, Slack-compatible
/// webhooks.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
  dwcp slo put hello availability --availability --target 0.999 \\\n      \
  --alertmanager-api http://127.0.0.1:9093     # push into this Alertmanager\n  \
  dwcp slo put hello availability --availability --target 0.999 \\\n      \
  --alertmanager-webhook http://127.0.0.1:5001/alerts   # a receiver of Alertmanager's webhook JSON\n  \
  dwcp slo put shop fast --latency-ms 300 --target 0.99 --window-days 7 --slack https://hooks.example.com/T/B/X\n  \
  dwcp slo put shop checkout --file checkout.toml   # the API's PUT body, as TOML or JSON\n  \
  dwcp slo list                                     # burn rates and budget left\n  \
  dwcp slo delete shop fast\n\n\
A file for --file:\n  \
  objective = \"availability\"    # or \"latency\" with threshold_ms = 300\n  \
  target = 0.999\n  \
  window_days = 30\n  \
  [[notify]]\n  \
  kind = \"pagerduty\"            # alertmanager_api, alertmanager (webhook JSON), pagerduty or slack\n  \
  url = \"https://events.pagerduty.com/v2/enqueue\"\n  \
  routing_key = \"R0UTINGKEY\"")]
pub struct SloArgs {
    #[command(subcommand)]
    command: SloCommand,
}

#[derive(clap::Subcommand)]
enum SloCommand {
    /// List every SLO with its burn rates per rule (long window/short
    /// window) and the error budget left over its window.
    List(ListArgs),
    Put(PutArgs),
    Delete(DeleteArgs),
    Export(ExportArgs),
}

/// Print the SLOs as Prometheus recording and alerting rules (Sloth/Pyrra
/// style): the error ratio per window and the same burn-rate alerts
/// (SloBurnRateFast, SloErrorBudgetTicket) for a Prometheus that scrapes
/// the nodes' /metrics. Check them with `promtool check rules FILE`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp slo export --format prometheus > dwcp-slos.yml && promtool check rules dwcp-slos.yml\n  dwcp slo export --format prometheus --app shop"
)]
struct ExportArgs {
    /// The rules' format; `prometheus` is the one there is.
    #[arg(long, value_name = "FORMAT", value_parser = ["prometheus"])]
    format: String,
    /// Only this app's SLOs.
    #[arg(long, value_name = "APP")]
    app: Option<String>,
    /// Only this tenant's SLOs.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Create or replace an SLO of an app, from flags or a file.
#[derive(clap::Args)]
struct PutArgs {
    /// The app.
    app: String,
    /// The SLO's name, unique per app (e.g. availability, fast).
    name: String,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// The PUT body as a TOML or JSON file (by extension; see below);
    /// instead of the flags.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["availability", "latency_ms", "target"])]
    file: Option<PathBuf>,
    /// An availability objective: requests answered without a 5xx.
    #[arg(long, conflicts_with = "latency_ms")]
    availability: bool,
    /// A latency objective: requests answered within this many ms.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,
    /// The share of requests that must be good, strictly between 0 and 1.
    #[arg(long, value_name = "RATIO")]
    target: Option<f64>,
    /// The rolling window the error budget is counted over, 1 to 90 days.
    #[arg(long, value_name = "DAYS")]
    window_days: Option<u32>,
    /// Push alerts into the Alertmanager at this URL (its /api/v2/alerts,
    /// e.g. http://127.0.0.1:9093), as Prometheus does (repeatable).
    #[arg(long, value_name = "URL")]
    alertmanager_api: Vec<String>,
    /// Post Alertmanager's webhook JSON (what its webhook_config sends) to
    /// a receiver at this URL (repeatable; also --alertmanager).
    #[arg(
        long = "alertmanager-webhook",
        visible_alias = "alertmanager",
        value_name = "URL"
    )]
    alertmanager: Vec<String>,
    /// Send alerts as Slack-compatible messages to this URL (repeatable).
    #[arg(long, value_name = "URL")]
    slack: Vec<String>,
    /// Send alerts as PagerDuty Events v2 to this URL (with --routing-key).
    #[arg(long, value_name = "URL", requires = "routing_key")]
    pagerduty: Option<String>,
    /// PagerDuty's integration key.
    #[arg(long, value_name = "KEY", requires = "pagerduty")]
    routing_key: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Delete an SLO.
#[derive(clap::Args)]
struct DeleteArgs {
    app: String,
    name: String,
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: SloArgs) -> Result<()> {
    match args.command {
        SloCommand::List(args) => {
            let client = Client::new(&args.api)?;
            Ok(client::block_on(client.print("/slos", args.json, render))?)
        }
        SloCommand::Put(args) => put(args),
        SloCommand::Export(args) => export(args),
        SloCommand::Delete(args) => {
            let path = slo_path(&args.tenant, &args.app, &args.name)?;
            let client = Client::new(&args.api)?;
            client::block_on(client.delete(&path))?;
            println!("deleted SLO {}/{}/{}", args.tenant, args.app, args.name);
            Ok(())
        }
    }
}

fn slo_path(tenant: &str, app: &str, name: &str) -> Result<String> {
    let tenant = Name::new("--tenant", tenant)?;
    let app = Name::new("APP", app)?;
    let name = Name::new("NAME", name)?;
    Ok(format!("{}/slos/{name}", client::app_path(&tenant, &app)))
}

fn put(args: PutArgs) -> Result<()> {
    let path = slo_path(&args.tenant, &args.app, &args.name)?;
    let body: Value = match &args.file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if file.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).with_context(|| format!("{}", file.display()))?
            } else {
                let value: toml::Value =
                    toml::from_str(&text).with_context(|| format!("{}", file.display()))?;
                serde_json::to_value(value)?
            }
        }
        None => {
            let Some(target) = args.target else {
                bail!("--target is required (the share of good requests, e.g. 0.999), or --file");
            };
            let mut body = match (args.availability, args.latency_ms) {
                (_, Some(ms)) => json!({"objective": "latency", "threshold_ms": ms}),
                (true, None) => json!({"objective": "availability"}),
                (false, None) => {
                    bail!("say what the SLO measures: --availability or --latency-ms MS")
                }
            };
            body["target"] = json!(target);
            if let Some(days) = args.window_days {
                body["window_days"] = json!(days);
            }
            let mut notify = Vec::new();
            for url in &args.alertmanager {
                notify.push(json!({"kind": "alertmanager", "url": url}));
            }
            for url in &args.alertmanager_api {
                notify.push(json!({"kind": "alertmanager_api", "url": url}));
            }
            for url in &args.slack {
                notify.push(json!({"kind": "slack", "url": url}));
            }
            if let (Some(url), Some(key)) = (&args.pagerduty, &args.routing_key) {
                notify.push(json!({"kind": "pagerduty", "url": url, "routing_key": key}));
            }
            body["notify"] = json!(notify);
            body
        }
    };
    let client = Client::new(&args.api)?;
    let stored: Value = client::block_on(client.put(&path, &body))?;
    println!(
        "stored SLO {}/{}/{}: {} {} over {} days, {} notification target(s)",
        args.tenant,
        args.app,
        args.name,
        stored["objective"].as_str().unwrap_or("?"),
        stored["target"],
        stored["window_days"],
        stored["notify"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

fn render(list: &Value) -> String {
    let slos = list["slos"].as_array().cloned().unwrap_or_default();
    if slos.is_empty() {
        return "no SLOs; set one with `dwcp slo put APP NAME --availability --target 0.999`\n"
            .into();
    }
    let rows: Vec<Vec<String>> = slos
        .iter()
        .map(|s| {
            let objective = match s["threshold_ms"].as_u64() {
                Some(ms) => format!("latency<={ms}ms"),
                None => s["objective"].as_str().unwrap_or("?").to_string(),
            };
            let status = &s["status"];
            let burn = |i: usize| {
                let r = &status["rules"][i];
                match (r["long_burn"].as_f64(), r["short_burn"].as_f64()) {
                    (Some(l), Some(s)) => {
                        format!(
                            "{l:.1}/{s:.1}{}",
                            if r["firing"] == true { "!" } else { "" }
                        )
                    }
                    _ => "-".into(),
                }
            };
            vec![
                format!(
                    "{}/{}",
                    s["tenant"].as_str().unwrap_or("?"),
                    s["app"].as_str().unwrap_or("?")
                ),
                s["name"].as_str().unwrap_or("?").to_string(),
                objective,
                s["target"].to_string(),
                format!("{}d", s["window_days"]),
                budget_cell(status, s["window_days"].as_u64().unwrap_or(0)),
                burn(0),
                burn(1),
                burn(2),
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "APP",
            "SLO",
            "OBJECTIVE",
            "TARGET",
            "WINDOW",
            "BUDGET LEFT",
            "BURN 1H/5M",
            "BURN 6H/30M",
            "BURN 3D/6H",
        ],
        &rows,
    );
    out.push_str("burn rates: times the allowed error rate over the long/short window; ! fires\n");
    if out.contains(" seen)") {
        out.push_str(
            "budget left (N seen): the window's budget projected from the history seen so far\n",
        );
    }
    out
}

fn export(args: ExportArgs) -> Result<()> {
    debug_assert_eq!(args.format, "prometheus");
    let client = Client::new(&args.api)?;
    let list: Value = client::block_on(client.get("/slos"))?;
    let slos = list["slos"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| args.app.as_deref().is_none_or(|a| s["app"] == a))
        .filter(|s| args.tenant.as_deref().is_none_or(|t| s["tenant"] == t))
        .map(crate::cli::slo_export::ExportSlo::from_api)
        .collect::<Result<Vec<_>>>()?;
    print!("{}", crate::cli::slo_export::prometheus_rules(&slos)?);
    Ok(())
}

/// The BUDGET LEFT cell: the share left, and how much of the window it was
/// judged on while that is less than the whole (a new SLO).
fn budget_cell(status: &Value, window_days: u64) -> String {
    let Some(left) = status["budget_remaining"].as_f64() else {
        return "-".into();
    };
    let left = format!("{:.1}%", left * 100.0);
    match status["history_ms"].as_u64() {
        Some(ms) if ms < window_days * 86_400_000 => format!("{left} ({} seen)", span(ms)),
        _ => left,
    }
}

/// `45s`, `12m`, `5h`, `3d`: the largest whole unit.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_new_slos_budget_says_how_much_it_has_seen() {
        let status = json!({"budget_remaining": 0.994, "history_ms": 15_000});
        assert_eq!(budget_cell(&status, 30), "99.4% (15s seen)");
        let status = json!({"budget_remaining": -0.5, "history_ms": 30 * 86_400_000u64});
        assert_eq!(budget_cell(&status, 30), "-50.0%");
        assert_eq!(budget_cell(&json!(null), 30), "-");
        assert_eq!(span(2 * 3_600_000 + 5), "2h");
    }
}
