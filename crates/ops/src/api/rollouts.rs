//! Rollouts of an app:
//! `POST /tenants/{tenant}/apps/{app}/rollouts` starts one,
//! `GET .../rollouts` lists them with their audit trails (newest first),
//! `GET .../rollout` shows the latest one live (weights per region and
//! what each of its versions served), and `POST .../rollout/promote` and
//! `POST .../rollout/abort` steer the running one. Each write is one
//! command: an abort puts all traffic back on stable in one store write.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{Command, Rollout, State, Weights};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, noted, now_unix_ms, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    to: u64,
    /// A plan as JSON (see the `rollout` crate); absent: the default plan.
    #[serde(default)]
    plan: Option<serde_json::Value>,
    /// An admin's reason to start it though the go-live gate refuses.
    #[serde(default)]
    override_certification: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Abort {
    #[serde(default)]
    reason: Option<String>,
}

/// What one version of a rollout served, over every node's last report
/// (totals since each node's process started).
#[derive(Serialize)]
struct Served {
    version: u64,
    /// `stable`, `baseline` or `canary`.
    role: &'static str,
    requests: u64,
    errors: u64,
    /// The highest p99 latency any node reported, in µs.
    p99_us: u64,
}

/// A rollout as `GET .../rollout` shows it.
#[derive(Serialize)]
struct Live {
    rollout: Rollout,
    /// The traffic split in each region of the deployment now.
    weights: BTreeMap<String, Weights>,
    served: Vec<Served>,
}

#[derive(Serialize)]
struct History {
    rollouts: Vec<Rollout>,
}

/// `POST .../rollouts`.
pub(crate) async fn start<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let (parts, body) = req.into_parts();
    let wanted: Start = read_json(&parts.headers, body).await?;
    let note = super::certify::gate(
        plane,
        caller,
        (tenant.as_str(), app.as_str()),
        wanted.override_certification.as_deref(),
    )
    .await?;
    let plan = match wanted.plan {
        None => state::rollout::Plan::default_plan(),
        Some(value) => {
            state::rollout::Plan::from_json(&super::strict::wholes(value).to_string())
                .map_err(|e| ApiError::invalid("plan", format!("the plan is not valid: {e}")))?
        }
    };
    let command = Command::StartRollout {
        tenant,
        app,
        to: wanted.to,
        plan,
        by: caller.audit_name(),
        now_unix_ms: now_unix_ms(),
    };
    noted(note, written(plane, command, StatusCode::CREATED)).await
}

/// Commits `command` (a change to the app's rollout) and answers the
/// rollout as it is after it.
async fn written<P: ControlPlane>(
    plane: &P,
    command: Command,
    status: StatusCode,
) -> Result<Reply, ApiError> {
    let (tenant, app) = match &command {
        Command::StartRollout { tenant, app, .. }
        | Command::AbortRollout { tenant, app, .. }
        | Command::PromoteRollout { tenant, app, .. } => (tenant.clone(), app.clone()),
        _ => return Err(ApiError::internal("not a rollout command")),
    };
    let (revision, _) = commit(plane, command).await?;
    let live = plane
        .read(move |state| live(state, &tenant, &app))
        .await?
        .ok_or_else(|| ApiError::internal("the rollout is not found after the write"))?;
    Ok(with_revision(json(status, &live)?, revision))
}

/// `GET .../rollout`: the latest rollout, live.
pub(crate) async fn show<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let (t, a) = (tenant.clone(), app.clone());
    let found = plane
        .read(move |state| state.app(&t, &a).map(|_| live(state, &t, &a)))
        .await?;
    match found {
        None => Err(ApiError::not_found(format!(
            "app `{tenant}/{app}` does not exist"
        ))),
        Some(None) => Err(ApiError::not_found(format!(
            "app `{tenant}/{app}` has had no rollout; start one with POST .../rollouts"
        ))),
        Some(Some(live)) => json(StatusCode::OK, &live),
    }
}

/// `GET .../rollouts`: every rollout kept, newest first.
pub(crate) async fn list<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let (t, a) = (tenant.clone(), app.clone());
    let found = plane
        .read(move |state| {
            state
                .app(&t, &a)
                .map(|_| state.rollouts_of(&t, &a).rev().cloned().collect::<Vec<_>>())
        })
        .await?;
    let rollouts =
        found.ok_or_else(|| ApiError::not_found(format!("app `{tenant}/{app}` does not exist")))?;
    json(StatusCode::OK, &History { rollouts })
}

/// `POST .../rollout/promote` or `.../rollout/abort`.
pub(crate) async fn steer<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    who: String,
    abort: bool,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let command = if abort {
        let (parts, body) = req.into_parts();
        let wanted: Abort = if parts.headers.contains_key(hyper::header::CONTENT_TYPE) {
            read_json(&parts.headers, body).await?
        } else {
            Abort::default()
        };
        Command::AbortRollout {
            tenant,
            app,
            reason: wanted
                .reason
                .map(|r| format!("aborted by {who}: {r}"))
                .unwrap_or_else(|| format!("aborted by {who}")),
            by: who,
            now_unix_ms: now_unix_ms(),
        }
    } else {
        Command::PromoteRollout {
            tenant,
            app,
            by: who,
            now_unix_ms: now_unix_ms(),
        }
    };
    written(plane, command, StatusCode::OK).await
}

/// The latest rollout of an app with its weights and what it served.
fn live(state: &State, tenant: &state::Name, app: &state::Name) -> Option<Live> {
    let rollout = state.rollouts_of(tenant, app).next_back()?.clone();
    let weights = state
        .deployment(tenant, app)
        .map(|d| {
            d.regions
                .keys()
                .map(|r| (r.to_string(), rollout.weights_in(r.as_str())))
                .collect()
        })
        .unwrap_or_default();
    let mut roles = vec![(rollout.from, "stable"), (rollout.to, "canary")];
    if let Some(b) = rollout.baseline {
        roles.push((b, "baseline"));
    }
    let served = roles
        .into_iter()
        .map(|(version, role)| {
            let mut s = Served {
                version,
                role,
                requests: 0,
                errors: 0,
                p99_us: 0,
            };
            for v in state
                .reports()
                .flat_map(|r| &r.versions)
                .filter(|v| &v.tenant == tenant && &v.app == app && v.version == version)
            {
                s.requests += v.requests;
                s.errors += v.errors;
                s.p99_us = s.p99_us.max(v.latency_us.p99);
            }
            s
        })
        .collect();
    Some(Live {
        rollout,
        weights,
        served,
    })
}
