//! `GET /audit[?since=N]`: who changed what, when and from where — one
//! entry per change made through the API, written in the same log entry
//! as the change. The state keeps the latest 10,000.

use hyper::StatusCode;
use serde::Serialize;
use state::{AuditEntry, Revision};

use super::auth::Caller;
use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;

#[derive(Serialize)]
struct List {
    entries: Vec<AuditEntry>,
}

/// `GET /audit?since=N`: the entries after revision N (all kept without).
pub(crate) async fn list<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let mut since = Revision(0);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("since", v)) => {
                since = Revision(v.parse().map_err(|_| {
                    ApiError::invalid("since", "a revision: a whole number, e.g. since=120")
                })?);
            }
            _ => {
                return Err(ApiError::invalid(
                    pair.split('=')
                        .next()
                        .unwrap_or(pair)
                        .chars()
                        .take(80)
                        .collect::<String>(),
                    "the only query parameter of GET /api/v1/audit is `since`",
                ));
            }
        }
    }
    let caller = caller.clone();
    let entries = plane
        .read(move |state| caller.view(state).audit_since(since).cloned().collect())
        .await?;
    json(StatusCode::OK, &List { entries })
}
