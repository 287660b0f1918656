//! `/blobs`: uploading artifacts and asking whether one is stored.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;

use super::body::{BLOB_LIMIT, media_type, read_limited};
use super::error::ApiError;
use super::reply::{Reply, json, record_outside};
use super::validate;
use crate::ControlPlane;

/// Media types an upload may have.
const UPLOAD_TYPES: [&str; 2] = ["application/wasm", "application/octet-stream"];

#[derive(Serialize)]
struct Stored<'a> {
    digest: &'a str,
    stored: bool,
}

/// `POST /blobs`: the raw artifact as the body; 201 with its receipt.
pub(crate) async fn upload<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    match media_type(&parts.headers) {
        Some(media) if UPLOAD_TYPES.contains(&media.as_str()) => {}
        given => {
            return Err(ApiError::unsupported_media_type(format!(
                "upload the artifact's raw bytes with Content-Type application/wasm or application/octet-stream (got {})",
                given.map_or("none".to_string(), |m| format!(
                    "`{}`",
                    m.chars().take(80).collect::<String>()
                ))
            )));
        }
    }
    let bytes = read_limited(&parts.headers, body, BLOB_LIMIT, "the artifact").await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "the artifact is empty: send its bytes (1 byte to 64 MiB) as the body",
        ));
    }
    let receipt = plane.put_blob(bytes).await?;
    record_outside(plane).await;
    json(StatusCode::CREATED, &receipt)
}

/// `GET /blobs/{digest}`: 200 when this node stores it, 404 otherwise.
pub(crate) async fn show<P: ControlPlane>(plane: &P, digest: &str) -> Result<Reply, ApiError> {
    validate::digest(digest)?;
    if plane.has_blob(digest) {
        json(
            StatusCode::OK,
            &Stored {
                digest,
                stored: true,
            },
        )
    } else {
        Err(ApiError::not_found(format!(
            "no artifact with digest `{digest}` is stored on this node; upload it with POST /api/v1/blobs"
        )))
    }
}
