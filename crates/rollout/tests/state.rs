//! Rollouts in the state machine: a start is checked whole (plan, version,
//! regions, preview route) and adds the baseline copy; the controller's
//! steps are refused once the rollout changed under them (an operator's
//! abort wins); an abort is one write putting every region back on
//! stable; success deploys the new version.

mod common;

use std::collections::BTreeMap;

use common::{n, shop, start};
use state::{Command, Rejection, Revision, State, Weights};

fn refused(state: &mut State, cmd: &Command) -> Rejection {
    let before = state.clone();
    let err = state.apply(cmd).expect_err("the command must be refused");
    assert_eq!(*state, before, "a refused command changed the state");
    err
}

fn plan(json: &str) -> rollout::Plan {
    rollout::Plan::from_json(json).unwrap()
}

#[test]
fn a_start_adds_a_baseline_and_an_abort_puts_every_region_on_stable() {
    let mut s = shop();
    s.apply(&start(2, rollout::Plan::default_plan())).unwrap();
    let r = s.active_rollout(&n("acme"), &n("shop")).unwrap().clone();
    assert_eq!((r.id, r.from, r.to, r.baseline), (1, 1, 2, Some(3)));
    let baseline = s
        .versions(&n("acme"), &n("shop"))
        .find(|v| v.number == 3)
        .unwrap();
    assert_eq!(baseline.baseline_of, Some(1));
    assert_eq!(baseline.digest, "a".repeat(64), "a copy of stable");
    // Nothing moved yet.
    assert_eq!(
        r.weights_in("eu"),
        Weights {
            stable: 100,
            baseline: 0,
            canary: 0
        }
    );

    // The controller's first step: 1 % canary, as much baseline.
    let (progress, _) = rollout::advance(
        &r.plan,
        &r.progress,
        &rollout::Input {
            now_ms: 1_100,
            ..rollout::Input::default()
        },
    );
    let step = Command::AdvanceRollout {
        tenant: n("acme"),
        app: n("shop"),
        id: 1,
        expected: r.updated,
        progress,
        records: vec!["step 1: weight 0 -> 1".into()],
        now_unix_ms: 1_100,
    };
    s.apply(&step).unwrap();
    let r = s.active_rollout(&n("acme"), &n("shop")).unwrap().clone();
    assert_eq!(
        r.weights_in("us"),
        Weights {
            stable: 98,
            baseline: 1,
            canary: 1
        }
    );

    // An operator aborts; the controller's next step, computed before the
    // abort, is refused: the abort stands.
    let revision = s.revision();
    s.apply(&Command::AbortRollout {
        tenant: n("acme"),
        app: n("shop"),
        reason: "bad checkout".into(),
        by: "alice".into(),
        now_unix_ms: 1_200,
    })
    .unwrap();
    assert_eq!(s.revision(), Revision(revision.0 + 1), "one write");
    assert!(s.active_rollout(&n("acme"), &n("shop")).is_none());
    let done = s.rollouts_of(&n("acme"), &n("shop")).next_back().unwrap();
    for region in ["eu", "us"] {
        assert_eq!(
            done.weights_in(region),
            Weights {
                stable: 100,
                baseline: 0,
                canary: 0
            }
        );
    }
    assert_eq!(done.finished_unix_ms, Some(1_200));
    let last = done.trail.last().unwrap();
    assert_eq!(last.by, "alice");
    assert!(last.text.contains("bad checkout"), "{last:?}");
    let late = Command::AdvanceRollout {
        tenant: n("acme"),
        app: n("shop"),
        id: 1,
        expected: r.updated,
        progress: r.progress.clone(),
        records: vec![],
        now_unix_ms: 1_300,
    };
    assert!(matches!(refused(&mut s, &late), Rejection::NotFound { .. }));
    assert_eq!(s.deployment(&n("acme"), &n("shop")).unwrap().version, 1);
}

#[test]
fn a_stale_step_is_refused_and_success_deploys_the_new_version() {
    let mut s = shop();
    let p = plan(r#"{"steps": [{"pause": {}}, {"set_weight": {"weight": 100}}]}"#);
    s.apply(&start(2, p)).unwrap();
    let r = s.active_rollout(&n("acme"), &n("shop")).unwrap().clone();
    // A promotion changes the rollout: a step computed before it is stale.
    s.apply(&Command::PromoteRollout {
        tenant: n("acme"),
        app: n("shop"),
        by: "alice".into(),
        now_unix_ms: 2_000,
    })
    .unwrap();
    let stale = Command::AdvanceRollout {
        tenant: n("acme"),
        app: n("shop"),
        id: 1,
        expected: r.updated,
        progress: r.progress.clone(),
        records: vec![],
        now_unix_ms: 2_000,
    };
    let err = refused(&mut s, &stale);
    assert!(
        err.to_string().contains("changed since it was read"),
        "{err}"
    );
    // The step from the promoted rollout goes through to the end.
    let r = s.active_rollout(&n("acme"), &n("shop")).unwrap().clone();
    assert!(r.promote);
    let (progress, actions) = rollout::advance(
        &r.plan,
        &r.progress,
        &rollout::Input {
            now_ms: 2_100,
            promote: r.promote,
            ..rollout::Input::default()
        },
    );
    assert_eq!(progress.status, rollout::Status::Succeeded);
    s.apply(&Command::AdvanceRollout {
        tenant: n("acme"),
        app: n("shop"),
        id: 1,
        expected: r.updated,
        progress,
        records: actions
            .into_iter()
            .filter_map(|a| a.trail().map(str::to_string))
            .collect(),
        now_unix_ms: 2_100,
    })
    .unwrap();
    assert_eq!(s.deployment(&n("acme"), &n("shop")).unwrap().version, 2);
    assert!(s.active_rollout(&n("acme"), &n("shop")).is_none());
    let done = s.rollouts_of(&n("acme"), &n("shop")).next_back().unwrap();
    assert!(!done.promote);
    assert!(
        done.trail
            .iter()
            .any(|e| e.text.contains("promoted by an operator"))
    );
}

#[test]
fn bad_starts_are_refused_whole() {
    let mut s = shop();
    let default = rollout::Plan::default_plan;
    // The deployed version, a version that does not exist.
    assert!(
        refused(&mut s, &start(1, default()))
            .to_string()
            .contains("other than the deployed one")
    );
    assert!(matches!(
        refused(&mut s, &start(9, default())),
        Rejection::NotFound { .. }
    ));
    // A wave naming a region the app is not deployed in.
    let waves = plan(
        r#"{"steps": [{"region_wave": {"waves": [["mars"]]}}, {"set_weight": {"weight": 100}}]}"#,
    );
    let err = refused(&mut s, &start(2, waves)).to_string();
    assert!(
        err.contains("region `mars`") && err.contains("eu, us"),
        "{err}"
    );
    // A preview route another app serves.
    s.apply(&Command::CreateApp {
        tenant: n("acme"),
        name: n("cart"),
        route: "/cart".into(),
        host: None,
    })
    .unwrap();
    let err = refused(
        &mut s,
        &start(2, rollout::Plan::blue_green_plan("/cart", 1000)),
    )
    .to_string();
    assert!(err.contains("app acme/cart is at it"), "{err}");
    // An app cannot take the route of a running blue-green preview.
    s.apply(&start(
        2,
        rollout::Plan::blue_green_plan("/preview/shop", 1000),
    ))
    .unwrap();
    let taken = Command::CreateApp {
        tenant: n("acme"),
        name: n("preview"),
        route: "/preview/shop".into(),
        host: None,
    };
    assert!(
        refused(&mut s, &taken)
            .to_string()
            .contains("blue-green preview")
    );
    s.apply(&Command::AbortRollout {
        tenant: n("acme"),
        app: n("shop"),
        reason: String::new(),
        by: "admin".into(),
        now_unix_ms: 4,
    })
    .unwrap();
    // A plan that is not valid (built by hand, past the parser's checks).
    let mut bad = default();
    bad.steps.push(rollout::Step::SetWeight { weight: 50 });
    let err = refused(&mut s, &start(2, bad)).to_string();
    assert!(err.contains("set_weight.weight: 50 is below"), "{err}");
    // One rollout at a time, and no redeploy of another version meanwhile.
    s.apply(&start(2, default())).unwrap();
    let err = refused(&mut s, &start(2, default())).to_string();
    assert!(err.contains("one rollout at a time"), "{err}");
    let redeploy = Command::SetDeployment {
        tenant: n("acme"),
        app: n("shop"),
        version: 2,
        regions: BTreeMap::from([(n("eu"), 1)]),
    };
    assert!(
        refused(&mut s, &redeploy)
            .to_string()
            .contains("abort it first")
    );
    // The baseline copy cannot be rolled out itself.
    s.apply(&Command::AbortRollout {
        tenant: n("acme"),
        app: n("shop"),
        reason: String::new(),
        by: "admin".into(),
        now_unix_ms: 5,
    })
    .unwrap();
    assert!(
        refused(&mut s, &start(3, default()))
            .to_string()
            .contains("baseline copy")
    );
    // Deleting the app takes its rollouts with it.
    s.apply(&Command::DeleteApp {
        tenant: n("acme"),
        name: n("shop"),
    })
    .unwrap();
    assert_eq!(s.rollouts_of(&n("acme"), &n("shop")).count(), 0);
}
