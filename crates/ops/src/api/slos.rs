//! `/tenants/{tenant}/apps/{app}/slos[/{name}]` and `/slos`: an app's
//! service level objectives, and every SLO with the evaluator's latest
//! burn rates and budget left. The leader's evaluator stores that reading
//! in the state (`Command::SetSloStatus`, at most every 10 s), so any node
//! answers it; an SLO not evaluated yet shows `status: null`.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{Command, NotifyKind, NotifyTarget, Objective, Slo, SloStatus};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, with_revision};
use super::validate;
use crate::{ControlPlane, notify_guard};

/// The body of `PUT .../slos/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    /// `availability` or `latency`.
    objective: String,
    /// For `latency`: the threshold a good request is answered within.
    #[serde(default)]
    threshold_ms: Option<u64>,
    target: f64,
    #[serde(default)]
    window_days: Option<u32>,
    #[serde(default)]
    notify: Vec<Target>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    kind: String,
    url: String,
    #[serde(default)]
    routing_key: Option<String>,
}

/// An SLO with the evaluator's latest reading of it.
#[derive(Serialize)]
struct WithStatus {
    #[serde(flatten)]
    slo: SloView,
    status: Option<SloStatus>,
}

/// An SLO as the API shows it.
#[derive(Serialize)]
struct SloView {
    tenant: String,
    app: String,
    name: String,
    objective: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_ms: Option<u64>,
    target: f64,
    window_days: u32,
    notify: Vec<NotifyTarget>,
    updated: u64,
}

impl From<&Slo> for SloView {
    fn from(s: &Slo) -> Self {
        SloView {
            tenant: s.tenant.to_string(),
            app: s.app.to_string(),
            name: s.name.to_string(),
            objective: s.objective.kind(),
            threshold_ms: match s.objective {
                Objective::Latency { threshold_ms } => Some(threshold_ms),
                Objective::Availability => None,
            },
            target: s.target,
            window_days: s.window_days,
            // Redacted: the secrets stay sealed in the state.
            notify: s.notify.iter().map(NotifyTarget::shown).collect(),
            updated: s.updated.0,
        }
    }
}

#[derive(Serialize)]
struct List {
    slos: Vec<WithStatus>,
}

fn with_status(state: &state::State, s: &Slo) -> WithStatus {
    WithStatus {
        slo: s.into(),
        status: state.slo_status(&s.tenant, &s.app, &s.name).cloned(),
    }
}

/// `GET /slos`: every SLO of the tenants the caller has a role in, with
/// its burn rates and budget left.
pub(crate) async fn list_all<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let caller = caller.clone();
    let list = plane
        .read(move |state| List {
            slos: state
                .slos()
                .filter(|s| caller.sees(s.tenant.as_str()))
                .map(|s| with_status(state, s))
                .collect(),
        })
        .await?;
    json(StatusCode::OK, &list)
}

/// `GET /tenants/{tenant}/apps/{app}/slos`.
pub(crate) async fn list<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let list = plane
        .read(move |state| {
            state.app(&tenant, &app).map(|_| List {
                slos: state
                    .slos_of(&tenant, &app)
                    .map(|s| with_status(state, s))
                    .collect(),
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("no such app"))?;
    json(StatusCode::OK, &list)
}

/// `GET /tenants/{tenant}/apps/{app}/slos/{name}`.
pub(crate) async fn show<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    name: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let name = validate::name("name", name)?;
    let what = format!("SLO `{tenant}/{app}/{name}` does not exist");
    let found = plane
        .read(move |state| {
            state
                .slo(&tenant, &app, &name)
                .map(|s| with_status(state, s))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(what))?;
    json(StatusCode::OK, &found)
}

/// `PUT /tenants/{tenant}/apps/{app}/slos/{name}`: creates or replaces it,
/// checked whole before the one write.
pub(crate) async fn put<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    name: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let name = validate::name("name", name)?;
    let (parts, body) = req.into_parts();
    let put: Put = read_json(&parts.headers, body).await?;
    let mut slo = slo_of(tenant, app, name, put)?;
    state::check_slo(&slo)?;
    seal_targets(plane, &mut slo)?;
    let (t, a, n) = (slo.tenant.clone(), slo.app.clone(), slo.name.clone());
    let (revision, _) = commit(plane, Command::PutSlo { slo }).await?;
    let stored = plane
        .read(move |state| state.slo(&t, &a, &n).map(|s| with_status(state, s)))
        .await?
        .ok_or_else(|| ApiError::internal("the SLO was stored but is not found"))?;
    Ok(with_revision(json(StatusCode::OK, &stored)?, revision))
}

/// Refuses a target written with an internal host, then seals every
/// target's URL and routing key, leaving their redacted forms in view.
fn seal_targets<P: ControlPlane>(plane: &P, slo: &mut Slo) -> Result<(), ApiError> {
    if slo.notify.is_empty() {
        return Ok(());
    }
    let key = plane.at_rest_key().ok_or_else(|| {
        ApiError::internal(
            "this node has no at-rest key, so notification secrets cannot be sealed here",
        )
    })?;
    let context = notify_guard::context(&slo.tenant, &slo.app, &slo.name);
    for (i, target) in slo.notify.iter_mut().enumerate() {
        notify_guard::check_written_host(&target.url).map_err(|why| {
            ApiError::invalid(
                format!("notify[{i}].url"),
                format!("notify[{i}].url is not allowed: {why}"),
            )
        })?;
        *target = notify_guard::sealed(&key, &context, target)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(())
}

fn slo_of(
    tenant: state::Name,
    app: state::Name,
    name: state::Name,
    put: Put,
) -> Result<Slo, ApiError> {
    let objective = match (put.objective.as_str(), put.threshold_ms) {
        ("availability", None) => Objective::Availability,
        ("availability", Some(_)) => {
            return Err(ApiError::invalid(
                "threshold_ms",
                "threshold_ms is only for a latency objective",
            ));
        }
        ("latency", Some(threshold_ms)) => Objective::Latency { threshold_ms },
        ("latency", None) => {
            return Err(ApiError::invalid(
                "threshold_ms",
                "a latency objective needs threshold_ms: good requests are answered within it, e.g. 300",
            ));
        }
        (other, _) => {
            return Err(ApiError::invalid(
                "objective",
                format!(
                    "objective `{}` is not allowed: `availability` or `latency`",
                    other.chars().take(50).collect::<String>()
                ),
            ));
        }
    };
    let mut notify = Vec::with_capacity(put.notify.len());
    for (i, t) in put.notify.into_iter().enumerate() {
        let kind = match t.kind.as_str() {
            "alertmanager" => NotifyKind::Alertmanager,
            "alertmanager_api" => NotifyKind::AlertmanagerApi,
            "pagerduty" => NotifyKind::PagerDuty,
            "slack" => NotifyKind::Slack,
            other => {
                return Err(ApiError::invalid(
                    format!("notify[{i}].kind"),
                    format!(
                        "notify[{i}].kind `{}` is not allowed: alertmanager (webhook JSON), alertmanager_api (an Alertmanager), pagerduty or slack",
                        other.chars().take(50).collect::<String>()
                    ),
                ));
            }
        };
        notify.push(NotifyTarget {
            kind,
            url: t.url,
            routing_key: t.routing_key,
            sealed: None,
        });
    }
    // The state takes any target below 1; the API stops at six nines,
    // where the JSON reader still tells targets from 1 (issue 16).
    if put.target > super::openapi::MAX_SLO_TARGET {
        return Err(ApiError::invalid(
            "target",
            format!(
                "target {} is not allowed: an objective above 0 and at most {}, e.g. 0.999",
                put.target,
                super::openapi::MAX_SLO_TARGET
            ),
        ));
    }
    Ok(Slo {
        tenant,
        app,
        name,
        objective,
        target: put.target,
        window_days: put.window_days.unwrap_or(state::DEFAULT_SLO_WINDOW_DAYS),
        notify,
        updated: Default::default(),
    })
}

/// `DELETE /tenants/{tenant}/apps/{app}/slos/{name}`.
pub(crate) async fn delete<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    name: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let name = validate::name("name", name)?;
    let (revision, _) = commit(plane, Command::DeleteSlo { tenant, app, name }).await?;
    Ok(with_revision(no_content(), revision))
}
