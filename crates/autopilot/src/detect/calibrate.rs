//! Self-calibration: a detector's raw surprise (a z-score) measured
//! against the surprises the same detector produced on this series
//! recently, so that a series whose normal is rough in a detector's terms
//! (daily jumps for a detector blind to seasons, heavy-tailed noise) does
//! not keep it firing, and one whose normal is smooth lets it speak up
//! early.

use crate::stats::SortedWindow;

/// How a raw surprise is calibrated.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Past surprises remembered.
    pub points: usize,
    /// The quantile of the past surprises a point must exceed to fire.
    pub quantile: f64,
    /// Also the decayed record of all past surprises: it halves in this
    /// many points (0: not used).
    pub record_half_life: f64,
}

impl Default for Calibration {
    fn default() -> Calibration {
        Calibration {
            points: 4000,
            quantile: 0.999,
            record_half_life: 0.0,
        }
    }
}

/// The recent surprises of one detector.
#[derive(Clone, Debug)]
pub struct Calibrator {
    quantile: f64,
    history: SortedWindow,
    record: f64,
    decay: f64,
}

impl Calibrator {
    pub fn new(cfg: &Calibration) -> Calibrator {
        Calibrator {
            quantile: cfg.quantile,
            history: SortedWindow::new(cfg.points),
            record: 0.0,
            decay: if cfg.record_half_life > 0.0 {
                0.5f64.powf(1.0 / cfg.record_half_life)
            } else {
                0.0
            },
        }
    }

    /// The level a surprise must reach to fire: `floor` or the recent
    /// extreme quantile, whichever is higher.
    pub fn level(&self, floor: f64) -> f64 {
        self.history
            .quantile(self.quantile)
            .max(floor)
            .max(self.record)
    }

    /// `surprise` over [`Calibrator::level`], then remembers it.
    pub fn strength(&mut self, surprise: f64, floor: f64) -> f64 {
        let level = self.level(floor);
        self.history.push(surprise);
        self.record = (self.record * self.decay).max(surprise * self.decay.signum());
        if level > 0.0 { surprise / level } else { 0.0 }
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.history.memory_bytes()
    }
}
