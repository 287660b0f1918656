//! `GET /failovers`: the regions the global tier failed over (and those
//! back since), with where their load went; `POST
//! /failovers/{region}/approve`: an operator approves a failover the
//! hourly guardrail held (admin, and TOTP for a user's session).

use hyper::StatusCode;
use serde::Serialize;
use state::{Command, RegionFailover};

use super::error::ApiError;
use super::reply::{Reply, commit, json, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Serialize)]
struct List {
    failovers: Vec<RegionFailover>,
}

/// `GET /failovers`.
pub(crate) async fn list<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let failovers = match plane.failovers() {
        Some(global) => global,
        None => {
            plane
                .read(|state| state.failovers().cloned().collect())
                .await?
        }
    };
    json(StatusCode::OK, &List { failovers })
}

/// `POST /failovers/{region}/approve`.
pub(crate) async fn approve<P: ControlPlane>(plane: &P, region: &str) -> Result<Reply, ApiError> {
    let region = validate::name("region", region)?;
    let (revision, _) = commit(
        plane,
        Command::ApproveFailover {
            region: region.clone(),
        },
    )
    .await?;
    let failover = plane
        .read(move |state| state.failovers().find(|f| f.region == region).cloned())
        .await?;
    Ok(with_revision(json(StatusCode::OK, &failover)?, revision))
}
