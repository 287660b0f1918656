//! The ensemble: the robust, forecast and change-point detectors on one
//! series, combined into one anomaly score per point, with the evidence.

use serde::Serialize;

use crate::stats::SortedWindow;

use super::calibrate::Calibration;
use super::{
    Band, ChangeConfig, ChangePoint, Discord, DiscordConfig, Forecast, ForecastConfig, Robust,
    RobustConfig, Signal,
};

/// The ensemble's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct EnsembleConfig {
    pub robust: RobustConfig,
    pub forecast: ForecastConfig,
    pub change: ChangeConfig,
    pub discord: DiscordConfig,
    /// How each detector calibrates its surprise against its own recent ones.
    pub calibration: Calibration,
    /// Each detector's weight in the combination (robust, forecast,
    /// change, discord).
    pub weights: [f64; 4],
    /// A detection is followed by a quiet spell: the peak strength decays
    /// with this half-life (points), and a point whose strength is not
    /// above the decayed peak has its score damped.
    pub refractory_half_life: f64,
    /// What a point inside the quiet spell keeps of its score (0..1).
    pub refractory_damp: f64,
    /// Experimental combination mode.
    pub combine: u8,
    /// How many past combined strengths the calibration remembers.
    pub calibration_points: usize,
    /// The combined strength is divided by this quantile of the past ones
    /// (floored at 1), so that a series whose normal is noisy in the
    /// detectors' terms does not look anomalous all the time.
    pub calibration_quantile: f64,
}

impl Default for EnsembleConfig {
    fn default() -> EnsembleConfig {
        EnsembleConfig {
            robust: RobustConfig::default(),
            forecast: ForecastConfig::default(),
            change: ChangeConfig::default(),
            discord: DiscordConfig::default(),
            calibration: Calibration::default(),
            weights: [1.0, 1.0, 1.0, 1.0],
            refractory_half_life: 100.0,
            refractory_damp: 0.0,
            combine: 1,
            calibration_points: 1,
            calibration_quantile: 0.99,
        }
    }
}

/// The ensemble's verdict on one point, with its evidence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Assessment {
    pub t_ms: i64,
    pub observed: f64,
    /// What the robust detector expected (the forecast's when it has none).
    pub expected: Option<f64>,
    /// The values that would not have fired the robust detector.
    pub band: Option<Band>,
    /// In [0, 1]; 0.5 is where the combined strength reaches 1.
    pub score: f64,
    /// Whether the score reaches 0.5.
    pub anomalous: bool,
    /// Each detector's view: robust, forecast, change point, discord.
    pub signals: [Signal; 4],
}

/// The three detectors on one series.
#[derive(Clone, Debug)]
pub struct Ensemble {
    cfg: EnsembleConfig,
    robust: Robust,
    forecast: Forecast,
    change: ChangePoint,
    discord: Discord,
    /// The decayed peak of the combined strength (the quiet spell).
    peak: f64,
    decay: f64,
    history: SortedWindow,
}

impl Ensemble {
    pub fn new(cfg: EnsembleConfig) -> Ensemble {
        let decay = 0.5f64.powf(1.0 / cfg.refractory_half_life.max(1e-9));
        Ensemble {
            robust: Robust::new(cfg.robust.clone(), &cfg.calibration),
            forecast: Forecast::new(cfg.forecast.clone(), &cfg.calibration),
            change: ChangePoint::new(cfg.change.clone(), &cfg.calibration),
            discord: Discord::new(cfg.discord.clone(), &cfg.calibration),
            peak: 0.0,
            decay,
            history: SortedWindow::new(cfg.calibration_points),
            cfg,
        }
    }

    /// Scores the point `(t_ms, value)`, then learns from it.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> Assessment {
        let robust = self.robust.observe(t_ms, value);
        let forecast = self.forecast.observe(t_ms, value);
        let z = (robust.strength > 0.0 || robust.band.is_some()).then(|| self.robust.last_z());
        let change = self.change.observe(z);
        let discord = self.discord.observe(value);
        let signals = [robust, forecast, change, discord];
        let mut w: Vec<f64> = signals
            .iter()
            .zip(self.cfg.weights)
            .map(|(s, w)| s.strength * w)
            .collect();
        w.sort_by(|a, b| b.total_cmp(a));
        let combined = match self.cfg.combine {
            0 => w[0],
            1 => w.iter().sum::<f64>() / self.cfg.weights.iter().sum::<f64>(),
            2 => (w[0] + w[1]) / 2.0,
            3 => w.iter().map(|x| x * x).sum::<f64>().sqrt(),
            _ => (w[0] * w[1]).sqrt(),
        };
        let norm = self
            .history
            .quantile(self.cfg.calibration_quantile)
            .max(1.0);
        self.history.push(combined);
        let combined = combined / norm;
        let prior_peak = self.peak * self.decay;
        let effective = if combined > prior_peak {
            combined
        } else {
            combined * self.cfg.refractory_damp
        };
        self.peak = prior_peak.max(combined);
        let score = effective / (1.0 + effective);
        Assessment {
            t_ms,
            observed: value,
            expected: robust.expected.or(forecast.expected),
            band: robust.band.or(forecast.band),
            score,
            anomalous: score >= 0.5,
            signals,
        }
    }

    /// Heap bytes held by the detectors' state.
    pub fn memory_bytes(&self) -> usize {
        self.robust.memory_bytes()
            + self.forecast.memory_bytes()
            + self.change.memory_bytes()
            + self.discord.memory_bytes()
            + self.history.memory_bytes()
    }
}
