//! The autopilot's findings and forecasts:
//! - `GET /autopilot/anomalies`, `/autopilot/predictions`,
//!   `/autopilot/causes`, `/autopilot/forecast` — the whole cluster's
//!   (nodes and regions included), for a role on every tenant;
//! - `GET /tenants/{tenant}/autopilot/anomalies|predictions|causes` and
//!   `/tenants/{tenant}/apps/{app}/autopilot/forecast` — one tenant's,
//!   for a role in it.
//!
//! Findings (detections, predictions, diagnoses) come from the state,
//! newest first; a forecast from the answering node's own signals (see
//! `crate::autopilot`). Every query parameter is checked: an unknown
//! one, a metric not named as the API names it, or a horizon outside 5
//! minutes to 24 hours is a 400 naming the parameter; an app, tenant or
//! node that does not exist a 404 naming it.

use autopilot::findings::{
    Detection, Diagnosis, FailureKind, Metric, Prediction, PredictionStatus, SeriesKey, Subject,
    Trigger,
};
use autopilot::forecast::{HORIZONS_MS, MAX_HORIZON_MS, MIN_HORIZON_MS};
use autopilot::pilot::ForecastQueryError;
use hyper::StatusCode;
use serde::Serialize;
use state::{Name, State};

use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;

/// Findings listed when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
/// Recent points a forecast shows by default, and at most.
const DEFAULT_POINTS: usize = 60;
const MAX_POINTS: usize = 360;

/// Which findings a listing shows.
#[derive(Clone, Debug, Default)]
struct Filter {
    tenant: Option<Name>,
    app: Option<Name>,
    node: Option<Name>,
    metric: Option<Metric>,
    kind: Option<FailureKind>,
    status: Option<PredictionStatus>,
    limit: usize,
    /// Only what belongs to a tenant (the tenant-scoped routes).
    scoped: bool,
}

/// The listings' parameters (`allowed` names those the route takes).
fn filter(
    query: Option<&str>,
    allowed: &[&str],
    scoped_tenant: Option<&str>,
    state: &State,
) -> Result<Filter, ApiError> {
    let mut f = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    if let Some(t) = scoped_tenant {
        let tenant = super::validate::name("tenant", t)?;
        if state.tenant(&tenant).is_none() {
            return Err(ApiError::not_found(format!(
                "tenant `{tenant}` does not exist"
            )));
        }
        f.tenant = Some(tenant);
        f.scoped = true;
    }
    for (key, value) in pairs(query) {
        if !allowed.contains(&key) || (key == "tenant" && f.scoped) {
            return Err(ApiError::invalid(
                clip(key),
                format!(
                    "not a parameter of this route; it takes {}",
                    allowed
                        .iter()
                        .filter(|a| !(f.scoped && **a == "tenant"))
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        match key {
            "tenant" => {
                let t = super::validate::name("tenant", value)?;
                if state.tenant(&t).is_none() {
                    return Err(ApiError::not_found_field(
                        "tenant",
                        format!("tenant `{t}` does not exist"),
                    ));
                }
                f.tenant = Some(t);
            }
            "app" => f.app = Some(super::validate::name("app", value)?),
            "node" => {
                let n = super::validate::name("node", value)?;
                if state.node(&n).is_none() {
                    return Err(ApiError::not_found_field(
                        "node",
                        format!("node `{n}` does not exist"),
                    ));
                }
                f.node = Some(n);
            }
            "metric" => f.metric = Some(metric(value)?),
            "kind" => {
                f.kind = Some(FailureKind::parse(value).ok_or_else(|| {
                    ApiError::invalid(
                        "kind",
                        format!(
                            "`{}` is not a failure kind; one of {}",
                            clip(value),
                            autopilot::findings::FAILURE_KINDS
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?);
            }
            "status" => {
                f.status = Some(match value {
                    "open" => PredictionStatus::Open,
                    "happened" => PredictionStatus::Happened,
                    "cleared" => PredictionStatus::Cleared,
                    other => {
                        return Err(ApiError::invalid(
                            "status",
                            format!("`{}` is not open, happened or cleared", clip(other)),
                        ));
                    }
                });
            }
            "limit" => {
                f.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", format!("a whole number from 1 to {MAX_LIMIT}"))
                    })?;
            }
            _ => {}
        }
    }
    if let Some(app) = &f.app {
        let Some(tenant) = &f.tenant else {
            return Err(ApiError::invalid("tenant", "`app` needs `tenant` too"));
        };
        if state.app(tenant, app).is_none() {
            return Err(ApiError::not_found_field(
                "app",
                format!("app `{tenant}/{app}` does not exist"),
            ));
        }
    }
    Ok(f)
}

fn pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn metric(value: &str) -> Result<Metric, ApiError> {
    Metric::parse(value).ok_or_else(|| {
        ApiError::invalid(
            "metric",
            format!(
                "`{}` is not a metric; one of {}",
                clip(value),
                autopilot::findings::METRICS
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

impl Filter {
    fn subject(&self, s: &Subject) -> bool {
        if self.scoped && s.tenant().is_none() {
            return false;
        }
        if let Some(t) = &self.tenant
            && s.tenant() != Some(t)
        {
            return false;
        }
        if let Some(a) = &self.app
            && s.app().map(|(_, app)| app) != Some(a)
        {
            return false;
        }
        if let Some(n) = &self.node
            && s.node() != Some(n)
        {
            return false;
        }
        true
    }
}

#[derive(Serialize)]
struct Anomalies {
    anomalies: Vec<Detection>,
}

#[derive(Serialize)]
struct Predictions {
    predictions: Vec<Prediction>,
}

#[derive(Serialize)]
struct Causes {
    diagnoses: Vec<Diagnosis>,
}

/// The findings the query and the route's tenant select, read on the
/// state: `allowed` names the query's keys, `pick` lists the records
/// (newest first, at most the filter's limit).
async fn findings<P: ControlPlane, T: Send + 'static>(
    plane: &P,
    tenant: Option<&str>,
    query: Option<&str>,
    allowed: &'static [&'static str],
    pick: impl FnOnce(&State, &Filter) -> Vec<T> + Send + 'static,
) -> Result<Vec<T>, ApiError> {
    let (tenant, query) = (tenant.map(str::to_string), query.map(str::to_string));
    plane
        .read(move |state| {
            let f = filter(query.as_deref(), allowed, tenant.as_deref(), state)?;
            Ok::<_, ApiError>(pick(state, &f))
        })
        .await?
}

/// `GET [/tenants/{tenant}]/autopilot/anomalies`: detections, newest first.
pub(crate) async fn anomalies<P: ControlPlane>(
    plane: &P,
    tenant: Option<&str>,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let keys = &["tenant", "app", "node", "metric", "limit"];
    let list = findings(plane, tenant, query, keys, |state, f| {
        state
            .detections()
            .rev()
            .filter(|d| f.subject(&d.series.subject))
            .filter(|d| f.metric.is_none_or(|m| d.series.metric == m))
            .take(f.limit)
            .cloned()
            .collect()
    })
    .await?;
    json(StatusCode::OK, &Anomalies { anomalies: list })
}

/// `GET [/tenants/{tenant}]/autopilot/predictions`: newest first.
pub(crate) async fn predictions<P: ControlPlane>(
    plane: &P,
    tenant: Option<&str>,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let keys = &["tenant", "app", "node", "kind", "status", "limit"];
    let list = findings(plane, tenant, query, keys, |state, f| {
        state
            .predictions()
            .rev()
            .filter(|p| f.subject(&p.subject))
            .filter(|p| f.kind.is_none_or(|k| p.kind == k))
            .filter(|p| f.status.is_none_or(|s| p.status == s))
            .take(f.limit)
            .cloned()
            .collect()
    })
    .await?;
    json(StatusCode::OK, &Predictions { predictions: list })
}

/// `GET [/tenants/{tenant}]/autopilot/causes`: diagnoses, newest first.
pub(crate) async fn causes<P: ControlPlane>(
    plane: &P,
    tenant: Option<&str>,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let keys = &["tenant", "app", "node", "limit"];
    let list = findings(plane, tenant, query, keys, |state, f| {
        state
            .diagnoses()
            .rev()
            .filter(|d| {
                f.subject(&d.subject) || trigger_subject(&d.trigger).is_some_and(|s| f.subject(&s))
            })
            .take(f.limit)
            .cloned()
            .collect()
    })
    .await?;
    json(StatusCode::OK, &Causes { diagnoses: list })
}

/// The app an SLO alert's trigger is about.
fn trigger_subject(t: &Trigger) -> Option<Subject> {
    match t {
        Trigger::SloAlert { tenant, app, .. } => Some(Subject::App {
            tenant: tenant.clone(),
            app: app.clone(),
        }),
        _ => None,
    }
}

/// A forecast's parameters, checked against the state.
#[derive(Debug)]
struct ForecastQuery {
    key: SeriesKey,
    horizons_ms: Vec<i64>,
    points: usize,
}

/// A duration as the API takes it: `300000` (ms), `90s`, `15m`, `6h`, `1d`.
pub(crate) fn parse_horizon(value: &str) -> Option<i64> {
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (n, unit) = value.split_at(digits);
    let n: i64 = n.parse().ok()?;
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn forecast_query(
    query: Option<&str>,
    scoped: Option<(&str, &str)>,
    state: &State,
) -> Result<ForecastQuery, ApiError> {
    let (mut tenant, mut app, mut node) = (None, None, None);
    let mut metric_asked = None;
    let mut horizons = Vec::new();
    let mut points = DEFAULT_POINTS;
    if let Some((t, a)) = scoped {
        tenant = Some(t.to_string());
        app = Some(a.to_string());
    }
    let allowed: &[&str] = if scoped.is_some() {
        &["metric", "horizon", "points"]
    } else {
        &["tenant", "app", "node", "metric", "horizon", "points"]
    };
    for (key, value) in pairs(query) {
        if !allowed.contains(&key) {
            return Err(ApiError::invalid(
                clip(key),
                format!(
                    "not a parameter of this route; it takes {}",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        match key {
            "tenant" => tenant = Some(value.to_string()),
            "app" => app = Some(value.to_string()),
            "node" => node = Some(value.to_string()),
            "metric" => metric_asked = Some(metric(value)?),
            "horizon" => {
                let h = parse_horizon(value)
                    .filter(|h| (MIN_HORIZON_MS..=MAX_HORIZON_MS).contains(h))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "horizon",
                            format!(
                                "`{}` is not a horizon from 5 minutes to 24 hours (e.g. 15m, 1h, 24h, or milliseconds)",
                                clip(value)
                            ),
                        )
                    })?;
                horizons.push(h);
            }
            "points" => {
                points = value
                    .parse::<usize>()
                    .ok()
                    .filter(|p| *p <= MAX_POINTS)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "points",
                            format!("a whole number from 0 to {MAX_POINTS}"),
                        )
                    })?;
            }
            _ => {}
        }
    }
    let subject = match (tenant, app, node) {
        (Some(t), Some(a), None) => {
            let tenant = super::validate::name("tenant", &t)?;
            let app = super::validate::name("app", &a)?;
            if state.tenant(&tenant).is_none() {
                return Err(ApiError::not_found_field(
                    "tenant",
                    format!("tenant `{tenant}` does not exist"),
                ));
            }
            if state.app(&tenant, &app).is_none() {
                return Err(ApiError::not_found_field(
                    "app",
                    format!("app `{tenant}/{app}` does not exist"),
                ));
            }
            Subject::App { tenant, app }
        }
        (None, None, Some(n)) => {
            let node = super::validate::name("node", &n)?;
            if state.node(&node).is_none() {
                return Err(ApiError::not_found_field(
                    "node",
                    format!("node `{node}` does not exist"),
                ));
            }
            Subject::Node { node }
        }
        (None, Some(_), None) => {
            return Err(ApiError::invalid("tenant", "`app` needs `tenant` too"));
        }
        (Some(_), None, None) => {
            return Err(ApiError::invalid(
                "app",
                "a forecast is of an app (`tenant` and `app`) or of a node (`node`)",
            ));
        }
        (_, _, Some(_)) => {
            return Err(ApiError::invalid(
                "node",
                "either a node or an app (`tenant` and `app`), not both",
            ));
        }
        (None, None, None) => {
            return Err(ApiError::invalid(
                "node",
                "a forecast is of an app (`tenant` and `app`) or of a node (`node`)",
            ));
        }
    };
    if horizons.is_empty() {
        horizons = HORIZONS_MS.to_vec();
    }
    Ok(ForecastQuery {
        key: SeriesKey {
            subject,
            metric: metric_asked.unwrap_or(Metric::RequestRate),
        },
        horizons_ms: horizons,
        points,
    })
}

/// `GET /autopilot/forecast?…` and
/// `GET /tenants/{tenant}/apps/{app}/autopilot/forecast?…`.
pub(crate) async fn forecast<P: ControlPlane>(
    plane: &P,
    scoped: Option<(&str, &str)>,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let q = plane.read_local(|state| forecast_query(query, scoped, state))?;
    let Some(hook) = crate::forecasts::hook() else {
        return Err(ApiError::not_found(
            "not supported: this process runs no autopilot (forecasts come from `dwcp up`'s)",
        ));
    };
    match hook.forecast(&q.key, &q.horizons_ms, q.points) {
        Ok(view) => json(StatusCode::OK, &view),
        Err(ForecastQueryError::UnknownSeries(s)) => Err(ApiError::not_found(format!(
            "no signal {s} on this node yet (the autopilot samples every round; an app needs requests)"
        ))),
        Err(ForecastQueryError::Forecast(e)) => {
            let field = if e.to_string().starts_with("horizon") {
                "horizon"
            } else {
                "series"
            };
            match e {
                // Too few points yet: the series' state, not the
                // request, so no 5xx (issue 16's schemathesis run).
                autopilot::forecast::ForecastError::Learning => {
                    Err(ApiError::conflict("metric", e.to_string()))
                }
                _ => Err(ApiError::invalid(field, e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_take_units() {
        assert_eq!(parse_horizon("15m"), Some(900_000));
        assert_eq!(parse_horizon("1h"), Some(3_600_000));
        assert_eq!(parse_horizon("300000"), Some(300_000));
        assert_eq!(parse_horizon("1d"), Some(86_400_000));
        assert_eq!(parse_horizon("2w"), None);
        assert_eq!(parse_horizon("h"), None);
    }
}
