//! The detectors as a user of the crate sees them: streaming (a prefix
//! scores as the prefix of the whole run does), deterministic, bounded in
//! memory, and right about plain anomalies, with the evidence to show;
//! and what NAB's known range changes.

use autopilot::detect::{DetectorKind, Ensemble, EnsembleConfig, KnownRange};
use autopilot::synth::{Rng, Shape, series};

const FIVE_MINUTES_MS: i64 = 300_000;
/// 2014-04-01 00:00:00 UTC.
const START_MS: i64 = 1_396_310_400_000;

fn run(points: &[(i64, f64)]) -> Vec<f64> {
    let mut e = Ensemble::new(EnsembleConfig::default());
    points.iter().map(|&(t, v)| e.observe(t, v).score).collect()
}

/// A request rate over ten days with a spike at `spike` (if any).
fn rate(seed: u64, spike: Option<usize>) -> Vec<(i64, f64)> {
    let mut s = series(Shape::RequestRate, seed, START_MS, FIVE_MINUTES_MS, 2880);
    if let Some(i) = spike {
        s[i].1 *= 4.0;
    }
    s
}

#[test]
fn a_prefix_scores_as_the_prefix_of_the_whole_run() {
    let points = rate(11, Some(2500));
    let whole = run(&points);
    for cut in [1, 100, 1500, 2501] {
        assert_eq!(run(&points[..cut]), whole[..cut], "prefix of {cut} points");
    }
    // A detector cloned mid-stream continues exactly as the original.
    let mut a = Ensemble::new(EnsembleConfig::default());
    for &(t, v) in &points[..1000] {
        a.observe(t, v);
    }
    let mut b = a.clone();
    for &(t, v) in &points[1000..] {
        assert_eq!(a.observe(t, v), b.observe(t, v));
    }
}

#[test]
fn the_same_input_gives_the_same_scores() {
    let points = rate(12, Some(2000));
    assert_eq!(run(&points), run(&points));
}

#[test]
fn a_spike_in_a_daily_cycle_is_found_with_its_evidence() {
    let points = rate(13, Some(2400));
    let mut e = Ensemble::new(EnsembleConfig::default());
    let mut found = None;
    for (i, &(t, v)) in points.iter().enumerate() {
        let a = e.observe(t, v);
        if i == 2400 {
            found = Some(a);
        } else if i > 1000 && i != 2400 {
            assert!(!a.anomalous, "false alarm at point {i}: {a:?}");
        }
    }
    let a = found.unwrap();
    assert!(a.anomalous, "{a:?}");
    assert!(a.baseline.is_some(), "{a:?}");
    let band = a.band.expect("a band");
    assert!(a.observed > band.high, "{a:?}");
    let expected = a.expected.expect("an expected value");
    assert!(
        (expected - a.observed / 4.0).abs() < 0.3 * a.observed / 4.0,
        "{a:?}"
    );
    let fired: Vec<DetectorKind> = a
        .signals
        .iter()
        .filter(|s| s.fired)
        .map(|s| s.detector)
        .collect();
    assert!(fired.contains(&DetectorKind::Robust), "{fired:?}");
    assert!(fired.contains(&DetectorKind::Forecast), "{fired:?}");
}

#[test]
fn a_level_shift_fires_the_change_point_detector() {
    let mut rng = Rng::new(14);
    let points: Vec<(i64, f64)> = (0..3000)
        .map(|i| {
            let shift = if i >= 2000 { 3.0 } else { 0.0 };
            (
                START_MS + i as i64 * FIVE_MINUTES_MS,
                50.0 + shift + rng.normal(),
            )
        })
        .collect();
    let mut e = Ensemble::new(EnsembleConfig::default());
    let mut change_fired_at = None;
    for (i, &(t, v)) in points.iter().enumerate() {
        let a = e.observe(t, v);
        if i >= 2000 && change_fired_at.is_none() && a.signals[2].fired {
            change_fired_at = Some(i);
        }
    }
    let at = change_fired_at.expect("the change point detector never fired");
    assert!(at < 2050, "fired {} points after the shift", at - 2000);
}

#[test]
fn memory_stays_bounded_however_long_the_series() {
    let mut e = Ensemble::new(EnsembleConfig::default());
    let mut rng = Rng::new(15);
    let mut at = Vec::new();
    for i in 0..60_000i64 {
        e.observe(START_MS + i * 60_000, rng.normal());
        if i == 20_000 || i == 59_999 {
            at.push(e.memory_bytes());
        }
    }
    assert_eq!(
        at[0], at[1],
        "memory grew from {} to {} bytes",
        at[0], at[1]
    );
    assert!(at[1] < 1 << 20, "{} bytes per series", at[1]);
}

#[test]
fn a_flat_series_never_fires_until_it_moves() {
    let mut e = Ensemble::new(EnsembleConfig::default());
    for i in 0..2000i64 {
        let a = e.observe(START_MS + i * FIVE_MINUTES_MS, 42.0);
        assert!(!a.anomalous, "{a:?}");
    }
    let a = e.observe(START_MS + 2000 * FIVE_MINUTES_MS, 43.0);
    assert!(a.anomalous, "{a:?}");
}

#[test]
fn a_known_range_weighs_a_departure_by_its_share_of_it() {
    // A noisy level of 50 with a jump of 30 at point 2500.
    let mut rng = Rng::new(16);
    let points: Vec<(i64, f64)> = (0..3000)
        .map(|i| {
            let jump = if i == 2500 { 30.0 } else { 0.0 };
            (
                START_MS + i as i64 * FIVE_MINUTES_MS,
                50.0 + rng.normal() + jump,
            )
        })
        .collect();
    let at_jump = |mut e: Ensemble| {
        let mut last = None;
        for &(t, v) in &points[..=2500] {
            last = Some(e.observe(t, v));
        }
        last.expect("points")
    };
    let live = at_jump(Ensemble::new(EnsembleConfig::default()));
    assert!(live.anomalous, "{live:?}");
    assert_eq!(live.range_factor, 1.0);
    // 30 is 3 % of a range of 1,000: it keeps 30 % of its strength (the
    // default share is 10 %).
    let wide = KnownRange {
        min: 0.0,
        max: 1000.0,
    };
    let a = at_jump(Ensemble::with_known_range(EnsembleConfig::default(), wide));
    assert!((a.range_factor - 0.3).abs() < 0.05, "{a:?}");
    assert!((a.strength - live.strength * a.range_factor).abs() < 1e-9);
    // Against the series' own span, the jump is most of it: full strength.
    let own = KnownRange {
        min: 45.0,
        max: 85.0,
    };
    let a = at_jump(Ensemble::with_known_range(EnsembleConfig::default(), own));
    assert_eq!(a.range_factor, 1.0);
    assert_eq!(a.score, live.score);
}

#[test]
fn with_a_known_range_a_prefix_still_scores_as_the_whole_run_does() {
    let points = rate(17, Some(2500));
    let range = KnownRange {
        min: 0.0,
        max: 2000.0,
    };
    let run = |points: &[(i64, f64)]| {
        let mut e = Ensemble::with_known_range(EnsembleConfig::default(), range);
        points
            .iter()
            .map(|&(t, v)| e.observe(t, v).score)
            .collect::<Vec<f64>>()
    };
    let whole = run(&points);
    for cut in [1, 1500, 2501] {
        assert_eq!(run(&points[..cut]), whole[..cut], "prefix of {cut} points");
    }
}
