//! The rollout controller's decisions (`rollout::Tracking`), one rule a
//! test: counters add their increase once primed and a restart adds all;
//! a conclusive measurement is followed by the judge's evidence and empties
//! the window; an inconclusive one keeps it; nothing moves, nothing is
//! written; an ended rollout is forgotten.

mod common;

use std::collections::BTreeMap;

use common::{n, shop_in, start};
use rollout::{Plan, Progress, Tracking, Window};
use state::{Command, LatencySummary, Node, NodeReport, State, VersionReport};

/// App `acme/shop` (version 1 deployed in region `eu`, whose node is
/// `n1`; version 2 added) with a rollout to 2 started at 1,000 ms: an
/// analysis step of two measurements, 10 s apart, checking the error rate,
/// then all traffic to 2. The baseline is version 3.
fn rolling() -> State {
    let mut s = shop_in(&["eu"]);
    let node = Node {
        name: n("n1"),
        region: n("eu"),
        address: "127.0.0.1:7071".into(),
        labels: BTreeMap::new(),
        capacity: 10,
        api: None,
        gateway: None,
        peer_key: None,
    };
    s.apply(&Command::PutNode { node }).unwrap();
    let plan = Plan::from_json(
        r#"{"steps": [
            {"analysis": {"interval_ms": 10000, "count": 2,
                "checks": [{"metric": "error_rate", "comparator": "<=", "threshold": 0.5}]}},
            {"set_weight": {"weight": 100}}]}"#,
    )
    .unwrap();
    s.apply(&start(2, plan)).unwrap();
    s
}

/// What one version served on `n1`: totals since boot.
fn served(version: u64, requests: u64, errors: u64, latencies_us: Vec<u32>) -> VersionReport {
    VersionReport {
        tenant: n("acme"),
        app: n("shop"),
        version,
        requests,
        errors,
        timeouts: 0,
        latency_us: LatencySummary {
            count: requests,
            ..LatencySummary::default()
        },
        busy_us: 0,
        recent_latencies_us: latencies_us,
        latency_histogram_us: Default::default(),
    }
}

fn report(s: &mut State, boot: u64, sequence: u64, versions: Vec<VersionReport>) {
    let report = NodeReport {
        node: n("n1"),
        boot,
        sequence,
        templates_ready: 0,
        live_sandboxes: 0,
        sandbox_starts: 0,
        usage: Default::default(),
        versions,
    };
    s.apply(&Command::Report { report }).unwrap();
}

fn window(t: &Tracking) -> Window {
    t.window(&n("acme"), &n("shop"))
        .expect("the rollout is tracked")
        .clone()
}

/// The one command a round wrote: its records and the new progress.
fn one_step(commands: &[Command]) -> (&[String], &Progress) {
    let [
        Command::AdvanceRollout {
            records, progress, ..
        },
    ] = commands
    else {
        panic!("one step to write: {commands:?}");
    };
    (records, progress)
}

#[test]
fn counters_add_their_increase_once_primed_and_a_restart_adds_all() {
    let mut s = rolling();
    let mut t = Tracking::default();
    report(
        &mut s,
        7,
        1,
        vec![served(2, 100, 1, vec![]), served(3, 80, 0, vec![])],
    );
    // The first round notes where counting starts; nothing to write.
    assert!(t.commands(&s, 2_000).is_empty());
    assert_eq!(window(&t), Window::default());

    report(
        &mut s,
        7,
        2,
        vec![served(2, 150, 3, vec![]), served(3, 80, 0, vec![])],
    );
    assert!(t.commands(&s, 3_000).is_empty());
    let w = window(&t);
    assert_eq!((w.canary.requests, w.canary.errors), (50, 2));
    assert_eq!(w.baseline.requests, 0);

    // No new report (same sequence): nothing is counted twice.
    t.commands(&s, 4_000);
    assert_eq!(window(&t).canary.requests, 50);

    // The node restarted (a new boot): all its counts are new.
    report(&mut s, 8, 1, vec![served(2, 10, 0, vec![])]);
    t.commands(&s, 5_000);
    assert_eq!(window(&t).canary.requests, 60);
}

#[test]
fn a_conclusive_measurement_is_followed_by_the_judges_evidence_and_empties_the_window() {
    let mut s = rolling();
    let mut t = Tracking::default();
    report(
        &mut s,
        7,
        1,
        vec![served(2, 0, 0, vec![]), served(3, 0, 0, vec![])],
    );
    t.commands(&s, 2_000);
    let latencies: Vec<u32> = (0..30).map(|i| 1_000 + i).collect();
    report(
        &mut s,
        7,
        2,
        vec![
            served(2, 30, 0, latencies.clone()),
            served(3, 30, 0, latencies),
        ],
    );
    // Due at 1,000 + 10,000 ms.
    let commands = t.commands(&s, 11_000);
    let (records, progress) = one_step(&commands);
    assert_eq!(progress.analysis.measurements, 1);
    assert!(records[0].contains("measurement 1 of 2"), "{records:?}");
    assert!(records[1].starts_with("judge: pass"), "{records:?}");
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        window(&t),
        Window::default(),
        "a measurement uses its window up"
    );
}

#[test]
fn an_inconclusive_measurement_keeps_its_window() {
    let mut s = rolling();
    let mut t = Tracking::default();
    report(&mut s, 7, 1, vec![served(3, 0, 0, vec![])]);
    t.commands(&s, 2_000);
    // Only the baseline served: the error rate is not measured.
    report(&mut s, 7, 2, vec![served(3, 40, 0, vec![])]);
    let commands = t.commands(&s, 11_000);
    let (records, progress) = one_step(&commands);
    assert_eq!(progress.analysis.inconclusive, 1);
    assert!(records[0].contains("not measured"), "{records:?}");
    assert_eq!(window(&t).baseline.requests, 40);
}

#[test]
fn nothing_moves_nothing_is_written_and_an_ended_rollout_is_forgotten() {
    let mut s = rolling();
    let mut t = Tracking::default();
    assert!(t.commands(&s, 2_000).is_empty());
    assert!(t.window(&n("acme"), &n("shop")).is_some());
    s.apply(&Command::AbortRollout {
        tenant: n("acme"),
        app: n("shop"),
        reason: "test".into(),
        by: "admin".into(),
        now_unix_ms: 3_000,
    })
    .unwrap();
    assert!(t.commands(&s, 4_000).is_empty());
    assert!(t.window(&n("acme"), &n("shop")).is_none());
}
