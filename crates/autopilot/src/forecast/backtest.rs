//! Rolling-origin backtest: replay a series point by point; at each
//! origin, forecast every horizon with the [`Forecaster`] (which has seen
//! only the past) and with the seasonal-naive forecast (the value at the
//! same time the day before the target, also in the past for horizons up
//! to a day); when the target's actual value is in the series, score both.
//!
//! The scaled error reported (`mase`) is the forecaster's mean absolute
//! error over the seasonal-naive forecast's on the same origins and
//! targets: below 1 is better than seasonal naive.

use serde::Serialize;

use super::{Forecaster, ForecasterConfig};
use crate::time::DAY_MS;

/// Where the origins are.
#[derive(Clone, Debug, PartialEq)]
pub struct BacktestConfig {
    /// Horizons scored, each in 5 minutes..=24 hours.
    pub horizons_ms: Vec<i64>,
    /// No origin before this much of the series has been seen.
    pub warmup_ms: i64,
    /// About this many origins, evenly spaced over the rest.
    pub origins: usize,
}

impl Default for BacktestConfig {
    fn default() -> BacktestConfig {
        BacktestConfig {
            horizons_ms: super::HORIZONS_MS.to_vec(),
            warmup_ms: 3 * DAY_MS,
            origins: 400,
        }
    }
}

/// The scores at one horizon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HorizonScore {
    pub horizon_ms: i64,
    /// Origins where both forecasts and the actual value existed.
    pub forecasts: usize,
    pub mae: f64,
    pub naive_mae: f64,
    /// `mae / naive_mae`; `None` when nothing was scored or naive was exact.
    pub mase: Option<f64>,
    /// The share of actual values inside the forecast's band (among
    /// forecasts that had one); `None` when none had.
    pub coverage: Option<f64>,
}

/// A series' backtest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Backtest {
    pub horizons: Vec<HorizonScore>,
    /// Over all horizons: total absolute error over the seasonal-naive's.
    pub mase: Option<f64>,
    pub forecasts: usize,
}

/// Replays `points` (time order) with rolling origins.
pub fn backtest(points: &[(i64, f64)], cfg: &ForecasterConfig, bt: &BacktestConfig) -> Backtest {
    #[derive(Default, Clone)]
    struct Acc {
        n: usize,
        err: f64,
        naive: f64,
        banded: usize,
        inside: usize,
    }
    let mut acc = vec![Acc::default(); bt.horizons_ms.len()];
    let Some(&(first_ms, _)) = points.first() else {
        return Backtest {
            horizons: Vec::new(),
            mase: None,
            forecasts: 0,
        };
    };
    let start = points.partition_point(|&(t, _)| t < first_ms + bt.warmup_ms);
    let stride = ((points.len().saturating_sub(start)) / bt.origins.max(1)).max(1);
    let mut f = Forecaster::new(cfg.clone());
    for (i, &(t, v)) in points.iter().enumerate() {
        f.observe(t, v);
        if i < start || (i - start) % stride != 0 {
            continue;
        }
        let Some(interval) = f.interval_ms() else {
            continue;
        };
        let tolerance = interval / 2;
        for (h, &horizon) in bt.horizons_ms.iter().enumerate() {
            let Ok(p) = f.forecast(horizon) else { continue };
            // The naive forecast reads the past only: the target a day before.
            let Some(naive) = value_near(&points[..=i], p.t_ms - DAY_MS, tolerance) else {
                continue;
            };
            let Some(actual) = value_near(points, p.t_ms, tolerance) else {
                continue;
            };
            let a = &mut acc[h];
            a.n += 1;
            a.err += (actual - p.value).abs();
            a.naive += (actual - naive).abs();
            if let Some(b) = p.band {
                a.banded += 1;
                a.inside += usize::from(b.low <= actual && actual <= b.high);
            }
        }
    }
    let ratio = |err: f64, naive: f64, n: usize| (n > 0 && naive > 0.0).then(|| err / naive);
    let horizons: Vec<HorizonScore> = bt
        .horizons_ms
        .iter()
        .zip(&acc)
        .map(|(&horizon_ms, a)| HorizonScore {
            horizon_ms,
            forecasts: a.n,
            mae: if a.n > 0 { a.err / a.n as f64 } else { 0.0 },
            naive_mae: if a.n > 0 { a.naive / a.n as f64 } else { 0.0 },
            mase: ratio(a.err, a.naive, a.n),
            coverage: (a.banded > 0).then(|| a.inside as f64 / a.banded as f64),
        })
        .collect();
    let (err, naive, n) = acc.iter().fold((0.0, 0.0, 0), |(e, v, n), a| {
        (e + a.err, v + a.naive, n + a.n)
    });
    Backtest {
        horizons,
        mase: ratio(err, naive, n),
        forecasts: n,
    }
}

/// The value of the point nearest `t_ms` within `tolerance_ms`, if any.
fn value_near(points: &[(i64, f64)], t_ms: i64, tolerance_ms: i64) -> Option<f64> {
    let i = points.partition_point(|&(t, _)| t < t_ms);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .filter_map(|j| points.get(j))
        .filter(|(t, _)| (t - t_ms).abs() <= tolerance_ms)
        .min_by_key(|(t, _)| (t - t_ms).abs())
        .map(|&(_, v)| v)
}
