//! Self-calibration: a detector's raw surprise (a z-score, a distance)
//! measured against the surprises the same detector produced on this
//! series recently, so that a series whose normal is rough in a
//! detector's terms (daily jumps for a detector blind to seasons,
//! heavy-tailed noise) does not keep it firing, and one whose normal is
//! smooth lets it speak up early.
//!
//! The level is a high quantile of the last `points` surprises, kept
//! exactly (to the granularity of a block) in bounded memory: the window
//! is cut into [`BLOCKS`] blocks and each keeps only its largest values,
//! as many as the quantile needs.

use std::collections::VecDeque;

/// The window is cut into this many blocks; it spans between
/// `points - points / BLOCKS` and `points` surprises.
pub const BLOCKS: usize = 16;

/// How a raw surprise is calibrated.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Past surprises remembered.
    pub points: usize,
    /// The quantile of the past surprises a point must exceed to fire.
    pub quantile: f64,
}

impl Default for Calibration {
    fn default() -> Calibration {
        Calibration {
            points: 8000,
            quantile: 0.9995,
        }
    }
}

/// One block: how many surprises it has seen and its largest ones,
/// largest first.
#[derive(Clone, Debug, Default)]
struct Block {
    seen: usize,
    top: Vec<f64>,
}

/// The recent surprises of one detector.
#[derive(Clone, Debug)]
pub struct Calibrator {
    /// The level is the `rank`-th largest recent surprise (1-based).
    rank: usize,
    block_points: usize,
    blocks: VecDeque<Block>,
    /// The `rank`-th largest over the blocks, if known (blocks changed
    /// since: recomputed on demand).
    cached: std::cell::Cell<Option<f64>>,
}

impl Calibrator {
    pub fn new(cfg: &Calibration) -> Calibrator {
        let points = cfg.points.max(BLOCKS);
        let tail = (1.0 - cfg.quantile.clamp(0.0, 1.0)) * points as f64;
        // A whole number of points, at least the largest one.
        let rank = (tail.ceil() as usize).clamp(1, points);
        Calibrator {
            rank,
            block_points: points.div_ceil(BLOCKS),
            blocks: VecDeque::with_capacity(BLOCKS + 1),
            cached: std::cell::Cell::new(None),
        }
    }

    /// The level a surprise must reach to fire: the recent extreme
    /// quantile, or `floor` if that is higher.
    pub fn level(&self, floor: f64) -> f64 {
        self.ranked().map_or(floor, |v| v.max(floor))
    }

    /// The `rank`-th largest surprise in the window, if it holds that many.
    fn ranked(&self) -> Option<f64> {
        if let Some(v) = self.cached.get() {
            return Some(v);
        }
        let mut all: Vec<f64> = self
            .blocks
            .iter()
            .flat_map(|b| b.top.iter().copied())
            .collect();
        if all.len() < self.rank {
            return None;
        }
        let k = self.rank - 1;
        all.select_nth_unstable_by(k, |a, b| b.total_cmp(a));
        self.cached.set(Some(all[k]));
        Some(all[k])
    }

    /// `surprise` over [`Calibrator::level`], then remembers it.
    pub fn strength(&mut self, surprise: f64, floor: f64) -> f64 {
        let level = self.level(floor);
        self.push(surprise);
        if level > 0.0 { surprise / level } else { 0.0 }
    }

    fn push(&mut self, surprise: f64) {
        if self
            .blocks
            .back()
            .is_none_or(|b| b.seen == self.block_points)
        {
            if self.blocks.len() == BLOCKS {
                self.blocks.pop_front();
                self.cached.set(None);
            }
            self.blocks.push_back(Block {
                seen: 0,
                top: Vec::with_capacity(self.rank + 1),
            });
        }
        // Just pushed when empty, so there is a last block.
        let Some(block) = self.blocks.back_mut() else {
            return;
        };
        block.seen += 1;
        let at = block.top.partition_point(|v| *v >= surprise);
        if at < self.rank {
            block.top.insert(at, surprise);
            block.top.truncate(self.rank);
            // Only a value above the level can move it.
            if self.cached.get().is_none_or(|v| surprise > v) {
                self.cached.set(None);
            }
        }
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.blocks.capacity() * size_of::<Block>()
            + self
                .blocks
                .iter()
                .map(|b| b.top.capacity() * size_of::<f64>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_is_the_ranked_recent_extreme() {
        let mut c = Calibrator::new(&Calibration {
            points: 160,
            quantile: 0.99,
        });
        assert_eq!(c.rank, 2);
        assert_eq!(c.level(1.0), 1.0, "nothing seen: the floor");
        for i in 0..160 {
            c.push(f64::from(i));
        }
        // The second largest of 0..160.
        assert_eq!(c.level(0.0), 158.0);
        assert_eq!(c.strength(316.0, 0.0), 2.0);
        // 160 more small values push the old block-sized runs out.
        for _ in 0..160 {
            c.push(0.5);
        }
        assert_eq!(c.level(0.0), 0.5);
        assert_eq!(c.level(3.0), 3.0);
    }
}
