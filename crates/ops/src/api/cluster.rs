//! `/cluster`: membership and leadership, and removing a node.

use hyper::StatusCode;

use super::error::ApiError;
use super::reply::{Reply, json, no_content, record_outside};
use crate::ControlPlane;

/// `GET /cluster`.
pub(crate) async fn status<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let status = plane.status().await?;
    json(StatusCode::OK, &status)
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
