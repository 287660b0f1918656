//! `GET /tenants/{tenant}/apps/{app}/traffic`: the app's request rate and
//! error ratio over about the last minute, as this node sampled the
//! nodes' reports (once a second). `dwcp rollout start` sizes a rollout's
//! analyses with it (`rollout::sizing`).

use hyper::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::reply::{Reply, json};
use super::validate;
use crate::ControlPlane;
use crate::dashboard::Feed;

/// How far back the rate looks.
pub(crate) const TRAFFIC_WINDOW_MS: u64 = 60_000;

#[derive(Serialize)]
struct Traffic {
    /// Requests a second to every version of the app, over `over_ms`.
    requests_per_s: f64,
    /// Errors over requests in that span (0 without requests).
    error_ratio: f64,
    /// The span measured, in ms: up to `window_ms`, less while this node
    /// has watched for a shorter time (0: not measured yet).
    over_ms: u64,
    window_ms: u64,
}

/// `GET .../traffic`.
pub(crate) async fn show<P: ControlPlane>(
    plane: &P,
    feed: &Feed,
    tenant: &str,
    app: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let (t, a) = (tenant.clone(), app.clone());
    if !plane.read(move |s| s.app(&t, &a).is_some()).await? {
        return Err(ApiError::not_found(format!(
            "app `{tenant}/{app}` does not exist"
        )));
    }
    let key = (tenant.to_string(), app.to_string());
    let (rates, over_ms) = feed
        .with_history(|h| h.app_traffic(&key, TRAFFIC_WINDOW_MS))
        .unwrap_or_default();
    json(
        StatusCode::OK,
        &Traffic {
            requests_per_s: rates.requests_per_s,
            error_ratio: rates.error_ratio,
            over_ms,
            window_ms: TRAFFIC_WINDOW_MS,
        },
    )
}
