//! The step machine driven by a test clock: a good version goes through
//! every step, a failing one is aborted at its first analysis with all
//! traffic back on stable, and operators, pauses and timeouts do what
//! they say.

use std::collections::BTreeMap;

use rollout::{Action, Input, Plan, Progress, Status, advance, start};

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
                Action::Record(r) => trail.push(r),
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
    assert!(reason.contains("judge_errors_p is 0.000001"), "{reason}");
    // Only the 1 % canary ever took traffic; then all went back.
    assert_eq!(weights, [1, 0]);
    assert_eq!(end.weight, 0);
    assert!(
        trail.last().unwrap().contains("aborted at step 2"),
        "{trail:?}"
    );
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
    // One measurement without metrics is within the limit (1); two are not.
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
        2,
        "{trail:#?}"
    );
}
