//! `GET /tenants/{tenant}/apps/{app}/logs`: the app's log lines from every
//! node of the cluster (what its guests wrote to stderr, their stdout
//! when it was not an HTTP response, and why requests failed), merged
//! oldest first.
//!
//! Query parameters, all optional: `version=N` (only that version's
//! lines), `last_ms=M` (only lines of the last M ms, by each node's
//! clock), `limit=L` (1 to 1,000 lines, default 200), `after=CURSOR` (the
//! previous page's `cursor`: the lines that came after it, oldest first;
//! without it, the newest lines). `dwcp logs --follow` asks again with
//! the cursor each second.

use cluster::logs::{Cursor, DEFAULT_PAGE_LINES, LogQuery, MAX_PAGE_LINES};
use hyper::StatusCode;

use super::error::ApiError;
use super::reply::{Reply, json};
use super::validate;
use crate::ControlPlane;

/// `GET /tenants/{tenant}/apps/{app}/logs`.
pub(crate) async fn show<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let mut wanted = LogQuery {
        tenant: tenant.to_string(),
        app: app.to_string(),
        version: None,
        since_ms: None,
        after: None,
        limit: DEFAULT_PAGE_LINES,
    };
    let whole = |field: &str, v: &str, max: u64| {
        v.parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!(
                        "{field} `{}` is not allowed: a whole number from 1 to {max}",
                        v.chars().take(40).collect::<String>()
                    ),
                )
            })
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "version" => wanted.version = Some(whole("version", value, u64::MAX)?),
            "last_ms" => {
                let ms = whole("last_ms", value, u64::MAX)?;
                wanted.since_ms = Some(cluster::unix_now_ms().saturating_sub(ms));
            }
            "limit" => wanted.limit = whole("limit", value, MAX_PAGE_LINES as u64)? as usize,
            "after" => {
                // Clients encode the cursor's ':' and ',' (`%3A`, `%2C`).
                let value = value.replace("%3A", ":").replace("%3a", ":");
                let value = value.replace("%2C", ",").replace("%2c", ",");
                let cursor: Cursor = value.parse().map_err(|e: cluster::logs::CursorError| {
                    ApiError::invalid("after", e.to_string())
                })?;
                wanted.after = Some(cursor);
            }
            other => {
                return Err(ApiError::invalid(
                    other.chars().take(80).collect::<String>(),
                    "the query parameters of GET .../logs are version, last_ms, limit and after",
                ));
            }
        }
    }
    let exists = {
        let (tenant, app) = (tenant.clone(), app.clone());
        plane
            .read(move |state| state.app(&tenant, &app).is_some())
            .await?
    };
    if !exists {
        return Err(ApiError::not_found(format!(
            "app `{tenant}/{app}` does not exist"
        )));
    }
    let page = plane.app_logs(wanted).await?;
    json(StatusCode::OK, &page)
}
