//! A three-node cluster in one process (in-process network, a real redb
//! file per node): writes commit on a majority, a new leader takes over
//! when the old one is cut off, and a node restarted from its file catches
//! up — through a snapshot, since the log is compacted often here.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::Router;
use replica::{NodeId, Replica, ReplicaError, Timing};
use state::{Command, Outcome, Revision};

fn timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(300), Duration::from_millis(600)),
        snapshot_every: 20,
    }
}

async fn start(router: &Router, id: NodeId, dir: &Path) -> Replica {
    common::start_replica(router, id, dir, &timing()).await
}

fn put(i: u32) -> Command {
    Command::Put {
        key: format!("k{}", i % 5),
        value: i.to_le_bytes().to_vec(),
    }
}

/// Waits (generously: a shared 2-core machine) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn leader_of(nodes: &BTreeMap<NodeId, Replica>) -> NodeId {
    for _ in 0..600 {
        for replica in nodes.values() {
            if let Some(leader) = replica.status().leader
                && nodes.contains_key(&leader)
                && nodes[&leader].status().role == "leader"
            {
                return leader;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader elected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_commits_fails_over_and_a_restarted_node_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&router, id, dir.path()).await);
    }
    let members: BTreeMap<NodeId, String> = (1..=3).map(|id| (id, format!("node-{id}"))).collect();
    nodes[&1].initialize(members).await.expect("initialize");

    let leader = leader_of(&nodes).await;
    for i in 0..50 {
        let response = nodes[&leader].write(put(i)).await.expect("write");
        assert_eq!(response.result, Ok(Outcome::Applied));
    }
    let target = nodes[&leader].read_local().revision();
    assert_eq!(target, Revision(50));
    for (id, replica) in &nodes {
        eventually(&format!("node {id} to apply 50"), || {
            replica.read_local().revision() == target
        })
        .await;
    }

    // Cut the leader off and shut it down: the others elect a new one,
    // which takes writes.
    router.cut(leader);
    let old = nodes.remove(&leader).unwrap();
    old.shutdown().await;
    drop(old);
    let new_leader = leader_of(&nodes).await;
    assert_ne!(new_leader, leader);
    for i in 50..100 {
        nodes[&new_leader]
            .write(put(i))
            .await
            .expect("write after failover");
    }
    let target = nodes[&new_leader].read_local().revision();
    assert_eq!(target, Revision(100));

    // The old leader restarts from its file and catches up.
    let restarted = start(&router, leader, dir.path()).await;
    eventually("the restarted node to catch up", || {
        restarted.read_local().revision() == target
    })
    .await;
    let expected = nodes[&new_leader]
        .read_local()
        .register("k4")
        .map(<[u8]>::to_vec);
    assert_eq!(
        restarted.read_local().register("k4").map(<[u8]>::to_vec),
        expected
    );
    // A refused command is a committed entry with a rejection, same everywhere.
    let refused = nodes[&new_leader]
        .write(Command::DeleteTenant {
            name: state::Name::new("tenant", "nobody").unwrap(),
        })
        .await
        .expect("write");
    assert!(refused.result.is_err());
    let target = refused.revision;
    eventually("the restarted node to apply the refusal", || {
        restarted.read_local().revision() == target
    })
    .await;
    restarted.shutdown().await;
    for replica in nodes.values() {
        replica.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_is_handed_to_the_most_up_to_date_voter_without_losing_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&router, id, dir.path()).await);
    }
    let members: BTreeMap<NodeId, String> = (1..=3).map(|id| (id, format!("node-{id}"))).collect();
    nodes[&1].initialize(members).await.expect("initialize");
    let leader = leader_of(&nodes).await;
    for i in 0..10 {
        nodes[&leader].write(put(i)).await.expect("write");
    }

    // Writes keep coming while the leader hands off: each is either
    // committed or refused as not-leader (nothing done); none is lost.
    let writer = {
        async {
            let mut acknowledged = Vec::new();
            for i in 100..160 {
                for replica in nodes.values() {
                    match replica.write(put(i)).await {
                        Ok(r) => {
                            acknowledged.push(r.revision);
                            break;
                        }
                        Err(ReplicaError::NotLeader { .. }) => continue,
                        Err(e) => panic!("write {i}: {e}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acknowledged
        }
    };
    let hand_off = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        nodes[&leader].hand_off(Duration::from_secs(30)).await
    };
    let (acknowledged, handed) = tokio::join!(writer, hand_off);
    let new_leader = handed
        .expect("hand-off")
        .expect("the leader had voters to hand to");
    assert_ne!(new_leader, leader);
    assert_eq!(leader_of(&nodes).await, new_leader);
    // Every acknowledged write is in the new leader's state, in order.
    let last = *acknowledged.last().expect("some writes were acknowledged");
    eventually("the new leader to hold every acknowledged write", || {
        nodes[&new_leader].read_local().revision() >= last
    })
    .await;
    assert!(acknowledged.windows(2).all(|w| w[0] < w[1]));
    // A node that does not lead has nothing to hand off.
    assert_eq!(
        nodes[&leader]
            .hand_off(Duration::from_secs(1))
            .await
            .unwrap(),
        None
    );
    for replica in nodes.values() {
        replica.shutdown().await;
    }
}

#[tokio::test]
async fn a_damaged_store_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    {
        let router = Router::default();
        let replica = start(&router, 1, dir.path()).await;
        let members = BTreeMap::from([(1, "node-1".to_string())]);
        replica.initialize(members).await.unwrap();
        eventually("a single node to lead", || {
            replica.status().leader == Some(1)
        })
        .await;
        for i in 0..10 {
            replica.write(put(i)).await.unwrap();
        }
        replica.shutdown().await;
    }
    let file = dir.path().join("node-1.redb");
    let pristine = std::fs::read(&file).unwrap();
    assert!(replica::open(&file).is_ok(), "the intact store opens");

    // Overwrite every page after the header: refused (redb checksums its
    // pages). Which pages a store uses depends on its history (many are
    // free), so damaging one chosen page would not always hit live data.
    let mut damaged = pristine.clone();
    for b in &mut damaged[4096..] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &damaged).unwrap();
    let err = replica::open(&file)
        .err()
        .expect("a corrupted store must not open");
    assert!(err.to_string().contains("cannot be used"), "{err}");

    // Truncate it to half: refused too.
    std::fs::write(&file, &pristine[..pristine.len() / 2]).unwrap();
    let err = replica::open(&file)
        .err()
        .expect("a truncated store must not open");
    assert!(err.to_string().contains("cannot be used"), "{err}");
    let _ = path;
}
