//! `/cluster`: membership and leadership, and removing a node.

use hyper::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::reply::{Reply, json, no_content, record_outside};
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
    json(StatusCode::OK, &status)
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

/// `POST /cluster/join-tokens`: a new join token, shown once.
pub(crate) async fn join_token<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let token = plane.new_join_token().await?;
    record_outside(plane).await;
    json(StatusCode::CREATED, &serde_json::json!({ "token": token }))
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
