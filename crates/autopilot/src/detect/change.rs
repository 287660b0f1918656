//! The change-point detector: a two-sided CUSUM (Page 1954) over a
//! standardised stream — in the ensemble, the robust detector's signed
//! z-scores. Each input is clipped so that a lone spike, the other
//! detectors' business, cannot fire it alone; a shift of a fraction of a
//! standard deviation that persists does, after a delay that shrinks as
//! the shift grows.

use super::calibrate::{Calibration, Calibrator};
use super::{DetectorKind, Signal};

/// The change detector's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeConfig {
    /// The slack per point, in standard deviations: shifts smaller than
    /// this never accumulate.
    pub drift: f64,
    /// The accumulated excess at which it fires.
    pub threshold: f64,
    /// Inputs are clipped to ±this before they accumulate.
    pub clip: f64,
}

impl Default for ChangeConfig {
    fn default() -> ChangeConfig {
        ChangeConfig {
            drift: 0.5,
            threshold: 5.0,
            clip: 3.0,
        }
    }
}

/// A two-sided CUSUM that restarts after each alarm.
#[derive(Clone, Debug)]
pub struct ChangePoint {
    cfg: ChangeConfig,
    calibrator: Calibrator,
    up: f64,
    down: f64,
}

impl ChangePoint {
    pub fn new(cfg: ChangeConfig, calibration: &Calibration) -> ChangePoint {
        ChangePoint {
            calibrator: Calibrator::new(calibration),
            cfg,
            up: 0.0,
            down: 0.0,
        }
    }

    /// Adds one standardised value (a z-score); `None` while the stream
    /// is still learning (nothing accumulates).
    pub fn observe(&mut self, z: Option<f64>) -> Signal {
        let Some(z) = z.filter(|z| z.is_finite()) else {
            return Signal::quiet(DetectorKind::ChangePoint);
        };
        let z = z.clamp(-self.cfg.clip, self.cfg.clip);
        self.up = (self.up + z - self.cfg.drift).max(0.0);
        self.down = (self.down - z - self.cfg.drift).max(0.0);
        let excess = self.up.max(self.down);
        let strength = self.calibrator.strength(excess, self.cfg.threshold);
        if excess >= self.cfg.threshold {
            self.up = 0.0;
            self.down = 0.0;
        }
        Signal::new(DetectorKind::ChangePoint, strength, None, None)
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.calibrator.memory_bytes()
    }
}
