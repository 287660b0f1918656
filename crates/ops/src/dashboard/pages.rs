//! What each page shows, as HTML parts rendered from one view of the
//! cluster: the replicated state this node applied, the dashboard's
//! history of rates, and the Raft status. The same functions render a page
//! when it is first loaded and every live update after it.

use std::fmt::Write;

use control::State;
use control::cluster::ClusterStatus;

use super::Page;
use super::chart::{line, number};
use super::history::{History, Series};
use super::html::{badge, escape, table, tile, time};
use crate::api::{capacity, costs};

/// The charts cover the last five minutes, or the last minute while the
/// history is younger.
const SPAN_MS: u64 = 5 * 60_000;
const MIN_SPAN_MS: u64 = 60_000;
/// Audit entries shown.
const AUDIT_SHOWN: usize = 200;

/// Everything a page is rendered from.
pub struct View<'a> {
    pub state: &'a State,
    pub history: &'a History,
    /// `None` when this node could not tell (no leader reachable).
    pub status: Option<&'a ClusterStatus>,
    pub now_ms: u64,
}

/// The parts of `page`, by the id of the section each fills.
pub fn parts(page: Page, view: &View) -> Vec<(&'static str, String)> {
    match page {
        Page::Overview => vec![
            ("tiles", tiles(view)),
            ("charts", charts(view)),
            ("regions", regions(view)),
        ],
        Page::Apps => vec![("apps", apps(view))],
        Page::Rollouts => vec![("rollouts", rollouts(view))],
        Page::Nodes => vec![("nodes", nodes(view))],
        Page::Incidents => vec![("incidents", incidents(view))],
        Page::Slos => vec![("slos", slos(view))],
        Page::Capacity => vec![("capacity", capacity_tables(view))],
        Page::Costs => vec![("costs", cost_tables(view))],
        Page::Audit => vec![("audit", audit(view))],
    }
}

fn tiles(view: &View) -> String {
    let rates = view.history.rates();
    let last = view.history.last();
    let p99 = last.and_then(|s| s.p99_ms);
    let live = last.map_or(0, |s| s.live_sandboxes);
    let nodes = view.state.nodes().count();
    let fresh = view
        .state
        .nodes()
        .filter(|n| view.history.node_fresh(n.name.as_str()) == Some(true))
        .count();
    let leader = view.status.map_or_else(
        || "unknown".to_string(),
        |s| match s.leader {
            Some(id) => format!("node {id}, term {}", s.term),
            None => format!("none (term {})", s.term),
        },
    );
    let error_class = if rates.error_ratio > 0.01 { "bad" } else { "" };
    let health_class = if fresh < nodes { "bad" } else { "" };
    [
        tile(
            "req-rate",
            "requests / s",
            rates.requests_per_s,
            &number(rates.requests_per_s),
            "",
        ),
        tile(
            "error-rate",
            "errors",
            rates.error_ratio * 100.0,
            &format!("{} %", number(rates.error_ratio * 100.0)),
            error_class,
        ),
        tile(
            "latency-p99",
            "latency p99",
            p99.unwrap_or(0.0),
            &p99.map_or_else(|| "–".to_string(), |v| format!("{} ms", number(v))),
            "",
        ),
        tile("live-sandboxes", "live sandboxes", live as f64, &live.to_string(), ""),
        tile(
            "start-rate",
            "sandbox starts / s",
            rates.starts_per_s,
            &number(rates.starts_per_s),
            "",
        ),
        tile(
            "nodes-healthy",
            "nodes reporting",
            fresh as f64,
            &format!("{fresh} / {nodes}"),
            health_class,
        ),
        format!(
            r#"<div class="tile"><div class="label">Raft leader</div><div class="value small" id="leader">{}</div></div>"#,
            escape(&leader)
        ),
    ]
    .concat()
}

fn charts(view: &View) -> String {
    let h = view.history;
    let now = h.last().map_or(view.now_ms, |s| s.at_ms);
    // A young history fills a minute-wide chart rather than a corner of a
    // five-minute one.
    let span = now
        .saturating_sub(h.first_at_ms().unwrap_or(now))
        .clamp(MIN_SPAN_MS, SPAN_MS);
    [
        line(
            "Requests per second",
            "req/s",
            &h.series(Series::RequestsPerSecond),
            now,
            span,
        ),
        line(
            "Error rate",
            "%",
            &h.series(Series::ErrorPercent),
            now,
            span,
        ),
        line(
            "Latency p99",
            "ms",
            &h.series(Series::LatencyP99Ms),
            now,
            span,
        ),
        line(
            "Live sandboxes",
            "",
            &h.series(Series::LiveSandboxes),
            now,
            span,
        ),
        line(
            "Sandbox starts per second",
            "/s",
            &h.series(Series::StartsPerSecond),
            now,
            span,
        ),
    ]
    .concat()
}

fn regions(view: &View) -> String {
    let c = capacity::capacity(view.state);
    let rows: Vec<Vec<String>> = c
        .regions
        .iter()
        .map(|r| {
            let fresh = c
                .nodes
                .iter()
                .filter(|n| n.region == r.region)
                .filter(|n| view.history.node_fresh(&n.node) == Some(true))
                .count();
            vec![
                escape(&r.region),
                format!("{fresh} / {}", r.nodes),
                r.usage.live.map_or("–".into(), |l| l.to_string()),
                r.usage.placed.to_string(),
                r.usage.capacity.to_string(),
            ]
        })
        .collect();
    format!(
        "<h2>Regions</h2>{}",
        table(
            &[
                "region",
                "nodes reporting",
                "live sandboxes",
                "placed",
                "capacity"
            ],
            &rows,
            "No regions yet: start a node with `dwcp up`."
        )
    )
}

fn apps(view: &View) -> String {
    let s = view.state;
    let now = view.history.last().map_or(view.now_ms, |x| x.at_ms);
    let rows: Vec<Vec<String>> = s
        .apps()
        .map(|app| {
            let key = (app.tenant.to_string(), app.name.to_string());
            let rates = view.history.app_rates(&key);
            let versions: Vec<String> = s
                .versions(&app.tenant, &app.name)
                .filter(|v| v.baseline_of.is_none())
                .map(|v| v.number.to_string())
                .collect();
            let deployment = s.deployment(&app.tenant, &app.name);
            let deployed = deployment.map_or_else(
                || badge("not deployed", "muted"),
                |d| format!("v{}", d.version),
            );
            let regions = deployment.map_or_else(String::new, |d| {
                d.regions
                    .iter()
                    .map(|(r, n)| format!("{}×{n}", escape(r.as_str())))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            let rollout = s
                .active_rollout(&app.tenant, &app.name)
                .map_or_else(String::new, |r| {
                    badge(
                        &format!("v{} → v{} at {} %", r.from, r.to, r.progress.weight),
                        "warn",
                    )
                });
            let spark = line(
                "requests/s",
                "",
                &view.history.app_series(&key),
                now,
                SPAN_MS,
            );
            vec![
                escape(app.tenant.as_str()),
                format!(
                    r#"<strong>{}</strong> <code>{}</code>"#,
                    escape(app.name.as_str()),
                    escape(&app.route)
                ),
                deployed,
                escape(&versions.join(", ")),
                regions,
                rollout,
                format!(
                    r#"<span class="app-rate" data-app="{}/{}" data-value="{}">{}</span>"#,
                    escape(&key.0),
                    escape(&key.1),
                    rates.requests_per_s,
                    number(rates.requests_per_s)
                ),
                format!("{} %", number(rates.error_ratio * 100.0)),
                format!(r#"<div class="spark">{spark}</div>"#),
            ]
        })
        .collect();
    table(
        &[
            "tenant",
            "app",
            "deployed",
            "versions",
            "regions",
            "rollout",
            "req/s",
            "errors",
            "last 5 min",
        ],
        &rows,
        "No apps yet: `dwcp deploy` creates one.",
    )
}

fn rollouts(view: &View) -> String {
    let s = view.state;
    let mut all: Vec<&control::Rollout> = s
        .apps()
        .flat_map(|a| s.rollouts_of(&a.tenant, &a.name))
        .collect();
    // Running first, then the newest.
    all.sort_by_key(|r| (!r.active(), std::cmp::Reverse(r.started_unix_ms)));
    let regions: Vec<String> = s.regions().map(|r| r.name.to_string()).collect();
    let rows: Vec<Vec<String>> = all
        .iter()
        .take(100)
        .map(|r| {
            let status = match &r.progress.status {
                rollout::Status::Progressing => badge("progressing", "warn"),
                rollout::Status::Paused => badge("paused", "warn"),
                rollout::Status::Succeeded => badge("succeeded", "good"),
                rollout::Status::Aborted { .. } => badge("aborted", "bad"),
            };
            let weights = if r.active() {
                regions
                    .iter()
                    .map(|region| {
                        let w = r.weights_in(region);
                        format!(
                            "{}: {}/{}/{}",
                            escape(region),
                            w.stable,
                            w.baseline,
                            w.canary
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            } else {
                String::new()
            };
            let last = r
                .trail
                .iter()
                .rev()
                .take(3)
                .map(|t| format!("{} {}: {}", time(t.unix_ms), escape(&t.by), escape(&t.text)))
                .collect::<Vec<_>>()
                .join("<br>");
            vec![
                format!("{}/{}", escape(r.tenant.as_str()), escape(r.app.as_str())),
                format!("#{} v{} → v{}", r.id, r.from, r.to),
                status,
                format!("{} of {}", r.progress.step + 1, r.plan.steps.len()),
                format!("{} %", r.progress.weight),
                weights,
                format!(
                    "{} measured, {} failed, {} inconclusive",
                    r.progress.analysis.measurements,
                    r.progress.analysis.failures,
                    r.progress.analysis.inconclusive
                ),
                format!(r#"<div class="trail">{last}</div>"#),
            ]
        })
        .collect();
    table(
        &[
            "app",
            "rollout",
            "status",
            "step",
            "canary",
            "stable/baseline/canary per region",
            "analysis",
            "latest verdicts",
        ],
        &rows,
        "No rollouts yet: `dwcp rollout start APP --to VERSION` starts one.",
    )
}

fn nodes(view: &View) -> String {
    let s = view.state;
    let rows: Vec<Vec<String>> = s
        .nodes()
        .map(|n| {
            let health = match view.history.node_fresh(n.name.as_str()) {
                Some(true) => badge("reporting", "good"),
                Some(false) => badge("stale", "bad"),
                None => badge("no report", "muted"),
            };
            let member = view
                .status
                .and_then(|st| st.members.iter().find(|m| m.address == n.address));
            let raft = member.map_or_else(String::new, |m| {
                let lag = m.lag.map_or(String::new(), |l| format!(", {l} behind"));
                format!("{} {}{lag}", m.role, if m.voter { "(voter)" } else { "" })
            });
            let report = s.report(&n.name);
            let placed: u64 = s.placements_on(&n.name).map(|p| u64::from(p.count)).sum();
            vec![
                format!("<strong>{}</strong>", escape(n.name.as_str())),
                escape(n.region.as_str()),
                format!("<code>{}</code>", escape(&n.address)),
                health,
                escape(&raft),
                report.map_or("–".into(), |r| r.live_sandboxes.to_string()),
                report.map_or("–".into(), |r| r.templates_ready.to_string()),
                format!("{placed} / {}", n.capacity),
            ]
        })
        .collect();
    table(
        &[
            "node",
            "region",
            "address",
            "health",
            "raft",
            "live sandboxes",
            "templates ready",
            "placed / capacity",
        ],
        &rows,
        "No nodes yet.",
    )
}

fn incidents(_view: &View) -> String {
    r#"<p class="empty">Incidents are opened by SLO alerts (see the SLOs page).</p>"#.to_string()
}

fn slos(_view: &View) -> String {
    r#"<p class="empty">No SLOs yet.</p>"#.to_string()
}

fn capacity_tables(view: &View) -> String {
    let c = capacity::capacity(view.state);
    let bar = |u: &capacity::Use| {
        let used = if u.capacity == 0 {
            0.0
        } else {
            (u.placed as f64 / u.capacity as f64 * 100.0).min(100.0)
        };
        format!(
            r#"<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="{used:.0} % placed"><rect class="back" width="100" height="10"/><rect class="used" width="{used:.1}" height="10"/></svg>"#
        )
    };
    let cells = |u: &capacity::Use| {
        vec![
            u.capacity.to_string(),
            u.placed.to_string(),
            u.headroom.to_string(),
            u.live.map_or("–".into(), |l| l.to_string()),
            bar(u),
        ]
    };
    let regions: Vec<Vec<String>> = c
        .regions
        .iter()
        .map(|r| {
            let mut row = vec![escape(&r.region), r.nodes.to_string()];
            row.extend(cells(&r.usage));
            row
        })
        .collect();
    let nodes: Vec<Vec<String>> = c
        .nodes
        .iter()
        .map(|n| {
            let mut row = vec![escape(&n.node), escape(&n.region)];
            row.extend(cells(&n.usage));
            row
        })
        .collect();
    format!(
        "<h2>Per region</h2>{}<h2>Per node</h2>{}",
        table(
            &[
                "region", "nodes", "capacity", "placed", "headroom", "live", "use"
            ],
            &regions,
            "No regions yet."
        ),
        table(
            &[
                "node", "region", "capacity", "placed", "headroom", "live", "use"
            ],
            &nodes,
            "No nodes yet."
        )
    )
}

fn cost_tables(view: &View) -> String {
    let c = costs::costs(view.state);
    let mut out = String::new();
    match &c.prices {
        Some(p) => {
            let _ = write!(
                out,
                "<p>Prices: {} {} per sandbox-second, {} per GB-second, {} per million requests (set with <code>dwcp prices</code>).</p>",
                escape(&p.currency),
                p.per_sandbox_second,
                p.per_gb_second,
                p.per_million_requests
            );
        }
        None => out.push_str(
            r#"<p class="empty">No prices set: an admin sets them with <code>dwcp prices set</code>; usage is shown meanwhile.</p>"#,
        ),
    }
    let cost = |u: &costs::Usage| u.cost.map_or("–".into(), |c| format!("{c:.6}"));
    let apps: Vec<Vec<String>> = c
        .apps
        .iter()
        .map(|a| {
            vec![
                escape(&a.tenant),
                escape(&a.app),
                a.usage.requests.to_string(),
                format!("{:.3}", a.usage.sandbox_seconds),
                format!("{:.3}", a.usage.gb_seconds),
                cost(&a.usage),
            ]
        })
        .collect();
    let tenants: Vec<Vec<String>> = c
        .tenants
        .iter()
        .map(|t| {
            vec![
                escape(&t.tenant),
                t.usage.requests.to_string(),
                format!("{:.3}", t.usage.sandbox_seconds),
                format!("{:.3}", t.usage.gb_seconds),
                cost(&t.usage),
            ]
        })
        .collect();
    let _ = write!(
        out,
        "<h2>Per tenant</h2>{}<h2>Per app</h2>{}<p class=\"note\">Usage since each node's process started, from the nodes' last reports.</p>",
        table(
            &[
                "tenant",
                "requests",
                "sandbox-seconds",
                "GB-seconds",
                "cost"
            ],
            &tenants,
            "No usage yet."
        ),
        table(
            &[
                "tenant",
                "app",
                "requests",
                "sandbox-seconds",
                "GB-seconds",
                "cost"
            ],
            &apps,
            "No usage yet."
        )
    );
    out
}

fn audit(view: &View) -> String {
    let entries: Vec<&control::AuditEntry> = view.state.audit_since(control::Revision(0)).collect();
    let rows: Vec<Vec<String>> = entries
        .iter()
        .rev()
        .take(AUDIT_SHOWN)
        .map(|e| {
            vec![
                time(e.unix_ms),
                escape(&e.who),
                escape(&e.from),
                format!("<code>{}</code>", escape(&e.what)),
                e.revision.0.to_string(),
            ]
        })
        .collect();
    table(
        &["when (UTC)", "who", "from", "what", "revision"],
        &rows,
        "No changes recorded yet.",
    )
}
