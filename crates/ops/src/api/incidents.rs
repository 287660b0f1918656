//! `/incidents[/{id}]`: what the SLO evaluator's alerts opened, with their
//! timelines; `POST .../acknowledge`, `.../resolve` and `.../notes` move
//! them forward, each one write whose time is the evaluator's clock (the
//! wall clock, or the manual clock of `dwcp up --manual-clock`, so times
//! to acknowledge and resolve are measured on one clock). An incident's
//! page carries the runbooks whose front matter names its alert.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{Command, Incident, IncidentStatus, Runbook};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, with_revision};
use super::test_clock;
use crate::ControlPlane;

/// An incident with its times to acknowledge and resolve.
#[derive(Serialize)]
struct View {
    #[serde(flatten)]
    incident: Incident,
    time_to_acknowledge_ms: Option<u64>,
    time_to_resolve_ms: Option<u64>,
}

impl From<Incident> for View {
    fn from(incident: Incident) -> Self {
        View {
            time_to_acknowledge_ms: incident.time_to_acknowledge_ms(),
            time_to_resolve_ms: incident.time_to_resolve_ms(),
            incident,
        }
    }
}

/// One incident with the runbooks for its alert.
#[derive(Serialize)]
struct Shown {
    #[serde(flatten)]
    view: View,
    runbooks: Vec<RunbookText>,
}

#[derive(Serialize)]
struct RunbookText {
    name: String,
    title: String,
    /// The Markdown, front matter included.
    text: String,
}

#[derive(Serialize)]
struct List {
    incidents: Vec<View>,
}

/// Which incidents a listing shows.
#[derive(Clone, Copy)]
enum Filter {
    All,
    Unresolved,
    Is(IncidentStatus),
}

fn filter(query: Option<&str>) -> Result<Filter, ApiError> {
    let mut out = Filter::All;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "status" {
            return Err(ApiError::invalid(
                key.chars().take(50).collect::<String>(),
                "the only query parameter of GET /api/v1/incidents is `status`",
            ));
        }
        out = match value {
            "open" => Filter::Is(IncidentStatus::Open),
            "acknowledged" => Filter::Is(IncidentStatus::Acknowledged),
            "resolved" => Filter::Is(IncidentStatus::Resolved),
            "unresolved" => Filter::Unresolved,
            "all" => Filter::All,
            other => {
                return Err(ApiError::invalid(
                    "status",
                    format!(
                        "status `{}` is not allowed: open, acknowledged, resolved, unresolved or all",
                        other.chars().take(50).collect::<String>()
                    ),
                ));
            }
        };
    }
    Ok(out)
}

/// `GET /incidents[?status=open|acknowledged|resolved|unresolved]`, newest first.
pub(crate) async fn list<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let f = filter(query)?;
    let caller = caller.clone();
    let list = plane
        .read(move |state| List {
            incidents: state
                .incidents()
                .rev()
                .filter(|i| caller.sees(i.tenant.as_str()))
                .filter(|i| match f {
                    Filter::All => true,
                    Filter::Unresolved => i.unresolved(),
                    Filter::Is(s) => i.status == s,
                })
                .cloned()
                .map(View::from)
                .collect(),
        })
        .await?;
    json(StatusCode::OK, &list)
}

fn id_of(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>().map_err(|_| {
        ApiError::invalid(
            "id",
            format!(
                "incident id `{}` is not a number",
                id.chars().take(50).collect::<String>()
            ),
        )
    })
}

/// `GET /incidents/{id}`: with its timeline and runbooks (404 for an
/// incident of a tenant the caller has no role in).
pub(crate) async fn show<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    let id = id_of(id)?;
    let caller = caller.clone();
    let found = plane
        .read(move |state| {
            let seen = state
                .incident(id)
                .filter(|i| caller.sees(i.tenant.as_str()));
            seen.cloned().map(|i| {
                let runbooks = state
                    .runbooks()
                    .filter(|r| r.alerts.iter().any(|a| a == &i.alert))
                    .map(|r: &Runbook| RunbookText {
                        name: r.name.to_string(),
                        title: r.title.clone(),
                        text: r.text.clone(),
                    })
                    .collect();
                Shown {
                    view: i.into(),
                    runbooks,
                }
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incident {id} does not exist")))?;
    json(StatusCode::OK, &found)
}

/// The body of `.../resolve` and `.../notes`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    #[serde(default)]
    text: Option<String>,
}

/// Which step an operator takes.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    Acknowledge,
    Resolve,
    Note,
}

/// `POST /incidents/{id}/acknowledge|resolve|notes`.
pub(crate) async fn step<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    id: &str,
    step: Step,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let id = id_of(id)?;
    let who = caller.audit_name();
    let tenant = plane
        .read(move |state| state.incident(id).map(|i| i.tenant.clone()))
        .await?;
    // An incident of another tenant does not exist for the caller; the
    // state machine refuses a scoped caller's change to it as well.
    match tenant {
        Some(t) => caller.check_sees(t.as_str(), &format!("incident {id}"))?,
        None => return Err(ApiError::not_found(format!("incident {id} does not exist"))),
    }
    let (parts, body) = req.into_parts();
    let body: Text = if parts.headers.contains_key(hyper::header::CONTENT_TYPE) {
        read_json(&parts.headers, body).await?
    } else {
        Text::default()
    };
    if let Some(text) = &body.text {
        state::check_incident_text("text", text)?;
    }
    let now_unix_ms = test_clock::now_ms();
    let command = match step {
        Step::Acknowledge => Command::AcknowledgeIncident {
            id,
            by: who,
            now_unix_ms,
        },
        Step::Resolve => Command::ResolveIncident {
            id,
            by: who,
            text: body.text,
            now_unix_ms,
        },
        Step::Note => Command::NoteIncident {
            id,
            by: who,
            text: body
                .text
                .ok_or_else(|| ApiError::invalid("text", "a note needs `text`"))?,
            now_unix_ms,
        },
    };
    let (revision, _) = commit(plane, command).await?;
    let found = plane
        .read(move |state| state.incident(id).cloned())
        .await?
        .ok_or_else(|| ApiError::internal("the incident was changed but is not found"))?;
    Ok(with_revision(
        json(StatusCode::OK, &View::from(found))?,
        revision,
    ))
}
