//! `GET /nodes`: every node of the state with its last report (heartbeat
//! and observed state), its health (the scheduler's judgement of its
//! reports, as this node saw them) and the placements it holds.

use hyper::StatusCode;
use serde::Serialize;
use state::{Node, NodeReport, Placement};

use super::auth::Caller;
use super::cluster::{Health, health};
use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;
use crate::dashboard::Feed;

#[derive(Serialize)]
struct Entry {
    node: Node,
    /// `null` until the node's agent has reported.
    report: Option<NodeReport>,
    health: Health,
    placements: Vec<Placement>,
}

#[derive(Serialize)]
struct List {
    nodes: Vec<Entry>,
}

/// `GET /nodes`.
pub(crate) async fn list<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    feed: &Feed,
) -> Result<Reply, ApiError> {
    let caller = caller.clone();
    let mut list = plane
        .read(move |state| {
            // Reports and placements of the caller's tenants only, for a
            // user limited to some.
            let state = &*caller.view(state);
            List {
                nodes: state
                    .nodes()
                    .map(|n| Entry {
                        node: n.clone(),
                        report: state.report(&n.name).cloned(),
                        health: Health::NOT_SEEN,
                        placements: state.placements_on(&n.name).cloned().collect(),
                    })
                    .collect(),
            }
        })
        .await?;
    feed.with_history(|history| {
        for entry in &mut list.nodes {
            entry.health = health(history, &entry.node.name);
        }
    });
    json(StatusCode::OK, &list)
}
