//! The judge's statistics against scipy 1.17.1's, for fixed samples
//! (`mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")`,
//! and the pooled two-proportion z-test with `scipy.stats.norm.sf`), and
//! its verdicts on canaries that are as good, 5 % failing, and 3× slower.

use rollout::{Sample, Thresholds, Verdict, judge, mann_whitney_u, normal_sf, two_proportion_z};

fn close(got: f64, want: f64) {
    let tolerance = 1e-6 * want.abs().max(1e-300);
    assert!(
        (got - want).abs() <= tolerance,
        "got {got:e}, scipy says {want:e}"
    );
}

#[test]
fn the_normal_tail_matches_scipy() {
    close(normal_sf(1.0), 0.15865525393145707);
    close(normal_sf(3.0), 0.0013498980316300933);
    close(normal_sf(0.0), 0.5);
    close(normal_sf(6.0), 9.865876450376946e-10);
}

#[test]
fn mann_whitney_matches_scipy() {
    let cases: [(&[f64], &[f64], f64, f64); 4] = [
        (
            &[1.1, 2.3, 3.5, 4.2, 5.9],
            &[6.1, 7.4, 8.8, 9.0, 10.3, 11.7],
            0.0,
            0.00811311726556578,
        ),
        (
            &[3., 4., 4., 5., 6., 6., 6., 8., 9.],
            &[1., 2., 3., 3., 4., 5., 5., 7.],
            55.0,
            0.07219652794459011,
        ),
        (
            &[
                12.1, 14.3, 11.8, 15.2, 13.3, 12.9, 14.8, 13.1, 12.2, 16.0, 13.7, 12.5,
            ],
            &[11.9, 12.4, 13.0, 11.2, 12.8, 12.1, 13.5, 11.7, 12.6, 12.0],
            93.5,
            0.029512654198050534,
        ),
        (&[5., 5., 5., 5.], &[5., 5., 5.], 6.0, 1.0),
    ];
    for (x, y, u, p) in cases {
        let test = mann_whitney_u(x, y).unwrap();
        close(test.u, u);
        close(test.p_value, p);
    }
    assert!(mann_whitney_u(&[], &[1.0]).is_none());
    assert!(mann_whitney_u(&[f64::NAN], &[1.0]).is_none());
}

#[test]
fn two_proportions_match_scipy() {
    let cases = [
        (
            (50, 1000, 20, 1000),
            (
                3.6501320661951637,
                0.0002621055109992034,
                0.0001310527554996017,
            ),
        ),
        (
            (3, 100, 2, 100),
            (0.45291081365783825, 0.6506129639327536, 0.3253064819663768),
        ),
        (
            (500, 10000, 100, 10000),
            (
                16.580533445793563,
                9.636957204176486e-62,
                4.818478602088243e-62,
            ),
        ),
    ];
    for ((x1, n1, x2, n2), (z, p2, p1)) in cases {
        let t = two_proportion_z(x1, n1, x2, n2).unwrap();
        close(t.z, z);
        close(t.p_two_sided, p2);
        close(t.p_first_larger, p1);
    }
    assert!(two_proportion_z(0, 100, 0, 100).is_none(), "no variance");
    assert!(two_proportion_z(5, 4, 0, 100).is_none());
}

/// Latencies around `center`: a fixed, spread-out pattern (no randomness).
fn latencies(center: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| center * (0.8 + 0.4 * ((i * 37 % 101) as f64 / 100.0)))
        .collect()
}

#[test]
fn verdicts() {
    let t = Thresholds::default();
    let base_lat = latencies(1_000.0, 200);
    let baseline = Sample {
        latencies: &base_lat,
        requests: 2000,
        errors: 2,
    };
    // The same version again: pass.
    let same = latencies(1_000.0, 180);
    let good = Sample {
        latencies: &same,
        requests: 1800,
        errors: 2,
    };
    assert_eq!(judge(&good, &baseline, &t).unwrap().verdict, Verdict::Pass);

    // 5 % of requests failing: fail on errors.
    let failing = Sample { errors: 90, ..good };
    let j = judge(&failing, &baseline, &t).unwrap();
    assert_eq!(j.verdict, Verdict::Fail);
    assert!(j.errors.unwrap().p_value < 1e-6, "{j:?}");

    // Three times slower: fail on latency, with the medians as evidence.
    let slow_lat = latencies(3_000.0, 180);
    let slow = Sample {
        latencies: &slow_lat,
        ..good
    };
    let j = judge(&slow, &baseline, &t).unwrap();
    assert_eq!(j.verdict, Verdict::Fail);
    let l = j.latency.unwrap();
    assert!(
        l.worse && l.canary_median > 2.5 * l.baseline_median,
        "{l:?}"
    );

    // Half again as slow but only 500 us more: within a busy machine's
    // jitter, not worse; with no least increase, it is.
    let jitter_lat = latencies(1_500.0, 180);
    let jitter = Sample {
        latencies: &jitter_lat,
        ..good
    };
    let j = judge(&jitter, &baseline, &t).unwrap();
    assert_eq!(j.verdict, Verdict::Pass, "{j:?}");
    assert!(j.latency.unwrap().p_value < 1e-6 && !j.latency.unwrap().worse);
    let no_floor = Thresholds {
        min_latency_increase_us: 0.0,
        ..t
    };
    assert_eq!(
        judge(&jitter, &baseline, &no_floor).unwrap().verdict,
        Verdict::Fail
    );

    // Faster is never worse.
    let fast_lat = latencies(300.0, 180);
    let fast = Sample {
        latencies: &fast_lat,
        ..good
    };
    assert_eq!(judge(&fast, &baseline, &t).unwrap().verdict, Verdict::Pass);

    // A handful of requests: inconclusive, unless already clearly failing.
    let few_lat = latencies(1_000.0, 5);
    let few = Sample {
        latencies: &few_lat,
        requests: 5,
        errors: 0,
    };
    assert_eq!(
        judge(&few, &baseline, &t).unwrap().verdict,
        Verdict::Inconclusive
    );

    // Bad input is refused.
    let impossible = Sample {
        errors: 5000,
        ..good
    };
    assert!(judge(&impossible, &baseline, &t).is_err());
    let loose = Thresholds {
        fail_p: 0.2,
        marginal_p: 0.1,
        ..t
    };
    assert!(judge(&good, &baseline, &loose).is_err());
    let negative = Thresholds {
        min_latency_increase_us: -1.0,
        ..t
    };
    assert!(judge(&good, &baseline, &negative).is_err());
}
