//! The act core as its spec: each guardrail refusing what it must, the
//! approval timing out into its safe default, the kill switch, forecasts
//! that only prepare, bad policies named by rule and field, undo, and
//! decisions replayed from their stored evidence.

mod common;

use autopilot::act::guard::{self, GuardInput};
use autopilot::act::trouble::FAULT_CLASSES;
use autopilot::act::{
    Action, ActionKind, Approval, ApprovalEffect, ApprovalEvent, ApprovalState, ApprovalTimes,
    Basis, ClusterView, Controls, Decision, Entry, EntryState, Evidence, FaultClass, Guardrail,
    Ledger, Limits, Outcome, Place, Policy, Proposal, SignalEvidence, Trouble, Verdict, decide,
};
use rng::SplitMix64;

const NOW: u64 = common::START_MS;

fn enabled() -> Controls {
    Controls {
        paused: false,
        destructive_enabled: true,
    }
}

fn checks(action: &Action, view: &ClusterView, ledger: &Ledger, controls: &Controls) -> Verdicts {
    let limits = Limits::default();
    let report = guard::check(
        action,
        &GuardInput {
            view,
            ledger,
            controls,
            limits: &limits,
            cooldown_ms: 0,
            now_ms: NOW,
        },
    );
    Verdicts(
        report
            .checks
            .iter()
            .map(|c| (c.guardrail, c.verdict))
            .collect(),
    )
}

#[derive(Debug)]
struct Verdicts(Vec<(Guardrail, Verdict)>);

impl Verdicts {
    fn of(&self, g: Guardrail) -> Verdict {
        self.0
            .iter()
            .find(|(x, _)| *x == g)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{g} not checked: {self:?}"))
    }
}

fn done(at_ms: u64, action: Action) -> Entry {
    Entry {
        decision: 1,
        at_ms,
        action,
        state: EntryState::Done,
        cost_per_hour_added: 0.0,
    }
}

fn trouble(class: FaultClass, place: Place, basis: Basis) -> Trouble {
    Trouble {
        source: "detection 7".into(),
        class,
        place,
        basis,
        score: 0.9,
        seen_ms: NOW,
        signal: SignalEvidence {
            series: "p99 latency of version t/a@2".into(),
            observed: 812.5,
            band_low: Some(40.0),
            band_high: Some(120.0),
            limit: Some(500.0),
        },
    }
}

fn evidence(trouble: Trouble, view: ClusterView, ledger: Ledger, controls: Controls) -> Evidence {
    let rule = Policy::defaults()
        .rule_for(trouble.class, trouble.basis, trouble.score)
        .cloned();
    Evidence {
        trouble,
        rule,
        view,
        ledger,
        controls,
        limits: Limits::default(),
        now_ms: NOW,
    }
}

fn node(n: &str) -> Place {
    Place::Node { node: n.into() }
}

// ---- guardrails, each refusing what it must ----

#[test]
fn terminations_past_100_a_minute_on_a_node_are_refused() {
    let view = common::small_view(4, 60, 4);
    let mut ledger = Ledger::default();
    let restart = |n: u32| Action::RestartPool {
        tenant: "t".into(),
        app: "a".into(),
        version: 2,
        node: "n0".into(),
        terminations: n,
    };
    ledger.entries.push(done(NOW - 30_000, restart(60)));
    let v = checks(&restart(40), &view, &ledger, &enabled());
    assert_eq!(
        v.of(Guardrail::Terminations),
        Verdict::Soft,
        "100 is past 80"
    );
    let v = checks(&restart(41), &view, &ledger, &enabled());
    assert_eq!(v.of(Guardrail::Terminations), Verdict::Breach, "101 > 100");
    // A minute later the first 60 no longer count.
    ledger.entries[0].at_ms = NOW - 60_000;
    let v = checks(&restart(41), &view, &ledger, &enabled());
    assert_eq!(v.of(Guardrail::Terminations), Verdict::Pass);
}

#[test]
fn a_fourth_failover_in_an_hour_is_refused() {
    let view = common::small_view(8, 0, 4);
    let mut ledger = Ledger::default();
    let failover = |r: &str| Action::Failover {
        region: r.into(),
        to_region: "r3".into(),
    };
    ledger.entries.push(done(NOW - 3_000_000, failover("r9")));
    ledger.entries.push(done(NOW - 2_000_000, failover("r8")));
    assert_eq!(
        checks(&failover("r1"), &view, &ledger, &enabled()).of(Guardrail::Failovers),
        Verdict::Soft
    );
    ledger.entries.push(done(NOW - 1_000_000, failover("r7")));
    assert_eq!(
        checks(&failover("r1"), &view, &ledger, &enabled()).of(Guardrail::Failovers),
        Verdict::Breach
    );
}

#[test]
fn taking_nodes_or_regions_below_half_serving_is_refused() {
    let mut view = common::small_view(4, 10, 4);
    view.nodes[3].serving = false;
    // 3 of 4 serving: cordoning one leaves 2 of 4 (half: allowed, past
    // the soft 60 %).
    let cordon = Action::Cordon { node: "n0".into() };
    assert_eq!(
        checks(&cordon, &view, &Ledger::default(), &enabled()).of(Guardrail::NodesServing),
        Verdict::Soft
    );
    view.nodes[2].serving = false;
    assert_eq!(
        checks(&cordon, &view, &Ledger::default(), &enabled()).of(Guardrail::NodesServing),
        Verdict::Breach
    );
    // Draining a node that is already down takes nothing out of service:
    // allowed however few are left.
    let drain_dead = Action::Drain {
        node: "n3".into(),
        terminations: 10,
    };
    let v = checks(&drain_dead, &view, &Ledger::default(), &enabled());
    assert!(v.0.iter().all(|(g, _)| *g != Guardrail::NodesServing));

    // Regions: 4, two down; failing a third over is refused; failing a
    // lost one over is not held to the floor.
    view.regions[0].serving = false;
    view.regions[1].serving = false;
    let fail = |r: &str| Action::Failover {
        region: r.into(),
        to_region: "r3".into(),
    };
    assert_eq!(
        checks(&fail("r2"), &view, &Ledger::default(), &enabled()).of(Guardrail::RegionsServing),
        Verdict::Breach
    );
    let v = checks(&fail("r0"), &view, &Ledger::default(), &enabled());
    assert!(v.0.iter().all(|(g, _)| *g != Guardrail::RegionsServing));
}

#[test]
fn scaling_past_20_percent_cost_in_an_hour_is_refused() {
    let view = common::small_view(4, 0, 10); // 10 replicas at 1 an hour
    let scale = |from, to| Action::Scale {
        tenant: "t".into(),
        app: "a".into(),
        from,
        to,
    };
    let v = checks(&scale(10, 11), &view, &Ledger::default(), &enabled());
    assert_eq!(v.of(Guardrail::CostGrowth), Verdict::Pass);
    let v = checks(&scale(10, 12), &view, &Ledger::default(), &enabled());
    assert_eq!(v.of(Guardrail::CostGrowth), Verdict::Soft);
    let v = checks(&scale(10, 13), &view, &Ledger::default(), &enabled());
    assert_eq!(v.of(Guardrail::CostGrowth), Verdict::Breach);
    // What was added in the hour counts: after +2 on a base of 10 (now
    // 12), one more is 30 %.
    let mut view12 = common::small_view(4, 0, 12);
    view12.cost_per_hour = 12.0;
    let mut ledger = Ledger::default();
    let mut e = done(NOW - 600_000, scale(10, 12));
    e.cost_per_hour_added = 2.0;
    ledger.entries.push(e);
    let v = checks(&scale(12, 13), &view12, &ledger, &enabled());
    assert_eq!(v.of(Guardrail::CostGrowth), Verdict::Breach);
    // Scaling in is never held to it.
    let v = checks(&scale(12, 11), &view12, &ledger, &enabled());
    assert!(v.0.iter().all(|(g, _)| *g != Guardrail::CostGrowth));
}

#[test]
fn the_store_quorum_is_never_acted_on() {
    let mut view = common::small_view(10, 5, 4);
    for n in &mut view.nodes[..3] {
        n.voter = true;
    }
    view.nodes[0].serving = false; // one voter down: 2 of 3 left
    let v = checks(
        &Action::Cordon { node: "n1".into() },
        &view,
        &Ledger::default(),
        &enabled(),
    );
    assert_eq!(v.of(Guardrail::Quorum), Verdict::Breach);
    // A non-voter is fine.
    let v = checks(
        &Action::Cordon { node: "n5".into() },
        &view,
        &Ledger::default(),
        &enabled(),
    );
    assert!(v.0.iter().all(|(g, _)| *g != Guardrail::Quorum));
}

#[test]
fn one_action_per_target_and_a_cool_down_after_it() {
    let view = common::small_view(4, 5, 4);
    let mut ledger = Ledger::default();
    let cordon = Action::Cordon { node: "n1".into() };
    let mut e = done(
        NOW - 1_000,
        Action::Drain {
            node: "n1".into(),
            terminations: 5,
        },
    );
    e.state = EntryState::Running;
    ledger.entries.push(e);
    let v = checks(&cordon, &view, &ledger, &enabled());
    assert_eq!(v.of(Guardrail::TargetBusy), Verdict::Breach);
    ledger.entries[0].state = EntryState::Done;
    let v = checks(&cordon, &view, &ledger, &enabled());
    assert_eq!(v.of(Guardrail::TargetBusy), Verdict::Pass);
    assert_eq!(v.of(Guardrail::Cooldown), Verdict::Breach, "1 s after");
    ledger.entries[0].at_ms = NOW - 60_000;
    let v = checks(&cordon, &view, &ledger, &enabled());
    assert_eq!(v.of(Guardrail::Cooldown), Verdict::Pass, "60 s after");
    // Another node is another target.
    let v = checks(
        &Action::Cordon { node: "n2".into() },
        &view,
        &ledger,
        &enabled(),
    );
    assert_eq!(v.of(Guardrail::Cooldown), Verdict::Pass);
}

#[test]
fn the_kill_switch_stops_everything_at_once() {
    let paused = Controls {
        paused: true,
        destructive_enabled: true,
    };
    let mut rng = SplitMix64::new(7);
    let mut decided = 0;
    for _ in 0..2_000 {
        let view = common::cluster(&mut rng);
        let t = common::trouble(&mut rng, &view, NOW);
        let d = decide(evidence(t, view, Ledger::default(), paused.clone()));
        match &d.outcome {
            Outcome::Refused { guardrail, .. } => {
                assert_eq!(*guardrail, Guardrail::KillSwitch);
                decided += 1;
            }
            Outcome::Declined { .. } => {}
            other => panic!("paused, yet {other:?}"),
        }
    }
    assert!(decided > 1_000, "only {decided} refused");
    // And the guard itself refuses even a notification.
    let v = checks(
        &Action::Escalate {
            fingerprint: "x".into(),
        },
        &common::small_view(2, 0, 1),
        &Ledger::default(),
        &paused,
    );
    assert_eq!(v.of(Guardrail::KillSwitch), Verdict::Breach);
}

#[test]
fn limits_may_be_tightened_never_loosened() {
    assert_eq!(Limits::default().check(), Ok(()));
    let tight = Limits {
        terminations_per_node_minute: 50,
        terminations_soft: 40,
        ..Limits::default()
    };
    assert_eq!(tight.check(), Ok(()));
    let loose = Limits {
        failovers_per_hour: 4,
        ..Limits::default()
    };
    assert_eq!(loose.check().unwrap_err().0, "failovers_per_hour");
    let loose = Limits {
        min_serving_share: 0.4,
        ..Limits::default()
    };
    assert_eq!(loose.check().unwrap_err().0, "min_serving_share");
}

// ---- decisions ----

#[test]
fn a_forecast_prepares_but_never_destroys() {
    // A node predicted to go silent: cordon (prepare), not drain.
    let view = common::small_view(6, 20, 4);
    let d = decide(evidence(
        trouble(FaultClass::NodeSilent, node("n2"), Basis::Forecast),
        view.clone(),
        Ledger::default(),
        enabled(),
    ));
    assert_eq!(
        d.outcome,
        Outcome::Acted {
            action: Action::Cordon { node: "n2".into() }
        }
    );
    // Observed: drain.
    let d = decide(evidence(
        trouble(FaultClass::NodeSilent, node("n2"), Basis::Observed),
        view.clone(),
        Ledger::default(),
        enabled(),
    ));
    assert_eq!(
        d.outcome.action().map(Action::kind),
        Some(ActionKind::Drain)
    );
    // A hand-made rule that would drain on a forecast still does not.
    let mut ev = evidence(
        trouble(FaultClass::NodeSilent, node("n2"), Basis::Forecast),
        view,
        Ledger::default(),
        enabled(),
    );
    if let Some(rule) = &mut ev.rule {
        rule.actions = vec![ActionKind::Drain];
    }
    let d = decide(ev);
    assert!(
        matches!(d.outcome, Outcome::Declined { .. }),
        "{:?}",
        d.outcome
    );
    assert!(d.considered[0].note.contains("not on a forecast alone"));
}

#[test]
fn destructive_actions_are_proposed_until_enabled_and_dry_runs_never_act() {
    let view = common::small_view(6, 20, 4);
    let t = trouble(FaultClass::NodeSilent, node("n2"), Basis::Observed);
    let d = decide(evidence(
        t.clone(),
        view.clone(),
        Ledger::default(),
        Controls::default(),
    ));
    assert!(matches!(
        d.outcome,
        Outcome::Proposed {
            proposal: Proposal::DryRun { .. },
            ..
        }
    ));
    let mut ev = evidence(t, view, Ledger::default(), enabled());
    if let Some(rule) = &mut ev.rule {
        rule.dry_run = true;
    }
    let d = decide(ev);
    let Outcome::Proposed {
        proposal: Proposal::DryRun { why },
        ..
    } = &d.outcome
    else {
        panic!("{:?}", d.outcome)
    };
    assert!(why.contains("node-silent-observed"), "{why}");
}

#[test]
fn critical_actions_wait_for_a_person() {
    let mut view = common::small_view(8, 20, 4);
    // A lost region: failover is always asked.
    view.regions[1].serving = false;
    let d = decide(evidence(
        trouble(
            FaultClass::RegionLost,
            Place::Region {
                region: "r1".into(),
            },
            Basis::Observed,
        ),
        view.clone(),
        Ledger::default(),
        enabled(),
    ));
    let Outcome::Proposed {
        action: Action::Failover { to_region, .. },
        proposal: Proposal::NeedsApproval { reasons },
    } = &d.outcome
    else {
        panic!("{:?}", d.outcome)
    };
    assert_eq!(to_region, "r0");
    assert!(reasons[0].contains("failover"), "{reasons:?}");

    // A second drain while one node is drained.
    let mut ledger = Ledger::default();
    ledger.entries.push(done(
        NOW - 600_000,
        Action::Drain {
            node: "n5".into(),
            terminations: 3,
        },
    ));
    let d = decide(evidence(
        trouble(FaultClass::NodeSilent, node("n2"), Basis::Observed),
        view.clone(),
        ledger,
        enabled(),
    ));
    let Outcome::Proposed {
        proposal: Proposal::NeedsApproval { reasons },
        ..
    } = &d.outcome
    else {
        panic!("{:?}", d.outcome)
    };
    assert!(reasons[0].contains("already drained: n5"), "{reasons:?}");

    // Rolling back a version that passed its rollout; one that did not
    // is rolled back at once.
    let version = |v| Place::Version {
        tenant: "t".into(),
        app: "a".into(),
        version: v,
    };
    let d = decide(evidence(
        trouble(FaultClass::VersionErrors, version(2), Basis::Observed),
        view.clone(),
        Ledger::default(),
        enabled(),
    ));
    assert_eq!(
        d.outcome,
        Outcome::Acted {
            action: Action::Rollback {
                tenant: "t".into(),
                app: "a".into(),
                version: 2,
                to_version: 1
            }
        }
    );
    view.apps[0].versions[1].passed_rollout = true;
    let d = decide(evidence(
        trouble(FaultClass::VersionErrors, version(2), Basis::Observed),
        view,
        Ledger::default(),
        enabled(),
    ));
    assert!(
        matches!(
            d.outcome,
            Outcome::Proposed {
                proposal: Proposal::NeedsApproval { .. },
                ..
            }
        ),
        "{:?}",
        d.outcome
    );
}

#[test]
fn a_refused_action_falls_back_to_the_next_and_records_both() {
    // Pool unhealthy: restart_pool is refused (150 sandboxes > 100 a
    // minute), so drain is tried (its 20 sandboxes are fine).
    let mut view = common::small_view(6, 20, 4);
    view.pools[0].sandboxes = 150;
    let d = decide(evidence(
        trouble(
            FaultClass::PoolUnhealthy,
            Place::VersionOnNode {
                tenant: "t".into(),
                app: "a".into(),
                version: 2,
                node: "n0".into(),
            },
            Basis::Observed,
        ),
        view,
        Ledger::default(),
        enabled(),
    ));
    assert_eq!(
        d.outcome.action().map(Action::kind),
        Some(ActionKind::Drain)
    );
    assert_eq!(d.considered[0].note, "refused by terminations");
    let c = d.considered[0]
        .checks
        .iter()
        .find(|c| c.guardrail == Guardrail::Terminations)
        .expect("the refusing check is recorded");
    assert_eq!((c.value, c.limit), (150.0, 100.0));
    assert_eq!(d.considered[1].note, "chosen");
    assert_eq!(
        d.counterfactual,
        "no action if p99 latency of version t/a@2 had stayed within [40, 120] (it was 812.5)"
    );
}

#[test]
fn every_fault_class_has_a_default_rule() {
    let policy = Policy::defaults();
    policy.check().expect("the defaults are a valid policy");
    for class in FAULT_CLASSES {
        assert!(
            policy.rule_for(class, Basis::Observed, 1.0).is_some(),
            "{class} has no observed rule"
        );
    }
}

#[test]
fn every_decision_replays_from_its_stored_evidence() {
    let policy = Policy::defaults();
    let mut rng = SplitMix64::new(42);
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..3_000 {
        let view = common::cluster(&mut rng);
        let mut ledger = Ledger::default();
        for _ in 0..rng.below(4) {
            let n = &view.nodes[rng.below(view.nodes.len())];
            ledger.entries.push(done(
                NOW - rng.below_u64(3_600_000),
                Action::Drain {
                    node: n.name.clone(),
                    terminations: rng.below(60) as u32,
                },
            ));
        }
        let t = common::trouble(&mut rng, &view, NOW);
        let rule = policy.rule_for(t.class, t.basis, t.score).cloned();
        let d = decide(Evidence {
            trouble: t,
            rule,
            view,
            ledger,
            controls: common::controls(&mut rng),
            limits: Limits::default(),
            now_ms: NOW,
        });
        // Stored (as JSON here; the store keeps postcard) and read back.
        let text = serde_json::to_string(&d).expect("a decision serializes");
        let mut stored: Decision = serde_json::from_str(&text).expect("and reads back");
        stored.id = i + 1;
        assert!(
            autopilot::act::replays(&stored),
            "decision {i} does not replay: {text}"
        );
        *outcomes.entry(stored.outcome.as_str()).or_insert(0) += 1;
    }
    // All four outcomes were replayed.
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
}

// ---- approvals ----

fn failover_approval() -> Approval {
    Approval::ask(
        9,
        Action::Failover {
            region: "r1".into(),
            to_region: "r0".into(),
        },
        vec!["a region failover".into()],
        NOW,
    )
}

#[test]
fn an_unanswered_approval_reminds_pages_then_expires_into_its_safe_default() {
    let times = ApprovalTimes::default();
    let a = failover_approval();
    let tick = |a: &Approval, ms: u64| {
        a.step(&ApprovalEvent::Tick { now_ms: NOW + ms }, &times)
            .expect("a tick is always taken")
    };
    let (a, fx) = tick(&a, 60_000);
    assert_eq!((a.state.clone(), fx), (ApprovalState::Asked, vec![]));
    let (a, fx) = tick(&a, 120_000);
    assert_eq!(
        (a.state.clone(), fx),
        (ApprovalState::Reminded, vec![ApprovalEffect::Remind])
    );
    let (a, fx) = tick(&a, 200_000);
    assert_eq!(fx, vec![]);
    let (a, fx) = tick(&a, 300_000);
    assert_eq!(
        (a.state.clone(), fx),
        (ApprovalState::Paged, vec![ApprovalEffect::Page])
    );
    let (a, fx) = tick(&a, 900_000);
    assert_eq!(
        (a.state.clone(), fx),
        (
            ApprovalState::Expired {
                at_ms: NOW + 900_000
            },
            vec![ApprovalEffect::ApplySafeDefault(None)]
        )
    );
    // Settled: a late approval is refused.
    let late = a.step(
        &ApprovalEvent::Approve {
            by: "admin".into(),
            now_ms: NOW + 901_000,
        },
        &times,
    );
    assert!(late.is_err());

    // A drain's safe default is a cordon; an approval that comes after the
    // deadline, before any tick saw it, is refused too.
    let drain = Approval::ask(
        3,
        Action::Drain {
            node: "n4".into(),
            terminations: 12,
        },
        vec![],
        NOW,
    );
    assert_eq!(
        drain.safe_default,
        Some(Action::Cordon { node: "n4".into() })
    );
    let err = drain
        .step(
            &ApprovalEvent::Approve {
                by: "admin".into(),
                now_ms: NOW + 2_000_000,
            },
            &times,
        )
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn an_answered_approval_applies_or_drops_its_action() {
    let times = ApprovalTimes::default();
    let a = failover_approval();
    let (ok, fx) = a
        .step(
            &ApprovalEvent::Approve {
                by: "admin".into(),
                now_ms: NOW + 400_000,
            },
            &times,
        )
        .expect("in time");
    assert_eq!(fx, vec![ApprovalEffect::Apply(a.action.clone())]);
    assert!(matches!(ok.state, ApprovalState::Approved { .. }));
    let (no, fx) = a
        .step(
            &ApprovalEvent::Reject {
                by: "admin".into(),
                now_ms: NOW + 1,
            },
            &times,
        )
        .expect("in time");
    assert_eq!(fx, vec![]);
    assert!(matches!(no.state, ApprovalState::Rejected { .. }));
    // Ticks on a settled approval change nothing.
    let (same, fx) = no
        .step(
            &ApprovalEvent::Tick {
                now_ms: NOW + 5_000_000,
            },
            &times,
        )
        .expect("a tick is always taken");
    assert_eq!((same, fx), (no, vec![]));
}

// ---- actions ----

#[test]
fn every_action_has_an_undo_that_undoes_back() {
    let actions = vec![
        Action::Drain {
            node: "n".into(),
            terminations: 3,
        },
        Action::Cordon { node: "n".into() },
        Action::Scale {
            tenant: "t".into(),
            app: "a".into(),
            from: 2,
            to: 3,
        },
        Action::Rollback {
            tenant: "t".into(),
            app: "a".into(),
            version: 3,
            to_version: 2,
        },
        Action::Throttle {
            tenant: "t".into(),
            from: 100,
            to: 50,
        },
        Action::Failover {
            region: "r1".into(),
            to_region: "r0".into(),
        },
    ];
    for a in actions {
        let undo = a.undo().unwrap_or_else(|| panic!("{a} has an undo"));
        assert_eq!(undo.target(), a.target(), "{a}");
        if a.kind() != ActionKind::Drain {
            assert_eq!(undo.undo(), Some(a.clone()), "{a}");
        }
    }
    // What has no undo says so: a fresh pool, a message sent.
    assert_eq!(
        Action::Escalate {
            fingerprint: "x".into()
        }
        .undo(),
        None
    );
}
