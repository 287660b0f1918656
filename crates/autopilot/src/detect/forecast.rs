//! The forecast-residual detector: a robust additive Holt-Winters model
//! (level, damped trend, a time-of-day season) forecasts each point
//! before it arrives; the error, over a smoothed mean absolute error, is
//! the strength. Errors are clipped before they update the model (Gelper,
//! Fried and Croux 2010), so one wild point neither drags the forecast
//! nor inflates the scale.

use super::calibrate::{Calibration, Calibrator};
use super::{Band, DetectorKind, Signal, scale_floor};
use crate::holt_winters::{HoltWinters, HoltWintersConfig};
use crate::season::Cadence;

/// √(π/2): turns a mean absolute error into a normal standard deviation.
const MAE_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// The forecast detector's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastConfig {
    pub model: HoltWintersConfig,
    /// Weight of each new absolute error in the scale.
    pub error_alpha: f64,
    /// Errors beyond this many standard deviations are clipped before they
    /// update the model and the scale.
    pub clip_z: f64,
    /// Standardised error at which the detector fires (at least; see
    /// `calibrate.rs`).
    pub fire_z: f64,
    /// Points before it scores.
    pub warmup_points: u64,
}

impl Default for ForecastConfig {
    fn default() -> ForecastConfig {
        ForecastConfig {
            model: HoltWintersConfig::default(),
            error_alpha: 0.02,
            clip_z: 3.0,
            fire_z: 5.0,
            warmup_points: 96,
        }
    }
}

/// The forecast-residual detector.
#[derive(Clone, Debug)]
pub struct Forecast {
    cfg: ForecastConfig,
    cadence: Cadence,
    model: HoltWinters,
    /// Smoothed mean absolute one-step error.
    mae: f64,
    calibrator: Calibrator,
}

impl Forecast {
    pub fn new(cfg: ForecastConfig, calibration: &Calibration) -> Forecast {
        Forecast {
            calibrator: Calibrator::new(calibration),
            model: HoltWinters::new(cfg.model.clone()),
            cfg,
            cadence: Cadence::default(),
            mae: 0.0,
        }
    }

    /// The standard deviation of one-step errors (0 while learning).
    pub fn sigma(&self) -> f64 {
        self.mae * MAE_TO_SIGMA
    }

    /// Scores the point `(t_ms, value)` against its forecast, then learns.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> Signal {
        if let Some(interval) = self.cadence.observe(t_ms) {
            self.model.set_interval(interval);
        }
        let Some(forecast) = self.model.predict(t_ms, 1) else {
            self.model.update(t_ms, value);
            return Signal::quiet(DetectorKind::Forecast);
        };
        let sigma = self.sigma().max(scale_floor(forecast));
        let error = value - forecast;
        let count = self.model.count();
        let warm = count >= self.cfg.warmup_points;
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
        self.model.update(t_ms, forecast + clipped);
        // The first errors average equally, then exponentially.
        let a = if count < 20 {
            1.0 / count as f64
        } else {
            self.cfg.error_alpha
        };
        self.mae += a * (clipped.abs() - self.mae);
        signal
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.calibrator.memory_bytes() + self.model.memory_bytes()
    }
}
