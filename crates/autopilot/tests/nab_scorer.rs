//! The scorer against NAB's official one: Numenta HTM's stored results for
//! the shared series, scored here, give `reference-scores.json`'s figures
//! to within 0.1. And a floor under the ensemble's own NAB score, so that
//! a change that breaks detection fails here and not only in the bench
//! (`dwcp bench nab` reports the figure itself).

use std::path::{Path, PathBuf};

use autopilot::nab::{self, Scored};

/// `../shared/data/nab` from the repository root.
fn nab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn numenta_results_score_as_the_official_scorer_says() {
    let dir = nab_dir();
    let windows =
        nab::input::parse_windows(&read(&dir.join("labels/combined_windows.json"))).unwrap();
    let profiles = nab::input::parse_profiles(&read(&dir.join("profiles.json"))).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&read(&dir.join("reference-scores.json"))).unwrap();
    let mut results = Vec::new();
    for name in windows.keys() {
        let (category, file) = name.split_once('/').unwrap();
        let path = dir.join(format!("results/numenta/{category}/numenta_{file}"));
        let parsed = nab::input::parse_results(&read(&path)).unwrap();
        results.push((name.clone(), parsed));
    }
    assert_eq!(results.len(), 41);
    let corpus: Vec<Scored<'_>> = results
        .iter()
        .map(|(name, r)| Scored {
            name,
            timestamps_ms: &r.timestamps_ms,
            scores: &r.anomaly_scores,
            windows: &windows[name],
        })
        .collect();
    for profile in &profiles {
        let got = nab::score::score(&corpus, profile);
        let want = reference["scores"]["numenta"][&profile.name]
            .as_f64()
            .unwrap();
        eprintln!(
            "{}: {:.3} (official {want}) {got:?}",
            profile.name, got.normalised
        );
        assert!(
            (got.normalised - want).abs() <= 0.1,
            "{}: {} against the official {want}",
            profile.name,
            got.normalised
        );
    }
}

/// Well under what `dwcp bench nab` measures (docs/autopilot.md), well
/// over the windowed Gaussian's 43: a regression guard, not the figure.
const STANDARD_FLOOR: f64 = 60.0;

#[test]
fn the_ensemble_scores_above_its_floor_on_the_shared_series() {
    use autopilot::detect::{Ensemble, EnsembleConfig};
    let dir = nab_dir();
    let windows =
        nab::input::parse_windows(&read(&dir.join("labels/combined_windows.json"))).unwrap();
    let mut runs = Vec::new();
    for name in windows.keys() {
        let series = nab::input::parse_series(&read(&dir.join("data").join(name))).unwrap();
        let mut e = Ensemble::new(EnsembleConfig::default());
        let scores: Vec<f64> = series
            .timestamps_ms
            .iter()
            .zip(&series.values)
            .map(|(&t, &v)| e.observe(t, v).score)
            .collect();
        runs.push((name.clone(), series, scores));
    }
    let corpus: Vec<Scored<'_>> = runs
        .iter()
        .map(|(name, s, scores)| Scored {
            name,
            timestamps_ms: &s.timestamps_ms,
            scores,
            windows: &windows[name],
        })
        .collect();
    let standard = nab::score::score(&corpus, &nab::Profile::nab_defaults()[0]);
    assert!(standard.normalised >= STANDARD_FLOOR, "{standard:?}");
}
