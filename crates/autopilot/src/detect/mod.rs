//! Streaming detectors: each reads one point at a time, in order, never
//! looking ahead, in bounded memory, and says how far the point is from
//! what it expected.
//!
//! - [`Robust`]: median and MAD of the residuals against a seasonal
//!   baseline (the same time of day or week in recent periods, or the
//!   recent median when the series has no season).
//! - [`Forecast`]: a robust Holt-Winters forecast (level, damped trend,
//!   time-of-day season) and the standardised error of each one-step
//!   forecast.
//! - [`ChangePoint`]: a two-sided CUSUM over standardised residuals, for
//!   shifts too small for any single point to stand out.
//! - [`Discord`]: how new the shape of the last points is.
//! - [`Ensemble`]: all four on one series, combined into one score with
//!   the evidence ([`Assessment`]); given a [`KnownRange`] (NAB's protocol
//!   only), it also weighs a departure by its share of that range.
//!
//! [`WindowedGaussian`] is a baseline for benchmarks (NAB's simplest
//! detector), not one of the product's detectors.
//!
//! Strengths are normalised so that 1.0 is where a detector fires.

mod calibrate;
mod change;
mod discord;
mod ensemble;
mod forecast;
mod gaussian;
mod robust;

pub use calibrate::{Calibration, Calibrator};
pub use change::{ChangeConfig, ChangePoint};
pub use discord::{Discord, DiscordConfig};
pub use ensemble::{Assessment, Ensemble, EnsembleConfig, KnownRange};
pub use forecast::{Forecast, ForecastConfig};
pub use gaussian::{NAB_WINDOW_POINTS, WindowedGaussian, erf};
pub use robust::{Baseline, Robust, RobustConfig};

use serde::Serialize;

/// Which detector a [`Signal`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    Robust,
    Forecast,
    ChangePoint,
    Discord,
}

/// A range of values a detector considered normal for a point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    pub low: f64,
    pub high: f64,
}

/// What one detector saw at one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Signal {
    pub detector: DetectorKind,
    /// How far from normal, scaled so that 1.0 is the detector's firing
    /// level; 0 while it is still learning.
    pub strength: f64,
    /// Whether `strength >= 1`.
    pub fired: bool,
    /// Whether the detector has learnt enough to judge (false: still
    /// warming up, and `strength` is 0).
    pub ready: bool,
    /// The value the detector expected, if it predicts values (the change
    /// detector does not).
    pub expected: Option<f64>,
    /// Values inside this band would not have fired it.
    pub band: Option<Band>,
}

impl Signal {
    fn quiet(detector: DetectorKind) -> Signal {
        Signal {
            detector,
            strength: 0.0,
            fired: false,
            ready: false,
            expected: None,
            band: None,
        }
    }

    fn new(
        detector: DetectorKind,
        strength: f64,
        expected: Option<f64>,
        band: Option<Band>,
    ) -> Signal {
        let strength = if strength.is_finite() {
            strength.max(0.0)
        } else {
            MAX_STRENGTH
        };
        Signal {
            detector,
            strength: strength.min(MAX_STRENGTH),
            fired: strength >= 1.0,
            ready: true,
            expected,
            band,
        }
    }
}

/// Strengths are capped here, so that a perfectly flat series that moves
/// (a scale of 0) still gives a finite, comparable figure.
pub const MAX_STRENGTH: f64 = 1e3;

/// The smallest scale a residual is divided by, relative to the size of
/// the values, so that a flat series does not divide by zero.
fn scale_floor(typical: f64) -> f64 {
    1e-9 * (1.0 + typical.abs())
}
