//! Failure prediction: from the signals, the failures DWCP can have, each
//! named by what, where, when (an ETA with an interval) and why.
//!
//! Most failures are a signal reaching its limit — a node's sandboxes its
//! slots, its memory its limit, its data directory its disk limit, a
//! version's errors the rate at which its SLO pages, its latency its SLO's
//! threshold or its timeout, an app's requests in flight its concurrency
//! limit, a region's sandboxes what its reporting nodes hold. For those
//! the rule is one: over the last [`PredictConfig::window_ms`], a robust
//! trend ([`Trend`]: Theil–Sen with its 90 % interval) that the
//! Mann–Kendall test finds rising ([`PredictConfig::min_z`]), whose slope
//! interval stays above zero, and whose line reaches the limit within
//! [`PredictConfig::horizon_ms`]. The ETA is where the line meets the
//! limit; its interval, where the slope's interval does.
//!
//! A node going silent is foretold two ways: its reports stopping (silent
//! for a third of the time after which it is taken for dead: the ETA is
//! then), and its latency rising before it dies — the rule above on the
//! node's p99 towards the shortest timeout it serves, only when that p99
//! is also [`PredictConfig::node_ratio`] times its own earlier level and
//! its peers' (a slowdown everywhere is a version's, not a node's).
//!
//! A prediction stays open while its rule holds or its ETA stays within
//! [`PredictConfig::keep_horizon_ms`]; it closes as `happened` when the
//! signal reaches its limit (or the node goes silent) and as `cleared`
//! after [`PredictConfig::clear_after_rounds`] rounds without it.

mod text;
mod trend;

pub use text::{clip, duration, quantity};
pub use trend::Trend;

use std::collections::BTreeMap;

use state::autopilot::{Band, Eta, FailureKind, Prediction, PredictionStatus};

use crate::signal::{Metric, Point, SeriesKey, Signals, Subject};

/// The predictor's settings; `docs/autopilot.md` says how they were set.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictConfig {
    /// A failure whose ETA is within this is predicted.
    pub horizon_ms: u64,
    /// An open prediction stays open while its ETA is within this.
    pub keep_horizon_ms: u64,
    /// The trend is fitted over this much of the series.
    pub window_ms: u64,
    /// ... and needs at least this many points in it,
    pub min_points: usize,
    /// ... spanning at least this long.
    pub min_span_ms: u64,
    /// The Mann–Kendall z the rise must reach (2.33: one-sided p < 0.01).
    pub min_z: f64,
    /// Rounds without its rule after which an open prediction clears.
    pub clear_after_rounds: u32,
    /// A node's p99 must be this many times its own earlier level and its
    /// peers' for its rise to foretell its silence.
    pub node_ratio: f64,
    /// Silence (as a share of the time after which a node is taken for
    /// dead) from which its silence is foretold.
    pub silence_share: f64,
}

impl Default for PredictConfig {
    fn default() -> PredictConfig {
        PredictConfig {
            horizon_ms: 30 * 60_000,
            keep_horizon_ms: 60 * 60_000,
            window_ms: 30 * 60_000,
            min_points: 8,
            min_span_ms: 7 * 60_000,
            min_z: 2.33,
            clear_after_rounds: 3,
            node_ratio: 3.0,
            silence_share: 1.0 / 3.0,
        }
    }
}

/// Which failure a series foretells, if any.
pub fn failure_of(key: &SeriesKey) -> Option<FailureKind> {
    use Metric as M;
    Some(match (&key.subject, key.metric) {
        (Subject::Node { .. }, M::LiveSandboxes) => FailureKind::SlotExhaustion,
        (Subject::Node { .. }, M::MemoryBytes) => FailureKind::MemoryExhaustion,
        (Subject::Node { .. }, M::DiskBytes) => FailureKind::DiskFull,
        (Subject::Node { .. }, M::SilenceS | M::LatencyP99Ms) => FailureKind::NodeSilent,
        (Subject::Version { .. }, M::ErrorRatio) => FailureKind::VersionErrors,
        (Subject::Version { .. }, M::LatencyP99Ms) => FailureKind::VersionLatency,
        (Subject::App { .. }, M::Concurrency) => FailureKind::LoadPastCapacity,
        (Subject::Region { .. }, M::LiveSandboxes) => FailureKind::RegionCapacity,
        _ => return None,
    })
}

/// What a rule found at one round.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub kind: FailureKind,
    pub subject: Subject,
    pub series: SeriesKey,
    pub value: f64,
    pub limit: f64,
    /// `None` for a node's silence (no trend: a clock running out).
    pub trend: Option<Trend>,
    pub eta: Eta,
    /// The failure is here: the signal reached its limit.
    pub reached: bool,
    pub why: String,
}

impl Estimate {
    /// A failure of `kind` on `key`'s series, now at `value` of `limit`,
    /// due at `eta` (no trend, not reached: the callers set them).
    fn new(
        kind: FailureKind,
        key: &SeriesKey,
        value: f64,
        limit: f64,
        (earliest_ms, at_ms, latest_ms): (u64, u64, u64),
        why: String,
    ) -> Estimate {
        Estimate {
            kind,
            subject: key.subject.clone(),
            series: key.clone(),
            value,
            limit,
            trend: None,
            eta: Eta {
                at_ms,
                earliest_ms,
                latest_ms,
            },
            reached: false,
            why,
        }
    }
}

/// An open prediction and the rounds its rule has not held.
#[derive(Clone, Debug)]
struct Open {
    prediction: Prediction,
    quiet_rounds: u32,
    /// The ETA last written, to write again only when it moved.
    written_eta_ms: u64,
}

/// The predictions of one cluster, kept between rounds by the leader.
#[derive(Clone, Debug, Default)]
pub struct Predictor {
    cfg: PredictConfig,
    open: BTreeMap<(FailureKind, Subject), Open>,
}

impl Predictor {
    pub fn new(cfg: PredictConfig) -> Predictor {
        Predictor {
            cfg,
            open: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &PredictConfig {
        &self.cfg
    }

    /// Takes over predictions still open in the store (a new leader goes
    /// on with them instead of making them again).
    pub fn adopt<'a>(&mut self, open: impl IntoIterator<Item = &'a Prediction>) {
        for p in open {
            if p.status == PredictionStatus::Open {
                self.open.insert(
                    (p.kind, p.subject.clone()),
                    Open {
                        prediction: p.clone(),
                        quiet_rounds: 0,
                        written_eta_ms: p.eta.at_ms,
                    },
                );
            }
        }
    }

    /// The predictions open now.
    pub fn open(&self) -> impl Iterator<Item = &Prediction> {
        self.open.values().map(|o| &o.prediction)
    }

    /// Runs every rule at `now_ms`; returns the predictions to write:
    /// new ones, open ones whose ETA moved by more than a tenth of the
    /// time left, and closed ones.
    pub fn round(&mut self, signals: &Signals, now_ms: u64) -> Vec<Prediction> {
        let estimates = estimates(&self.cfg, signals, now_ms);
        let mut found: BTreeMap<(FailureKind, Subject), Estimate> = BTreeMap::new();
        for e in estimates {
            // One estimate per kind and subject: the soonest.
            let k = (e.kind, e.subject.clone());
            match found.get(&k) {
                Some(old) if old.eta.at_ms <= e.eta.at_ms && !e.reached => {}
                _ => {
                    found.insert(k, e);
                }
            }
        }
        let mut out = Vec::new();
        // Open ones: happened, kept, or quieter.
        let keys: Vec<_> = self.open.keys().cloned().collect();
        for k in keys {
            let Some(open) = self.open.get_mut(&k) else {
                continue;
            };
            match found.remove(&k) {
                Some(e) if e.reached => {
                    let mut p = to_prediction(&e, now_ms, PredictionStatus::Happened);
                    p.first_ms = open.prediction.first_ms;
                    out.push(p);
                    self.open.remove(&k);
                }
                Some(e) if e.eta.at_ms <= now_ms + self.cfg.keep_horizon_ms => {
                    let mut p = to_prediction(&e, now_ms, PredictionStatus::Open);
                    p.first_ms = open.prediction.first_ms;
                    p.id = open.prediction.id;
                    p.incident = open.prediction.incident;
                    open.quiet_rounds = 0;
                    let left = open.written_eta_ms.saturating_sub(now_ms).max(60_000);
                    if open.written_eta_ms.abs_diff(p.eta.at_ms) > left / 10 {
                        open.written_eta_ms = p.eta.at_ms;
                        out.push(p.clone());
                    }
                    open.prediction = p;
                }
                _ => {
                    open.quiet_rounds += 1;
                    if open.quiet_rounds >= self.cfg.clear_after_rounds {
                        let mut p = open.prediction.clone();
                        p.status = PredictionStatus::Cleared;
                        p.updated_ms = now_ms;
                        p.why = clip(format!("cleared: {}", p.why));
                        out.push(p);
                        self.open.remove(&k);
                    }
                }
            }
        }
        // New ones: within the horizon, not yet at the limit.
        for (k, e) in found {
            if e.reached || e.eta.at_ms > now_ms + self.cfg.horizon_ms {
                continue;
            }
            let p = to_prediction(&e, now_ms, PredictionStatus::Open);
            self.open.insert(
                k,
                Open {
                    prediction: p.clone(),
                    quiet_rounds: 0,
                    written_eta_ms: p.eta.at_ms,
                },
            );
            out.push(p);
        }
        out
    }
}

fn to_prediction(e: &Estimate, now_ms: u64, status: PredictionStatus) -> Prediction {
    let (per_hour, band) = match &e.trend {
        Some(t) => (
            t.per_hour(),
            Band {
                low: t.slope_low * 3_600_000.0,
                high: t.slope_high * 3_600_000.0,
            },
        ),
        None => (
            0.0,
            Band {
                low: 0.0,
                high: 0.0,
            },
        ),
    };
    Prediction {
        id: 0,
        kind: e.kind,
        subject: e.subject.clone(),
        status,
        first_ms: now_ms,
        updated_ms: now_ms,
        eta: e.eta,
        series: e.series.clone(),
        value: e.value,
        limit: e.limit,
        trend_per_hour: per_hour,
        trend_band: band,
        why: clip(e.why.clone()),
        incident: None,
        closed_ms: None,
    }
}

/// Every rule over every series at `now_ms`.
pub fn estimates(cfg: &PredictConfig, signals: &Signals, now_ms: u64) -> Vec<Estimate> {
    let mut out = Vec::new();
    for (key, series) in signals.iter() {
        let Some(kind) = failure_of(key) else {
            continue;
        };
        let (Some(limit), Some(last)) = (series.limit(), series.last()) else {
            continue;
        };
        // A series that stopped (a node gone quiet) is judged by its silence.
        if last.t_ms + cfg.window_ms / 2 < now_ms {
            continue;
        }
        let estimate = match (kind, key.metric) {
            (FailureKind::NodeSilent, Metric::SilenceS) => silence(cfg, key, last, limit),
            (FailureKind::NodeSilent, _) => node_slowing(cfg, signals, key, limit, now_ms),
            _ => exhaustion(
                cfg,
                key,
                kind,
                &series.since(now_ms.saturating_sub(cfg.window_ms)),
                limit,
            ),
        };
        out.extend(estimate);
    }
    out
}

/// A signal rising towards its limit (see the module's doc).
pub fn exhaustion(
    cfg: &PredictConfig,
    key: &SeriesKey,
    kind: FailureKind,
    points: &[Point],
    limit: f64,
) -> Option<Estimate> {
    let last = *points.last()?;
    if last.value >= limit {
        let why = format!(
            "{} reached {} (limit {})",
            key,
            quantity(key.metric, last.value),
            quantity(key.metric, limit)
        );
        let now = (last.t_ms, last.t_ms, last.t_ms);
        return Some(Estimate {
            reached: true,
            ..Estimate::new(kind, key, last.value, limit, now, why)
        });
    }
    let trend = rising(cfg, points)?;
    let eta = trend.time_to(limit)?;
    let why = why_rising(key, &trend, last, limit, eta);
    Some(Estimate {
        trend: Some(trend),
        ..Estimate::new(kind, key, last.value, limit, eta, why)
    })
}

/// The trend of `points` when it rises clearly enough to extrapolate,
/// fitted since it began: a rise that started inside the window shares it
/// with the flat points before, which drag the window's slope down and
/// its ETA late. So the window's last half and last quarter are fitted
/// too (when they hold enough points), and the latest of them whose slope
/// is significantly steeper — its 90 % interval above the slope of the
/// fit it would replace — is taken instead.
fn rising(cfg: &PredictConfig, points: &[Point]) -> Option<Trend> {
    let enough = |p: &[Point]| match (p.first(), p.last()) {
        (Some(first), Some(last)) => {
            p.len() >= cfg.min_points && last.t_ms - first.t_ms >= cfg.min_span_ms
        }
        _ => false,
    };
    if !enough(points) {
        return None;
    }
    let significant = |t: &Trend| t.z >= cfg.min_z && t.slope_low > 0.0;
    let mut best = Trend::fit(points)?;
    let n = points.len();
    for tail in [&points[n / 2..], &points[n - n / 4..]] {
        if !enough(tail) {
            break;
        }
        if let Some(t) = Trend::fit(tail).filter(significant)
            && t.slope_low > best.slope
        {
            best = t;
        }
    }
    significant(&best).then_some(best)
}

fn why_rising(
    key: &SeriesKey,
    trend: &Trend,
    last: Point,
    limit: f64,
    (earliest, at, latest): (u64, u64, u64),
) -> String {
    let m = key.metric;
    let until = |t: u64| duration(t.saturating_sub(last.t_ms));
    format!(
        "{key} is {} of a limit of {}, rising {} an hour ({} to {}): the limit in about {} ({} to {})",
        quantity(m, last.value),
        quantity(m, limit),
        quantity(m, trend.per_hour()),
        quantity(m, trend.slope_low * 3_600_000.0),
        quantity(m, trend.slope_high * 3_600_000.0),
        until(at),
        until(earliest),
        if latest == u64::MAX {
            "longer".to_string()
        } else {
            until(latest)
        },
    )
}

/// A node whose reports stopped (see the module's doc).
fn silence(cfg: &PredictConfig, key: &SeriesKey, last: Point, limit: f64) -> Option<Estimate> {
    let reached = last.value >= limit;
    if !reached && last.value < limit * cfg.silence_share {
        return None;
    }
    let left_ms = ((limit - last.value).max(0.0) * 1000.0) as u64;
    let at = last.t_ms + left_ms;
    let why = if reached {
        format!(
            "{} sent no report for {:.0} s: taken for dead",
            key.subject, last.value
        )
    } else {
        format!(
            "{} sent no report for {:.0} s: taken for dead after {:.0} s, in {}",
            key.subject,
            last.value,
            limit,
            duration(left_ms)
        )
    };
    let kind = FailureKind::NodeSilent;
    Some(Estimate {
        reached,
        ..Estimate::new(kind, key, last.value, limit, (at, at, at), why)
    })
}

/// A node's latency rising towards its timeout, while its own earlier
/// latency and its peers' stay low (see the module's doc).
fn node_slowing(
    cfg: &PredictConfig,
    signals: &Signals,
    key: &SeriesKey,
    limit: f64,
    now_ms: u64,
) -> Option<Estimate> {
    let series = signals.get(key)?;
    let since = now_ms.saturating_sub(cfg.window_ms);
    let window = series.since(since);
    let last = *window.last()?;
    let trend = rising(cfg, &window)?;
    let eta = trend.time_to(limit)?;
    let at = eta.1;
    // Its own level before the window (or the window's first quarter).
    let mut before: Vec<f64> = series
        .points()
        .filter(|p| p.t_ms < since)
        .map(|p| p.value)
        .collect();
    if before.len() < 4 {
        before = window[..window.len() / 4].iter().map(|p| p.value).collect();
    }
    let own = median(&mut before)?;
    let peers: Vec<f64> = signals
        .of_metric(key.metric)
        .filter(|(k, s)| {
            k.subject != key.subject
                && matches!(k.subject, Subject::Node { .. })
                && s.last()
                    .is_some_and(|p| p.t_ms + cfg.window_ms / 2 >= now_ms)
        })
        .filter_map(|(_, s)| s.last().map(|p| p.value))
        .collect();
    let peer = median(&mut peers.clone());
    let floor = |x: f64| x.max(1.0);
    if last.value < cfg.node_ratio * floor(own)
        || peer.is_some_and(|p| last.value < cfg.node_ratio * floor(p))
    {
        return None;
    }
    let why = format!(
        "{} answers slower and slower: p99 {} ({:.1}x its own earlier {}{}), rising {} an hour; requests time out at {} in about {}",
        key.subject,
        quantity(key.metric, last.value),
        last.value / floor(own),
        quantity(key.metric, own),
        match peer {
            Some(p) => format!(", its peers' {}", quantity(key.metric, p)),
            None => String::new(),
        },
        quantity(key.metric, trend.per_hour()),
        quantity(key.metric, limit),
        duration(at.saturating_sub(last.t_ms)),
    );
    Some(Estimate {
        trend: Some(trend),
        ..Estimate::new(FailureKind::NodeSilent, key, last.value, limit, eta, why)
    })
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(crate::stats::quantile_sorted(v, 0.5))
}
