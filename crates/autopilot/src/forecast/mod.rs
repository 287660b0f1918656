//! Forecasts with prediction intervals, 5 minutes to 24 hours ahead, for
//! one metric series (a request rate, live sandboxes, memory), learnt one
//! point at a time in bounded memory.
//!
//! Five candidate models forecast every horizon: robust Holt-Winters
//! (level, damped trend, daily season), the daily profile (the median of
//! the same time of day over recent days) and the weekly profile (same
//! time of week), each profile plus the current deviation from it decaying
//! at its measured autocorrelation, the last value, and the value at the
//! same time the day before. The forecaster
//! keeps forecasting behind the scenes, scores each candidate on what
//! actually came ([`Forecaster::observe`]), and answers each horizon with
//! the candidate that has been best there lately. The interval is
//! conformal: the quantile of that horizon's recent absolute errors.
//!
//! [`backtest`] replays a series with rolling origins and compares every
//! forecast with the seasonal-naive one (same time yesterday) made at the
//! same origin.

mod backtest;

pub use backtest::{Backtest, BacktestConfig, HorizonScore, backtest};

use std::collections::VecDeque;

use serde::Serialize;

use crate::detect::Band;
use crate::holt_winters::{HoltWinters, HoltWintersConfig};
use crate::season::{Cadence, SlotHistory, WEEK_MS};
use crate::stats::SortedWindow;
use crate::time::DAY_MS;

/// Five minutes, the shortest horizon.
pub const MIN_HORIZON_MS: i64 = 300_000;
/// A day, the longest horizon.
pub const MAX_HORIZON_MS: i64 = DAY_MS;
/// The horizons tracked: forecasts for others use the nearest's track record.
pub const HORIZONS_MS: [i64; 5] = [
    MIN_HORIZON_MS,
    900_000,
    3_600_000,
    21_600_000,
    MAX_HORIZON_MS,
];
/// At most this many tracked forecasts wait for their target per horizon.
const MAX_PENDING: usize = 64;
/// Resolved forecasts a candidate needs at a horizon before it may be chosen.
const MIN_TRACK: u32 = 8;

/// The candidate models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    HoltWinters,
    DailyProfile,
    WeeklyProfile,
    LastValue,
    /// The value at the same time the day before (seasonal naive).
    SameTimeYesterday,
}

const MODELS: [Model; 5] = [
    Model::HoltWinters,
    Model::DailyProfile,
    Model::WeeklyProfile,
    Model::LastValue,
    Model::SameTimeYesterday,
];

/// The forecaster's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecasterConfig {
    pub model: HoltWintersConfig,
    /// Periods each profile slot remembers (its median is the profile).
    pub profile_depth: usize,
    /// Weight of each new error in a candidate's running error at a horizon.
    pub error_alpha: f64,
    /// Absolute errors kept per horizon for the interval.
    pub interval_points: usize,
    /// The share of actual values the interval should hold (0..1).
    pub coverage: f64,
}

impl Default for ForecasterConfig {
    fn default() -> ForecasterConfig {
        ForecasterConfig {
            model: HoltWintersConfig::default(),
            profile_depth: 5,
            error_alpha: 0.05,
            interval_points: 400,
            coverage: 0.9,
        }
    }
}

/// A forecast the forecaster cannot give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForecastError {
    #[error(
        "horizon_ms: {horizon_ms} is outside {MIN_HORIZON_MS}..={MAX_HORIZON_MS} (5 minutes to 24 hours)"
    )]
    HorizonOutOfRange { horizon_ms: i64 },
    #[error(
        "horizon_ms: {horizon_ms} is shorter than the series' sampling interval ({interval_ms} ms)"
    )]
    HorizonBelowInterval { horizon_ms: i64, interval_ms: i64 },
    #[error("series: still learning its sampling interval (needs a few dozen points)")]
    Learning,
}

/// A forecast for one horizon.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The time forecast (the last point's time plus the horizon).
    pub t_ms: i64,
    pub horizon_ms: i64,
    pub value: f64,
    /// Where the actual value should fall with probability `coverage`;
    /// `None` until enough forecasts at this horizon have been checked.
    pub band: Option<Band>,
    pub coverage: f64,
    /// The candidate that gave `value`.
    pub model: Model,
}

/// A forecast made behind the scenes, waiting for its target.
#[derive(Clone, Debug)]
struct Pending {
    target_ms: i64,
    /// Each candidate's value (`None`: it had none).
    values: [Option<f64>; 5],
    /// The candidate the forecaster would have answered with.
    chosen: usize,
}

/// A candidate's record at one horizon.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    mae: f64,
    count: u32,
}

/// Per slot, the current value's deviation from a profile, and how much of
/// it carries to the next step (lag-1 autocorrelation, smoothed).
#[derive(Clone, Debug, Default)]
struct Deviation {
    last: f64,
    cov: f64,
    var: f64,
    seen: bool,
}

impl Deviation {
    /// Smoothing of the autocorrelation's moments.
    const ALPHA: f64 = 0.01;

    fn push(&mut self, d: f64) {
        if self.seen {
            self.cov += Self::ALPHA * (d * self.last - self.cov);
            self.var += Self::ALPHA * (d * d - self.var);
        }
        self.last = d;
        self.seen = true;
    }

    /// How much of today's deviation is left `steps` steps later.
    fn carry(&self, steps: u32) -> f64 {
        let rho = if self.var > 0.0 {
            (self.cov / self.var).clamp(0.0, 0.999)
        } else {
            0.0
        };
        rho.powi(i32::try_from(steps).unwrap_or(i32::MAX))
    }
}

/// A forecaster for one series.
#[derive(Clone, Debug)]
pub struct Forecaster {
    cfg: ForecasterConfig,
    cadence: Cadence,
    hw: HoltWinters,
    daily: Option<SlotHistory>,
    weekly: Option<SlotHistory>,
    yesterday: Option<SlotHistory>,
    daily_dev: Deviation,
    weekly_dev: Deviation,
    last: Option<(i64, f64)>,
    points: u64,
    /// Per tracked horizon: forecasts waiting for their target, each
    /// candidate's record, and the chosen candidate's absolute errors.
    pending: Vec<VecDeque<Pending>>,
    tracks: Vec<[Track; 5]>,
    errors: Vec<SortedWindow>,
}

impl Forecaster {
    pub fn new(cfg: ForecasterConfig) -> Forecaster {
        let n = HORIZONS_MS.len();
        Forecaster {
            hw: HoltWinters::new(cfg.model.clone()),
            cadence: Cadence::default(),
            daily: None,
            weekly: None,
            yesterday: None,
            daily_dev: Deviation::default(),
            weekly_dev: Deviation::default(),
            last: None,
            points: 0,
            pending: vec![VecDeque::with_capacity(MAX_PENDING); n],
            tracks: vec![[Track::default(); 5]; n],
            errors: (0..n)
                .map(|_| SortedWindow::new(cfg.interval_points))
                .collect(),
            cfg,
        }
    }

    /// The sampling interval, once known.
    pub fn interval_ms(&self) -> Option<i64> {
        self.cadence.interval_ms()
    }

    /// Learns from the point `(t_ms, value)`: checks the forecasts made
    /// for this time, updates every model, and makes the next forecasts
    /// to check.
    pub fn observe(&mut self, t_ms: i64, value: f64) {
        if let Some(interval) = self.cadence.observe(t_ms)
            && self.daily.is_none()
        {
            self.hw.set_interval(interval);
            self.daily = SlotHistory::new(DAY_MS, interval, self.cfg.profile_depth);
            self.weekly = SlotHistory::new(WEEK_MS, interval, self.cfg.profile_depth);
            self.yesterday = SlotHistory::new(DAY_MS, interval, 1);
        }
        self.resolve(t_ms, value);
        // Robust update: clip the value towards the forecast by a few of
        // the one-step errors, so one wild point does not bend the model.
        let seen = match (self.hw.predict(t_ms, 1), self.errors[0].len() >= 20) {
            (Some(f), true) => {
                let limit = 4.0 * self.errors[0].quantile(0.9).max(f64::MIN_POSITIVE);
                f + (value - f).clamp(-limit, limit)
            }
            _ => value,
        };
        self.hw.update(t_ms, seen);
        if let Some(e) = self.daily.as_ref().and_then(|h| h.expected(t_ms, 1)) {
            self.daily_dev.push(value - e);
        }
        if let Some(e) = self.weekly.as_ref().and_then(|h| h.expected(t_ms, 1)) {
            self.weekly_dev.push(value - e);
        }
        for h in [&mut self.daily, &mut self.weekly, &mut self.yesterday]
            .into_iter()
            .flatten()
        {
            h.push(t_ms, value);
        }
        self.last = Some((t_ms, value));
        self.points += 1;
        self.track(t_ms);
    }

    /// Checks the waiting forecasts whose target has come.
    fn resolve(&mut self, t_ms: i64, value: f64) {
        let Some(interval) = self.cadence.interval_ms() else {
            return;
        };
        let tolerance = interval / 2;
        for h in 0..HORIZONS_MS.len() {
            while self.pending[h]
                .front()
                .is_some_and(|p| p.target_ms <= t_ms + tolerance)
            {
                let Some(p) = self.pending[h].pop_front() else {
                    break;
                };
                if (p.target_ms - t_ms).abs() > tolerance {
                    continue; // the target fell in a gap
                }
                for (m, v) in p.values.iter().enumerate() {
                    if let Some(v) = v {
                        let t = &mut self.tracks[h][m];
                        let e = (value - v).abs();
                        let a = if t.count < MIN_TRACK {
                            1.0 / f64::from(t.count + 1)
                        } else {
                            self.cfg.error_alpha
                        };
                        t.mae += a * (e - t.mae);
                        t.count += 1;
                    }
                }
                if let Some(v) = p.values[p.chosen] {
                    self.errors[h].push((value - v).abs());
                }
            }
        }
    }

    /// Makes the forecasts to check later, spaced so that at most
    /// [`MAX_PENDING`] wait per horizon.
    fn track(&mut self, t_ms: i64) {
        let Some(interval) = self.cadence.interval_ms() else {
            return;
        };
        for (h, &horizon) in HORIZONS_MS.iter().enumerate() {
            if horizon < interval {
                continue;
            }
            let steps = (horizon / interval).max(1) as u64;
            let every = steps.div_ceil(MAX_PENDING as u64).max(1);
            if !self.points.is_multiple_of(every) {
                continue;
            }
            let target_ms = t_ms + horizon;
            let values = self.candidates(target_ms, horizon, interval);
            let chosen = self.choose(h, &values);
            self.pending[h].push_back(Pending {
                target_ms,
                values,
                chosen,
            });
        }
    }

    /// Each candidate's forecast for `target_ms`, `horizon_ms` ahead.
    fn candidates(&self, target_ms: i64, horizon_ms: i64, interval_ms: i64) -> [Option<f64>; 5] {
        let steps = u32::try_from((horizon_ms / interval_ms).max(1)).unwrap_or(u32::MAX);
        let profile = |h: &Option<SlotHistory>, dev: &Deviation| {
            let e = h.as_ref()?.expected(target_ms, 2)?;
            Some(e + dev.last * dev.carry(steps))
        };
        [
            self.hw.predict(target_ms, steps),
            profile(&self.daily, &self.daily_dev),
            profile(&self.weekly, &self.weekly_dev),
            self.last.map(|(_, v)| v),
            // A slot of depth 1 holds the latest value at that time of day:
            // for a target up to a day ahead, the day before the target.
            self.yesterday
                .as_ref()
                .and_then(|h| h.expected(target_ms, 1)),
        ]
    }

    /// The candidate with the lowest recent error at horizon `h` among
    /// those with a value and a record; Holt-Winters until one has a record.
    fn choose(&self, h: usize, values: &[Option<f64>; 5]) -> usize {
        let mut best = 0;
        let mut best_mae = f64::INFINITY;
        for (m, v) in values.iter().enumerate() {
            let t = self.tracks[h][m];
            if v.is_some() && t.count >= MIN_TRACK && t.mae < best_mae {
                best = m;
                best_mae = t.mae;
            }
        }
        best
    }

    /// The forecast `horizon_ms` after the last point seen.
    pub fn forecast(&self, horizon_ms: i64) -> Result<Prediction, ForecastError> {
        if !(MIN_HORIZON_MS..=MAX_HORIZON_MS).contains(&horizon_ms) {
            return Err(ForecastError::HorizonOutOfRange { horizon_ms });
        }
        let (Some(interval_ms), Some((last_ms, _))) = (self.cadence.interval_ms(), self.last)
        else {
            return Err(ForecastError::Learning);
        };
        if horizon_ms < interval_ms {
            return Err(ForecastError::HorizonBelowInterval {
                horizon_ms,
                interval_ms,
            });
        }
        let target_ms = last_ms + horizon_ms;
        let h = nearest_horizon(horizon_ms);
        let values = self.candidates(target_ms, horizon_ms, interval_ms);
        let chosen = self.choose(h, &values);
        // Holt-Winters (chosen by default) has a value after one point.
        let value = values[chosen]
            .or(values[0])
            .ok_or(ForecastError::Learning)?;
        let errors = &self.errors[h];
        let band = (errors.len() >= 20).then(|| {
            let half = errors.quantile(self.cfg.coverage);
            Band {
                low: value - half,
                high: value + half,
            }
        });
        Ok(Prediction {
            t_ms: target_ms,
            horizon_ms,
            value,
            band,
            coverage: self.cfg.coverage,
            model: MODELS[chosen],
        })
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.hw.memory_bytes()
            + [&self.daily, &self.weekly, &self.yesterday]
                .into_iter()
                .flatten()
                .map(SlotHistory::memory_bytes)
                .sum::<usize>()
            + self
                .pending
                .iter()
                .map(|p| p.capacity() * size_of::<Pending>())
                .sum::<usize>()
            + self
                .errors
                .iter()
                .map(SortedWindow::memory_bytes)
                .sum::<usize>()
    }
}

/// The tracked horizon closest to `horizon_ms` (on a log scale).
fn nearest_horizon(horizon_ms: i64) -> usize {
    let ln = |ms: i64| (ms.max(1) as f64).ln();
    let mut best = 0;
    for (i, &h) in HORIZONS_MS.iter().enumerate() {
        if (ln(h) - ln(horizon_ms)).abs() < (ln(HORIZONS_MS[best]) - ln(horizon_ms)).abs() {
            best = i;
        }
    }
    best
}
