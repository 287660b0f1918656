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
            history: 1000,
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
    /// Past subsequences, `segments` values each, in a ring of `history`
    /// slots; `stored` slots are filled and `next` is overwritten next.
    past: Vec<f64>,
    stored: usize,
    next: usize,
    /// The newest subsequence's shape (scratch, `segments` values).
    shape: Vec<f64>,
    calibrator: Calibrator,
}

impl Discord {
    pub fn new(cfg: DiscordConfig, calibration: &Calibration) -> Discord {
        Discord {
            recent: VecDeque::with_capacity(cfg.segments * cfg.segment_points),
            past: vec![0.0; cfg.history.max(1) * cfg.segments],
            stored: 0,
            next: 0,
            shape: vec![0.0; cfg.segments],
            calibrator: Calibrator::new(calibration),
            cfg,
        }
    }

    /// The subsequence ending at the newest point, as segment means with
    /// their mean removed, into `self.shape`.
    fn fill_shape(&mut self) {
        let k = self.cfg.segment_points;
        for (s, out) in self.shape.iter_mut().enumerate() {
            *out = self.recent.range(s * k..(s + 1) * k).sum::<f64>() / k as f64;
        }
        let mean = self.shape.iter().sum::<f64>() / self.shape.len() as f64;
        for x in &mut self.shape {
            *x -= mean;
        }
    }

    /// The squared distance from the shape to its nearest stored
    /// neighbour, leaving out the `recent` newest (they overlap it).
    fn nearest(&self, recent: usize) -> f64 {
        let m = self.cfg.segments;
        let slots = self.past.len() / m;
        let mut best = f64::INFINITY;
        // The usable slots, newest excluded: walk back from the oldest kept.
        for i in 0..self.stored - recent {
            let slot = (self.next + slots - self.stored + i) % slots;
            let p = &self.past[slot * m..(slot + 1) * m];
            let mut d = 0.0;
            for (a, b) in p.iter().zip(&self.shape) {
                d += (a - b) * (a - b);
                if d >= best {
                    break;
                }
            }
            best = best.min(d);
        }
        best
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
        self.fill_shape();
        // Neighbours that overlap the newest subsequence are trivial matches.
        let signal = if self.stored.saturating_sub(len) >= self.cfg.warmup {
            let distance = self.nearest(len).sqrt();
            Signal::new(
                DetectorKind::Discord,
                self.calibrator.strength(distance, self.cfg.floor),
                None,
                None,
            )
        } else {
            Signal::quiet(DetectorKind::Discord)
        };
        let m = self.cfg.segments;
        let slots = self.past.len() / m;
        self.past[self.next * m..(self.next + 1) * m].copy_from_slice(&self.shape);
        self.next = (self.next + 1) % slots;
        self.stored = (self.stored + 1).min(slots);
        signal
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        (self.recent.capacity() + self.past.capacity() + self.shape.capacity()) * size_of::<f64>()
            + self.calibrator.memory_bytes()
    }
}
