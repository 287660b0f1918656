//! The forecast-residual detector: a robust additive Holt-Winters model
//! (level, damped trend, a time-of-day season) forecasts each point
//! before it arrives; the error, over a smoothed mean absolute error, is
//! the strength. Errors are clipped before they update the model (Gelper,
//! Fried and Croux 2010), so one wild point neither drags the forecast
//! nor inflates the scale.

use super::calibrate::{Calibration, Calibrator};
use super::{Band, DetectorKind, Signal, scale_floor};
use crate::season::Cadence;
use crate::time::DAY_MS;

/// √(π/2): turns a mean absolute error into a normal standard deviation.
const MAE_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// The forecast detector's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastConfig {
    /// Level smoothing (0..1).
    pub alpha: f64,
    /// Trend smoothing (0..1).
    pub beta: f64,
    /// Trend damping per step (0..1; 1 is Holt's undamped trend).
    pub phi: f64,
    /// Season smoothing (0..1).
    pub gamma: f64,
    /// Weight of each new absolute error in the scale.
    pub error_alpha: f64,
    /// Errors beyond this many standard deviations are clipped before they
    /// update the model and the scale.
    pub clip_z: f64,
    /// Standardised error at which the detector fires.
    pub fire_z: f64,
    /// Points before it scores.
    pub warmup_points: u64,
}

impl Default for ForecastConfig {
    fn default() -> ForecastConfig {
        ForecastConfig {
            alpha: 0.2,
            beta: 0.01,
            phi: 0.95,
            gamma: 0.1,
            error_alpha: 0.02,
            clip_z: 3.0,
            fire_z: 5.0,
            warmup_points: 96,
        }
    }
}

/// The seasonal part: one value per slot of the day.
#[derive(Clone, Debug)]
struct DaySeason {
    slot_ms: i64,
    values: Vec<f64>,
    seen: Vec<bool>,
}

impl DaySeason {
    fn new(interval_ms: i64) -> Option<DaySeason> {
        let slot_ms = interval_ms.max(DAY_MS / crate::season::MAX_SLOTS as i64);
        // Fewer than 4 slots a day: no daily shape to learn.
        let slots = usize::try_from(DAY_MS / slot_ms).ok().filter(|s| *s >= 4)?;
        Some(DaySeason {
            slot_ms,
            values: vec![0.0; slots],
            seen: vec![false; slots],
        })
    }

    fn slot(&self, t_ms: i64) -> usize {
        // rem_euclid is in [0, DAY_MS); the quotient is below `slots` + 1.
        ((t_ms.rem_euclid(DAY_MS) / self.slot_ms) as usize).min(self.values.len() - 1)
    }
}

/// The forecast-residual detector; also a one-step forecaster.
#[derive(Clone, Debug)]
pub struct Forecast {
    cfg: ForecastConfig,
    cadence: Cadence,
    season: Option<DaySeason>,
    level: f64,
    trend: f64,
    /// Smoothed mean absolute one-step error.
    mae: f64,
    count: u64,
    calibrator: Calibrator,
}

impl Forecast {
    pub fn new(cfg: ForecastConfig, calibration: &Calibration) -> Forecast {
        Forecast {
            calibrator: Calibrator::new(calibration),
            cfg,
            cadence: Cadence::default(),
            season: None,
            level: 0.0,
            trend: 0.0,
            mae: 0.0,
            count: 0,
        }
    }

    /// The forecast for a point at `t_ms` `steps` ahead of the last one
    /// seen (season included), or `None` before any point.
    pub fn predict(&self, t_ms: i64, steps: u32) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // Damped trend: φ + φ² + ... + φ^steps.
        let phi = self.cfg.phi;
        let damp = if (phi - 1.0).abs() < 1e-12 {
            f64::from(steps)
        } else {
            phi * (1.0 - phi.powi(steps as i32)) / (1.0 - phi)
        };
        Some(self.level + damp * self.trend + self.seasonal(t_ms))
    }

    /// The standard deviation of one-step errors (0 while learning).
    pub fn sigma(&self) -> f64 {
        self.mae * MAE_TO_SIGMA
    }

    fn seasonal(&self, t_ms: i64) -> f64 {
        self.season.as_ref().map_or(0.0, |s| {
            let i = s.slot(t_ms);
            if s.seen[i] { s.values[i] } else { 0.0 }
        })
    }

    /// Scores the point `(t_ms, value)` against its forecast, then learns.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> Signal {
        if self.season.is_none()
            && let Some(interval) = self.cadence.observe(t_ms)
        {
            self.season = DaySeason::new(interval);
        }
        let Some(forecast) = self.predict(t_ms, 1) else {
            self.level = value;
            self.count = 1;
            return Signal::quiet(DetectorKind::Forecast);
        };
        let sigma = self.sigma().max(scale_floor(forecast));
        let error = value - forecast;
        let warm = self.count >= self.cfg.warmup_points;
        let signal = if warm {
            let z = error.abs() / sigma;
            let half = self.calibrator.level(self.cfg.fire_z) * sigma;
            Signal::new(
                DetectorKind::Forecast,
                self.calibrator.strength(z, self.cfg.fire_z),
                Some(forecast),
                Some(Band {
                    low: forecast - half,
                    high: forecast + half,
                }),
            )
        } else {
            Signal::quiet(DetectorKind::Forecast)
        };
        // Learn from the clipped error once the scale means something.
        let limit = self.cfg.clip_z * sigma;
        let clipped = if warm {
            error.clamp(-limit, limit)
        } else {
            error
        };
        let seen = forecast + clipped;
        let s = self.seasonal(t_ms);
        let prior = self.level + self.cfg.phi * self.trend;
        let level = self.cfg.alpha * (seen - s) + (1.0 - self.cfg.alpha) * prior;
        self.trend = self.cfg.beta * (level - self.level)
            + (1.0 - self.cfg.beta) * self.cfg.phi * self.trend;
        self.level = level;
        if let Some(season) = self.season.as_mut() {
            let i = season.slot(t_ms);
            let target = seen - level;
            if season.seen[i] {
                season.values[i] += self.cfg.gamma * (target - season.values[i]);
            } else {
                season.values[i] = target;
                season.seen[i] = true;
            }
        }
        let a = if self.count < 20 {
            1.0 / self.count as f64
        } else {
            self.cfg.error_alpha
        };
        self.mae += a * (clipped.abs() - self.mae);
        self.count += 1;
        signal
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.season.as_ref().map_or(0, |s| {
            s.values.capacity() * size_of::<f64>() + s.seen.capacity()
        })
    }
}
