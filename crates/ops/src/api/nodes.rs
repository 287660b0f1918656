//! `GET /nodes`: every node of the state with its last report (heartbeat
//! and observed state) and the placements it holds.

use hyper::StatusCode;
use serde::Serialize;
use state::{Node, NodeReport, Placement};

use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;

#[derive(Serialize)]
struct Entry {
    node: Node,
    /// `null` until the node's agent has reported.
    report: Option<NodeReport>,
    placements: Vec<Placement>,
}

#[derive(Serialize)]
struct List {
    nodes: Vec<Entry>,
}

/// `GET /nodes`.
pub(crate) async fn list<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let list = plane
        .read(|state| List {
            nodes: state
                .nodes()
                .map(|n| Entry {
                    node: n.clone(),
                    report: state.report(&n.name).cloned(),
                    placements: state.placements_on(&n.name).cloned().collect(),
                })
                .collect(),
        })
        .await?;
    json(StatusCode::OK, &list)
}
