//! Additive Holt-Winters with a damped trend and a time-of-day season
//! (Gardner 1985 for the damping; slots from timestamps, see
//! `season.rs`), updated one point at a time. The forecast-residual
//! detector and the forecaster both run it.

use crate::season::MAX_SLOTS;
use crate::time::DAY_MS;

/// The model's smoothing parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct HoltWintersConfig {
    /// Level smoothing (0..1).
    pub alpha: f64,
    /// Trend smoothing (0..1).
    pub beta: f64,
    /// Trend damping per step (0..1; 1 is Holt's undamped trend).
    pub phi: f64,
    /// Season smoothing (0..1).
    pub gamma: f64,
}

impl Default for HoltWintersConfig {
    fn default() -> HoltWintersConfig {
        HoltWintersConfig {
            alpha: 0.2,
            beta: 0.01,
            phi: 0.95,
            gamma: 0.1,
        }
    }
}

/// One value per slot of the day.
#[derive(Clone, Debug)]
struct DaySeason {
    slot_ms: i64,
    values: Vec<f64>,
    seen: Vec<bool>,
}

impl DaySeason {
    fn new(interval_ms: i64) -> Option<DaySeason> {
        let slot_ms = interval_ms.max(DAY_MS / MAX_SLOTS as i64).max(1);
        // Fewer than 4 slots a day: no daily shape to learn.
        let slots = usize::try_from(DAY_MS / slot_ms).ok().filter(|s| *s >= 4)?;
        Some(DaySeason {
            slot_ms,
            values: vec![0.0; slots],
            seen: vec![false; slots],
        })
    }

    fn slot(&self, t_ms: i64) -> usize {
        // rem_euclid is in [0, DAY_MS); the quotient is at most `slots`.
        ((t_ms.rem_euclid(DAY_MS) / self.slot_ms) as usize).min(self.values.len() - 1)
    }
}

/// The model's state.
#[derive(Clone, Debug)]
pub struct HoltWinters {
    cfg: HoltWintersConfig,
    season: Option<DaySeason>,
    level: f64,
    trend: f64,
    count: u64,
}

impl HoltWinters {
    pub fn new(cfg: HoltWintersConfig) -> HoltWinters {
        HoltWinters {
            cfg,
            season: None,
            level: 0.0,
            trend: 0.0,
            count: 0,
        }
    }

    /// Starts the daily season once the sampling interval is known (a
    /// series sampled less than four times a day has none).
    pub fn set_interval(&mut self, interval_ms: i64) {
        if self.season.is_none() {
            self.season = DaySeason::new(interval_ms);
        }
    }

    /// Points learnt from.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The forecast for a point at `t_ms`, `steps` sampling intervals
    /// after the last point seen; `None` before any point.
    pub fn predict(&self, t_ms: i64, steps: u32) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // Damped trend: φ + φ² + ... + φ^steps.
        let phi = self.cfg.phi;
        let damp = if (phi - 1.0).abs() < 1e-12 {
            f64::from(steps)
        } else {
            phi * (1.0 - phi.powi(i32::try_from(steps).unwrap_or(i32::MAX))) / (1.0 - phi)
        };
        Some(self.level + damp * self.trend + self.seasonal(t_ms))
    }

    fn seasonal(&self, t_ms: i64) -> f64 {
        self.season.as_ref().map_or(0.0, |s| {
            let i = s.slot(t_ms);
            if s.seen[i] { s.values[i] } else { 0.0 }
        })
    }

    /// Learns from the point `(t_ms, seen)` (callers may clip `seen`
    /// towards the forecast first, for robustness).
    pub fn update(&mut self, t_ms: i64, seen: f64) {
        if self.count == 0 {
            self.level = seen;
            self.count = 1;
            return;
        }
        let c = &self.cfg;
        let s = self.seasonal(t_ms);
        let prior = self.level + c.phi * self.trend;
        let level = c.alpha * (seen - s) + (1.0 - c.alpha) * prior;
        self.trend = c.beta * (level - self.level) + (1.0 - c.beta) * c.phi * self.trend;
        self.level = level;
        if let Some(season) = self.season.as_mut() {
            let i = season.slot(t_ms);
            let target = seen - level;
            if season.seen[i] {
                season.values[i] += c.gamma * (target - season.values[i]);
            } else {
                season.values[i] = target;
                season.seen[i] = true;
            }
        }
        self.count += 1;
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.season.as_ref().map_or(0, |s| {
            s.values.capacity() * size_of::<f64>() + s.seen.capacity()
        })
    }
}
