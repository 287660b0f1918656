//! `/cluster`: membership and leadership, and removing a node.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::Command;

use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, record_outside, with_revision};
use super::validate;
use crate::ControlPlane;
use crate::dashboard::Feed;
use crate::dashboard::history::History;

/// `GET /cluster`: with each member's health and heartbeat age as this
/// node judged its reports (the scheduler's judgement).
pub(crate) async fn status<P: ControlPlane>(plane: &P, feed: &Feed) -> Result<Reply, ApiError> {
    let mut status = plane.status().await?;
    plane.probe_members(&mut status).await;
    feed.with_history(|history| {
        for member in &mut status.members {
            let health = health(history, &::cluster::node_name(member.id));
            member.health = Some(health.state.to_string());
            member.heartbeat_age_ms = health.heartbeat_age_ms;
        }
    });
    json(
        StatusCode::OK,
        &WithId {
            status,
            cluster_id: plane.cluster_id(),
        },
    )
}

/// `GET /cluster`'s answer: the status and the cluster's identity.
#[derive(Serialize)]
struct WithId {
    #[serde(flatten)]
    status: ::cluster::ClusterStatus,
    /// The sha256 of the cluster's CA certificate; certification reports
    /// carry it (`null`: not known to this node).
    cluster_id: Option<String>,
}

/// A node's health as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Health {
    /// `healthy`, `down` (its report stood still for the scheduler's
    /// `DEAD_AFTER`) or `no_report` (none seen by this node yet).
    pub state: &'static str,
    /// How long its report has stood still, in ms.
    pub heartbeat_age_ms: Option<u64>,
}

impl Health {
    /// A node whose report this node has not seen.
    pub const NOT_SEEN: Health = Health {
        state: "no_report",
        heartbeat_age_ms: None,
    };
}

/// `node`'s health by `history` (this node's samples of the reports).
pub(crate) fn health(history: &History, node: &state::Name) -> Health {
    match history.node_health(node.as_str()) {
        Some(h) => Health {
            state: if h.healthy { "healthy" } else { "down" },
            heartbeat_age_ms: Some(h.heartbeat_age_ms),
        },
        None => Health::NOT_SEEN,
    }
}

/// `GET /cluster/global`: the global tier's status, in a planet.
pub(crate) async fn global_status<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    match plane.global_status().await? {
        Some(status) => json(StatusCode::OK, &status),
        None => Err(ApiError::not_found(
            "this node does not run in a planet, so there is no global tier (dwcp up --topology FILE --node NAME)",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJoinToken {
    /// Seconds the token admits nodes for (default 3600; given, not
    /// `null`).
    #[serde(default, deserialize_with = "super::strict::present")]
    ttl_s: Option<u64>,
    /// Joins it admits (default 1); `0`: any number until it expires.
    #[serde(default)]
    uses: Option<u32>,
}

/// A join token as listed: never the secret.
#[derive(Serialize)]
struct JoinTokenEntry {
    name: state::Name,
    created: state::Revision,
    /// Unix ms from which it is refused; absent for a token made before
    /// tokens expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_unix_ms: Option<u64>,
    /// Joins it still admits; absent: any number until it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    uses_left: Option<u32>,
}

/// `POST /cluster/join-tokens`: a new join token, shown once; body
/// `{"ttl_s": 3600, "uses": 1}` (both optional: one join within an hour).
pub(crate) async fn join_token<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let asked: NewJoinToken = if parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .is_some_and(|l| l == "0")
    {
        NewJoinToken {
            ttl_s: None,
            uses: None,
        }
    } else {
        read_json(&parts.headers, body).await?
    };
    let max_s = state::MAX_JOIN_TTL_MS / 1000;
    let ttl_s = asked.ttl_s.unwrap_or(3600);
    if ttl_s == 0 || ttl_s > max_s {
        return Err(ApiError::invalid(
            "ttl_s",
            format!("ttl_s {ttl_s} is not allowed: from 1 to {max_s} seconds (30 days)"),
        ));
    }
    let uses = match asked.uses.unwrap_or(1) {
        0 => None,
        n => Some(n),
    };
    let token = plane
        .new_join_token(std::time::Duration::from_secs(ttl_s), uses)
        .await?;
    record_outside(plane).await;
    json(StatusCode::CREATED, &serde_json::json!({ "token": token }))
}

/// `GET /cluster/join-tokens`: every join token's name, expiry and uses
/// left (never the secret).
pub(crate) async fn join_tokens<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let tokens = plane
        .read(|state| {
            state
                .join_tokens()
                .map(|c| JoinTokenEntry {
                    name: c.name.clone(),
                    created: c.created,
                    expires_unix_ms: c.join.map(|l| l.expires_unix_ms),
                    uses_left: c.join.and_then(|l| l.uses_left),
                })
                .collect::<Vec<_>>()
        })
        .await?;
    json(StatusCode::OK, &serde_json::json!({ "tokens": tokens }))
}

/// `DELETE /cluster/join-tokens/{name}`: the token admits no more nodes.
pub(crate) async fn revoke_join_token<P: ControlPlane>(
    plane: &P,
    name: &str,
) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let n = name.clone();
    let found = plane
        .read(move |state| state.join_tokens().any(|c| c.name == n))
        .await?;
    if !found {
        return Err(ApiError::not_found(format!(
            "no join token named `{name}` (GET /api/v1/cluster/join-tokens lists them)"
        )));
    }
    let (revision, _) = commit(plane, Command::DeleteCredential { name }).await?;
    Ok(with_revision(no_content(), revision))
}

/// `DELETE /cluster/nodes/{id}`.
pub(crate) async fn remove<P: ControlPlane>(plane: &P, id: &str) -> Result<Reply, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        ApiError::invalid(
            "node",
            format!(
                "node id `{}` is not allowed: a whole number from 0 to {} (GET /api/v1/cluster lists the members)",
                id.chars().take(80).collect::<String>(),
                u64::MAX
            ),
        )
    })?;
    plane.remove_node(id).await?;
    record_outside(plane).await;
    Ok(no_content())
}
