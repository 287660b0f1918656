//! Real DWCP replicas on the simulated network, in virtual time: a commit
//! costs the round trip to the quorum the model gives, no more and no less
//! than the protocol needs.

use std::time::Duration;

use replica::Timing;
use sim::group::Group;
use sim::net::Links;

/// Election timeouts far above the round trips, as a WAN group needs.
fn wan() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(500),
        election: (Duration::from_secs(3), Duration::from_secs(6)),
        snapshot_every: 10_000,
    }
}

#[tokio::test(start_paused = true)]
async fn a_commit_costs_the_round_trip_to_the_nearest_majority() {
    // Node 1 leads; nodes 2..5 are 10, 20, 80 and 150 ms away (round trip).
    let far = [0.0, 0.0, 10.0, 20.0, 80.0, 150.0];
    let links = Links::new(
        Box::new(move |a, b| {
            if a == b {
                0.0
            } else if a == 1 || b == 1 {
                far[a.max(b) as usize]
            } else {
                100.0
            }
        }),
        0.0,
        1,
    );
    let group = Group::start(&[1, 2, 3, 4, 5], &links, &wan())
        .await
        .unwrap();
    // Writes spaced wider than the round trip: each finds the line to the
    // followers free, and commits in one round trip to the majority of five
    // (the leader and its two nearest, 20 ms away at most). The queue and
    // the apply add no virtual time.
    let mut spaced = Vec::new();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        spaced.push(group.commit(0, &format!("spaced-{i}")).await.unwrap());
    }
    let fastest = *spaced.iter().min().unwrap();
    assert!(
        fastest >= Duration::from_millis(20) && fastest < Duration::from_millis(21),
        "{spaced:?}"
    );
    // Back to back, a write goes out at once although the append that
    // told the followers of the previous commit is still on the wire: the
    // leader keeps several appends in flight per follower. So one round
    // trip again (openraft 0.9, one in flight, took two: 40 ms).
    let mut back_to_back = Vec::new();
    for i in 0..5 {
        back_to_back.push(group.commit(0, &format!("b2b-{i}")).await.unwrap());
    }
    assert!(
        back_to_back[1..]
            .iter()
            .all(|t| *t >= Duration::from_millis(20) && *t < Duration::from_millis(21)),
        "{back_to_back:?}"
    );
    // Without node 3 the majority needs node 4: at least its 80 ms, at
    // most one more round trip to it (a heartbeat in flight).
    links.set_down(3, true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let took = group.commit(0, "k-without-3").await.unwrap();
    assert!(
        took >= Duration::from_millis(80) && took <= Duration::from_millis(161),
        "{took:?}"
    );
    group.shutdown().await;
}

/// Writes at random times over WAN links, so that some meet a heartbeat or
/// an append on its way and some do not: which happens depends on the
/// order in which waiting tasks wake, which must follow the seed alone
/// (tokio's own watch channel woke them in a random order).
#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_virtual_times() {
    async fn run(seed: u64) -> Vec<Duration> {
        let rtt = |a: u64, b: u64| {
            if a == b {
                0.0
            } else {
                10.0 + (a + b) as f64 * 3.3
            }
        };
        let links = Links::new(Box::new(rtt), 0.05, seed);
        let group = Group::start(&[1, 2, 3], &links, &wan()).await.unwrap();
        let mut gaps = sim::rng::Rng::new(seed);
        let mut out = Vec::new();
        for i in 0..40 {
            let gap_ms = gaps.exponential(700.0);
            tokio::time::sleep(Duration::from_secs_f64(gap_ms / 1000.0)).await;
            out.push(group.commit(0, &format!("k{i}")).await.unwrap());
        }
        group.shutdown().await;
        out
    }
    let a = run(9).await;
    assert_eq!(a, run(9).await);
    assert!(a.iter().all(|d| *d >= Duration::from_millis(10)), "{a:?}");
    // Not all alike (jitter, and what was already on the wire), so the
    // comparison above compares something.
    assert!(a.iter().any(|d| d != &a[0]), "{a:?}");
}

#[tokio::test(start_paused = true)]
async fn a_small_planet_commits_globally_over_its_quorum_and_locally_over_one_ms() {
    use std::sync::Arc;
    // Four regions on a line, 40 ms apart each step.
    let planet = sim::planet::Planet {
        regions: (0..4).map(|r| format!("r{r}")).collect(),
        rtt_ms: Arc::new(|a, b| 40.0 * (a as f64 - b as f64).abs()),
        intra_ms: 1.0,
        voters: vec![1, 0, 2],
        nodes_per_region: 3,
        sandboxes: 120_000,
        // The two nearest regions along the line take half each.
        failover: Arc::new(|failed, healthy: &[usize], _spare: &[f64]| {
            let mut near = healthy.to_vec();
            near.sort_by_key(|&r| (r.abs_diff(failed), r));
            near.iter().take(2).map(|&r| (r, 0.5)).collect()
        }),
        failovers_per_hour: 0,
        seed: 5,
    };
    let figures = planet.run(&|_| {}).await.unwrap();
    // Same seed, same virtual figures (the placement's wall time aside).
    let again = planet.run(&|_| {}).await.unwrap();
    assert_eq!(figures.global_commits, again.global_commits);
    assert_eq!(figures.region_commits, again.region_commits);
    assert_eq!(figures.crdt_convergence, again.crdt_convergence);
    assert!(!figures.crdt_all.is_empty());
    assert!(
        figures.crdt_all.iter().all(|t| *t < Duration::from_secs(2)),
        "{:?}",
        figures.crdt_all
    );
    assert_eq!(figures.global_commits.len(), sim::planet::GLOBAL_WRITES);
    // The leader (region 1) and its nearest voter (40 ms) are a majority.
    let fastest = figures.global_commits.iter().min().unwrap();
    assert!(*fastest >= Duration::from_millis(40), "{fastest:?}");
    let slowest = figures.global_commits.iter().max().unwrap();
    assert!(*slowest < Duration::from_millis(2 * 44), "{slowest:?}");
    assert!(
        figures
            .region_commits
            .iter()
            .all(|t| *t >= Duration::from_millis(1) && *t < Duration::from_millis(3))
    );
    assert_eq!(figures.placed, 120_000);
    // Region 3 is the one without a voter: it is lost, declared down by gossip after SWIM's suspicion time, the
    // failover committed by the global tier, its deployments re-placed.
    let lost: Vec<usize> = figures.failovers.iter().map(|f| f.region).collect();
    assert_eq!(lost, [3]);
    for f in &figures.failovers {
        // No automatic failover allowed here: each waited for approval.
        assert!(f.awaited_approval);
        assert!(
            f.detect >= Duration::from_secs(3) && f.detect < Duration::from_secs(15),
            "{f:?}"
        );
        // The global tier's real commands, committed one after the other:
        // the failover record (held by the guardrail), then its approval.
        assert!(f.decide >= Duration::from_millis(2 * 40), "{f:?}");
    }
    let virtual_part = |fs: &[sim::planet::Failover]| -> Vec<_> {
        fs.iter().map(|f| (f.region, f.detect, f.decide)).collect()
    };
    assert_eq!(
        virtual_part(&figures.failovers),
        virtual_part(&again.failovers)
    );
}

#[tokio::test(start_paused = true)]
async fn delays_count_in_whole_milliseconds() {
    // tokio's timer counts whole milliseconds: a 0.5 ms leg waits 1 ms, so
    // a 1 ms round trip costs 2 ms here (an upper bound), while a 20 ms one
    // costs 20 ms.
    for (rtt, expected) in [(1.0, 2), (20.0, 20)] {
        let links = Links::new(Box::new(move |a, b| if a == b { 0.0 } else { rtt }), 0.0, 1);
        let group = Group::start(&[1, 2, 3], &links, &wan()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let took = group.commit(0, "k").await.unwrap();
        assert_eq!(took, Duration::from_millis(expected), "rtt {rtt}");
        group.shutdown().await;
    }
}
