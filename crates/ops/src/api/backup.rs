//! Backups through the API, for `dwcp backup` (admin only: a backup holds
//! every credential's hash and every user's password hash):
//! `GET /backup[?tier=cell|global]` is a consistent point of this node's
//! group (the state at one revision, the log index of the read, the
//! artifacts it names), `GET /blobs/{digest}/content` an artifact's bytes,
//! and `GET /backups` the latest scheduled backup of each node (`dwcp up
//! --backup-dir`). The client seals the backup under the operator's key:
//! the key never reaches the node. Taking a point is recorded in the
//! audit log.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::error::ApiError;
use super::reply::{Reply, json, record_outside};
use super::validate;
use crate::ControlPlane;
use cluster::backup::{RECORD_PREFIX, ScheduledBackup};

/// `GET /backup[?tier=cell|global]`.
pub(crate) async fn point<P: ControlPlane>(
    plane: &P,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let mut global = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("tier", "cell")) => global = false,
            Some(("tier", "global")) => global = true,
            Some(("tier", other)) => {
                return Err(ApiError::invalid(
                    "tier",
                    format!(
                        "tier `{}` is not allowed: `cell` (this node's own group, the default) or `global` (the planet's global tier)",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
            _ => {
                return Err(ApiError::invalid(
                    pair.split('=')
                        .next()
                        .unwrap_or(pair)
                        .chars()
                        .take(80)
                        .collect::<String>(),
                    "the only query parameter of GET /api/v1/backup is `tier`",
                ));
            }
        }
    }
    let point = plane.backup_point(global).await?;
    record_outside(plane).await;
    json(StatusCode::OK, &point)
}

/// `GET /blobs/{digest}/content`: the artifact's bytes.
pub(crate) async fn content<P: ControlPlane>(plane: &P, digest: &str) -> Result<Reply, ApiError> {
    validate::digest(digest)?;
    let bytes = plane.blob_bytes(digest).ok_or_else(|| {
        ApiError::not_found(format!(
            "no artifact with digest `{digest}` is stored on this node"
        ))
    })??;
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

#[derive(Serialize)]
struct Scheduled {
    backups: Vec<ScheduledBackup>,
}

/// `GET /backups`: each node's latest scheduled backup, per tier.
pub(crate) async fn scheduled<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let backups = plane
        .read(|state| {
            state
                .registers_from(RECORD_PREFIX)
                .take_while(|(key, _)| key.starts_with(RECORD_PREFIX))
                .filter_map(|(_, value)| serde_json::from_slice(value).ok())
                .collect()
        })
        .await?;
    json(StatusCode::OK, &Scheduled { backups })
}
