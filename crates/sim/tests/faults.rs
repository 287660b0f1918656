//! Safety of DWCP's Raft groups under partitions and region loss, in the
//! simulator (virtual time, fixed seeds): at most one leader per term, and
//! no acknowledged write lost. Real replicas; the faults are the network's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use replica::{NodeId, Timing};
use sim::group::Group;
use sim::net::Links;
use sim::rng::Rng;

fn wan() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(500),
        election: (Duration::from_secs(3), Duration::from_secs(6)),
        snapshot_every: 10_000,
    }
}

/// Five voters in five "regions" 20 to 160 ms apart.
fn links(seed: u64) -> Arc<Links> {
    Links::new(
        Box::new(|a, b| {
            if a == b {
                0.0
            } else {
                20.0 * (a as f64 - b as f64).abs() + 20.0
            }
        }),
        0.05,
        seed,
    )
}

/// What every replica says of itself now: (id, term, thinks it leads).
fn observe(group: &Group, leaders: &mut BTreeMap<u64, BTreeSet<NodeId>>) {
    for r in &group.replicas {
        let s = r.status();
        if s.role == "leader" {
            leaders.entry(s.term).or_default().insert(s.id);
        }
    }
}

/// Writes through whichever replica leads, each given up after a while
/// (its outcome unknown); the keys whose writes were acknowledged.
async fn write_for(
    group: &Group,
    rounds: usize,
    tag: &str,
    leaders: &mut BTreeMap<u64, BTreeSet<NodeId>>,
) -> Vec<String> {
    let mut acknowledged = Vec::new();
    for i in 0..rounds {
        observe(group, leaders);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let key = format!("{tag}-{i}");
        for (index, r) in group.replicas.iter().enumerate() {
            if r.status().role != "leader" {
                continue;
            }
            let write = group.commit(index, &key);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), write).await {
                acknowledged.push(key.clone());
                break;
            }
        }
    }
    observe(group, leaders);
    acknowledged
}

/// Waits until every replica has applied what the leader has, then checks
/// each holds every acknowledged key.
async fn assert_all_hold(group: &Group, keys: &[String]) {
    for _ in 0..600 {
        let applied: Vec<Option<u64>> = group
            .replicas
            .iter()
            .map(|r| r.status().applied_index)
            .collect();
        let last: Vec<Option<u64>> = group
            .replicas
            .iter()
            .map(|r| r.status().last_log_index)
            .collect();
        if applied.iter().all(|a| *a == applied[0]) && applied == last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in &group.replicas {
        let state = r.read_local();
        for key in keys {
            assert!(
                state.register(key).is_some(),
                "replica {} lost acknowledged write {key}",
                r.status().id
            );
        }
    }
}

fn at_most_one_leader_per_term(leaders: &BTreeMap<u64, BTreeSet<NodeId>>) {
    for (term, ids) in leaders {
        assert!(ids.len() <= 1, "term {term} had leaders {ids:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_leader_cut_off_and_a_region_lost_lose_no_acknowledged_write() {
    for seed in [1, 2, 3] {
        let links = links(seed);
        let group = Group::start(&[1, 2, 3, 4, 5], &links, &wan())
            .await
            .unwrap();
        let mut leaders = BTreeMap::new();
        let mut acknowledged = write_for(&group, 10, "before", &mut leaders).await;

        // The leader's region is cut off: the others elect a new leader
        // and go on; the old one's writes meanwhile are never acknowledged.
        let mut rng = Rng::new(seed);
        links.set_down(1, true);
        acknowledged.extend(write_for(&group, 40, "cut", &mut leaders).await);
        let new_leaders: BTreeSet<NodeId> = leaders
            .iter()
            .filter(|(t, _)| **t > 1)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        assert!(
            !new_leaders.is_empty() && !new_leaders.contains(&1),
            "seed {seed}: {leaders:?}"
        );

        // Then a second region is lost too (two of five down: still a
        // majority), chosen by the seed among the followers.
        let second = 2 + rng.next_u64() % 4;
        let current = group
            .replicas
            .iter()
            .find(|r| r.status().role == "leader")
            .map(|r| r.status().id);
        let second = if Some(second) == current {
            2 + (second - 1) % 4
        } else {
            second
        };
        links.set_down(second, true);
        acknowledged.extend(write_for(&group, 40, "two-down", &mut leaders).await);

        // Both come back: they catch up and hold every acknowledged write.
        links.set_down(1, false);
        links.set_down(second, false);
        acknowledged.extend(write_for(&group, 10, "healed", &mut leaders).await);
        eprintln!(
            "seed {seed}: {} of 100 writes acknowledged; leaders by term {leaders:?}",
            acknowledged.len()
        );
        assert!(
            acknowledged.len() >= 60,
            "seed {seed}: only {} acknowledged",
            acknowledged.len()
        );
        assert_all_hold(&group, &acknowledged).await;
        at_most_one_leader_per_term(&leaders);
        group.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_minority_partition_cannot_commit_and_loses_nothing_on_healing() {
    let links = links(9);
    let group = Group::start(&[1, 2, 3, 4, 5], &links, &wan())
        .await
        .unwrap();
    let mut leaders = BTreeMap::new();
    let mut acknowledged = write_for(&group, 5, "before", &mut leaders).await;
    // Three of five down: no majority anywhere; nothing is acknowledged.
    for id in [3, 4, 5] {
        links.set_down(id, true);
    }
    let during = write_for(&group, 10, "no-quorum", &mut leaders).await;
    assert!(during.is_empty(), "{during:?}");
    for id in [3, 4, 5] {
        links.set_down(id, false);
    }
    // The isolated three, whose elections kept failing, come back with
    // higher terms: the group elects again, then commits again.
    let healed = write_for(&group, 40, "healed", &mut leaders).await;
    eprintln!(
        "{} of 40 writes acknowledged after healing; leaders by term {leaders:?}",
        healed.len()
    );
    assert!(healed.len() >= 10, "{healed:?}");
    acknowledged.extend(healed);
    assert_all_hold(&group, &acknowledged).await;
    at_most_one_leader_per_term(&leaders);
    group.shutdown().await;
}
