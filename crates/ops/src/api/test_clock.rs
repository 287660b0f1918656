//! `POST /test/clock`: for end-to-end tests only. A node started with
//! `dwcp up --manual-clock` (a hidden flag) installs a [`ClockHook`]: the
//! SLO evaluator's clock then moves only when an admin posts
//! `{"advance_ms": N}` here, which advances it and runs one evaluation
//! round at once, answering what fired. Without the flag no hook is
//! installed and the route answers 404 `not_supported`. Incident steps
//! (acknowledge, resolve, notes) read their time from the same clock
//! ([`now_ms`]).
//!
//! `{"troubles": [...]}` with it hands the autopilot's acting loop
//! troubles as `sense` makes them (`act::Trouble` as JSON), decided at its
//! next round as if sensed: end-to-end tests use it to reach the actions
//! whose detectors need hours of signal (scaling, rollback) on real
//! processes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, json, now_unix_ms};

/// What `dwcp up --manual-clock` gives the API: the evaluator's clock and
/// a way to run one round.
pub trait ClockHook: Send + Sync + 'static {
    /// The evaluator's time, Unix ms.
    fn now_ms(&self) -> u64;
    /// Hands the acting loop `troubles` (JSON `act::Trouble`s); why not,
    /// naming the one at fault.
    fn hand(&self, troubles: Vec<serde_json::Value>) -> Result<(), String> {
        let _ = troubles;
        Err("not supported by this clock".into())
    }
    /// Advances the clock by `ms`, runs one evaluation round and answers
    /// what it did as JSON, or why it could not.
    fn advance(
        &self,
        ms: u64,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send + '_>>;
}

static HOOK: OnceLock<Arc<dyn ClockHook>> = OnceLock::new();

/// Installs the test clock for this process (once; later calls are
/// ignored). Only `dwcp up --manual-clock` calls it.
pub fn install_clock_hook(hook: Arc<dyn ClockHook>) {
    let _ = HOOK.set(hook);
}

/// The time incident steps are recorded at: the manual clock when one is
/// installed, else this node's wall clock.
pub(crate) fn now_ms() -> u64 {
    HOOK.get().map_or_else(now_unix_ms, |h| h.now_ms())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_ms: u64,
    #[serde(default)]
    troubles: Vec<serde_json::Value>,
}

/// `POST /test/clock`.
pub(crate) async fn advance(req: Request<Incoming>) -> Result<Reply, ApiError> {
    let Some(hook) = HOOK.get() else {
        return Err(ApiError::not_found(
            "not supported: this node runs on the wall clock (the test clock needs `dwcp up --manual-clock`)",
        ));
    };
    let (parts, body) = req.into_parts();
    let wanted: Advance = read_json(&parts.headers, body).await?;
    if wanted.advance_ms > 365 * 86_400_000 {
        return Err(ApiError::invalid(
            "advance_ms",
            "at most a year (31536000000 ms) at a time",
        ));
    }
    if !wanted.troubles.is_empty() {
        hook.hand(wanted.troubles)
            .map_err(|e| ApiError::invalid("troubles", e))?;
    }
    let done = hook
        .advance(wanted.advance_ms)
        .await
        .map_err(ApiError::unavailable)?;
    json(StatusCode::OK, &done)
}
