//! NAB's scoring rules, as published (Lavin & Ahmad 2015 and the NAB
//! repository's documentation), over a corpus of scored series.
//!
//! - The first 15 % of each series (at most 750 points) is probationary:
//!   its points count for nothing.
//! - A point inside a window, if detected, is worth the scaled sigmoid of
//!   its position: `2 / (1 + e^(5 x)) - 1` with `x = -(right - i + 1) /
//!   width`, so -1 at the window's first point (worth `tp_weight`) and near
//!   0 at its last; only the best (that is, the earliest) detection of a
//!   window counts. A window with no detection costs `fn_weight`.
//! - A detection outside every window costs `fp_weight` times the sigmoid
//!   of its distance past the end of the previous window, relative to that
//!   window's width (so a detection just after a window costs little, one
//!   three widths later the full weight); before the first window it costs
//!   the full weight.
//! - A threshold turns scores into detections (`score >= threshold`); it
//!   is chosen per profile to maximise the corpus's total, trying every
//!   distinct score (and 1.1, nothing detected).
//! - The total is normalised: 0 is the null detector (a constant score),
//!   100 the perfect one (every window detected at its first point).

use super::input::{Profile, Window};

/// One series' anomaly scores and its windows.
#[derive(Clone, Copy, Debug)]
pub struct Scored<'a> {
    /// The series' name, for reports (`<category>/<file>.csv`).
    pub name: &'a str,
    /// Unix milliseconds, in the file's order.
    pub timestamps_ms: &'a [i64],
    /// One per timestamp, in [0, 1].
    pub scores: &'a [f64],
    pub windows: &'a [Window],
}

/// The share of a series that is probationary.
pub const PROBATIONARY_SHARE: f64 = 0.15;
/// The probationary period never exceeds this share of 5,000 points (750).
const PROBATIONARY_CAP_POINTS: f64 = 5000.0;
/// A threshold above every score: nothing detected.
const ABOVE_ALL: f64 = 1.1;

/// How many leading points of a series of `len` points are probationary.
pub fn probationary_points(len: usize) -> usize {
    let share = (PROBATIONARY_SHARE * len as f64).floor();
    // Both operands are small non-negative whole numbers (<= 750).
    share.min(PROBATIONARY_SHARE * PROBATIONARY_CAP_POINTS) as usize
}

/// NAB's scaled sigmoid of a relative position (-1 is a window's start, 0
/// its end, positive past it).
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// The scorer's result for one profile.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileScore {
    pub profile: String,
    /// The threshold chosen to maximise `raw`.
    pub threshold: f64,
    /// The corpus's total at `threshold`.
    pub raw: f64,
    /// The null detector's total (constant scores) under the same rules.
    pub null: f64,
    /// The perfect detector's total: `tp_weight` per window.
    pub perfect: f64,
    /// `100 * (raw - null) / (perfect - null)`.
    pub normalised: f64,
    /// Windows (outside the probationary period) with a detection, of `windows`.
    pub windows_detected: usize,
    pub windows: usize,
    /// Detections outside every window after the probationary period.
    pub false_positives: usize,
}

/// What a threshold makes of one series: windows (with a point after the
/// probationary period) detected, and detections outside every window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub windows_detected: usize,
    pub windows: usize,
    pub false_positives: usize,
}

/// Counts one series' detections at `threshold` (scores at or above it),
/// after the probationary period, as [`score`] counts them.
pub fn tally(s: &Scored<'_>, threshold: f64) -> Tally {
    let mut detected = vec![false; s.windows.len()];
    let mut counted = vec![false; s.windows.len()];
    let mut false_positives = 0;
    let profile = Profile::nab_defaults().remove(0);
    sweep_series(s, &profile, |i, _, window| {
        if let Some(w) = window {
            counted[w] = true;
        }
        if s.scores.get(i).is_some_and(|&v| v >= threshold) {
            match window {
                Some(w) => detected[w] = true,
                None => false_positives += 1,
            }
        }
    });
    Tally {
        windows_detected: detected.iter().filter(|d| **d).count(),
        windows: counted.iter().filter(|c| **c).count(),
        false_positives,
    }
}

/// One scorable point: its score, what detecting it is worth, and its window.
#[derive(Clone, Copy, Debug)]
struct Point {
    score: f64,
    worth: f64,
    /// Corpus-wide window index; `None` outside every window.
    window: Option<usize>,
}

/// Scores a corpus under one profile, NAB's way: the threshold is
/// optimised over the whole corpus, then the total normalised.
pub fn score(corpus: &[Scored<'_>], profile: &Profile) -> ProfileScore {
    let (points, counted) = sweep_corpus(corpus, profile, |s| s.scores);
    let (threshold, raw) = best_threshold(points.clone(), &counted, profile.fn_weight);
    let (null_points, _) = sweep_corpus(corpus, profile, |_| &[]);
    let (_, null) = best_threshold(null_points, &counted, profile.fn_weight);
    let windows: usize = corpus.iter().map(|s| s.windows.len()).sum();
    let perfect = windows as f64 * profile.tp_weight;
    let mut detected = vec![false; counted.len()];
    let mut false_positives = 0;
    for p in points.iter().filter(|p| p.score >= threshold) {
        match p.window {
            Some(w) => detected[w] = true,
            None => false_positives += 1,
        }
    }
    let normalised = if perfect > null {
        100.0 * (raw - null) / (perfect - null)
    } else {
        0.0
    };
    ProfileScore {
        profile: profile.name.clone(),
        threshold,
        raw,
        null,
        perfect,
        normalised,
        windows_detected: detected.iter().filter(|d| **d).count(),
        windows: counted.iter().filter(|c| **c).count(),
        false_positives,
    }
}

/// Every scorable point of the corpus with its worth, and for each window
/// (numbered across the corpus) whether any of its points is scorable.
/// `scores_of` picks the scores; an empty slice means the null detector's
/// constant score.
fn sweep_corpus<'a>(
    corpus: &'a [Scored<'a>],
    profile: &Profile,
    scores_of: impl Fn(&'a Scored<'a>) -> &'a [f64],
) -> (Vec<Point>, Vec<bool>) {
    let mut points = Vec::new();
    let mut counted = Vec::new();
    for s in corpus {
        let scores = scores_of(s);
        let first = counted.len();
        counted.extend(std::iter::repeat_n(false, s.windows.len()));
        sweep_series(s, profile, |i, worth, window| {
            if let Some(w) = window {
                counted[first + w] = true;
            }
            points.push(Point {
                score: scores.get(i).copied().unwrap_or(0.0),
                worth,
                window: window.map(|w| first + w),
            });
        });
    }
    (points, counted)
}

/// Calls `each(i, worth, window)` for every point after the probationary
/// period: what detecting point `i` is worth under `profile`, and the
/// index of its window in `s.windows`, if it is in one.
fn sweep_series(
    s: &Scored<'_>,
    profile: &Profile,
    mut each: impl FnMut(usize, f64, Option<usize>),
) {
    let ts = s.timestamps_ms;
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probationary_points(ts.len());
    // Each window as the indices of its first and last point. NAB enters a
    // window at the row whose timestamp equals its start and leaves it at
    // the first row equal to its end; the same rows are found here, and a
    // boundary between rows snaps inwards. A window with no row is skipped.
    let spans: Vec<Option<(usize, usize)>> = s
        .windows
        .iter()
        .map(|w| {
            let left = ts.iter().position(|&t| t >= w.start_ms)?;
            let right = match ts[left..].iter().position(|&t| t >= w.end_ms) {
                Some(k) if ts[left + k] == w.end_ms => left + k,
                Some(0) => return None,
                Some(k) => left + k - 1,
                None => ts.len() - 1,
            };
            Some((left, right))
        })
        .collect();
    let mut next = 0;
    let mut current: Option<(usize, usize, usize)> = None; // (window, left, right)
    let mut previous: Option<(usize, usize)> = None; // (right, width)
    for i in 0..ts.len() {
        if current.is_none() {
            while next < spans.len() && spans[next].is_none_or(|(_, right)| right < i) {
                next += 1;
            }
            if let Some(Some((left, right))) = spans.get(next)
                && *left == i
            {
                current = Some((next, *left, *right));
                next += 1;
            }
        }
        let (worth, window) = match current {
            Some((w, left, right)) => {
                let width = (right - left + 1) as f64;
                let position = -((right - i + 1) as f64) / width;
                (
                    scaled_sigmoid(position) * profile.tp_weight / max_tp,
                    Some(w),
                )
            }
            None => {
                let unweighted = match previous {
                    // A one-point window: every later point is "far" past it.
                    Some((_, 1)) | None => -1.0,
                    Some((right, width)) => scaled_sigmoid((i - right) as f64 / (width - 1) as f64),
                };
                (unweighted * profile.fp_weight, None)
            }
        };
        if i >= probation {
            each(i, worth, window);
        }
        if let Some((_, left, right)) = current
            && i == right
        {
            previous = Some((right, right - left + 1));
            current = None;
        }
    }
}

/// The threshold with the highest total and that total: every distinct
/// score is tried from the highest down (plus [`ABOVE_ALL`]); ties go to
/// the higher threshold. `counted[w]` says whether window `w` counts (has
/// a scorable point): each counted window costs `fn_weight` until detected.
fn best_threshold(mut points: Vec<Point>, counted: &[bool], fn_weight: f64) -> (f64, f64) {
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut parts: Vec<f64> = counted
        .iter()
        .map(|&c| if c { -fn_weight } else { 0.0 })
        .collect();
    let mut total: f64 = parts.iter().sum();
    let mut best = (ABOVE_ALL, total);
    let mut i = 0;
    while i < points.len() {
        let threshold = points[i].score;
        while i < points.len() && points[i].score == threshold {
            let p = points[i];
            match p.window {
                Some(w) if p.worth > parts[w] => {
                    total += p.worth - parts[w];
                    parts[w] = p.worth;
                }
                Some(_) => {}
                None => total += p.worth,
            }
            i += 1;
        }
        if total > best.1 {
            best = (threshold, total);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 points a minute apart, one window over points 500..=599, and
    /// the scores given (0 elsewhere).
    struct Fixture {
        ts: Vec<i64>,
        windows: [Window; 1],
        scores: Vec<f64>,
    }

    impl Fixture {
        fn new(scores: &[(usize, f64)]) -> Fixture {
            let ts: Vec<i64> = (0..1000).map(|i| i * 60_000).collect();
            let windows = [Window {
                start_ms: ts[500],
                end_ms: ts[599],
            }];
            let mut all = vec![0.0; 1000];
            for &(i, v) in scores {
                all[i] = v;
            }
            Fixture {
                ts,
                windows,
                scores: all,
            }
        }

        fn scored(&self) -> Scored<'_> {
            Scored {
                name: "a",
                timestamps_ms: &self.ts,
                scores: &self.scores,
                windows: &self.windows,
            }
        }

        fn standard(&self) -> ProfileScore {
            score(&[self.scored()], &Profile::nab_defaults()[0])
        }
    }

    #[test]
    fn sigmoid_matches_the_published_points() {
        assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
        assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probationary_points(1000), 150);
        assert_eq!(probationary_points(1001), 150);
        assert_eq!(probationary_points(100_000), 750);
    }

    #[test]
    fn an_early_detection_scores_100_and_the_null_detector_0() {
        let s = Fixture::new(&[(500, 1.0)]).standard();
        assert_eq!(s.threshold, 1.0);
        assert!((s.normalised - 100.0).abs() < 1e-9, "{s:?}");
        assert_eq!((s.windows_detected, s.false_positives), (1, 0));
        assert_eq!(Fixture::new(&[]).standard().normalised, 0.0);
    }

    #[test]
    fn a_late_detection_and_false_positives_cost_what_nab_says() {
        let f = Fixture::new(&[
            (550, 0.9), // halfway: worth sigmoid(-0.5) / sigmoid(-1)
            (549, 0.8), // earlier, but only counts at a lower threshold
            (300, 0.9), // before the window: the full FP weight
            (100, 1.0), // probationary: ignored
        ]);
        let s = f.standard();
        let at_550 = scaled_sigmoid(-50.0 / 100.0) / scaled_sigmoid(-1.0);
        let at_549 = scaled_sigmoid(-51.0 / 100.0) / scaled_sigmoid(-1.0);
        assert_eq!(s.threshold, 0.8);
        assert!((s.raw - (at_549 - 0.11)).abs() < 1e-12, "{s:?}");
        assert!(at_549 > at_550);
        assert_eq!(s.null, -1.0);
        assert_eq!(s.perfect, 1.0);
        assert_eq!(s.false_positives, 1);
        let t = tally(&f.scored(), 0.9);
        assert_eq!(
            t,
            Tally {
                windows_detected: 1,
                windows: 1,
                false_positives: 1
            }
        );
        assert_eq!(tally(&f.scored(), 1.0).windows_detected, 0);
    }

    #[test]
    fn a_detection_past_a_window_costs_by_its_distance() {
        // 10 points past a 100-point window.
        let s = Fixture::new(&[(500, 1.0), (609, 1.0)]).standard();
        let past = 0.11 * scaled_sigmoid(10.0 / 99.0);
        assert!((s.raw - (1.0 + past)).abs() < 1e-12, "{s:?}");
    }
}
