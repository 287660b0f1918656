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
    /// The slot of the previous point's nearest neighbour.
    neighbour: Option<usize>,
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
            neighbour: None,
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
    /// neighbour, leaving out the `recent` newest (they overlap it), and
    /// that neighbour's slot.
    ///
    /// A plain scan: each distance is a short branch-free sum (8
    /// segments), which beats early abandoning; the slot after the
    /// previous point's neighbour is tried first only to break ties the
    /// same way every run.
    fn nearest(&self, recent: usize) -> (f64, usize) {
        let m = self.cfg.segments;
        let slots = self.past.len() / m;
        let usable = self.stored - recent;
        let oldest = (self.next + slots - self.stored) % slots;
        let distance = |slot: usize| {
            let p = &self.past[slot * m..(slot + 1) * m];
            p.iter()
                .zip(&self.shape)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
        };
        let mut best = (f64::INFINITY, oldest);
        if let Some(prev) = self.neighbour {
            let slot = (prev + 1) % slots;
            // Usable when it is among the `usable` oldest stored slots.
            if (slot + slots - oldest) % slots < usable {
                best = (distance(slot), slot);
            }
        }
        // The usable slots as (at most) two contiguous runs, oldest first.
        let first_run = usable.min(slots - oldest);
        let runs = [(oldest, first_run), (0, usable - first_run)];
        for (start, len) in runs {
            for slot in start..start + len {
                let d = distance(slot);
                if d < best.0 {
                    best = (d, slot);
                }
            }
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
            let (squared, slot) = self.nearest(len);
            self.neighbour = Some(slot);
            let distance = squared.sqrt();
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
