//! The ensemble: the robust, forecast, change-point and novelty detectors
//! on one series, combined into one anomaly score per point, with the
//! evidence.
//!
//! Each detector's strength is calibrated against its own recent
//! surprises (see `calibrate.rs`), so 1.0 means "as surprised as this
//! detector gets on this series once in a thousand points". The ensemble
//! takes their weighted mean: a point is anomalous when the detectors
//! agree that it is, not when any one of them is startled — one startled
//! detector out of four reaches at most a quarter of what four do. After
//! a detection the ensemble keeps quiet until something stronger comes
//! (the refractory spell), so one incident is reported once, not at every
//! point it lasts.
//!
//! A series' range may be known before its first point ([`KnownRange`]:
//! NAB's protocol hands every detector the minimum and maximum of the
//! whole file). Only [`Ensemble::with_known_range`] uses it: a point whose
//! departure from the expected value is a small share of that range is
//! scaled down. A live stream has no such range, and [`Ensemble::new`]
//! runs without it.

use serde::Serialize;

use super::calibrate::Calibration;
use super::{
    Band, Baseline, ChangeConfig, ChangePoint, Discord, DiscordConfig, Forecast, ForecastConfig,
    Robust, RobustConfig, Signal,
};

/// The ensemble's parameters. [`EnsembleConfig::default`] is what DWCP
/// runs and what `dwcp bench nab` scores; `docs/autopilot.md` says how
/// each value was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct EnsembleConfig {
    pub robust: RobustConfig,
    pub forecast: ForecastConfig,
    pub change: ChangeConfig,
    pub discord: DiscordConfig,
    /// How each detector calibrates its surprise against its own.
    pub calibration: Calibration,
    /// Each detector's weight in the mean: robust, forecast, change point,
    /// novelty.
    pub weights: [f64; 4],
    /// After a detection, the combined strength a point must beat decays
    /// from the detection's with this half-life, in points.
    pub refractory_half_life_points: f64,
    /// With a [`KnownRange`]: a point's strength is multiplied by its
    /// departure from the expected value over this share of the range
    /// (at most 1), so only departures of at least this share keep their
    /// full strength. Unused without a known range.
    pub range_share: f64,
}

impl Default for EnsembleConfig {
    fn default() -> EnsembleConfig {
        EnsembleConfig {
            robust: RobustConfig::default(),
            forecast: ForecastConfig::default(),
            change: ChangeConfig::default(),
            discord: DiscordConfig::default(),
            calibration: Calibration::default(),
            weights: [1.0; 4],
            refractory_half_life_points: 100.0,
            range_share: 0.1,
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
    /// The values that would not have fired the robust detector (the
    /// forecast's band when it has none).
    pub band: Option<Band>,
    /// What the robust detector compared the point with (the baseline
    /// most surprised by it): the recent median, the same time of day or
    /// the same time of week.
    pub baseline: Option<Baseline>,
    /// The weighted mean of the detectors' calibrated strengths, times
    /// `range_factor`.
    pub strength: f64,
    /// With a [`KnownRange`], the departure from `expected` over
    /// [`EnsembleConfig::range_share`] of the range, at most 1; 1 without
    /// one (or without an expected value).
    pub range_factor: f64,
    /// Whether the point came inside the quiet spell after a stronger
    /// detection (its score is then 0).
    pub suppressed: bool,
    /// In [0, 1]: `strength / (1 + strength)`, or 0 when suppressed; 0.5
    /// is where the mean strength reaches 1.
    pub score: f64,
    /// Whether the score reaches 0.5.
    pub anomalous: bool,
    /// Each detector's view: robust, forecast, change point, novelty.
    pub signals: [Signal; 4],
}

/// The span of a series' values, known before its first point: NAB's
/// `inputMin` and `inputMax`, taken over the whole file (look-ahead that
/// NAB's protocol gives every detector; a live stream has none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnownRange {
    pub min: f64,
    pub max: f64,
}

impl KnownRange {
    /// The range's width, if it is a usable positive number.
    fn width(&self) -> Option<f64> {
        let w = self.max - self.min;
        (w.is_finite() && w > 0.0).then_some(w)
    }
}

/// The four detectors on one series.
#[derive(Clone, Debug)]
pub struct Ensemble {
    cfg: EnsembleConfig,
    /// `Some` only through [`Ensemble::with_known_range`].
    range: Option<KnownRange>,
    robust: Robust,
    forecast: Forecast,
    change: ChangePoint,
    discord: Discord,
    /// The decayed strength of the last detection (the quiet spell).
    peak: f64,
    decay: f64,
}

impl Ensemble {
    /// The ensemble for a live stream: nothing known ahead.
    pub fn new(cfg: EnsembleConfig) -> Ensemble {
        let decay = 0.5f64.powf(1.0 / cfg.refractory_half_life_points.max(1e-9));
        Ensemble {
            robust: Robust::new(cfg.robust.clone(), &cfg.calibration),
            forecast: Forecast::new(cfg.forecast.clone(), &cfg.calibration),
            change: ChangePoint::new(cfg.change.clone(), &cfg.calibration),
            discord: Discord::new(cfg.discord.clone(), &cfg.calibration),
            peak: 0.0,
            decay,
            range: None,
            cfg,
        }
    }

    /// The ensemble for a series whose range is known before its first
    /// point (NAB's protocol: see [`KnownRange`]).
    pub fn with_known_range(cfg: EnsembleConfig, range: KnownRange) -> Ensemble {
        Ensemble {
            range: Some(range),
            ..Ensemble::new(cfg)
        }
    }

    /// How much of its strength a point departing from `expected` by
    /// `departure` keeps, given the known range (1 without one).
    fn range_factor(&self, departure: Option<f64>) -> f64 {
        let share = self.cfg.range_share;
        match (self.range.and_then(|r| r.width()), departure) {
            (Some(width), Some(d)) if share > 0.0 && d.is_finite() => {
                (d.abs() / (share * width)).min(1.0)
            }
            _ => 1.0,
        }
    }

    /// Scores the point `(t_ms, value)`, then learns from it.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> Assessment {
        let robust = self.robust.observe(t_ms, value);
        let forecast = self.forecast.observe(t_ms, value);
        let change = self
            .change
            .observe(robust.ready.then(|| self.robust.last_z()));
        let discord = self.discord.observe(value);
        let signals = [robust, forecast, change, discord];
        let expected = robust.expected.or(forecast.expected);
        let range_factor = self.range_factor(expected.map(|e| value - e));
        let total_weight: f64 = self.cfg.weights.iter().sum();
        let mean = if total_weight > 0.0 {
            signals
                .iter()
                .zip(self.cfg.weights)
                .map(|(s, w)| s.strength * w)
                .sum::<f64>()
                / total_weight
        } else {
            0.0
        };
        let strength = mean * range_factor;
        let bar = self.peak * self.decay;
        let suppressed = strength > 0.0 && strength <= bar;
        self.peak = bar.max(strength);
        let score = if suppressed {
            0.0
        } else {
            strength / (1.0 + strength)
        };
        Assessment {
            t_ms,
            observed: value,
            expected,
            band: robust.band.or(forecast.band),
            baseline: self.robust.baseline(),
            strength,
            range_factor,
            suppressed,
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
    }
}
