//! The autopilot, as `dwcp up` runs it on every node. Each round (every
//! `--autopilot-every` on the wall clock, 10 s by default; under the
//! hidden test flag `--manual-clock`, only when an admin posts to
//! `/api/v1/test/clock`) it reads the local state and:
//! - on every node, samples it into the signals' rings and forecasters
//!   ([`autopilot::pilot::Observer`]: every node applies the same reports,
//!   so every node can answer a forecast and a new leader has the
//!   history);
//! - on the leader only, runs the detectors, the predictor and root-cause
//!   ranking ([`autopilot::pilot::Pilot`], built on becoming leader by
//!   replaying the rings and adopting the predictions open in the store)
//!   and writes what they found as one `RecordAutopilot`.
//!
//! The decisions are pure (`autopilot`); this loop only reads, calls and
//! writes. A write that fails drops the leader's part, which is rebuilt
//! from the state at the next round (so nothing it believes it wrote is
//! lost).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use autopilot::pilot::{AutopilotConfig, ForecastQueryError, ForecastView, Observer, Pilot};
use autopilot::signal::SeriesKey;
use cluster::ClusterNode;
use ops::slo::Clock;
use serde_json::{Value, json};
use state::Command;

/// The autopilot's memory on this node, and what it needs for a round.
pub struct Autopilot {
    node: Arc<ClusterNode>,
    clock: Arc<dyn Clock>,
    cfg: AutopilotConfig,
    inner: Mutex<Inner>,
    /// One round at a time (a manual round and the timer's do not mix).
    round: tokio::sync::Mutex<()>,
}

struct Inner {
    observer: Observer,
    /// `Some` while this node leads.
    pilot: Option<Pilot>,
}

impl Autopilot {
    pub fn new(node: Arc<ClusterNode>, clock: Arc<dyn Clock>, cfg: AutopilotConfig) -> Autopilot {
        Autopilot {
            node,
            clock,
            inner: Mutex::new(Inner {
                observer: Observer::new(&cfg),
                pilot: None,
            }),
            cfg,
            round: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic in a round leaves plain data: still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One round; what it did as JSON.
    pub async fn round(&self) -> Value {
        let _one = self.round.lock().await;
        let now = self.clock.now_ms();
        let status = self.node.replica().status();
        let leading = status.leader == Some(status.id);
        let (update, summary) = {
            let state = self.node.replica().read_local();
            let mut inner = self.lock();
            let inner = &mut *inner;
            let sampled = inner.observer.observe(&state, now);
            let samples = sampled.samples.len();
            if !leading {
                inner.pilot = None;
                return json!({"now_ms": now, "samples": samples, "leading": false});
            }
            let pilot = inner
                .pilot
                .get_or_insert_with(|| Pilot::rebuild(&self.cfg, &inner.observer, &state));
            let update = pilot.round(&inner.observer, &state, now);
            let open: Vec<Value> = pilot
                .open_predictions()
                .map(|p| json!({"kind": p.kind, "subject": p.subject.to_string(), "eta_ms": p.eta.at_ms}))
                .collect();
            let summary = json!({
                "now_ms": now,
                "samples": samples,
                "leading": true,
                "detections": update.detections.len(),
                "predictions": update.predictions.iter().map(|p| json!({
                    "kind": p.kind, "subject": p.subject.to_string(), "status": p.status,
                    "eta_ms": p.eta.at_ms, "why": p.why,
                })).collect::<Vec<_>>(),
                "diagnoses": update.diagnoses.len(),
                "incidents": update.incidents.len(),
                "open": open,
            });
            (update, summary)
        };
        if update.is_empty() {
            return summary;
        }
        let failure = match self.node.write(Command::RecordAutopilot { update }).await {
            Ok(r) => r.result.err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failure {
            cluster::say!(
                warn,
                "autopilot",
                "findings not stored ({why}); rebuilding from the state"
            );
            self.lock().pilot = None;
            return json!({"now_ms": now, "error": why});
        }
        summary
    }

    /// The forecast of `key` at each horizon, from this node's signals.
    pub fn forecast(
        &self,
        key: &SeriesKey,
        horizons_ms: &[i64],
        recent: usize,
    ) -> Result<ForecastView, ForecastQueryError> {
        self.lock().observer.forecast(key, horizons_ms, recent)
    }

    /// The series this node has signals for.
    pub fn series(&self) -> Vec<SeriesKey> {
        self.lock()
            .observer
            .signals()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// Runs rounds every `every` on the wall clock until the task is aborted.
pub async fn run(autopilot: Arc<Autopilot>, every: Duration) {
    loop {
        autopilot.round().await;
        tokio::time::sleep(every).await;
    }
}

impl ops::forecasts::AutopilotHook for Autopilot {
    fn forecast(
        &self,
        key: &SeriesKey,
        horizons_ms: &[i64],
        recent: usize,
    ) -> Result<ForecastView, ForecastQueryError> {
        Autopilot::forecast(self, key, horizons_ms, recent)
    }
}
