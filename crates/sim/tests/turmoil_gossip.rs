//! The gossip members over turmoil's simulated UDP: every member learns of
//! every other and every update reaches every member; the same seed gives
//! the same virtual figures; and the in-memory driver, on the same
//! members, converges too. Nothing here looks at wall time.

use std::sync::Arc;
use std::time::Duration;

use sim::turmoil_gossip::{Engine, GossipScenario, TICK};

/// 12 members in 4 regions (3 each), 40 ms of round trip per region of
/// distance apart (plus 20), 1 ms within a region.
fn scenario(seed: u64) -> GossipScenario {
    GossipScenario {
        regions: ["eu-west", "eu-central", "us-east", "ap-south"]
            .map(String::from)
            .to_vec(),
        rtt_ms: Arc::new(|a, b| 20.0 + 40.0 * a.abs_diff(b) as f64),
        intra_ms: 1.0,
        members: 12,
        updates: 3,
        seed,
        wall_budget: None,
    }
}

#[test]
fn every_member_converges_over_turmoil_and_a_seed_fixes_the_figures() {
    let first = scenario(7).run(Engine::Turmoil).unwrap();
    assert!(first.completed);
    assert!(first.discovery.is_some());
    assert_eq!(first.all.len(), 3, "every update reached every member");
    assert_eq!(
        first.convergence.len(),
        3 * 12,
        "one time per update and member"
    );
    assert_eq!(first.refused, 0);
    // Each update crosses at least one inter-region link (60 ms round
    // trip at the least, so 30 ms one way) to reach the members of the
    // other regions; nothing arrives faster than the model allows.
    for all in &first.all {
        assert!(*all >= Duration::from_millis(30), "{:?}", first.all);
    }
    // turmoil moves time in whole ticks.
    for t in &first.convergence {
        assert_eq!(t.as_nanos() % TICK.as_nanos(), 0, "{t:?}");
    }

    let second = scenario(7).run(Engine::Turmoil).unwrap();
    assert_eq!(first.discovery, second.discovery);
    assert_eq!(first.convergence, second.convergence);
    assert_eq!(first.all, second.all);
    assert_eq!(first.virtual_time, second.virtual_time);
    assert_eq!((first.packets, first.bytes), (second.packets, second.bytes));
}

#[test]
fn the_driver_converges_on_the_same_members() {
    let run = scenario(7).run(Engine::Driver).unwrap();
    assert!(run.completed);
    assert_eq!(run.all.len(), 3);
    assert_eq!(run.convergence.len(), 3 * 12);
    let again = scenario(7).run(Engine::Driver).unwrap();
    assert_eq!(run.convergence, again.convergence);
}
