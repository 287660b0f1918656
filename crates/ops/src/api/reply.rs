//! Successful responses, and the one way a handler writes: a single
//! command whose refusal becomes the matching 4xx.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use state::{Command, Outcome, Revision};

use super::error::ApiError;
use crate::ControlPlane;

/// What every handler returns.
pub(crate) type Reply = Response<Full<Bytes>>;

/// The header carrying the state's revision after a write.
pub(crate) const REVISION_HEADER: &str = "dwcp-revision";
/// The header carrying the id of the node that answered.
pub(crate) const NODE_HEADER: &str = "dwcp-node";

/// `value` as a JSON response with `status`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Reply, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("could not encode the response: {e}")))?;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// 204 with no body.
pub(crate) fn no_content() -> Reply {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Adds the `dwcp-revision` header of a write.
pub(crate) fn with_revision(mut response: Reply, revision: Revision) -> Reply {
    response
        .headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision.0));
    response
}

/// The times of audit records and rollout trails: this node's wall clock.
pub(crate) use ::cluster::unix_now_ms as now_unix_ms;

/// Who is asking for what, from where: set by the router around each
/// authenticated request, read by [`commit`].
#[derive(Clone, Debug)]
pub(crate) struct AuditContext {
    pub who: String,
    pub from: String,
    pub what: String,
    /// The tenants a caller's changes are limited to
    /// ([`super::auth::Caller::scope`]); `None` for a caller with a role
    /// on every tenant.
    pub scope: Option<Vec<state::Name>>,
}

tokio::task_local! {
    pub(crate) static AUDIT: AuditContext;
}

/// Runs `f` with ` [note]` added to the `what` of the audit records of
/// the changes it commits (`None`: as is).
pub(crate) async fn noted<F: std::future::Future>(note: Option<String>, f: F) -> F::Output {
    match (note, AUDIT.try_with(Clone::clone)) {
        (Some(note), Ok(mut ctx)) => {
            ctx.what = format!("{} [{note}]", ctx.what);
            AUDIT.scope(ctx, f).await
        }
        _ => f.await,
    }
}

/// Records in the audit log a change this request made outside the log
/// (an artifact stored, a member removed, a join token made): a second
/// entry, right after the change. The change stands if the record cannot
/// be written; the node says so on stderr.
pub(crate) async fn record_outside<P: ControlPlane>(plane: &P) {
    if AUDIT.try_with(|_| ()).is_err() {
        return;
    }
    if let Err(e) = commit(plane, Command::Happened).await {
        ::cluster::say!(
            "api",
            "a change was made but its audit record was not written: {e:?}"
        );
    }
}

/// Commits `command` (one log entry) and returns the revision after it
/// and its outcome; a refusal by the state machine is the matching error.
/// Inside a request, the command is audited: the change and its audit
/// record are one entry.
pub(crate) async fn commit<P: ControlPlane>(
    plane: &P,
    command: Command,
) -> Result<(Revision, Outcome), ApiError> {
    let command = match AUDIT.try_with(Clone::clone) {
        Ok(ctx) => Command::Audited {
            who: ctx.who,
            from: ctx.from,
            what: ctx.what,
            unix_ms: now_unix_ms(),
            command: Box::new(match ctx.scope {
                // The state machine holds a scoped caller to their
                // tenants and to hosts of their own.
                Some(tenants) => Command::Scoped {
                    tenants,
                    command: Box::new(command),
                },
                None => command,
            }),
        },
        Err(_) => command,
    };
    let response = plane.write(command).await?;
    let outcome = response.result?;
    Ok((response.revision, outcome))
}
