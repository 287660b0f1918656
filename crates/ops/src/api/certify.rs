//! `/certify…`: certification in the store (issue 17). `GET /certify` is
//! the status (the latest report's summary, the policy's sign-offs and
//! the missing ones, waivers in force and lapsed); `POST /certify/reports`
//! records a report `dwcp certify` wrote (its sha256 checked here: the
//! state machine keeps the text), `GET /certify/reports[/{sha256}]` the
//! history and one report; `PUT|DELETE /certify/waivers/{criterion}`
//! waive and unwaive; `POST /certify/sign-offs` signs the latest report
//! as one of the policy's roles — only a person, in a session that passed
//! TOTP; `PUT /certify/policy` names the roles. Changes are the admin's
//! (on every tenant); each is one audited `Command::Certify`.

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use state::certification::{
    CertifyCommand, GoLivePolicy, RecordedReport, SignOff, Waiver, check_criterion_id,
};
use state::{Command, Revision};

use super::auth::{Caller, Via};
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, now_unix_ms, with_revision};
use crate::ControlPlane;

/// Longest reason for overriding the go-live gate, in bytes.
const MAX_OVERRIDE_REASON_BYTES: usize = 200;

/// The go-live gate of a change to what runs of `tenant/app` (a rollout
/// started, a deployment set; [`state::State::go_live_refusal`]): `Ok(None)` when it
/// passes; when it refuses, `Ok(Some(note))` if an admin on every tenant
/// (a token, or a session that passed TOTP) gave a reason in `overridden`
/// — the note goes on the change's audit record — else `not_certified`.
pub(crate) async fn gate<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    (tenant, app): (&str, &str),
    overridden: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let now = now_unix_ms();
    let (tenant, app) = (tenant.to_string(), app.to_string());
    let Some(why) = plane
        .read(move |s| s.go_live_refusal(&tenant, &app, now))
        .await?
    else {
        return Ok(None);
    };
    let Some(reason) = overridden else {
        return Err(ApiError::not_certified(format!(
            "{why}; an admin may override with `override_certification`: REASON (audited)"
        )));
    };
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_OVERRIDE_REASON_BYTES {
        return Err(ApiError::invalid(
            "override_certification",
            format!(
                "override_certification: why the go-live gate is overridden, 1 to {MAX_OVERRIDE_REASON_BYTES} bytes"
            ),
        ));
    }
    if caller.role != state::Role::Admin || caller.lacks_mfa() {
        return Err(ApiError::forbidden(format!(
            "only an admin on every tenant (a token, or a login that passed TOTP) may override the go-live gate; {why}"
        )));
    }
    Ok(Some(format!("go-live gate overridden: {reason}")))
}

/// A recorded report, without its criteria.
#[derive(Serialize)]
pub(crate) struct Summary {
    pub sha256: String,
    pub target: String,
    /// Criteria were left out (`--quick` or `--only`).
    pub partial: bool,
    pub started_unix_ms: u64,
    pub recorded_unix_ms: u64,
    pub by: String,
    pub revision: Revision,
    /// The overall score (0-100), `null` if nothing was scored.
    pub score: Option<f64>,
    pub criteria: usize,
    pub not_passed: Vec<String>,
}

impl Summary {
    pub(crate) fn of(r: &RecordedReport) -> Summary {
        let parsed: Option<certify::Report> = serde_json::from_str(&r.json).ok();
        Summary {
            sha256: r.sha256.clone(),
            target: r.target.clone(),
            partial: r.partial,
            started_unix_ms: r.started_unix_ms,
            recorded_unix_ms: r.recorded_unix_ms,
            by: r.by.clone(),
            revision: r.revision,
            score: parsed.as_ref().and_then(|p| p.scores.overall.score),
            criteria: parsed.as_ref().map_or(0, |p| p.criteria.len()),
            not_passed: r.not_passed.clone(),
        }
    }
}

/// A waiver as shown: with whether it is in force now.
#[derive(Serialize)]
pub(crate) struct ShownWaiver {
    #[serde(flatten)]
    pub waiver: Waiver,
    pub in_force: bool,
}

/// `GET /certify`.
#[derive(Serialize)]
pub(crate) struct Status {
    pub latest: Option<Summary>,
    pub policy: GoLivePolicy,
    /// The sign-offs of the latest report.
    pub sign_offs: Vec<SignOff>,
    /// The policy's roles that have not signed the latest report.
    pub missing: Vec<String>,
    /// Why the latest report may not be signed now, if it may not.
    pub refusal: Option<String>,
    pub waivers: Vec<ShownWaiver>,
    /// The criteria whose waiver has lapsed.
    pub lapsed: Vec<String>,
    /// Why the go-live gate refuses rollouts and deployment changes now
    /// (of every app on a production cluster, else of the apps marked
    /// production; `null`: it does not — nothing is marked production,
    /// or the certification is current and signed).
    pub gate: Option<String>,
    pub now_unix_ms: u64,
}

/// The status at `now_unix_ms` (also the dashboard's page).
pub(crate) fn status_of(state: &state::State, now_unix_ms: u64) -> Status {
    let latest = state.latest_certify_report();
    let waivers: Vec<ShownWaiver> = state
        .waivers()
        .map(|w| ShownWaiver {
            waiver: w.clone(),
            in_force: w.in_force(now_unix_ms),
        })
        .collect();
    Status {
        latest: latest.map(Summary::of),
        policy: state.go_live_policy(),
        sign_offs: latest.map_or_else(Vec::new, |l| {
            state
                .sign_offs()
                .iter()
                .filter(|s| s.sha256 == l.sha256)
                .cloned()
                .collect()
        }),
        missing: latest.map_or_else(
            || state.go_live_policy().approvers,
            |l| state.missing_sign_offs(&l.sha256),
        ),
        refusal: latest
            .and_then(|l| state.sign_off_refusal(&l.sha256, now_unix_ms))
            .map(|r| r.to_string()),
        lapsed: waivers
            .iter()
            .filter(|w| !w.in_force)
            .map(|w| w.waiver.criterion.clone())
            .collect(),
        waivers,
        gate: state.go_live_gate(now_unix_ms),
        now_unix_ms,
    }
}

/// `GET /certify`.
pub(crate) async fn status<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let now = now_unix_ms();
    let status = plane.read(move |s| status_of(s, now)).await?;
    json(StatusCode::OK, &status)
}

#[derive(Serialize)]
struct Reports {
    reports: Vec<Summary>,
}

/// `GET /certify/reports`: newest first.
pub(crate) async fn reports<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let reports = plane
        .read(|s| Reports {
            reports: s.certify_reports().iter().rev().map(Summary::of).collect(),
        })
        .await?;
    json(StatusCode::OK, &reports)
}

/// `GET /certify/reports/{sha256}`: the report as recorded.
pub(crate) async fn report<P: ControlPlane>(plane: &P, sha256: &str) -> Result<Reply, ApiError> {
    let wanted = sha256.to_string();
    let text = plane
        .read(move |s| {
            s.certify_reports()
                .iter()
                .find(|r| r.sha256 == wanted)
                .map(|r| r.json.clone())
        })
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no certification report with sha256 `{}` is recorded",
                sha256.chars().take(64).collect::<String>()
            ))
        })?;
    let mut response = Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[derive(Serialize)]
struct Recorded {
    sha256: String,
    revision: Revision,
}

/// `POST /certify/reports`: the body is a report (schema 1), checked
/// against its own sha256 before it is recorded.
pub(crate) async fn record<P: ControlPlane>(
    plane: &P,
    who: String,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let loose: serde_json::Value = read_json(&parts.headers, body).await?;
    let bytes = serde_json::to_vec(&loose)
        .map_err(|e| ApiError::internal(format!("could not re-encode the report: {e}")))?;
    let report =
        certify::Report::parse(&bytes).map_err(|e| ApiError::invalid("report", e.to_string()))?;
    if let Some(id) = plane.cluster_id()
        && report.cluster != id
    {
        let measured = if report.cluster.is_empty() {
            "a cluster it does not name (a report older than cluster ids)".to_string()
        } else {
            format!("cluster {}", report.cluster)
        };
        return Err(ApiError::invalid(
            "cluster",
            format!(
                "cluster: a report of this cluster ({id}) is recorded here, and this one measured {measured}; run `dwcp certify --api` against this cluster"
            ),
        ));
    }
    let json_text = serde_json::to_string(&report)
        .map_err(|e| ApiError::internal(format!("could not encode the report: {e}")))?;
    let not_passed = report
        .criteria
        .iter()
        .filter(|v| !matches!(v.status, certify::Status::Pass | certify::Status::Warn))
        .map(|v| v.id.clone())
        .collect();
    let command = Command::Certify {
        certify: CertifyCommand::RecordReport {
            sha256: report.sha256.clone(),
            target: report.target.clone(),
            partial: report.is_partial(),
            started_unix_ms: report.started_unix_ms,
            not_passed,
            by: who,
            now_unix_ms: now_unix_ms(),
            json: json_text,
        },
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(
        json(
            StatusCode::CREATED,
            &Recorded {
                sha256: report.sha256,
                revision,
            },
        )?,
        revision,
    ))
}

#[derive(Serialize)]
struct Waivers {
    waivers: Vec<ShownWaiver>,
}

/// `GET /certify/waivers`.
pub(crate) async fn waivers<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let now = now_unix_ms();
    let waivers = plane
        .read(move |s| Waivers {
            waivers: status_of(s, now).waivers,
        })
        .await?;
    json(StatusCode::OK, &waivers)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWaiver {
    reason: String,
    expires_unix_ms: u64,
}

/// `PUT /certify/waivers/{criterion}`.
pub(crate) async fn waive<P: ControlPlane>(
    plane: &P,
    criterion: &str,
    who: String,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    check_criterion_id(criterion)?;
    let (parts, body) = req.into_parts();
    let wanted: NewWaiver = read_json(&parts.headers, body).await?;
    let command = Command::Certify {
        certify: CertifyCommand::PutWaiver {
            criterion: criterion.to_string(),
            reason: wanted.reason,
            by: who,
            expires_unix_ms: wanted.expires_unix_ms,
            now_unix_ms: now_unix_ms(),
        },
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(no_content(), revision))
}

/// `DELETE /certify/waivers/{criterion}`.
pub(crate) async fn unwaive<P: ControlPlane>(
    plane: &P,
    criterion: &str,
) -> Result<Reply, ApiError> {
    check_criterion_id(criterion)?;
    let command = Command::Certify {
        certify: CertifyCommand::DeleteWaiver {
            criterion: criterion.to_string(),
        },
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(no_content(), revision))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSignOff {
    sha256: String,
    role: String,
}

/// `POST /certify/sign-offs`: a person signs the latest report as one of
/// the policy's roles. Tokens are machine credentials: refused.
pub(crate) async fn sign_off<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    match caller.via {
        Via::Session { mfa: true, .. } => {}
        Via::Session { mfa: false, .. } | Via::Token => {
            return Err(ApiError::forbidden(
                "a go-live sign-off is a person's: log in (POST /api/v1/session) as an admin user with TOTP, not with a token",
            ));
        }
    }
    let (parts, body) = req.into_parts();
    let wanted: NewSignOff = read_json(&parts.headers, body).await?;
    let command = Command::Certify {
        certify: CertifyCommand::SignOff {
            sha256: wanted.sha256,
            role: wanted.role,
            by: caller.audit_name(),
            now_unix_ms: now_unix_ms(),
        },
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(no_content(), revision))
}

/// `PUT /certify/policy`.
pub(crate) async fn set_policy<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let policy: GoLivePolicy = read_json(&parts.headers, body).await?;
    let command = Command::Certify {
        certify: CertifyCommand::SetPolicy { policy },
    };
    let (revision, _) = commit(plane, command).await?;
    Ok(with_revision(no_content(), revision))
}
