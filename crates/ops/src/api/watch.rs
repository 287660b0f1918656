//! `GET /watch?since=REV[&wait_ms=MS]`: the changes after a revision, like
//! etcd's watch, as a long poll: it answers at once when there are changes,
//! otherwise when one comes or `wait_ms` passes (then with none).

use std::time::Duration;

use hyper::StatusCode;
use serde::Serialize;
use state::Revision;

use super::auth::Caller;
use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;

/// The longest a watch may wait for a change.
const MAX_WAIT_MS: u64 = 60_000;
const DEFAULT_WAIT_MS: u64 = 30_000;

#[derive(Serialize)]
struct Changes {
    events: Vec<state::Event>,
    /// Watch from here next: the last event's revision, or `since` when
    /// there were none.
    next: Revision,
}

fn number(key: &str, value: &str, max: u64) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| {
            ApiError::invalid(
                key.to_string(),
                format!(
                    "{key} `{}` is not allowed: a whole number from 0 to {max}",
                    value.chars().take(40).collect::<String>()
                ),
            )
        })
}

/// `since` (required) and `wait_ms` (optional) from the query.
fn parse(query: Option<&str>) -> Result<(Revision, Duration), ApiError> {
    let (mut since, mut wait) = (None, DEFAULT_WAIT_MS);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "since" => since = Some(number(key, value, u64::MAX)?),
            "wait_ms" => wait = number(key, value, MAX_WAIT_MS)?,
            other => {
                return Err(ApiError::invalid(
                    other.chars().take(80).collect::<String>(),
                    "the query parameters of GET /api/v1/watch are `since` and `wait_ms`",
                ));
            }
        }
    }
    let since = since.ok_or_else(|| {
        ApiError::invalid(
            "since",
            "since is required: the revision to watch from (0 for everything still kept)",
        )
    })?;
    Ok((Revision(since), Duration::from_millis(wait)))
}

/// `GET /watch`.
pub(crate) async fn changes<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let (since, wait) = parse(query)?;
    // A revision ahead of the cluster's would wait for nothing until
    // `wait_ms` passed, however far ahead: refused at once (409: the
    // document cannot say how far the revision is).
    let revision = plane.read(|s| s.revision()).await?;
    if since > revision {
        return Err(ApiError::conflict(
            "since",
            format!(
                "since {} is ahead of the current revision {}: watch from a revision already seen (the `next` of the last answer, or 0)",
                since.0, revision.0
            ),
        ));
    }
    match plane.watch(since, wait).await {
        Ok(mut events) => {
            // Past every change seen, shown or not.
            let next = events.last().map_or(since, |e| e.revision);
            if let Some(tenants) = caller.limited_to() {
                plane.read_local(|state| {
                    events.retain(|e| state.event_visible_to(e, &tenants));
                });
            }
            json(StatusCode::OK, &Changes { events, next })
        }
        Err(compacted) => Err(ApiError::compacted(compacted.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            parse(Some("since=5")).unwrap(),
            (Revision(5), Duration::from_millis(DEFAULT_WAIT_MS))
        );
        assert_eq!(
            parse(Some("since=0&wait_ms=10")).unwrap(),
            (Revision(0), Duration::from_millis(10))
        );
        for (bad, field) in [
            (None, "since"),
            (Some("since=x"), "since"),
            (Some("since=1&wait_ms=60001"), "wait_ms"),
            (Some("since=1&colour=red"), "colour"),
        ] {
            assert_eq!(
                parse(bad).unwrap_err().field.as_deref(),
                Some(field),
                "{bad:?}"
            );
        }
    }
}
