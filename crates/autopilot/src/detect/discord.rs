//! The novelty (discord) detector: how far the shape of the last few
//! points is from every shape the series showed before — the distance
//! from the newest subsequence to its nearest neighbour in a bounded
//! past, in the spirit of the left matrix profile (Yeh et al. 2016;
//! DAMP, Lu et al. 2022). A spike, a flat stretch where the series
//! usually moves, a changed rhythm all make shapes never seen before;
//! a pattern that repeats, however wild, does not.

use std::collections::VecDeque;

use super::calibrate::{Calibration, Calibrator};
use super::{DetectorKind, Signal};

/// The novelty detector's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscordConfig {
    /// Segments per subsequence (each the mean of `segment_points` points).
    pub segments: usize,
    /// Points averaged into one segment.
    pub segment_points: usize,
    /// Past subsequences searched for a neighbour.
    pub history: usize,
    /// Past subsequences needed before it scores.
    pub warmup: usize,
    /// The smallest calibrated level (a floor against tiny distances).
    pub floor: f64,
}

impl Default for DiscordConfig {
    fn default() -> DiscordConfig {
        DiscordConfig {
            segments: 8,
            segment_points: 4,
            history: 2000,
            warmup: 100,
            floor: 0.0,
        }
    }
}

/// The novelty detector.
#[derive(Clone, Debug)]
pub struct Discord {
    cfg: DiscordConfig,
    /// The last `segments * segment_points` values.
    recent: VecDeque<f64>,
    /// Past subsequences (`segments` values each), oldest first.
    past: VecDeque<Vec<f64>>,
    calibrator: Calibrator,
}

impl Discord {
    pub fn new(cfg: DiscordConfig, calibration: &Calibration) -> Discord {
        Discord {
            recent: VecDeque::with_capacity(cfg.segments * cfg.segment_points),
            past: VecDeque::with_capacity(cfg.history),
            calibrator: Calibrator::new(calibration),
            cfg,
        }
    }

    /// The subsequence ending at the newest point, mean removed: segment means.
    fn shape(&self) -> Vec<f64> {
        let k = self.cfg.segment_points;
        let mut v: Vec<f64> = (0..self.cfg.segments)
            .map(|s| self.recent.iter().skip(s * k).take(k).sum::<f64>() / k as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        for x in &mut v {
            *x -= mean;
        }
        v
    }

    /// Scores the newest point's subsequence, then remembers it.
    pub fn observe(&mut self, value: f64) -> Signal {
        let len = self.cfg.segments * self.cfg.segment_points;
        if self.recent.len() == len {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
        if self.recent.len() < len {
            return Signal::quiet(DetectorKind::Discord);
        }
        let shape = self.shape();
        // Neighbours that overlap the newest subsequence are trivial matches.
        let usable = self.past.len().saturating_sub(len);
        let signal = if usable >= self.cfg.warmup {
            let mut best = f64::INFINITY;
            for p in self.past.iter().take(usable) {
                let mut d = 0.0;
                for (a, b) in p.iter().zip(&shape) {
                    d += (a - b) * (a - b);
                    if d >= best {
                        break;
                    }
                }
                best = best.min(d);
            }
            let distance = best.sqrt();
            Signal::new(
                DetectorKind::Discord,
                self.calibrator.strength(distance, self.cfg.floor),
                None,
                None,
            )
        } else {
            Signal::quiet(DetectorKind::Discord)
        };
        if self.past.len() == self.cfg.history {
            self.past.pop_front();
        }
        self.past.push_back(shape);
        signal
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.recent.capacity() * size_of::<f64>()
            + self.past.capacity() * (size_of::<Vec<f64>>() + self.cfg.segments * size_of::<f64>())
            + self.calibrator.memory_bytes()
    }
}
