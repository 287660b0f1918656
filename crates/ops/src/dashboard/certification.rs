//! The Certification page: the latest report recorded (`dwcp certify`,
//! `POST /api/v1/certify/reports`) with each criterion's verdict and
//! measurement, its go-live sign-offs and the roles missing, the go-live
//! gate (what is marked production, open or closed and why), the waivers
//! (in force or lapsed) and the reports before it. The same status as
//! `GET /api/v1/certify` (`api::certify::status_of`).

use state::State;

use super::html::{badge, escape, table, time};
use crate::api::certify::{Summary, status_of};

/// The page's parts, by section id.
pub fn parts(state: &State, now_ms: u64) -> Vec<(&'static str, String)> {
    let status = status_of(state, now_ms);
    let latest = state.latest_certify_report();
    let report: Option<certify::Report> = latest.and_then(|r| serde_json::from_str(&r.json).ok());
    vec![
        ("certify-summary", summary(&status, report.as_ref())),
        ("certify-gate", gate(&status)),
        ("certify-criteria", criteria(report.as_ref())),
        ("certify-waivers", waivers(&status)),
        (
            "certify-history",
            history(
                &state
                    .certify_reports()
                    .iter()
                    .rev()
                    .map(Summary::of)
                    .collect::<Vec<_>>(),
            ),
        ),
    ]
}

fn summary(status: &crate::api::certify::Status, report: Option<&certify::Report>) -> String {
    let (Some(latest), Some(report)) = (&status.latest, report) else {
        return r#"<p class="empty">No certification report recorded. Run <code>dwcp certify --api URL --token ADMIN</code>: it records its report here.</p>"#.into();
    };
    let mut out = format!(
        r#"<p><strong id="certify-score">{}</strong> of 100 over {} criteria · {} · {} · started {} UTC · sha256 <code id="certify-sha">{}</code></p>"#,
        latest
            .score
            .map_or_else(|| "none".into(), certify::criterion::number),
        latest.criteria,
        escape(&latest.target),
        if latest.partial {
            "partial run (--quick or --only)"
        } else {
            "full run"
        },
        time(latest.started_unix_ms),
        escape(&latest.sha256),
    );
    let mut cats = Vec::new();
    for category in certify::Category::ALL {
        if let Some(c) = report.scores.categories.get(&category) {
            cats.push(vec![
                category.as_str().to_string(),
                c.score
                    .map_or_else(|| "none".into(), certify::criterion::number),
                c.pass.to_string(),
                c.warn.to_string(),
                c.fail.to_string(),
                c.waived.to_string(),
            ]);
        }
    }
    out.push_str(&table(
        &["category", "score", "pass", "warn", "fail", "waived"],
        &cats,
        "No criteria.",
    ));
    let signed: Vec<Vec<String>> = status
        .sign_offs
        .iter()
        .map(|s| {
            vec![
                escape(&s.role),
                badge("signed", "good"),
                escape(&s.by),
                time(s.unix_ms),
            ]
        })
        .chain(status.missing.iter().map(|role| {
            vec![
                escape(role),
                badge("missing", "bad"),
                "–".into(),
                "–".into(),
            ]
        }))
        .collect();
    out.push_str("<h2>Go-live sign-offs</h2>");
    out.push_str(&table(
        &["role", "state", "by", "when (UTC)"],
        &signed,
        "The policy names no role.",
    ));
    if let Some(why) = &status.refusal {
        out.push_str(&format!(
            r#"<p class="refusal">Cannot be signed now: {}</p>"#,
            escape(why)
        ));
    }
    out
}

/// The go-live gate: what it gates, and whether it is open.
fn gate(status: &crate::api::certify::Status) -> String {
    let policy = &status.policy;
    let gated = if policy.production {
        "the whole cluster (every app)".to_string()
    } else if policy.production_apps.is_empty() {
        return "<h2>Go-live gate</h2><p class=\"empty\">Nothing is marked production: rollouts and deployments are not gated (<code>dwcp certify policy --production on</code> or <code>--add-production-app TENANT/APP</code>).</p>".into();
    } else {
        policy
            .production_apps
            .iter()
            .map(|a| format!("<code>{}</code>", escape(a)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let state = match &status.gate {
        None => format!(
            "{}: rollouts and deployment changes pass.",
            badge("open", "good")
        ),
        Some(why) => format!(
            "{}: rollouts and deployment changes through the API are refused (409 <code>not_certified</code>) unless an admin overrides with a reason. {}",
            badge("closed", "bad"),
            escape(why)
        ),
    };
    format!(r#"<h2>Go-live gate</h2><p>Marked production: {gated}.</p><p class="gate">{state}</p>"#)
}

fn status_badge(status: certify::Status) -> String {
    let class = match status {
        certify::Status::Pass => "good",
        certify::Status::Warn | certify::Status::Waived => "warn",
        certify::Status::Fail => "bad",
    };
    badge(status.as_str(), class)
}

fn criteria(report: Option<&certify::Report>) -> String {
    let Some(report) = report else {
        return String::new();
    };
    let mut verdicts: Vec<&certify::Verdict> = report.criteria.iter().collect();
    // Failures first, then in the catalog's order.
    verdicts.sort_by_key(|v| v.status == certify::Status::Pass);
    let rows: Vec<Vec<String>> = verdicts
        .iter()
        .map(|v| {
            vec![
                format!("<code>{}</code>", escape(&v.id)),
                status_badge(v.status),
                v.value.map_or_else(
                    || r#"<span class="empty">unmeasured</span>"#.into(),
                    |x| format!("{} {}", certify::criterion::number(x), escape(&v.unit)),
                ),
                escape(&v.threshold),
                escape(&v.detail),
            ]
        })
        .collect();
    format!(
        "<h2>Criteria</h2>{}",
        table(
            &["criterion", "status", "measured", "threshold", "detail"],
            &rows,
            "No criteria.",
        )
    )
}

fn waivers(status: &crate::api::certify::Status) -> String {
    let rows: Vec<Vec<String>> = status
        .waivers
        .iter()
        .map(|w| {
            vec![
                format!("<code>{}</code>", escape(&w.waiver.criterion)),
                if w.in_force {
                    badge("in force", "warn")
                } else {
                    badge("lapsed", "bad")
                },
                time(w.waiver.expires_unix_ms),
                escape(&w.waiver.by),
                escape(&w.waiver.reason),
            ]
        })
        .collect();
    format!(
        "<h2>Waivers</h2>{}",
        table(
            &["criterion", "state", "expires (UTC)", "by", "reason"],
            &rows,
            "No waivers (`dwcp certify waive` makes one).",
        )
    )
}

fn history(reports: &[Summary]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                time(r.started_unix_ms),
                format!(
                    "<code>{}</code>",
                    escape(&r.sha256[..r.sha256.len().min(16)])
                ),
                r.score
                    .map_or_else(|| "none".into(), certify::criterion::number),
                r.not_passed.len().to_string(),
                if r.partial {
                    "partial".into()
                } else {
                    "full".into()
                },
                escape(&r.by),
            ]
        })
        .collect();
    format!(
        "<h2>Reports</h2>{}",
        table(
            &[
                "started (UTC)",
                "sha256",
                "score",
                "not passed",
                "run",
                "recorded by"
            ],
            &rows,
            "No reports.",
        )
    )
}
