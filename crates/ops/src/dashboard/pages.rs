//! What each page shows, as HTML parts rendered from one view of the
//! cluster: the replicated state this node applied, the dashboard's
//! history of rates, and the Raft status. The same functions render a page
//! when it is first loaded and every live update after it.

use std::fmt::Write;

use cluster::ClusterStatus;
use state::State;

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
        Page::Autopilot => super::autopilot::parts(view),
        Page::Audit => vec![("audit", audit(view))],
        Page::Certification => super::certification::parts(view.state, view.now_ms),
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

/// The charts' time axis: the newest sample, and how far back they reach.
/// A young history fills a minute-wide chart rather than a corner of a
/// five-minute one.
fn span(view: &View) -> (u64, u64) {
    let h = view.history;
    let now = h.last().map_or(view.now_ms, |s| s.at_ms);
    let span = now
        .saturating_sub(h.first_at_ms().unwrap_or(now))
        .clamp(MIN_SPAN_MS, SPAN_MS);
    (now, span)
}

fn charts(view: &View) -> String {
    let h = view.history;
    let (now, span) = span(view);
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
    let (now, span) = span(view);
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
                |d| {
                    let tier = s
                        .versions(&app.tenant, &app.name)
                        .find(|v| v.number == d.version)
                        .map_or(state::Tier::Wasm, |v| v.config.tier);
                    format!("v{} {}", d.version, badge(tier.as_str(), "muted"))
                },
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
            let spark = line("requests/s", "", &view.history.app_series(&key), now, span);
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
            "tenant", "app", "deployed", "versions", "regions", "rollout", "req/s", "errors",
            "recent",
        ],
        &rows,
        "No apps yet: `dwcp deploy` creates one.",
    )
}

fn rollouts(view: &View) -> String {
    let s = view.state;
    let mut all: Vec<&state::Rollout> = s
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
                state::rollout::Status::Progressing => badge("progressing", "warn"),
                state::rollout::Status::Paused => badge("paused", "warn"),
                state::rollout::Status::Succeeded => badge("succeeded", "good"),
                state::rollout::Status::Aborted { .. } => badge("aborted", "bad"),
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
                format!(
                    "{} of {}",
                    r.progress.shown_step(&r.plan),
                    r.plan.steps.len()
                ),
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
            // The scheduler's judgement, in the CLI's words.
            let fresh = view.history.node_fresh(n.name.as_str());
            let health = match fresh {
                Some(true) => badge("healthy", "good"),
                Some(false) => badge("down", "bad"),
                None => badge("no report", "muted"),
            };
            let member = view
                .status
                .and_then(|st| st.members.iter().find(|m| m.address == n.address));
            let raft = member.map_or_else(String::new, |m| {
                let lag = m.lag.map_or(String::new(), |l| format!(", {l} behind"));
                // A down node's role is what the leader last knew: not
                // shown as if it were current.
                let role = if fresh == Some(false) {
                    format!("unknown (last known {})", m.role)
                } else {
                    m.role.clone()
                };
                format!("{role} {}{lag}", if m.voter { "(voter)" } else { "" })
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

fn incidents(view: &View) -> String {
    let s = view.state;
    let mut all: Vec<&state::Incident> = s.incidents().rev().collect();
    // Unresolved first, then the newest.
    all.sort_by_key(|i| (!i.unresolved(), std::cmp::Reverse(i.opened_unix_ms)));
    let rows: Vec<Vec<String>> = all
        .iter()
        .take(100)
        .map(|i| {
            let status = match i.status {
                state::IncidentStatus::Open => badge("open", "bad"),
                state::IncidentStatus::Acknowledged => badge("acknowledged", "warn"),
                state::IncidentStatus::Resolved => badge("resolved", "good"),
            };
            let timeline = i
                .timeline
                .iter()
                .rev()
                .take(4)
                .map(|t| format!("{} {}: {}", time(t.unix_ms), escape(&t.who), escape(&t.text)))
                .collect::<Vec<_>>()
                .join("<br>");
            let runbooks = s
                .runbooks()
                .filter(|r| r.alerts.iter().any(|a| a == &i.alert))
                .map(|r| {
                    format!(
                        r#"<details><summary>{} <code>{}</code></summary><pre class="runbook">{}</pre></details>"#,
                        escape(&r.title),
                        escape(r.name.as_str()),
                        escape(&r.text)
                    )
                })
                .collect::<String>();
            let mut actions = String::new();
            if i.status == state::IncidentStatus::Open {
                actions.push_str(&action(&format!("/api/v1/incidents/{}/acknowledge", i.id), "Acknowledge"));
            }
            if i.unresolved() {
                actions.push_str(&action(&format!("/api/v1/incidents/{}/resolve", i.id), "Resolve"));
            }
            vec![
                format!("#{}", i.id),
                status,
                badge(i.severity.as_str(), if i.severity == state::Severity::Page { "bad" } else { "warn" }),
                format!("<strong>{}</strong><br>{}/{} · SLO {}", escape(&i.alert), escape(i.tenant.as_str()), escape(i.app.as_str()), escape(i.slo.as_str())),
                time(i.opened_unix_ms),
                i.time_to_acknowledge_ms().map_or("–".into(), duration),
                i.time_to_resolve_ms().map_or("–".into(), duration),
                format!(r#"<div class="trail">{timeline}</div>"#),
                if runbooks.is_empty() { r#"<span class="empty">none names this alert</span>"#.to_string() } else { runbooks },
                actions,
            ]
        })
        .collect();
    table(
        &[
            "incident",
            "status",
            "severity",
            "alert",
            "opened (UTC)",
            "to acknowledge",
            "to resolve",
            "timeline (latest)",
            "runbooks",
            "",
        ],
        &rows,
        "No incidents. SLO alerts open them (`dwcp slo put` sets objectives).",
    )
}

/// A button the dashboard's script turns into a `POST url` with the
/// session's CSRF token.
pub(crate) fn action(url: &str, label: &str) -> String {
    format!(
        r#"<button type="button" class="act" data-post="{}">{}</button> "#,
        escape(url),
        escape(label)
    )
}

/// Milliseconds as `5s`, `4m 0s`, or past an hour `1h 2m` (seconds no
/// longer matter there).
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

fn slos(view: &View) -> String {
    let s = view.state;
    let rows: Vec<Vec<String>> = s
        .slos()
        .map(|slo| {
            let objective = match slo.objective {
                state::Objective::Availability => "availability".to_string(),
                state::Objective::Latency { threshold_ms } => {
                    format!("latency ≤ {threshold_ms} ms")
                }
            };
            let status = s.slo_status(&slo.tenant, &slo.app, &slo.name);
            let budget = status.map_or_else(
                || badge("not evaluated yet", "muted"),
                |st| {
                    let left = st.budget_remaining * 100.0;
                    let class = if left < 0.0 {
                        "bad"
                    } else if left < 25.0 {
                        "warn"
                    } else {
                        "good"
                    };
                    // A new SLO's budget is projected from the history seen.
                    let seen = if st.history_ms < u64::from(slo.window_days) * 86_400_000 {
                        format!(" ({} h seen)", number(st.history_ms as f64 / 3_600_000.0))
                    } else {
                        String::new()
                    };
                    badge(&format!("{} % left{seen}", number(left)), class)
                },
            );
            let rules = status.map_or_else(String::new, |st| {
                st.rules
                    .iter()
                    .map(|r| {
                        let text = format!(
                            "{}: {}× over {} and {}× over {} (alert at {}×)",
                            r.rule,
                            number(r.long_burn),
                            window(r.long_window_ms),
                            number(r.short_burn),
                            window(r.short_window_ms),
                            number(r.factor)
                        );
                        if r.firing {
                            format!("{} {}", badge("firing", "bad"), escape(&text))
                        } else {
                            escape(&text)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            });
            let notify = slo
                .notify
                .iter()
                // The API's name of the kind (e.g. `alertmanager_api`).
                .map(|t| match serde_json::to_value(t.kind) {
                    Ok(serde_json::Value::String(kind)) => kind,
                    _ => format!("{:?}", t.kind).to_lowercase(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                format!(
                    "{}/{}",
                    escape(slo.tenant.as_str()),
                    escape(slo.app.as_str())
                ),
                format!("<strong>{}</strong>", escape(slo.name.as_str())),
                escape(&objective),
                format!(
                    "{} % over {} d",
                    number(slo.target * 100.0),
                    slo.window_days
                ),
                budget,
                format!(r#"<div class="trail">{rules}</div>"#),
                escape(&notify),
            ]
        })
        .collect();
    table(
        &[
            "app",
            "slo",
            "objective",
            "target",
            "error budget",
            "burn rates",
            "notifies",
        ],
        &rows,
        "No SLOs yet: `dwcp slo put` sets one per app.",
    )
}

/// A window length as `5m`, `1h` or `3d`.
fn window(ms: u64) -> String {
    let minutes = ms / 60_000;
    if minutes.is_multiple_of(1440) {
        format!("{}d", minutes / 1440)
    } else if minutes.is_multiple_of(60) {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
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
    let entries: Vec<&state::AuditEntry> = view.state.audit_since(state::Revision(0)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use state::{Command, Name, NotifyKind, NotifyTarget, Objective, Quotas, Revision, Severity};

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    /// An app with an SLO, an incident its alert opened and a runbook
    /// naming the alert.
    fn state() -> State {
        let mut s = State::default();
        let runbook =
            "+++\ntitle = \"Burning <fast>\"\nalerts = [\"SloBurnRateFast\"]\n+++\nRoll back.\n";
        for c in [
            Command::PutTenant {
                name: n("acme"),
                quotas: Quotas::default(),
            },
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::PutSlo {
                slo: state::Slo {
                    tenant: n("acme"),
                    app: n("shop"),
                    name: n("availability"),
                    objective: Objective::Availability,
                    target: 0.999,
                    window_days: 30,
                    notify: vec![NotifyTarget {
                        kind: NotifyKind::Alertmanager,
                        url: "http://127.0.0.1:9093/hook".into(),
                        routing_key: None,
                        sealed: None,
                    }],
                    updated: Revision::default(),
                },
            },
            Command::OpenIncident {
                fingerprint: "acme/shop/availability/page".into(),
                alert: "SloBurnRateFast".into(),
                tenant: n("acme"),
                app: n("shop"),
                slo: n("availability"),
                severity: Severity::Page,
                text: "burning <200x>".into(),
                by: "dwcp".into(),
                now_unix_ms: 1_000,
            },
            Command::PutRunbook {
                name: n("burn"),
                title: "Burning <fast>".into(),
                alerts: vec!["SloBurnRateFast".into()],
                text: runbook.into(),
            },
        ] {
            s.apply(&c).unwrap();
        }
        s
    }

    fn render(page: Page, state: &State) -> String {
        let history = History::new();
        let view = View {
            state,
            history: &history,
            status: None,
            now_ms: 2_000,
        };
        parts(page, &view)
            .into_iter()
            .map(|(_, html)| html)
            .collect()
    }

    #[test]
    fn incidents_show_their_timeline_runbooks_and_actions_escaped() {
        let s = state();
        let html = render(Page::Incidents, &s);
        assert!(
            html.contains("SloBurnRateFast") && html.contains("#1"),
            "{html}"
        );
        assert!(html.contains("burning &lt;200x&gt;") && !html.contains("<200x>"));
        assert!(html.contains("Burning &lt;fast&gt;") && html.contains("Roll back."));
        assert!(html.contains(r#"data-post="/api/v1/incidents/1/acknowledge""#));
        assert!(html.contains(r#"data-post="/api/v1/incidents/1/resolve""#));
    }

    #[test]
    fn slos_show_their_objective_and_wait_for_an_evaluation() {
        let s = state();
        let html = render(Page::Slos, &s);
        assert!(
            html.contains("availability") && html.contains("99.9 % over 30 d"),
            "{html}"
        );
        assert!(html.contains("not evaluated yet") && html.contains("alertmanager"));
    }

    #[test]
    fn durations_and_windows_read_short() {
        assert_eq!(duration(59_000), "59s");
        assert_eq!(duration(170_000), "2m 50s");
        assert_eq!(duration(7_500_000), "2h 5m");
        assert_eq!(window(300_000), "5m");
        assert_eq!(window(3_600_000), "1h");
        assert_eq!(window(259_200_000), "3d");
    }
}
