//! Membership churn on a cluster in one process (in-process network, a real
//! redb file per node): grow from one node to three, promote a fourth while
//! a voter is down, bring the downed node back, the leader removes itself — every
//! node ends with the same state, and reads and watches behave.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::Router;
use replica::{NodeId, Replica, ReplicaError, Timing};
use state::{Command, Record, Revision};

fn timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(300), Duration::from_millis(600)),
        snapshot_every: 25,
    }
}

async fn start(router: &Router, id: NodeId, dir: &Path) -> Replica {
    common::start_replica(router, id, dir, &timing()).await
}

fn put(i: u32) -> Command {
    Command::Put {
        key: format!("k{}", i % 3),
        value: i.to_le_bytes().to_vec(),
    }
}

/// Writes through whichever node leads, retrying while an election runs.
async fn write(nodes: &BTreeMap<NodeId, Replica>, cmd: Command) {
    for _ in 0..400 {
        for replica in nodes.values() {
            // A write without a quorum would wait forever: fail instead.
            let attempt = tokio::time::timeout(Duration::from_secs(30), replica.write(cmd.clone()));
            match attempt.await.expect("a write must commit within 30 s") {
                Ok(_) => return,
                Err(ReplicaError::NotLeader { .. }) => {}
                Err(e) => panic!("write failed: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader took the write");
}

async fn converged(nodes: &BTreeMap<NodeId, Replica>, revision: Revision) {
    for (id, replica) in nodes {
        for attempt in 0.. {
            if replica.read_local().revision() == revision {
                break;
            }
            assert!(attempt < 600, "node {id} never reached {revision:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn members(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_churn_keeps_every_node_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::default();
    let mut nodes = BTreeMap::new();

    // One node alone.
    nodes.insert(1, start(&router, 1, dir.path()).await);
    nodes[&1]
        .initialize(BTreeMap::from([(1, "node-1".to_string())]))
        .await
        .unwrap();
    for i in 0..10 {
        write(&nodes, put(i)).await;
    }

    // Grow to three: learners first, then voters.
    for id in [2, 3] {
        nodes.insert(id, start(&router, id, dir.path()).await);
        nodes[&1]
            .add_learner(id, format!("node-{id}"), true)
            .await
            .unwrap();
    }
    nodes[&1].promote(members(&[2, 3])).await.unwrap();
    for i in 10..40 {
        write(&nodes, put(i)).await;
    }
    converged(&nodes, Revision(40)).await;
    assert_eq!(nodes[&1].status().voters, members(&[1, 2, 3]));

    // Node 3 goes down; node 4 joins and is promoted meanwhile.
    router.cut(3);
    let down = nodes.remove(&3).unwrap();
    down.shutdown().await;
    drop(down);
    nodes.insert(4, start(&router, 4, dir.path()).await);
    let leader = nodes[&1].status().leader.expect("a leader");
    nodes[&leader]
        .add_learner(4, "node-4".into(), true)
        .await
        .unwrap();
    nodes[&leader].promote(members(&[4])).await.unwrap();
    for i in 40..60 {
        write(&nodes, put(i)).await;
    }

    // The downed node comes back from its file and catches up, snapshots
    // and all (the log is compacted every 25 entries here).
    nodes.insert(3, start(&router, 3, dir.path()).await);
    converged(&nodes, Revision(60)).await;

    // The leader removes itself in one call: once the removal is committed
    // it hands leadership to the most up-to-date voter left and stops.
    let leader = nodes[&1].status().leader.expect("a leader");
    nodes[&leader].remove(members(&[leader])).await.unwrap();
    let mut next = None;
    for _ in 0..600 {
        next = nodes
            .values()
            .filter(|r| r.status().id != leader)
            .find_map(|r| r.status().leader)
            .filter(|l| *l != leader && nodes[l].status().role == "leader");
        if next.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    next.expect("the remaining voters are led again");
    let gone = nodes.remove(&leader).unwrap();
    // The removed leader's own status may lag the voters' election by a
    // round; it must step down within the deadline.
    for _ in 0..600 {
        if gone.status().role != "leader" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        gone.status().role,
        "leader",
        "the removed leader stepped down"
    );
    router.cut(leader);
    gone.shutdown().await;
    drop(gone);
    for i in 60..80 {
        write(&nodes, put(i)).await;
    }
    converged(&nodes, Revision(80)).await;
    let any = nodes.values().next().unwrap();
    let status = any.status();
    assert!(!status.voters.contains(&leader), "the removed node is gone");
    assert!(status.voters.contains(&4));
    let expected = any.read_local().register("k2").map(<[u8]>::to_vec);
    for replica in nodes.values() {
        assert_eq!(
            replica.read_local().register("k2").map(<[u8]>::to_vec),
            expected
        );
    }

    // Linearizable reads: the leader serves them, a follower points to it.
    let leader = status.leader.expect("a leader");
    assert_eq!(
        nodes[&leader].read().await.unwrap().revision(),
        Revision(80)
    );
    let follower = nodes.keys().find(|&&id| id != leader).copied().unwrap();
    match nodes[&follower].read().await {
        Err(ReplicaError::NotLeader {
            leader: Some(l), ..
        }) => assert_eq!(l, leader),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a follower must not serve a linearizable read itself"),
    }

    // Watch: the next change wakes a watcher with exactly that event.
    let events = {
        let watcher = nodes[&follower].watch(Revision(80), Duration::from_secs(30));
        let writer = write(&nodes, put(80));
        let (events, ()) = tokio::join!(watcher, writer);
        events.expect("not compacted: the watcher is current")
    };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].revision, Revision(81));
    assert_eq!(events[0].change.record, Record::Register);
    for replica in nodes.values() {
        replica.shutdown().await;
    }
}
