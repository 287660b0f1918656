//! `/runbooks[/{name}]`: the runbooks operators read when an alert fires.
//! `PUT` takes the Markdown file itself (`text/markdown` or `text/plain`);
//! its front matter is parsed and checked ([`crate::runbook::parse`])
//! before anything is stored, so a broken one changes nothing.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;
use state::{Command, Runbook};

use super::body::{media_type, read_limited};
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, with_revision};
use super::validate;
use crate::ControlPlane;

/// One runbook in a listing (without its text).
#[derive(Serialize)]
struct Summary {
    name: String,
    title: String,
    alerts: Vec<String>,
}

#[derive(Serialize)]
struct List {
    runbooks: Vec<Summary>,
}

/// `GET /runbooks`.
pub(crate) async fn list<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let list = plane
        .read(|state| List {
            runbooks: state
                .runbooks()
                .map(|r| Summary {
                    name: r.name.to_string(),
                    title: r.title.clone(),
                    alerts: r.alerts.clone(),
                })
                .collect(),
        })
        .await?;
    json(StatusCode::OK, &list)
}

/// `GET /runbooks/{name}`.
pub(crate) async fn show<P: ControlPlane>(plane: &P, name: &str) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let n = name.clone();
    let found: Option<Runbook> = plane.read(move |state| state.runbook(&n).cloned()).await?;
    let runbook =
        found.ok_or_else(|| ApiError::not_found(format!("runbook `{name}` does not exist")))?;
    json(StatusCode::OK, &runbook)
}

/// `PUT /runbooks/{name}`: creates or replaces it.
pub(crate) async fn put<P: ControlPlane>(
    plane: &P,
    name: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let (parts, body) = req.into_parts();
    match media_type(&parts.headers).as_deref() {
        None | Some("text/markdown" | "text/plain" | "text/x-markdown") => {}
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "a runbook is sent as text/markdown (or text/plain), not {other}"
            )));
        }
    }
    let bytes = read_limited(&parts.headers, body, state::MAX_RUNBOOK_BYTES, "a runbook").await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::invalid("text", "a runbook is UTF-8 text"))?;
    let matter = crate::runbook::parse(&text).map_err(|e| {
        ApiError::invalid(
            e.field.clone(),
            format!("the runbook is not valid: {}", e.message),
        )
    })?;
    let command = Command::PutRunbook {
        name: name.clone(),
        title: matter.title,
        alerts: matter.alerts,
        text,
    };
    let (revision, _) = commit(plane, command).await?;
    let stored = plane
        .read(move |state| state.runbook(&name).cloned())
        .await?
        .ok_or_else(|| ApiError::internal("the runbook was stored but is not found"))?;
    Ok(with_revision(json(StatusCode::OK, &stored)?, revision))
}

/// `DELETE /runbooks/{name}`.
pub(crate) async fn delete<P: ControlPlane>(plane: &P, name: &str) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let (revision, _) = commit(plane, Command::DeleteRunbook { name }).await?;
    Ok(with_revision(no_content(), revision))
}
