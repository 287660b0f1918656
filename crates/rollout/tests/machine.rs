//! The step machine driven by a test clock: a good version goes through
//! every step, a failing one is aborted at its first analysis with all
//! traffic back on stable, and operators, pauses and timeouts do what
//! they say.

use std::collections::BTreeMap;

use rollout::{
    Action, Input, Plan, Progress, Status, advance, preview_open, start, wave_of, weight_in_wave,
};

/// Metrics of a version the judge finds as good as the baseline.
fn healthy() -> BTreeMap<String, f64> {
    [("judge_errors_p", 0.6), ("judge_latency_p", 0.4)]
        .map(|(k, v)| (k.to_string(), v))
        .into()
}

/// Runs `plan` with a call every second until it ends (or `limit_s`),
/// with `metrics(now)`; returns the end and every weight it set.
fn run(
    plan: &Plan,
    limit_s: u64,
    metrics: impl Fn(u64) -> BTreeMap<String, f64>,
) -> (Progress, Vec<u32>, Vec<String>) {
    let mut p = start(0);
    let (mut weights, mut trail) = (Vec::new(), Vec::new());
    for s in 0..limit_s {
        let input = Input {
            now_ms: s * 1000,
            metrics: metrics(s * 1000),
            ..Input::default()
        };
        let (next, actions) = advance(plan, &p, &input);
        for a in actions {
            match a {
                Action::SetWeight(w) => weights.push(w),
                Action::Record(r) | Action::Measurement(r) => trail.push(r),
            }
        }
        p = next;
        if matches!(p.status, Status::Succeeded | Status::Aborted { .. }) {
            break;
        }
    }
    (p, weights, trail)
}

#[test]
fn a_good_version_goes_through_every_step() {
    let plan = Plan::default_plan();
    let (end, weights, trail) = run(&plan, 1000, |_| healthy());
    assert_eq!(end.status, Status::Succeeded, "{trail:#?}");
    assert_eq!(weights, [1, 10, 50, 100]);
    assert_eq!(end.weight, 100);
    // Three analyses of three measurements, 10 s apart.
    assert_eq!(
        trail.iter().filter(|t| t.contains("measurement")).count(),
        9
    );
}

#[test]
fn a_failing_version_is_aborted_at_its_first_analysis() {
    let plan = Plan::default_plan();
    // Its errors differ from the baseline's with p = 1e-6.
    let failing = || {
        let mut m = healthy();
        m.insert("judge_errors_p".into(), 1e-6);
        m
    };
    let (end, weights, trail) = run(&plan, 1000, |_| failing());
    let Status::Aborted { reason } = &end.status else {
        panic!("not aborted: {:?}", end.status)
    };
    assert!(reason.contains("judge_errors_p is 1.000e-6"), "{reason}");
    // Only the 1 % canary ever took traffic; then all went back.
    assert_eq!(weights, [1, 0]);
    assert_eq!(end.weight, 0);
    assert!(
        trail.last().unwrap().contains("aborted at step 2"),
        "{trail:?}"
    );
}

#[test]
fn the_default_plan_takes_a_latency_fluke_but_not_a_slow_version() {
    let plan = Plan::default_plan();
    // p = 0.005 in every window: what chance gives identical versions in
    // about one window of two hundred; the latency check wants 0.001.
    let fluke = |p: f64| {
        move |_| {
            let mut m = healthy();
            m.insert("judge_latency_p".into(), p);
            m
        }
    };
    let (end, weights, trail) = run(&plan, 1000, fluke(0.005));
    assert_eq!(end.status, Status::Succeeded, "{trail:#?}");
    assert_eq!(weights, [1, 10, 50, 100]);
    let (end, weights, _) = run(&plan, 1000, fluke(1e-4));
    let Status::Aborted { reason } = &end.status else {
        panic!("not aborted: {:?}", end.status)
    };
    assert!(reason.contains("judge_latency_p is 1.000e-4"), "{reason}");
    assert_eq!(weights, [1, 0]);
}

#[test]
fn an_operator_aborts_at_once_and_a_finished_rollout_stays_finished() {
    let plan = Plan::default_plan();
    let p = start(0);
    let (p, _) = advance(
        &plan,
        &p,
        &Input {
            metrics: healthy(),
            ..Input::default()
        },
    );
    assert_eq!(p.weight, 1);
    let (p, actions) = advance(
        &plan,
        &p,
        &Input {
            now_ms: 2000,
            abort: true,
            ..Input::default()
        },
    );
    assert_eq!(actions[0], Action::SetWeight(0));
    assert!(matches!(p.status, Status::Aborted { .. }));
    let (again, actions) = advance(
        &plan,
        &p,
        &Input {
            now_ms: 3000,
            metrics: healthy(),
            ..Input::default()
        },
    );
    assert_eq!(again, p);
    assert!(actions.is_empty());
}

#[test]
fn a_pause_waits_for_promotion_and_a_stuck_rollout_times_out() {
    let plan = Plan::from_json(
        r#"{"timeout_ms": 60000, "steps": [
            {"set_weight": {"weight": 20}}, {"pause": {}}, {"set_weight": {"weight": 100}}]}"#,
    )
    .unwrap();
    let at = |now_ms, promote| Input {
        now_ms,
        promote,
        ..Input::default()
    };
    let (p, _) = advance(&plan, &start(0), &at(0, false));
    assert_eq!((p.status.clone(), p.weight), (Status::Paused, 20));
    let (p, _) = advance(&plan, &p, &at(30_000, false));
    assert_eq!(p.status, Status::Paused);
    let (done, actions) = advance(&plan, &p, &at(31_000, true));
    assert_eq!(done.status, Status::Succeeded);
    assert!(actions.contains(&Action::SetWeight(100)));
    // Never promoted: aborted at the plan's timeout.
    let (stuck, actions) = advance(&plan, &p, &at(60_000, false));
    assert!(
        matches!(&stuck.status, Status::Aborted { reason } if reason.contains("60000 ms")),
        "{:?}",
        stuck.status
    );
    assert_eq!(actions[0], Action::SetWeight(0));
}

#[test]
fn missing_metrics_are_inconclusive_and_too_many_abort() {
    let plan = Plan::default_plan();
    // Two measurements without metrics are within the limit (2); three are not.
    let (end, weights, trail) = run(&plan, 1000, |_| BTreeMap::new());
    assert!(
        matches!(&end.status, Status::Aborted { reason } if reason.contains("inconclusive")),
        "{:?}",
        end.status
    );
    assert_eq!(weights, [1, 0]);
    assert_eq!(
        trail
            .iter()
            .filter(|t| t.contains("measurement") && t.contains("not measured"))
            .count(),
        3,
        "{trail:#?}"
    );
}

#[test]
fn region_waves_run_the_steps_once_per_wave_and_a_failure_stops_the_first() {
    let plan = Plan::from_json(
        r#"{"steps": [
            {"region_wave": {"waves": [["eu"], ["us"]]}},
            {"set_weight": {"weight": 50}},
            {"analysis": {"checks": [{"metric": "error_rate", "comparator": "<", "threshold": 0.01}], "interval_ms": 1000, "count": 1}},
            {"set_weight": {"weight": 100}}
        ]}"#,
    )
    .unwrap();
    assert_eq!((wave_of(&plan, "eu"), wave_of(&plan, "us")), (0, 1));
    assert_eq!(
        wave_of(&plan, "ap"),
        1,
        "an unnamed region joins the last wave"
    );
    let ok = |_| BTreeMap::from([("error_rate".to_string(), 0.0)]);
    let mut p = start(0);
    let mut seen = Vec::new();
    for s in 0..20 {
        let (next, _) = advance(
            &plan,
            &p,
            &Input {
                now_ms: s * 1000,
                metrics: ok(s),
                ..Input::default()
            },
        );
        p = next;
        seen.push((weight_in_wave(&p, 0), weight_in_wave(&p, 1)));
        if p.status == Status::Succeeded {
            break;
        }
    }
    assert_eq!(p.status, Status::Succeeded);
    // eu went to 50 then 100 while us stayed at 0; then us went up.
    let first_us = seen.iter().position(|&(_, us)| us > 0).unwrap();
    assert!(seen[..first_us].iter().any(|&(eu, _)| eu == 50));
    assert!(seen[..first_us].iter().all(|&(_, us)| us == 0));
    assert_eq!(seen[first_us], (100, 50));
    assert_eq!(*seen.last().unwrap(), (100, 100));

    // A failing canary in the first wave: aborted there, us never saw it.
    let bad = |_| BTreeMap::from([("error_rate".to_string(), 0.05)]);
    let (mut p, mut us_ever) = (start(0), 0);
    for s in 0..20 {
        let (next, _) = advance(
            &plan,
            &p,
            &Input {
                now_ms: s * 1000,
                metrics: bad(s),
                ..Input::default()
            },
        );
        p = next;
        us_ever = us_ever.max(weight_in_wave(&p, 1));
        if matches!(p.status, Status::Aborted { .. }) {
            break;
        }
    }
    assert!(matches!(p.status, Status::Aborted { .. }));
    assert_eq!(p.wave, 0);
    assert_eq!((weight_in_wave(&p, 0), us_ever), (0, 0));
}

#[test]
fn an_analysis_measures_one_interval_after_its_step_starts_and_promote_skips_it() {
    let plan = Plan::from_json(
        r#"{"steps": [
            {"set_weight": {"weight": 10}},
            {"analysis": {"checks": [{"metric": "error_rate", "comparator": "<", "threshold": 0.01}], "interval_ms": 5000, "count": 2}},
            {"set_weight": {"weight": 100}}
        ]}"#,
    )
    .unwrap();
    let input = |now_ms, promote| Input {
        now_ms,
        promote,
        metrics: BTreeMap::from([("error_rate".to_string(), 0.0)]),
        ..Input::default()
    };
    let (p, actions) = advance(&plan, &start(1000), &input(1000, false));
    assert_eq!((p.step, p.analysis.measurements), (1, 0));
    assert!(!actions.iter().any(|a| matches!(a, Action::Measurement(_))));
    let (p, _) = advance(&plan, &p, &input(5999, false));
    assert_eq!(p.analysis.measurements, 0, "not due before 1000 + 5000");
    let (p, _) = advance(&plan, &p, &input(6000, false));
    assert_eq!(p.analysis.measurements, 1);
    // Promoted: the rest of the analysis is skipped.
    let (p, actions) = advance(&plan, &p, &input(6100, true));
    assert_eq!(p.status, Status::Succeeded);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Record(r) if r.contains("analysis skipped")))
    );
}

#[test]
fn a_blue_green_preview_is_open_until_the_rollout_ends() {
    let plan = Plan::blue_green_plan("/preview/shop", 10_000);
    let p = start(0);
    let (p, _) = advance(
        &plan,
        &p,
        &Input {
            now_ms: 0,
            ..Input::default()
        },
    );
    assert_eq!(p.status, Status::Paused);
    assert!(preview_open(&plan, &p));
    assert_eq!(p.weight, 0);
    let (p, _) = advance(
        &plan,
        &p,
        &Input {
            now_ms: 1000,
            promote: true,
            ..Input::default()
        },
    );
    assert_eq!(p.weight, 100, "switched at once");
    assert_eq!(p.status, Status::Progressing, "holding stable ready");
    let (p, _) = advance(
        &plan,
        &p,
        &Input {
            now_ms: 11_000,
            ..Input::default()
        },
    );
    assert_eq!(p.status, Status::Succeeded);
    assert!(!preview_open(&plan, &p));
}

#[test]
fn a_check_may_be_a_query_over_metrics() {
    let plan = Plan::from_json(
        r#"{"steps": [
            {"set_weight": {"weight": 10}},
            {"analysis": {"checks": [{"metric": "canary_errors / canary_requests - baseline_errors / baseline_requests", "comparator": "<=", "threshold": 0.02}], "interval_ms": 1000, "count": 1, "inconclusive_limit": 0}},
            {"set_weight": {"weight": 100}}
        ]}"#,
    )
    .unwrap();
    let metrics = |canary_errors: f64, baseline_requests: f64| {
        BTreeMap::from([
            ("canary_errors".to_string(), canary_errors),
            ("canary_requests".to_string(), 100.0),
            ("baseline_errors".to_string(), 1.0),
            ("baseline_requests".to_string(), baseline_requests),
        ])
    };
    let (p, _) = advance(&plan, &start(0), &Input::default());
    let at = |m| Input {
        now_ms: 1000,
        metrics: m,
        ..Input::default()
    };
    // 2 % against 1 %: within 0.02 more.
    assert_eq!(
        advance(&plan, &p, &at(metrics(2.0, 100.0))).0.status,
        Status::Succeeded
    );
    // 5 % against 1 %: past it.
    let (bad, _) = advance(&plan, &p, &at(metrics(5.0, 100.0)));
    assert!(
        matches!(&bad.status, Status::Aborted { reason } if reason.contains("is 0.0400")),
        "{:?}",
        bad.status
    );
    // No baseline requests: a division by zero is not measured, so inconclusive.
    let (none, actions) = advance(&plan, &p, &at(metrics(2.0, 0.0)));
    assert!(
        matches!(&none.status, Status::Aborted { reason } if reason.contains("inconclusive")),
        "{:?}",
        none.status
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Measurement(r) if r.contains("not measured")))
    );
}

#[test]
fn an_inconclusive_verdict_says_what_was_missing_and_how_to_fix_it() {
    use rollout::SampleSize;
    let plan = Plan::default_plan();
    // The first step sets the first weight.
    let mut p = advance(&plan, &start(0), &Input::default()).0;
    let mut trail = Vec::new();
    // The issue's case: ~55 req/s at 1 %, 16 canary and 15 baseline
    // requests after three 10 s windows.
    for (i, (canary, baseline)) in [(6, 5), (11, 10), (16, 15)].into_iter().enumerate() {
        let now_ms = (i as u64 + 1) * 10_000;
        let input = Input {
            now_ms,
            sample: Some(SampleSize {
                canary_requests: canary,
                baseline_requests: baseline,
                needed: 20,
                window_ms: now_ms,
            }),
            ..Input::default()
        };
        let (next, actions) = advance(&plan, &p, &input);
        trail.extend(actions.iter().filter_map(|a| a.trail().map(str::to_string)));
        p = next;
    }
    assert!(
        trail[0].contains(
            "inconclusive 1 of at most 2: too little traffic: in 10 s the window had 6 canary and 5 baseline requests, the judge needs 20 of each"
        ),
        "{trail:#?}"
    );
    let Status::Aborted { reason } = &p.status else {
        panic!("{:?}", p.status)
    };
    assert!(
        reason.starts_with(
            "analysis inconclusive 3 times, past its limit of 2: too little traffic: in 30 s the window had 16 canary and 15 baseline requests, the judge needs 20 of each; send more traffic (5 more requests per side), raise this step's weight, or lengthen interval_ms to about 40000 ms"
        ),
        "{reason}"
    );
    // The step counter stays within the plan: three measurements of three.
    assert_eq!(p.analysis.measurements, 3);
}
