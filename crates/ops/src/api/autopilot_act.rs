//! The autopilot's acting (issue 20):
//! - `GET|PUT /autopilot/controls`: the kill switch, destructive actions
//!   applied or only proposed, and the nodes the autopilot cordoned or
//!   drained;
//! - `GET|PUT /autopilot/policy`: TOML, checked whole (empty: the
//!   defaults);
//! - `GET /autopilot/decisions` and `GET /autopilot/decisions/{id}`: the
//!   log, and one decision with its evidence, its approval and the
//!   actions it applied; `GET /tenants/{tenant}/autopilot/decisions`: the
//!   decisions about one tenant's apps and versions;
//! - `GET /autopilot/approvals`, `POST
//!   /autopilot/approvals/{id}/approve|reject`;
//! - `POST /autopilot/decisions/{id}/undo`: take an applied action back.
//!
//! Changes are an admin's on every tenant, and for a user's session need
//! a login that passed TOTP (`auth.rs`), like a failover's approval.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::Command;
use state::act::book::{ActCommand, Answer, ApprovalRecord, Schedule};
use state::act::policy::Policy;
use state::act::record::{Decision, Outcome, Proposal};
use state::act::view::{Controls, Entry};
use std::collections::BTreeMap;

use super::body::{read_json, read_limited};
use super::error::ApiError;
use super::reply::{Reply, commit, json, with_revision};
use super::test_clock;
use crate::ControlPlane;
use crate::dashboard::Feed;

/// Most decisions one `GET /autopilot/decisions` lists.
const MAX_LIST: usize = 500;
/// Largest policy file, bytes.
const MAX_POLICY_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlsBody {
    // Absent: unchanged; `null` is refused (it would read as absent).
    #[serde(default, deserialize_with = "super::strict::present")]
    paused: Option<bool>,
    #[serde(default, deserialize_with = "super::strict::present")]
    destructive_enabled: Option<bool>,
}

/// The switches and what they left on the nodes.
#[derive(Serialize)]
struct ControlsReply {
    #[serde(flatten)]
    controls: Controls,
    /// Nodes the autopilot cordoned or drained, by name.
    schedules: BTreeMap<String, Schedule>,
}

async fn controls_reply<P: ControlPlane>(plane: &P) -> Result<ControlsReply, ApiError> {
    Ok(plane
        .read(|s| ControlsReply {
            controls: s.acts().controls.clone(),
            schedules: s.acts().schedules.clone(),
        })
        .await?)
}

/// `GET /autopilot/controls`.
pub(crate) async fn controls<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &controls_reply(plane).await?)
}

/// `PUT /autopilot/controls`.
pub(crate) async fn set_controls<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let body: ControlsBody = read_json(&parts.headers, body).await?;
    if body.paused.is_none() && body.destructive_enabled.is_none() {
        return Err(ApiError::invalid(
            "paused",
            "give `paused` or `destructive_enabled` (true or false)",
        ));
    }
    let (revision, _) = commit(
        plane,
        Command::Act {
            act: ActCommand::SetControls {
                paused: body.paused,
                destructive_enabled: body.destructive_enabled,
            },
        },
    )
    .await?;
    Ok(with_revision(
        json(StatusCode::OK, &controls_reply(plane).await?)?,
        revision,
    ))
}

#[derive(Serialize)]
struct PolicyReply {
    /// `defaults` or `custom`.
    source: &'static str,
    policy: Policy,
}

/// `GET /autopilot/policy`.
pub(crate) async fn policy<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    json(StatusCode::OK, &policy_reply(plane).await?)
}

/// `PUT /autopilot/policy`: a TOML policy file as the body (empty: back
/// to the defaults).
pub(crate) async fn put_policy<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, MAX_POLICY_BYTES, "a policy file").await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid("body", "a TOML policy file (UTF-8)"))?;
    let policy = if text.trim().is_empty() {
        None
    } else {
        Some(Policy::parse(text).map_err(|e| {
            ApiError::invalid(
                &match e.rule {
                    Some(n) => format!("rule[{}].{}", n - 1, e.field),
                    None => e.field.clone(),
                },
                format!("the policy is refused whole: {e}"),
            )
        })?)
    };
    let (revision, _) = commit(
        plane,
        Command::Act {
            act: ActCommand::PutPolicy { policy },
        },
    )
    .await?;
    let r = policy_reply(plane).await?;
    Ok(with_revision(json(StatusCode::OK, &r)?, revision))
}

async fn policy_reply<P: ControlPlane>(plane: &P) -> Result<PolicyReply, ApiError> {
    let (custom, policy) = plane
        .read(|s| (s.acts().policy.is_some(), s.acts().policy()))
        .await?;
    Ok(PolicyReply {
        source: if custom { "custom" } else { "defaults" },
        policy,
    })
}

/// One line of the log.
#[derive(Serialize)]
struct Summary {
    id: u64,
    at_ms: u64,
    outcome: &'static str,
    class: String,
    place: String,
    action: Option<String>,
    why: String,
}

fn summary(d: &Decision) -> Summary {
    let t = &d.evidence.trouble;
    Summary {
        id: d.id,
        at_ms: d.evidence.now_ms,
        outcome: outcome_name(d),
        class: t.class.to_string(),
        place: t.place.to_string(),
        action: d.outcome.action().map(ToString::to_string),
        why: why(d),
    }
}

/// A decision's outcome as the log shows it: `refused` too when the
/// store's second check refused what the leader chose.
pub(crate) fn outcome_name(d: &Decision) -> &'static str {
    if d.refused_at_commit.is_some() {
        "refused"
    } else {
        d.outcome.as_str()
    }
}

/// Why a decision came out as it did, in one line (the log and the
/// dashboard show it).
pub(crate) fn why(d: &Decision) -> String {
    match (&d.refused_at_commit, &d.outcome) {
        (Some(g), _) => format!("refused by {g} when the store checked again"),
        (None, Outcome::Acted { .. }) => "within every guardrail".into(),
        (None, Outcome::Proposed { proposal, .. }) => match proposal {
            Proposal::DryRun { why } => why.clone(),
            Proposal::NeedsApproval { reasons } => {
                format!("waits for approval by a person: {}", reasons.join("; "))
            }
        },
        (None, Outcome::Refused { guardrail, .. }) => format!("refused by {guardrail}"),
        (None, Outcome::Declined { reason }) => reason.clone(),
    }
}

#[derive(Serialize)]
struct List {
    decisions: Vec<Summary>,
}

/// Whether a decision is about `tenant` (its trouble's place names it).
fn about(d: &Decision, tenant: &str) -> bool {
    d.evidence.trouble.place.tenant() == Some(tenant)
}

/// `GET [/tenants/{tenant}]/autopilot/decisions?limit=N`: newest first;
/// scoped to a tenant, only those about its apps and versions.
pub(crate) async fn decisions<P: ControlPlane>(
    plane: &P,
    tenant: Option<&str>,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let mut limit = 50;
    for (k, v) in query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        match k {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", format!("1 to {MAX_LIST} decisions"))
                    })?;
            }
            other => {
                return Err(ApiError::invalid(
                    other.chars().take(80).collect::<String>(),
                    "unknown query parameter; allowed: limit",
                ));
            }
        }
    }
    let tenant = match tenant {
        Some(t) => {
            let t = super::validate::name("tenant", t)?;
            if plane.read_local(|s| s.tenant(&t).is_none()) {
                return Err(ApiError::not_found(format!("tenant `{t}` does not exist")));
            }
            Some(t.to_string())
        }
        None => None,
    };
    let decisions = plane
        .read(move |s| {
            s.acts()
                .decisions
                .iter()
                .rev()
                .filter(|d| tenant.as_deref().is_none_or(|t| about(d, t)))
                .take(limit)
                .map(summary)
                .collect()
        })
        .await?;
    json(StatusCode::OK, &List { decisions })
}

#[derive(Serialize)]
struct Explained {
    summary: Summary,
    decision: Decision,
    approval: Option<ApprovalRecord>,
    /// The actions it applied (and their undos), oldest first, while the
    /// ledger keeps them (an hour).
    applied: Vec<Entry>,
}

fn explained(book: &state::act::book::ActBook, id: u64) -> Option<Explained> {
    book.decision(id).cloned().map(|d| Explained {
        summary: summary(&d),
        approval: book.approvals.get(&id).cloned(),
        applied: book
            .ledger
            .entries
            .iter()
            .filter(|e| e.decision == id)
            .cloned()
            .collect(),
        decision: d,
    })
}

/// `GET /autopilot/decisions/{id}`.
pub(crate) async fn decision<P: ControlPlane>(plane: &P, id: &str) -> Result<Reply, ApiError> {
    let id = id_of(id)?;
    let found = plane
        .read(move |s| explained(s.acts(), id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no decision {id} (kept: the last 500)")))?;
    json(StatusCode::OK, &found)
}

#[derive(Serialize)]
struct Approvals {
    approvals: Vec<ApprovalRecord>,
}

/// `GET /autopilot/approvals`: waiting ones first, then the answered.
pub(crate) async fn approvals<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let mut approvals: Vec<ApprovalRecord> = plane
        .read(|s| s.acts().approvals.values().cloned().collect())
        .await?;
    approvals.sort_by_key(|a| {
        (
            !a.approval.state.waiting(),
            std::cmp::Reverse(a.approval.decision),
        )
    });
    json(StatusCode::OK, &Approvals { approvals })
}

/// `POST /autopilot/approvals/{id}/approve|reject`.
pub(crate) async fn answer<P: ControlPlane>(
    plane: &P,
    id: &str,
    who: String,
    answer: Answer,
) -> Result<Reply, ApiError> {
    let id = id_of(id)?;
    let (revision, _) = commit(
        plane,
        Command::Act {
            act: ActCommand::Answer {
                id,
                answer,
                by: who,
                now_ms: test_clock::now_ms(),
            },
        },
    )
    .await?;
    let found = plane
        .read(move |s| explained(s.acts(), id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no decision {id}")))?;
    Ok(with_revision(json(StatusCode::OK, &found)?, revision))
}

/// `POST /autopilot/decisions/{id}/undo`: the undo of the action decision
/// `id` applied begins, checked against the guardrails with the cluster
/// as this node sees it (health from its samples of the reports, the
/// store's voters).
pub(crate) async fn undo<P: ControlPlane>(
    plane: &P,
    feed: &Feed,
    id: &str,
    who: String,
) -> Result<Reply, ApiError> {
    let id = id_of(id)?;
    let status = plane.status().await?;
    let voters: Vec<String> = status
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| format!("node-{}", m.id))
        .collect();
    let healthy: BTreeMap<String, bool> = feed.with_history(|history| {
        plane.read_local(|s| {
            s.nodes()
                .map(|n| {
                    (
                        n.name.to_string(),
                        super::cluster::health(history, &n.name).state == "healthy",
                    )
                })
                .collect()
        })
    });
    let view = plane.read_local(|s| {
        autopilot::act::observe::cluster_view(
            s,
            |n| healthy.get(n.as_str()).copied().unwrap_or(false),
            &voters,
        )
    });
    let (revision, _) = commit(
        plane,
        Command::Act {
            act: ActCommand::Undo {
                decision: id,
                by: who,
                view: Box::new(view),
                now_ms: test_clock::now_ms(),
            },
        },
    )
    .await?;
    let found = plane
        .read(move |s| explained(s.acts(), id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no decision {id}")))?;
    Ok(with_revision(json(StatusCode::OK, &found)?, revision))
}

fn id_of(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ApiError::invalid("id", "a decision's number: 1, 2, 3, ..."))
}

/// Runs an acting route's handler (`mod.rs` boxes this future).
pub(crate) async fn dispatch<P: ControlPlane>(
    plane: &P,
    feed: &Feed,
    m: &super::router::Matched,
    verb: super::router::Verb,
    who: String,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    use super::router::{RouteId, Verb};
    let p0 = m.param(0);
    match (m.entry.id, verb) {
        (RouteId::AutopilotControls, Verb::Get) => Box::pin(controls(plane)).await,
        (RouteId::AutopilotControls, Verb::Put) => Box::pin(set_controls(plane, req)).await,
        (RouteId::AutopilotPolicy, Verb::Get) => Box::pin(policy(plane)).await,
        (RouteId::AutopilotPolicy, Verb::Put) => Box::pin(put_policy(plane, req)).await,
        (RouteId::AutopilotDecisions, Verb::Get) => {
            Box::pin(decisions(plane, None, req.uri().query())).await
        }
        (RouteId::TenantAutopilotDecisions, Verb::Get) => {
            Box::pin(decisions(plane, Some(p0), req.uri().query())).await
        }
        (RouteId::AutopilotDecision, Verb::Get) => Box::pin(decision(plane, p0)).await,
        (RouteId::AutopilotDecisionUndo, Verb::Post) => Box::pin(undo(plane, feed, p0, who)).await,
        (RouteId::AutopilotApprovals, Verb::Get) => Box::pin(approvals(plane)).await,
        (RouteId::AutopilotApprove, Verb::Post) => {
            Box::pin(answer(plane, p0, who, Answer::Approve)).await
        }
        (RouteId::AutopilotReject, Verb::Post) => {
            Box::pin(answer(plane, p0, who, Answer::Reject)).await
        }
        _ => Err(ApiError::method_not_allowed(
            req.method().as_str(),
            req.uri().path(),
            m.entry.allow(),
        )),
    }
}
