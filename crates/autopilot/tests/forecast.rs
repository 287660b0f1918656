//! The forecaster: intervals that hold what they promise, forecasts
//! better than seasonal naive on a seeded synthetic request rate, bad
//! horizons refused with the field named, bounded memory.

use autopilot::forecast::{
    BacktestConfig, ForecastError, Forecaster, ForecasterConfig, MAX_HORIZON_MS, Model, backtest,
};
use autopilot::synth::{Shape, series};

const FIVE_MINUTES_MS: i64 = 300_000;
const HOUR_MS: i64 = 3_600_000;
/// 2014-04-01 00:00:00 UTC.
const START_MS: i64 = 1_396_310_400_000;

fn fed(points: &[(i64, f64)]) -> Forecaster {
    let mut f = Forecaster::new(ForecasterConfig::default());
    for &(t, v) in points {
        f.observe(t, v);
    }
    f
}

#[test]
fn a_request_rate_is_forecast_better_than_seasonal_naive_at_every_horizon() {
    let points = series(Shape::RequestRate, 19, START_MS, FIVE_MINUTES_MS, 21 * 288);
    let r = backtest(
        &points,
        &ForecasterConfig::default(),
        &BacktestConfig::default(),
    );
    assert!(r.forecasts > 1000, "{r:?}");
    for h in &r.horizons {
        let mase = h.mase.expect("scored");
        assert!(mase < 1.0, "{h:?}");
        let coverage = h.coverage.expect("bands");
        assert!(
            (0.8..=0.97).contains(&coverage),
            "90 % bands held {coverage}: {h:?}"
        );
    }
}

#[test]
fn a_forecast_says_when_what_and_how_sure() {
    let points = series(Shape::RequestRate, 20, START_MS, FIVE_MINUTES_MS, 10 * 288);
    let f = fed(&points);
    let last = points.last().unwrap().0;
    let p = f.forecast(6 * HOUR_MS).unwrap();
    assert_eq!(p.t_ms, last + 6 * HOUR_MS);
    assert_eq!(p.coverage, 0.9);
    let band = p.band.expect("a band after ten days");
    assert!(band.low < p.value && p.value < band.high, "{p:?}");
    assert!(p.value > 0.0);
    // A day ahead is as far as it goes.
    assert!(f.forecast(MAX_HORIZON_MS).is_ok());
    assert_ne!(
        p.model,
        Model::LastValue,
        "six hours ahead, the last value is a poor guess"
    );
}

#[test]
fn bad_horizons_are_refused_naming_the_field() {
    let points = series(Shape::MemoryBytes, 21, START_MS, HOUR_MS, 200);
    let f = fed(&points);
    let e = f.forecast(MAX_HORIZON_MS + 1).unwrap_err();
    assert_eq!(
        e,
        ForecastError::HorizonOutOfRange {
            horizon_ms: MAX_HORIZON_MS + 1
        }
    );
    assert!(
        e.to_string().starts_with("horizon_ms: 86400001 is outside"),
        "{e}"
    );
    let e = f.forecast(FIVE_MINUTES_MS).unwrap_err();
    assert_eq!(
        e,
        ForecastError::HorizonBelowInterval {
            horizon_ms: FIVE_MINUTES_MS,
            interval_ms: HOUR_MS
        }
    );
    assert!(e.to_string().starts_with("horizon_ms:"), "{e}");
    assert_eq!(
        fed(&points[..3]).forecast(HOUR_MS),
        Err(ForecastError::Learning)
    );
}

#[test]
fn forecasts_are_deterministic_and_memory_is_bounded() {
    let points = series(
        Shape::LiveSandboxes,
        22,
        START_MS,
        FIVE_MINUTES_MS,
        40 * 288,
    );
    let a = fed(&points[..20 * 288]);
    let b = fed(&points);
    assert_eq!(
        a.forecast(HOUR_MS),
        fed(&points[..20 * 288]).forecast(HOUR_MS)
    );
    assert_eq!(a.memory_bytes(), b.memory_bytes());
}
