//! The autopilot's round, as pure code over the state: what every node
//! runs ([`Observer`]: the sampler, the signals' rings and the
//! forecasters) and what only the leader runs on top of it ([`Pilot`]:
//! the detectors, the predictor and root-cause ranking), whose round
//! gives at most one [`AutopilotUpdate`] to write.
//!
//! What lives where:
//! - Replicated (in the store, through the update): detections,
//!   predictions (open ones survive a change of leader: the new leader
//!   adopts them and goes on updating or closing them) and diagnoses, and
//!   the incidents predictions open. All bounded by the state machine.
//! - Every node's memory: the sampler and the rings (an hour of points
//!   per series) and forecasters, rebuilt by watching the store's reports
//!   (every node applies them). So any node answers a forecast.
//! - The leader's memory: the detectors. A new leader builds them by
//!   replaying the rings it kept as a follower, then goes on point by
//!   point; what the rings no longer hold is learnt again.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use state::State;
use state::autopilot::{
    AutopilotUpdate, Detection, DetectorView, Diagnosis, FailureKind, Prediction,
    PredictionIncident, PredictionStatus, Trigger,
};

use crate::detect::{Baseline, DetectorKind, Ensemble, EnsembleConfig};
use crate::forecast::{
    ForecastError, Forecaster, ForecasterConfig, MAX_HORIZON_MS, MIN_HORIZON_MS,
};
use crate::predict::{PredictConfig, Predictor};
use crate::rca::{self, RcaConfig};
use crate::signal::{
    ChangeLog, Metric, Point, Sampled, Sampler, SamplerConfig, SeriesKey, Signals, SignalsConfig,
    Subject,
};

/// The alert name of incidents predictions open (what runbooks name).
pub const PREDICTION_ALERT: &str = "AutopilotPrediction";

/// Every setting of the autopilot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutopilotConfig {
    pub sampler: SamplerConfig,
    pub signals: SignalsConfig,
    pub predict: PredictConfig,
    pub rca: RcaConfig,
    pub detect: EnsembleConfig,
}

/// Which series have a detector: the node's, version's, app's and
/// region's request and resource series (not each version on each node:
/// root-cause ranking reads those from the rings).
pub fn detected(key: &SeriesKey) -> bool {
    use Metric as M;
    match (&key.subject, key.metric) {
        (Subject::Node { .. }, m) => {
            !matches!(m, M::SilenceS | M::ReportingNodes | M::LatencyP50Ms)
        }
        (Subject::Version { .. }, m) => {
            matches!(m, M::RequestRate | M::ErrorRatio | M::LatencyP99Ms)
        }
        (Subject::App { .. }, m) => {
            matches!(
                m,
                M::RequestRate | M::ErrorRatio | M::LatencyP99Ms | M::Concurrency
            )
        }
        (Subject::Region { .. }, m) => m == M::LiveSandboxes,
        _ => false,
    }
}

/// Which series keep a live forecaster: per node its requests, live
/// sandboxes and memory, per app its requests and requests in flight.
/// Others are forecast by replaying their ring when asked.
pub fn forecast_live(key: &SeriesKey) -> bool {
    use Metric as M;
    match (&key.subject, key.metric) {
        (Subject::Node { .. }, m) => {
            matches!(m, M::RequestRate | M::LiveSandboxes | M::MemoryBytes)
        }
        (Subject::App { .. }, m) => matches!(m, M::RequestRate | M::Concurrency),
        _ => false,
    }
}

/// What every node runs: see the module's doc.
#[derive(Clone, Debug)]
pub struct Observer {
    sampler: Sampler,
    signals: Signals,
    forecasters: BTreeMap<SeriesKey, Forecaster>,
    last: Option<Sampled>,
}

/// A forecast as the API shows it: the series' recent points and the
/// forecast at each horizon asked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForecastView {
    pub series: SeriesKey,
    /// The series' last points, oldest first.
    pub recent: Vec<Point>,
    pub forecasts: Vec<crate::forecast::Prediction>,
    /// The value at which the series fails, if any.
    pub limit: Option<f64>,
}

/// A forecast the observer cannot give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForecastQueryError {
    #[error("series: no signal {0} (yet)")]
    UnknownSeries(String),
    #[error(transparent)]
    Forecast(#[from] ForecastError),
}

impl Observer {
    pub fn new(cfg: &AutopilotConfig) -> Observer {
        Observer {
            sampler: Sampler::new(cfg.sampler.clone()),
            signals: Signals::new(cfg.signals.clone()),
            forecasters: BTreeMap::new(),
            last: None,
        }
    }

    /// Samples `state` at `now_ms` into the rings and forecasters.
    pub fn observe(&mut self, state: &State, now_ms: u64) -> &Sampled {
        let sampled = self.sampler.sample(state, now_ms);
        self.signals.record(now_ms, &sampled.samples);
        for s in sampled.samples.iter().filter(|s| forecast_live(&s.key)) {
            if s.value.is_finite() {
                self.forecasters
                    .entry(s.key.clone())
                    .or_insert_with(|| Forecaster::new(ForecasterConfig::default()))
                    .observe(now_ms as i64, s.value);
            }
        }
        let signals = &self.signals;
        self.forecasters.retain(|k, _| signals.get(k).is_some());
        self.last.insert(sampled)
    }

    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    pub fn changes(&self) -> &ChangeLog {
        self.sampler.changes()
    }

    /// The last read's samples.
    pub fn last(&self) -> Option<&Sampled> {
        self.last.as_ref()
    }

    /// The forecast of `key` at each of `horizons_ms` (5 minutes to 24
    /// hours) with its last `recent` points; a series without a live
    /// forecaster is forecast from its ring.
    pub fn forecast(
        &self,
        key: &SeriesKey,
        horizons_ms: &[i64],
        recent: usize,
    ) -> Result<ForecastView, ForecastQueryError> {
        for &h in horizons_ms {
            if !(MIN_HORIZON_MS..=MAX_HORIZON_MS).contains(&h) {
                return Err(ForecastError::HorizonOutOfRange { horizon_ms: h }.into());
            }
        }
        let series = self
            .signals
            .get(key)
            .ok_or_else(|| ForecastQueryError::UnknownSeries(key.to_string()))?;
        let replayed;
        let forecaster = match self.forecasters.get(key) {
            Some(f) => f,
            None => {
                let mut f = Forecaster::new(ForecasterConfig::default());
                for p in series.points() {
                    f.observe(p.t_ms as i64, p.value);
                }
                replayed = f;
                &replayed
            }
        };
        let forecasts = horizons_ms
            .iter()
            .map(|&h| forecaster.forecast(h))
            .collect::<Result<Vec<_>, _>>()?;
        let skip = series.len().saturating_sub(recent);
        Ok(ForecastView {
            series: key.clone(),
            recent: series.points().skip(skip).copied().collect(),
            forecasts,
            limit: series.limit(),
        })
    }

    /// Heap bytes held, roughly.
    pub fn memory_bytes(&self) -> usize {
        self.signals.memory_bytes()
            + self
                .forecasters
                .values()
                .map(Forecaster::memory_bytes)
                .sum::<usize>()
    }
}

/// A detector and the time of the last point it saw.
#[derive(Clone, Debug)]
struct Watched {
    ensemble: Ensemble,
    last_ms: u64,
}

/// The leader's part: see the module's doc.
#[derive(Clone, Debug)]
pub struct Pilot {
    cfg: AutopilotConfig,
    detectors: BTreeMap<SeriesKey, Watched>,
    predictor: Predictor,
    /// Triggers diagnosed, with when (so one is diagnosed once, then
    /// again only every [`REDIAGNOSE_MS`] while it lasts).
    diagnosed: BTreeMap<String, u64>,
}

/// Most detections written per round (the strongest first).
pub const MAX_DETECTIONS_PER_ROUND: usize = 20;
/// A detection this strong on an app's or version's errors or latency
/// sets off a root-cause ranking.
pub const RCA_SCORE: f64 = 0.75;
/// A trigger still there is ranked again this often.
pub const REDIAGNOSE_MS: u64 = 10 * 60_000;
/// Most series with a detector (each holds a few hundred KiB).
pub const MAX_DETECTED_SERIES: usize = 400;

impl Pilot {
    /// The leader's part, built from what the observer kept: every
    /// detector replays its series' ring, and the predictions open in
    /// `state` are adopted.
    pub fn rebuild(cfg: &AutopilotConfig, observer: &Observer, state: &State) -> Pilot {
        let mut pilot = Pilot {
            cfg: cfg.clone(),
            detectors: BTreeMap::new(),
            predictor: Predictor::new(cfg.predict.clone()),
            diagnosed: BTreeMap::new(),
        };
        pilot.predictor.adopt(state.open_predictions());
        for (key, series) in observer.signals().iter().filter(|(k, _)| detected(k)) {
            if pilot.detectors.len() >= MAX_DETECTED_SERIES {
                break;
            }
            let mut ensemble = Ensemble::new(cfg.detect.clone());
            let mut last_ms = 0;
            for p in series.points() {
                ensemble.observe(p.t_ms as i64, p.value);
                last_ms = p.t_ms;
            }
            pilot
                .detectors
                .insert(key.clone(), Watched { ensemble, last_ms });
        }
        for p in state.diagnoses() {
            pilot.diagnosed.insert(trigger_key(&p.trigger), p.t_ms);
        }
        pilot
    }

    /// The predictions open now.
    pub fn open_predictions(&self) -> impl Iterator<Item = &Prediction> {
        self.predictor.open()
    }

    /// One round at `now_ms`, after the observer read the state: the
    /// findings to write (empty: nothing to write).
    pub fn round(&mut self, observer: &Observer, state: &State, now_ms: u64) -> AutopilotUpdate {
        let mut update = AutopilotUpdate {
            now_ms,
            ..AutopilotUpdate::default()
        };
        update.detections = self.detect(observer);
        update.predictions = self.predictor.round(observer.signals(), now_ms);
        update.incidents = incidents(state, &update.predictions);
        update.diagnoses = self.diagnose(observer, state, &update, now_ms);
        update
    }

    /// Feeds each detected series' new points to its detector; the
    /// anomalous points, strongest first.
    fn detect(&mut self, observer: &Observer) -> Vec<Detection> {
        let mut found = Vec::new();
        for (key, series) in observer.signals().iter().filter(|(k, _)| detected(k)) {
            if !self.detectors.contains_key(key) && self.detectors.len() >= MAX_DETECTED_SERIES {
                continue;
            }
            let watched = self
                .detectors
                .entry(key.clone())
                .or_insert_with(|| Watched {
                    ensemble: Ensemble::new(self.cfg.detect.clone()),
                    last_ms: 0,
                });
            let since_ms = watched.last_ms;
            for p in series.points().filter(|p| p.t_ms > since_ms) {
                watched.last_ms = p.t_ms;
                let a = watched.ensemble.observe(p.t_ms as i64, p.value);
                if a.anomalous && !a.suppressed {
                    found.push(Detection {
                        id: 0,
                        series: key.clone(),
                        t_ms: p.t_ms,
                        observed: a.observed,
                        expected: a.expected,
                        band: a.band.map(|b| state::autopilot::Band {
                            low: b.low,
                            high: b.high,
                        }),
                        score: a.score,
                        baseline: a.baseline.map(|b| baseline_name(b).to_string()),
                        detectors: a
                            .signals
                            .iter()
                            .map(|s| DetectorView {
                                detector: detector_name(s.detector).into(),
                                strength: s.strength,
                                fired: s.fired,
                            })
                            .collect(),
                    });
                }
            }
        }
        let signals = observer.signals();
        self.detectors.retain(|k, _| signals.get(k).is_some());
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(MAX_DETECTIONS_PER_ROUND);
        found
    }

    /// Ranks causes for what set them off this round: predictions opened,
    /// SLO alerts' incidents not yet ranked, strong anomalies on an app's
    /// or version's errors or latency.
    fn diagnose(
        &mut self,
        observer: &Observer,
        state: &State,
        update: &AutopilotUpdate,
        now_ms: u64,
    ) -> Vec<Diagnosis> {
        let mut wanted: Vec<(Trigger, SeriesKey)> = Vec::new();
        for p in &update.predictions {
            if p.status == PredictionStatus::Open {
                wanted.push((
                    Trigger::Prediction {
                        kind: p.kind,
                        subject: p.subject.clone(),
                    },
                    p.series.clone(),
                ));
            }
        }
        for i in state
            .incidents()
            .filter(|i| i.unresolved() && i.alert != PREDICTION_ALERT)
        {
            let metric =
                state
                    .slo(&i.tenant, &i.app, &i.slo)
                    .map_or(Metric::ErrorRatio, |s| match s.objective {
                        state::Objective::Availability => Metric::ErrorRatio,
                        state::Objective::Latency { .. } => Metric::LatencyP99Ms,
                    });
            wanted.push((
                Trigger::SloAlert {
                    incident: i.id,
                    tenant: i.tenant.clone(),
                    app: i.app.clone(),
                    slo: i.slo.clone(),
                },
                SeriesKey {
                    subject: Subject::App {
                        tenant: i.tenant.clone(),
                        app: i.app.clone(),
                    },
                    metric,
                },
            ));
        }
        for d in &update.detections {
            let app_level = matches!(
                d.series.subject,
                Subject::App { .. } | Subject::Version { .. }
            );
            let bad = matches!(d.series.metric, Metric::ErrorRatio | Metric::LatencyP99Ms);
            if app_level && bad && d.score >= RCA_SCORE && d.observed > d.expected.unwrap_or(0.0) {
                wanted.push((
                    Trigger::Anomaly {
                        series: d.series.clone(),
                        t_ms: d.t_ms,
                    },
                    d.series.clone(),
                ));
            }
        }
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (trigger, focus) in wanted {
            let k = trigger_key(&trigger);
            if !seen.insert(k.clone()) {
                continue;
            }
            // An anomaly's trigger names its time: rank the series once
            // per spell, not at every strong point.
            let spell = match &trigger {
                Trigger::Anomaly { series, .. } => format!("anomaly {series}"),
                _ => k.clone(),
            };
            if self
                .diagnosed
                .get(&spell)
                .is_some_and(|t| now_ms < t + REDIAGNOSE_MS)
            {
                continue;
            }
            self.diagnosed.insert(spell, now_ms);
            out.push(rca::diagnose(
                &self.cfg.rca,
                trigger,
                &focus,
                observer.signals(),
                observer.changes(),
                state,
                now_ms,
            ));
            if out.len() >= state::autopilot::MAX_PER_UPDATE / 10 {
                break;
            }
        }
        self.diagnosed
            .retain(|_, t| now_ms < t.saturating_add(24 * 3_600_000));
        out
    }

    /// Heap bytes held by the detectors, roughly.
    pub fn memory_bytes(&self) -> usize {
        self.detectors
            .values()
            .map(|w| w.ensemble.memory_bytes())
            .sum()
    }
}

/// A stable text key of a trigger.
fn trigger_key(t: &Trigger) -> String {
    match t {
        Trigger::SloAlert { incident, .. } => format!("incident {incident}"),
        Trigger::Anomaly { series, t_ms } => format!("anomaly {series} {t_ms}"),
        Trigger::Prediction { kind, subject } => format!("prediction {kind} {subject}"),
    }
}

/// The incidents to open for newly opened predictions of an app or
/// version: on the fingerprint of the app's SLO page when it has an SLO
/// (the SLO's alert later fires into the same incident), else of its
/// own. Node and region predictions open none (their apps may have no
/// SLO; an operator sees them on the Autopilot page and in `/metrics`).
fn incidents(state: &State, predictions: &[Prediction]) -> Vec<PredictionIncident> {
    let mut out = Vec::new();
    // New this round: first made now.
    for p in predictions
        .iter()
        .filter(|p| p.status == PredictionStatus::Open && p.first_ms == p.updated_ms)
    {
        let Some((tenant, app)) = p.subject.app() else {
            continue;
        };
        let wanted = match p.kind {
            FailureKind::VersionLatency => Some("latency"),
            FailureKind::VersionErrors | FailureKind::LoadPastCapacity => Some("availability"),
            _ => None,
        };
        let slo = state
            .slos_of(tenant, app)
            .find(|s| Some(s.objective.kind()) == wanted)
            .or_else(|| state.slos_of(tenant, app).next());
        let (slo_name, fingerprint) = match slo {
            Some(s) => (
                s.name.clone(),
                format!("{}/{}/{}/page", s.tenant, s.app, s.name),
            ),
            None => match state::Name::new("slo", "autopilot") {
                Ok(n) => (n, format!("autopilot/{}/{}", p.kind, p.subject)),
                Err(_) => continue,
            },
        };
        out.push(PredictionIncident {
            kind: p.kind,
            subject: p.subject.clone(),
            fingerprint,
            alert: PREDICTION_ALERT.into(),
            tenant: tenant.clone(),
            app: app.clone(),
            slo: slo_name,
            text: crate::predict::clip(format!("predicted {}: {}", p.kind, p.why)),
        });
    }
    out
}

fn detector_name(k: DetectorKind) -> &'static str {
    match k {
        DetectorKind::Robust => "robust",
        DetectorKind::Forecast => "forecast",
        DetectorKind::ChangePoint => "change_point",
        DetectorKind::Discord => "discord",
    }
}

fn baseline_name(b: Baseline) -> &'static str {
    match b {
        Baseline::Recent => "recent",
        Baseline::Daily => "daily",
        Baseline::Weekly => "weekly",
    }
}
