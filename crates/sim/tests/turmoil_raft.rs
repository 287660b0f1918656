//! Five real replicas as turmoil hosts, RPCs over turmoil TCP: the group
//! elects the initialized replica, commits every write, and a commit costs
//! at least the round trip to the nearest majority, as on the in-memory
//! links. Virtual time only.

use std::sync::Arc;
use std::time::Duration;

use replica::Timing;
use sim::turmoil_raft::RaftScenario;

fn scenario() -> RaftScenario {
    RaftScenario {
        voters: 5,
        // Voter 0 (the leader) is 20, 30, 80 and 150 ms from the others.
        rtt_ms: Arc::new(|a, b| {
            let far = [0.0, 20.0, 30.0, 80.0, 150.0];
            if a == 0 || b == 0 {
                far[a.max(b)]
            } else {
                100.0
            }
        }),
        timing: Timing {
            heartbeat: Duration::from_millis(500),
            election: (Duration::from_secs(3), Duration::from_secs(6)),
            snapshot_every: 10_000,
        },
        writes: 5,
        seed: 3,
    }
}

#[test]
fn a_group_over_turmoil_tcp_commits_at_the_quorum_round_trip_or_more() {
    let turmoil = scenario().run_turmoil().unwrap();
    assert_eq!(turmoil.commits.len(), 5);
    for c in &turmoil.commits {
        // The nearest majority (the leader and its two nearest) is 30 ms
        // away; turmoil adds up to a tick per hop.
        assert!(*c >= Duration::from_millis(30), "{:?}", turmoil.commits);
    }
    let links = scenario().run_links().unwrap();
    assert_eq!(links.commits.len(), 5);
    let again = scenario().run_turmoil().unwrap();
    assert_eq!(turmoil.commits, again.commits);
}
