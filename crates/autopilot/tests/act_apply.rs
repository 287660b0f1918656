//! The two actions that act through the store's own records, on a real
//! `State`: a tenant's throttle (its concurrency quota lowered for a
//! while, the gateways capping its routes, the undo giving the quota
//! back) and a version's warm pool restarted on a node (a count in the
//! act book the node's agent reads). Each decided from the view
//! `observe` builds, checked by the guardrails, applied with the
//! commands `apply` gives, idempotently.

use std::collections::BTreeMap;

use autopilot::act::book::{ActCommand, pool_key};
use autopilot::act::view::EntryState;
use autopilot::act::{
    Action, Basis, Decision, FaultClass, Guardrail, Outcome, Place, SignalEvidence, Trouble, apply,
    decide, observe,
};
use state::{Command, Name, PlacementSpec, Quotas, Region, State, VersionConfig};

const NOW: u64 = 1_800_000_000_000;

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

/// Tenant `acme` (default quotas) with app `shop`, version 1 asking for
/// 64 requests at once, deployed in `eu` with `sandboxes` placed on `n1`;
/// destructive actions enabled.
fn cluster(sandboxes: u32) -> State {
    let mut s = State::default();
    let mut commands = vec![
        Command::PutTenant {
            name: n("acme"),
            quotas: Quotas::default(),
        },
        Command::PutRegion {
            region: Region::named(n("eu")),
        },
        Command::CreateApp {
            tenant: n("acme"),
            name: n("shop"),
            route: "/shop".into(),
            host: None,
        },
        Command::AddVersion {
            tenant: n("acme"),
            app: n("shop"),
            digest: "a".repeat(64),
            config: VersionConfig {
                max_concurrency: 64,
                warm: true,
                ..VersionConfig::default()
            },
        },
        Command::SetDeployment {
            tenant: n("acme"),
            app: n("shop"),
            version: 1,
            regions: BTreeMap::from([(n("eu"), sandboxes)]),
        },
        Command::SetPlacements {
            tenant: n("acme"),
            app: n("shop"),
            placements: vec![PlacementSpec {
                version: 1,
                node: n("n1"),
                count: sandboxes,
            }],
        },
        Command::Act {
            act: ActCommand::SetControls {
                paused: None,
                destructive_enabled: Some(true),
            },
        },
    ];
    for name in ["n1", "n2", "n3"] {
        commands.insert(
            2,
            Command::PutNode {
                node: state::Node {
                    name: n(name),
                    region: n("eu"),
                    address: format!("{name}:7071"),
                    labels: BTreeMap::new(),
                    capacity: 200,
                    api: None,
                    gateway: None,
                    peer_key: None,
                },
            },
        );
    }
    for c in commands {
        s.apply(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
    s
}

fn trouble(class: FaultClass, place: Place) -> Trouble {
    Trouble {
        source: "test".into(),
        class,
        place,
        basis: Basis::Observed,
        score: 1.0,
        seen_ms: NOW,
        signal: SignalEvidence {
            series: "test".into(),
            observed: 1.0,
            band_low: None,
            band_high: None,
            limit: Some(0.5),
        },
    }
}

/// Decides about `trouble` on `s` as the leader's loop does (every node
/// serving, none a voter) and records the decision.
fn decide_and_record(s: &mut State, trouble: Trouble, now_ms: u64) -> Decision {
    let view = observe::cluster_view(s, |_| true, &[]);
    let decision = decide::decide_now(s, view, trouble, now_ms);
    s.apply(&Command::Act {
        act: ActCommand::Record {
            decision: Box::new(decision),
        },
    })
    .expect("recorded");
    let id = s.acts().last_decision;
    s.acts().decision(id).cloned().expect("kept")
}

/// Carries out the running actions as the loop does; the commands it
/// wrote.
fn carry_out(s: &mut State, now_ms: u64) -> Vec<Command> {
    let running: Vec<(u64, Action)> = s
        .acts()
        .ledger
        .entries
        .iter()
        .filter(|e| e.state == EntryState::Running)
        .map(|e| (e.decision, e.action.clone()))
        .collect();
    let mut written = Vec::new();
    for (decision, action) in running {
        let commands = apply::commands_for(&action, s, now_ms).expect("supported");
        for c in &commands {
            s.apply(c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        written.extend(commands);
        s.apply(&Command::Act {
            act: ActCommand::Finish {
                decision,
                state: EntryState::Done,
                note: "done".into(),
            },
        })
        .unwrap();
    }
    written
}

fn quota(s: &State) -> u32 {
    s.tenant(&n("acme")).unwrap().quotas.max_concurrency
}

#[test]
fn a_flooding_tenant_is_throttled_through_its_quota_and_the_undo_gives_it_back() {
    let mut s = cluster(2);
    let view = observe::cluster_view(&s, |_| true, &[]);
    let t = view.tenant("acme").expect("the tenant in the view");
    assert_eq!((t.concurrency, t.quota), (64, Quotas::CONCURRENCY_LIMIT));

    let flood = trouble(
        FaultClass::TenantFlood,
        Place::Tenant {
            tenant: "acme".into(),
        },
    );
    let d = decide_and_record(&mut s, flood.clone(), NOW);
    // Half of what its apps may have now; the undo restores the quota.
    let throttle = Action::Throttle {
        tenant: "acme".into(),
        from: Quotas::CONCURRENCY_LIMIT,
        to: 32,
    };
    assert_eq!(
        d.outcome,
        Outcome::Acted {
            action: throttle.clone()
        }
    );
    assert!(d.refused_at_commit.is_none());
    assert!(autopilot::act::replays(&d));
    let written = carry_out(&mut s, NOW);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(quota(&s), 32);
    // Applied twice (a new leader resuming it), nothing more is written.
    assert!(apply::commands_for(&throttle, &s, NOW).unwrap().is_empty());
    let view = observe::cluster_view(&s, |_| true, &[]);
    assert_eq!(view.tenant("acme").unwrap().concurrency, 32);

    // One action per target: the flood again at once is held by the
    // cool-down, and the incident opens instead.
    let again = decide_and_record(&mut s, flood, NOW + 1_000);
    assert_eq!(again.considered[0].note, "refused by cooldown");
    assert!(matches!(
        again.outcome,
        Outcome::Acted {
            action: Action::OpenIncident { .. }
        }
    ));

    // A person takes it back: the quota is what it was.
    s.apply(&Command::Act {
        act: ActCommand::Undo {
            decision: d.id,
            by: "ada".into(),
            view: Box::new(observe::cluster_view(&s, |_| true, &[])),
            now_ms: NOW + 61_000,
        },
    })
    .expect("undone");
    carry_out(&mut s, NOW + 61_000);
    assert_eq!(quota(&s), Quotas::CONCURRENCY_LIMIT);
    let entries: Vec<EntryState> = s
        .acts()
        .ledger
        .entries
        .iter()
        .filter(|e| e.decision == d.id)
        .map(|e| e.state)
        .collect();
    assert_eq!(entries, [EntryState::Undone, EntryState::Done]);
}

#[test]
fn a_throttle_is_refused_when_paused_and_says_why_when_it_cannot_go_lower() {
    let mut s = cluster(2);
    s.apply(&Command::Act {
        act: ActCommand::SetControls {
            paused: Some(true),
            destructive_enabled: None,
        },
    })
    .unwrap();
    let flood = trouble(
        FaultClass::TenantFlood,
        Place::Tenant {
            tenant: "acme".into(),
        },
    );
    let d = decide_and_record(&mut s, flood.clone(), NOW);
    assert_eq!(d.outcome.as_str(), "refused", "{:?}", d.outcome);
    assert_eq!(quota(&s), Quotas::CONCURRENCY_LIMIT, "nothing applied");

    // At one request at once there is nothing left to take.
    s.apply(&Command::PutTenant {
        name: n("acme"),
        quotas: Quotas {
            max_concurrency: 1,
            ..Quotas::default()
        },
    })
    .unwrap();
    let view = observe::cluster_view(&s, |_| true, &[]);
    let rule = s
        .acts()
        .policy()
        .rule_for(FaultClass::TenantFlood, Basis::Observed, 1.0)
        .cloned()
        .unwrap();
    let why =
        decide::build(autopilot::act::ActionKind::Throttle, &flood, &view, &rule).unwrap_err();
    assert!(why.contains("cannot go lower"), "{why}");
}

#[test]
fn an_unhealthy_pool_is_restarted_through_a_count_the_node_reads() {
    let mut s = cluster(3);
    let place = Place::VersionOnNode {
        tenant: "acme".into(),
        app: "shop".into(),
        version: 1,
        node: "n1".into(),
    };
    let d = decide_and_record(
        &mut s,
        trouble(FaultClass::PoolUnhealthy, place.clone()),
        NOW,
    );
    let restart = Action::RestartPool {
        tenant: "acme".into(),
        app: "shop".into(),
        version: 1,
        node: "n1".into(),
        terminations: 3,
    };
    assert_eq!(
        d.outcome,
        Outcome::Acted {
            action: restart.clone()
        }
    );
    let key = pool_key("acme", "shop", 1, "n1");
    assert_eq!(s.acts().pool_restarts.get(&key), Some(&1));
    // Done when begun, like a cordon: nothing left for the loop.
    let entry = s.acts().ledger.entries.last().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert!(apply::commands_for(&restart, &s, NOW).unwrap().is_empty());
    // A fresh pool is the same pool, new: nothing to undo.
    let undo = s.apply(&Command::Act {
        act: ActCommand::Undo {
            decision: d.id,
            by: "ada".into(),
            view: Box::new(observe::cluster_view(&s, |_| true, &[])),
            now_ms: NOW + 61_000,
        },
    });
    assert!(
        undo.as_ref()
            .is_err_and(|e| e.to_string().contains("has no undo")),
        "{undo:?}"
    );

    // Past 100 terminations a minute on the node the restart is refused,
    // and the drain after it for the same reason.
    let mut big = cluster(150);
    let d = decide_and_record(&mut big, trouble(FaultClass::PoolUnhealthy, place), NOW);
    assert_eq!(
        d.outcome,
        Outcome::Refused {
            action: Action::RestartPool {
                tenant: "acme".into(),
                app: "shop".into(),
                version: 1,
                node: "n1".into(),
                terminations: 150,
            },
            guardrail: Guardrail::Terminations,
        }
    );
    assert!(big.acts().pool_restarts.is_empty());
}

#[test]
fn a_pool_restart_count_is_forgotten_once_the_pool_is_gone() {
    let mut s = cluster(3);
    let place = Place::VersionOnNode {
        tenant: "acme".into(),
        app: "shop".into(),
        version: 1,
        node: "n1".into(),
    };
    decide_and_record(&mut s, trouble(FaultClass::PoolUnhealthy, place), NOW);
    let key = pool_key("acme", "shop", 1, "n1");
    let tick = |s: &mut State, now_ms: u64| {
        let view = observe::cluster_view(s, |_| true, &[]);
        s.apply(&Command::Act {
            act: ActCommand::Tick {
                view: Box::new(view),
                now_ms,
            },
        })
        .unwrap();
    };
    // While the pool is placed, its node's agent keys it by the count.
    tick(&mut s, NOW + 1_000);
    assert_eq!(s.acts().pool_restarts.get(&key), Some(&1));
    // The scheduler moves the version off n1: the pool is gone, and so
    // is its count (the map stays as small as the pools).
    s.apply(&Command::SetPlacements {
        tenant: n("acme"),
        app: n("shop"),
        placements: vec![PlacementSpec {
            version: 1,
            node: n("n2"),
            count: 3,
        }],
    })
    .unwrap();
    tick(&mut s, NOW + 2_000);
    assert!(
        s.acts().pool_restarts.is_empty(),
        "{:?}",
        s.acts().pool_restarts
    );
}
