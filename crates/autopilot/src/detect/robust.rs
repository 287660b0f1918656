//! The robust statistical detector: how many robust standard deviations
//! (median and MAD) a point's residual is from the residuals before it,
//! against the best of three baselines.

use super::calibrate::{Calibration, Calibrator};
use super::{Band, DetectorKind, Signal, scale_floor};
use crate::season::{Cadence, SlotHistory, WEEK_MS};
use crate::stats::SortedWindow;
use crate::time::DAY_MS;

/// What a point is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The median of the last few points.
    Recent,
    /// The median of the same time of day over the last few days.
    Daily,
    /// The median of the same time of week over the last few weeks.
    Weekly,
}

const BASELINES: [Baseline; 3] = [Baseline::Recent, Baseline::Daily, Baseline::Weekly];

/// The robust detector's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RobustConfig {
    /// Residuals the median and scale are taken over.
    pub history_points: usize,
    /// Points the recent baseline's median spans.
    pub recent_points: usize,
    /// Periods (days, weeks) each time slot remembers.
    pub season_depth: usize,
    /// Values a slot needs before its baseline is used.
    pub season_min: usize,
    /// Robust z-score at which the detector fires.
    pub fire_z: f64,
    /// Residuals a baseline needs before it scores.
    pub warmup_points: usize,
    /// A seasonal baseline replaces the current one only when its residual
    /// scale is below this share of the current one's (hysteresis).
    pub switch_ratio: f64,
}

impl Default for RobustConfig {
    fn default() -> RobustConfig {
        RobustConfig {
            history_points: 1000,
            recent_points: 8,
            season_depth: 5,
            season_min: 2,
            fire_z: 5.0,
            warmup_points: 48,
            switch_ratio: 0.9,
        }
    }
}

/// One baseline's view of a point.
struct Judgement {
    baseline: usize,
    strength: f64,
    z: f64,
    /// The expected value: the baseline plus its residuals' median.
    centre: f64,
    half_band: f64,
}

/// The robust statistical detector.
#[derive(Clone, Debug)]
pub struct Robust {
    cfg: RobustConfig,
    cadence: Cadence,
    recent: SortedWindow,
    daily: Option<SlotHistory>,
    weekly: Option<SlotHistory>,
    /// Per baseline, the residuals of the points it could predict.
    residuals: [SortedWindow; 3],
    /// Per baseline, its recent |z|.
    calibrators: [Calibrator; 3],
    /// The baseline that judged the latest point (`None` while learning).
    chosen: Option<Baseline>,
    /// The latest signed z-score of the chosen baseline.
    last_z: f64,
}

impl Robust {
    pub fn new(cfg: RobustConfig, calibration: &Calibration) -> Robust {
        let window = || SortedWindow::new(cfg.history_points);
        let calibrator = || Calibrator::new(calibration);
        Robust {
            calibrators: [calibrator(), calibrator(), calibrator()],
            recent: SortedWindow::new(cfg.recent_points),
            residuals: [window(), window(), window()],
            cadence: Cadence::default(),
            daily: None,
            weekly: None,
            chosen: None,
            last_z: 0.0,
            cfg,
        }
    }

    /// The baseline that judged the latest point: the one most surprised
    /// by it (`None` while every baseline is still learning).
    pub fn baseline(&self) -> Option<Baseline> {
        self.chosen
    }

    /// The signed robust z-score of the latest point (0 while learning).
    pub fn last_z(&self) -> f64 {
        self.last_z
    }

    /// Scores the point `(t_ms, value)`, then learns from it.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> Signal {
        if self.daily.is_none()
            && let Some(interval) = self.cadence.observe(t_ms)
        {
            self.daily = SlotHistory::new(DAY_MS, interval, self.cfg.season_depth);
            self.weekly = SlotHistory::new(WEEK_MS, interval, self.cfg.season_depth);
        }
        let expected = [
            (!self.recent.is_empty()).then(|| self.recent.median()),
            self.daily
                .as_ref()
                .and_then(|h| h.expected(t_ms, self.cfg.season_min)),
            self.weekly
                .as_ref()
                .and_then(|h| h.expected(t_ms, self.cfg.season_min)),
        ];
        // Every ready baseline judges the point; the most surprised one
        // speaks (each in units of its own residuals' spread).
        let mut best: Option<Judgement> = None;
        for (i, e) in expected.iter().enumerate() {
            let Some(e) = *e else { continue };
            let r = &self.residuals[i];
            if r.len() < self.cfg.warmup_points {
                continue;
            }
            let centre = e + r.median();
            let sigma = r.sigma().max(scale_floor(e));
            let z = (value - centre) / sigma;
            // The level before this point joins the calibration: the band
            // is what would not have fired the detector.
            let level = self.calibrators[i].level(self.cfg.fire_z);
            let strength = self.calibrators[i].strength(z.abs(), self.cfg.fire_z);
            if best.as_ref().is_none_or(|b| strength > b.strength) {
                best = Some(Judgement {
                    baseline: i,
                    strength,
                    z,
                    centre,
                    half_band: level * sigma,
                });
            }
        }
        let signal = match best {
            Some(j) => {
                self.chosen = Some(BASELINES[j.baseline]);
                self.last_z = j.z;
                Signal::new(
                    DetectorKind::Robust,
                    j.strength,
                    Some(j.centre),
                    Some(Band {
                        low: j.centre - j.half_band,
                        high: j.centre + j.half_band,
                    }),
                )
            }
            None => {
                self.chosen = None;
                self.last_z = 0.0;
                Signal::quiet(DetectorKind::Robust)
            }
        };
        for (r, e) in self.residuals.iter_mut().zip(expected) {
            if let Some(e) = e {
                r.push(value - e);
            }
        }
        self.recent.push(value);
        for h in [&mut self.daily, &mut self.weekly].into_iter().flatten() {
            h.push(t_ms, value);
        }
        signal
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.recent.memory_bytes()
            + self
                .residuals
                .iter()
                .map(SortedWindow::memory_bytes)
                .sum::<usize>()
            + [&self.daily, &self.weekly]
                .into_iter()
                .flatten()
                .map(SlotHistory::memory_bytes)
                .sum::<usize>()
    }
}
