//! `dwcp slo export --format prometheus`: the cluster's SLOs as Prometheus
//! recording and alerting rules in the Sloth/Pyrra style, so a Prometheus
//! that scrapes the nodes' `/metrics` alerts on them as DWCP's own
//! evaluator does: the same SLIs, the same multiwindow burn-rate rules
//! (`ops::slo::RULES`) and the same alert names and severities.
//!
//! Per SLO: one recorded error ratio per window the rules use
//! (`dwcp:slo_error_ratio:rate5m` ... `rate3d`, labelled with the app's
//! `tenant`, `app` and the `slo`), the objective and its error budget as
//! recorded constants, then `SloBurnRateFast` (page: the 1 h and 6 h rules)
//! and `SloErrorBudgetTicket` (ticket: the 3-day rule).

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde_json::Value;

/// The latency histogram's bucket bounds, in µs (`dwcp_request_duration_seconds`).
use node::gateway::LATENCY_BUCKETS_US;

/// One SLO as `GET /slos` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSlo {
    pub tenant: String,
    pub app: String,
    pub name: String,
    /// `None`: availability; `Some(ms)`: latency within `ms`.
    pub threshold_ms: Option<u64>,
    pub target: f64,
    pub window_days: u64,
}

impl ExportSlo {
    /// Reads one entry of `GET /slos`.
    pub fn from_api(v: &Value) -> Result<ExportSlo> {
        let text = |key: &str| -> Result<String> {
            match v[key].as_str() {
                Some(s) => Ok(s.to_string()),
                None => bail!("the API's SLO has no `{key}`: {v}"),
            }
        };
        let threshold_ms = match v["objective"].as_str() {
            Some("availability") => None,
            Some("latency") => Some(v["threshold_ms"].as_u64().ok_or_else(|| {
                anyhow::anyhow!("the API's latency SLO has no `threshold_ms`: {v}")
            })?),
            other => bail!("the API's SLO has an unknown objective {other:?}: {v}"),
        };
        Ok(ExportSlo {
            tenant: text("tenant")?,
            app: text("app")?,
            name: text("name")?,
            threshold_ms,
            target: v["target"]
                .as_f64()
                .ok_or_else(|| anyhow::anyhow!("the API's SLO has no `target`: {v}"))?,
            window_days: v["window_days"].as_u64().unwrap_or(30),
        })
    }
}

/// `5m`, `1h`, `3d`: a window in PromQL's duration syntax.
fn promql_window(ms: u64) -> String {
    const MIN: u64 = 60_000;
    match ms {
        ms if ms % (24 * 60 * MIN) == 0 => format!("{}d", ms / (24 * 60 * MIN)),
        ms if ms % (60 * MIN) == 0 => format!("{}h", ms / (60 * MIN)),
        ms => format!("{}m", ms / MIN),
    }
}

/// The windows the rules use, shortest first, each once.
fn windows() -> Vec<u64> {
    let mut w: Vec<u64> = ops::slo::RULES
        .iter()
        .flat_map(|r| [r.short_ms, r.long_ms])
        .collect();
    w.sort_unstable();
    w.dedup();
    w
}

/// The largest latency bucket bound at or below `threshold_ms`, in µs, as
/// the exposition writes it in `le` (seconds), with `.0` also matched for
/// whole numbers (Prometheus 3 writes `le` as a float). A threshold between
/// two bounds is judged at the lower one: stricter, never laxer.
fn latency_bucket(threshold_ms: u64) -> Option<(u64, String)> {
    let us = LATENCY_BUCKETS_US
        .iter()
        .copied()
        .filter(|&b| b <= threshold_ms.saturating_mul(1000))
        .max()?;
    let seconds = format!("{}", us as f64 / 1e6);
    let matcher = if seconds.contains('.') {
        seconds
    } else {
        format!("{seconds}|{seconds}.0")
    };
    Some((us, matcher))
}

/// The error ratio of `slo` over `window`, in PromQL: bad requests over
/// all, summed over the nodes and versions.
fn error_ratio(slo: &ExportSlo, window: &str) -> Result<String> {
    let app = format!(
        "tenant=\"{}\",app=\"{}\"",
        slo.tenant.escape_default(),
        slo.app.escape_default()
    );
    let all = format!("sum by (tenant, app) (rate(dwcp_requests_total{{{app}}}[{window}]))");
    Ok(match slo.threshold_ms {
        None => format!(
            "sum by (tenant, app) (rate(dwcp_request_errors_total{{{app},class=~\"5xx|timeout\"}}[{window}]))\n/\n{all}"
        ),
        Some(ms) => {
            let Some((_, le)) = latency_bucket(ms) else {
                bail!(
                    "SLO {}/{}/{}: a latency threshold of {ms} ms is below the histogram's smallest bucket ({} µs)",
                    slo.tenant,
                    slo.app,
                    slo.name,
                    LATENCY_BUCKETS_US[0]
                );
            };
            format!(
                "(\n  {all}\n  -\n  sum by (tenant, app) (rate(dwcp_request_duration_seconds_bucket{{{app},le=~\"{le}\"}}[{window}]))\n)\n/\n{all}"
            )
        }
    })
}

/// `v` in at most 12 decimals, trailing zeros cut (`1 - 0.999` is
/// 0.0010000000000000009 in floating point; the rule reads 0.001).
fn decimal(v: f64) -> String {
    let text = format!("{v:.12}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".into()
    } else {
        text.into()
    }
}

/// YAML's double-quoted form of `s` (JSON's string syntax is a subset).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Appends `text` as a YAML literal block, indented by `indent` spaces.
fn block(out: &mut String, indent: usize, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
}

/// The rules file for `slos`: one group per SLO, as `promtool check rules`
/// and Prometheus's `rule_files` read it.
pub fn prometheus_rules(slos: &[ExportSlo]) -> Result<String> {
    let mut out = String::from(
        "# DWCP's SLOs as Prometheus rules (`dwcp slo export --format prometheus`): the error\n\
         # ratio per window, and the SRE workbook's multiwindow burn-rate alerts that DWCP's own\n\
         # evaluator fires (docs/slos.md). Scrape every node's /metrics.\n\
         groups:\n",
    );
    if slos.is_empty() {
        out.push_str("  []\n");
        return Ok(out);
    }
    for slo in slos {
        let labels = format!(
            "tenant: {}, app: {}, slo: {}",
            quoted(&slo.tenant),
            quoted(&slo.app),
            quoted(&slo.name)
        );
        let selector = format!(
            "{{tenant=\"{}\",app=\"{}\",slo=\"{}\"}}",
            slo.tenant.escape_default(),
            slo.app.escape_default(),
            slo.name.escape_default()
        );
        let budget = decimal(1.0 - slo.target);
        let _ = writeln!(
            out,
            "  - name: {}",
            quoted(&format!("dwcp-slo-{}-{}-{}", slo.tenant, slo.app, slo.name))
        );
        out.push_str("    rules:\n");
        for window_ms in windows() {
            let window = promql_window(window_ms);
            let _ = writeln!(out, "      - record: dwcp:slo_error_ratio:rate{window}");
            out.push_str("        expr: |\n");
            block(&mut out, 10, &error_ratio(slo, &window)?);
            let _ = writeln!(out, "        labels: {{slo: {}}}", quoted(&slo.name));
        }
        let _ = writeln!(
            out,
            "      - record: dwcp:slo_objective:ratio\n        expr: vector({})\n        labels: {{{labels}}}",
            slo.target
        );
        let _ = writeln!(
            out,
            "      - record: dwcp:slo_error_budget:ratio\n        expr: vector({budget})\n        labels: {{{labels}}}"
        );
        let objective = match slo.threshold_ms {
            None => "requests answered without a 5xx".to_string(),
            Some(ms) => format!("requests answered within {ms} ms"),
        };
        for (alert, severity) in [
            (ops::slo::eval::PAGE_ALERT, ops::slo::Severity::Page),
            (ops::slo::eval::TICKET_ALERT, ops::slo::Severity::Ticket),
        ] {
            let conditions: Vec<String> = ops::slo::RULES
                .iter()
                .filter(|r| r.severity == severity)
                .map(|r| {
                    let (long, short) = (promql_window(r.long_ms), promql_window(r.short_ms));
                    format!(
                        "(\n  dwcp:slo_error_ratio:rate{long}{selector} > ({} * {budget})\n  and\n  dwcp:slo_error_ratio:rate{short}{selector} > ({} * {budget})\n)",
                        r.factor, r.factor
                    )
                })
                .collect();
            let severity = match severity {
                ops::slo::Severity::Page => "page",
                ops::slo::Severity::Ticket => "ticket",
            };
            let _ = writeln!(out, "      - alert: {alert}");
            out.push_str("        expr: |\n");
            block(&mut out, 10, &conditions.join("\nor\n"));
            let _ = writeln!(
                out,
                "        labels: {{severity: {severity}, {labels}}}\n        annotations:\n          summary: {}\n          description: {}",
                quoted(&format!(
                    "{}/{} is spending its error budget for SLO {} too fast",
                    slo.tenant, slo.app, slo.name
                )),
                quoted(&format!(
                    "{} of {objective} over {} days; burn rates as DWCP's `dwcp slo list` shows them",
                    slo.target, slo.window_days
                )),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(threshold_ms: Option<u64>) -> ExportSlo {
        ExportSlo {
            tenant: "default".into(),
            app: "shop".into(),
            name: if threshold_ms.is_some() {
                "fast"
            } else {
                "availability"
            }
            .into(),
            threshold_ms,
            target: 0.999,
            window_days: 30,
        }
    }

    #[test]
    fn windows_and_buckets() {
        let names: Vec<String> = windows().into_iter().map(promql_window).collect();
        assert_eq!(names, ["5m", "30m", "1h", "6h", "3d"]);
        assert_eq!(latency_bucket(300), Some((250_000, "0.25".into())));
        assert_eq!(latency_bucket(1000), Some((1_000_000, "1|1.0".into())));
        assert_eq!(latency_bucket(0), None);
        assert_eq!(decimal(1.0 - 0.999), "0.001");
        assert_eq!(decimal(14.4), "14.4");
        assert!(prometheus_rules(&[slo(Some(0))]).is_err());
    }

    #[test]
    fn the_api_s_slos_are_read() {
        let v = serde_json::json!({"tenant": "default", "app": "shop", "name": "fast",
            "objective": "latency", "threshold_ms": 300, "target": 0.999, "window_days": 30});
        assert_eq!(ExportSlo::from_api(&v).unwrap(), slo(Some(300)));
        let bad = serde_json::json!({"tenant": "default", "app": "shop", "name": "x", "objective": "vibes"});
        assert!(ExportSlo::from_api(&bad).is_err());
    }

    /// `promtool` (Debian's `prometheus` package, installed by
    /// scripts/test.sh): the file passes `check rules`, and `test rules`
    /// fires the page for a burst of errors and stays quiet at the
    /// objective, like DWCP's own evaluator.
    #[test]
    fn promtool_checks_the_rules_and_fires_the_page_on_a_burst() {
        if std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "skipped: promtool is not installed (scripts/test.sh installs Debian's `prometheus` package)"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("dwcp-slos.yml");
        std::fs::write(
            &rules,
            prometheus_rules(&[slo(None), slo(Some(300))]).unwrap(),
        )
        .unwrap();
        let check = std::process::Command::new("promtool")
            .args(["check", "rules"])
            .arg(&rules)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // 100 requests a minute on one node; from minute 60 on, 50 of
        // them fail (a burn rate of 500): after 5 minutes of it the page
        // fires. The latency SLO sees every request within 250 ms.
        let test = r#"
rule_files: [dwcp-slos.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dwcp_requests_total{tenant="default",app="shop",version="1"}'
        values: '0+100x120'
      - series: 'dwcp_request_errors_total{tenant="default",app="shop",version="1",class="5xx"}'
        values: '0+0x60 50+50x60'
      - series: 'dwcp_request_errors_total{tenant="default",app="shop",version="1",class="timeout"}'
        values: '0+0x120'
      - series: 'dwcp_request_duration_seconds_bucket{tenant="default",app="shop",version="1",le="0.25"}'
        values: '0+100x120'
    alert_rule_test:
      - eval_time: 55m
        alertname: SloBurnRateFast
        exp_alerts: []
      - eval_time: 70m
        alertname: SloBurnRateFast
        exp_alerts:
          - exp_labels: {severity: page, tenant: default, app: shop, slo: availability}
            exp_annotations:
              summary: "default/shop is spending its error budget for SLO availability too fast"
              description: "0.999 of requests answered without a 5xx over 30 days; burn rates as DWCP's `dwcp slo list` shows them"
    promql_expr_test:
      - expr: dwcp:slo_error_ratio:rate5m{slo="fast"}
        eval_time: 70m
        exp_samples:
          - labels: 'dwcp:slo_error_ratio:rate5m{tenant="default",app="shop",slo="fast"}'
            value: 0
"#;
        let tests = dir.path().join("test.yml");
        std::fs::write(&tests, test).unwrap();
        let run = std::process::Command::new("promtool")
            .args(["test", "rules"])
            .arg(&tests)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
