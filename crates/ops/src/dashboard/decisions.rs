//! The Autopilot page's Decisions section (issue 20, the acting half):
//! the approvals waiting for a person, with Approve and Reject buttons,
//! then the latest decisions — the trouble, the action, why, the
//! guardrails' checks with their values, where the action stands and an
//! Undo button where it can be taken back. Read from the store's act
//! book (replicated: every node shows the same). The buttons POST to the
//! API's approve, reject and undo routes with the session's CSRF token
//! (`assets/dashboard.js`); the API decides who may (an admin whose login
//! passed TOTP) and the page shows its refusal.

use state::act::approval::ApprovalState;
use state::act::book::{ActBook, ApprovalRecord};
use state::act::guard::{Check, Verdict};
use state::act::record::{Decision, Outcome};
use state::act::view::EntryState;

use super::html::{badge, escape, table, time};
use super::pages::{View, action};
use crate::api::autopilot_act::{outcome_name, why};

/// Decisions shown, newest first.
const DECISIONS_SHOWN: usize = 30;

/// The section's HTML.
pub fn decisions(view: &View) -> String {
    let book = view.state.acts();
    let controls = &book.controls;
    let switches = format!(
        r#"<p class="switches" id="act-controls">{} · destructive actions {}</p>"#,
        if controls.paused {
            badge("paused (kill switch)", "bad")
        } else {
            badge("running", "good")
        },
        if controls.destructive_enabled {
            "applied"
        } else {
            "only proposed (dwcp autopilot enable destructive)"
        }
    );
    format!(
        "<h2>Decisions</h2>{switches}<h3>Waiting for a person</h3>{}<h3>Latest decisions</h3>{}",
        waiting(book),
        log(book)
    )
}

fn waiting(book: &ActBook) -> String {
    let mut waiting: Vec<&ApprovalRecord> = book
        .approvals
        .values()
        .filter(|r| r.approval.state.waiting())
        .collect();
    waiting.sort_by_key(|r| r.approval.decision);
    let rows: Vec<Vec<String>> = waiting
        .iter()
        .map(|r| {
            let a = &r.approval;
            let base = format!("/api/v1/autopilot/approvals/{}", a.decision);
            vec![
                format!(
                    r#"<span class="approval" data-id="{0}">#{0}</span>"#,
                    a.decision
                ),
                format!("<strong>{}</strong>", escape(&a.action.to_string())),
                a.reasons
                    .iter()
                    .map(|r| escape(r))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                approval_state(&a.state),
                time(a.asked_ms),
                time(a.deadline_ms(&book.times)),
                a.safe_default
                    .as_ref()
                    .map_or("nothing".into(), |d| escape(&d.to_string())),
                format!(
                    "{}{}",
                    action(&format!("{base}/approve"), "Approve"),
                    action(&format!("{base}/reject"), "Reject")
                ),
            ]
        })
        .collect();
    table(
        &[
            "decision",
            "action",
            "why a person decides",
            "state",
            "asked (UTC)",
            "deadline (UTC)",
            "safe default at the deadline",
            "",
        ],
        &rows,
        "No action waits for a person.",
    )
}

fn log(book: &ActBook) -> String {
    let rows: Vec<Vec<String>> = book
        .decisions
        .iter()
        .rev()
        .take(DECISIONS_SHOWN)
        .map(|d| {
            let t = &d.evidence.trouble;
            let outcome = outcome_name(d);
            let class = match outcome {
                "acted" => "good",
                "proposed" => "warn",
                "refused" => "bad",
                _ => "muted",
            };
            vec![
                format!(r#"<span class="decision" data-id="{0}">#{0}</span>"#, d.id),
                time(d.evidence.now_ms),
                format!(
                    "{} on {}<br><small>{:?} · score {:.2}</small>",
                    escape(t.class.as_str()),
                    escape(&t.place.to_string()),
                    t.basis,
                    t.score
                ),
                badge(outcome, class),
                d.outcome
                    .action()
                    .map_or("–".into(), |a| escape(&a.to_string())),
                format!(
                    r#"<span class="why">{}</span><br><small>{}</small>"#,
                    escape(&why(d)),
                    escape(&d.counterfactual)
                ),
                checks(d),
                standing(book, d),
            ]
        })
        .collect();
    table(
        &[
            "id",
            "time (UTC)",
            "trouble",
            "outcome",
            "action",
            "why (and the counterfactual)",
            "guardrails",
            "state",
        ],
        &rows,
        "No decision yet: the autopilot decides when it sees a trouble a policy rule answers.",
    )
}

/// The guardrail checks of the action the decision settled on (or, when
/// none, of the first it checked), each with its value and limits.
fn checks(d: &Decision) -> String {
    let settled = d.outcome.action();
    let considered = d
        .considered
        .iter()
        .find(|c| settled.is_some() && c.action.as_ref() == settled && !c.checks.is_empty())
        .or_else(|| d.considered.iter().find(|c| !c.checks.is_empty()));
    let Some(c) = considered else {
        return "–".into();
    };
    let lines: Vec<String> = c.checks.iter().map(check).collect();
    format!(r#"<small class="checks">{}</small>"#, lines.join("<br>"))
}

fn check(c: &Check) -> String {
    let (word, class) = match c.verdict {
        Verdict::Pass => ("pass", "good"),
        Verdict::Soft => ("soft", "warn"),
        Verdict::Breach => ("breach", "bad"),
    };
    // A switch (the kill switch, a target held) measures nothing.
    if c.value == 0.0 && c.soft == 0.0 && c.limit == 0.0 {
        return format!("{} {}", badge(word, class), escape(c.guardrail.as_str()));
    }
    format!(
        "{} {} <span>{} (soft {}, limit {})</span>",
        badge(word, class),
        escape(c.guardrail.as_str()),
        number(c.value),
        number(c.soft),
        number(c.limit)
    )
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Where the decision's action stands: its approval, the ledger's
/// entries (the action, then its undo), and an Undo button while the
/// latest is applied and has one.
fn standing(book: &ActBook, d: &Decision) -> String {
    let mut parts = Vec::new();
    if let Some(r) = book.approvals.get(&d.id) {
        parts.push(approval_state(&r.approval.state));
        if let Some(applied) = &r.applied {
            parts.push(format!("<small>{}</small>", escape(applied)));
        }
    } else if matches!(d.outcome, Outcome::Proposed { .. }) {
        parts.push(badge("not applied", "muted"));
    }
    let entries: Vec<_> = book
        .ledger
        .entries
        .iter()
        .filter(|e| e.decision == d.id)
        .collect();
    for e in &entries {
        let (word, class) = match e.state {
            EntryState::Running => ("running", "warn"),
            EntryState::Done => ("done", "good"),
            EntryState::Undone => ("undone", "muted"),
            EntryState::Failed => ("failed", "bad"),
        };
        parts.push(format!(
            r#"<span class="entry" data-state="{word}">{} <small>{}</small></span>"#,
            badge(word, class),
            escape(&e.action.to_string())
        ));
    }
    if let Some(last) = entries.last()
        && last.state == EntryState::Done
        && let Some(undo) = last.action.undo()
    {
        parts.push(action(
            &format!("/api/v1/autopilot/decisions/{}/undo", d.id),
            &format!("Undo ({undo})"),
        ));
    }
    if parts.is_empty() {
        return "–".into();
    }
    parts.join("<br>")
}

fn approval_state(state: &ApprovalState) -> String {
    match state {
        ApprovalState::Asked => badge("asked", "warn"),
        ApprovalState::Reminded => badge("reminded", "warn"),
        ApprovalState::Paged => badge("paged", "bad"),
        ApprovalState::Approved { by, .. } => badge(&format!("approved by {by}"), "good"),
        ApprovalState::Rejected { by, .. } => badge(&format!("rejected by {by}"), "muted"),
        ApprovalState::Expired { .. } => badge("expired: safe default", "muted"),
    }
}
