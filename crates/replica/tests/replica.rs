//! A three-node cluster in one process (in-process network, a real redb
//! file per node): writes commit on a majority, a new leader takes over
//! when the old one is cut off, and a node restarted from its file catches
//! up — through a snapshot, since the log is compacted often here.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Factory, Router};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use replica::{NodeId, Proposal, SharedState, TypeConfig};
use state::{Command, Outcome, Revision};

fn config() -> Arc<Config> {
    let config = Config {
        cluster_name: "test".into(),
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20),
        max_in_snapshot_log_to_keep: 5,
        purge_batch_size: 1,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid raft config"))
}

async fn start(router: &Router, id: NodeId, dir: &Path) -> (Raft<TypeConfig>, SharedState) {
    let (log, sm) = replica::open(&dir.join(format!("node-{id}.redb"))).expect("open store");
    let shared = sm.shared();
    let raft = Raft::new(
        id,
        config(),
        Factory {
            router: router.clone(),
            from: id,
        },
        log,
        sm,
    )
    .await
    .expect("raft");
    router.add(id, raft.clone());
    (raft, shared)
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

async fn leader_of(rafts: &[&Raft<TypeConfig>]) -> NodeId {
    for _ in 0..600 {
        for raft in rafts {
            let current = raft.metrics().borrow().current_leader;
            if let Some(leader) = current
                && rafts.iter().any(|r| r.metrics().borrow().id == leader)
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
    let members: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    nodes[&1].0.initialize(members).await.expect("initialize");

    let rafts: Vec<&Raft<TypeConfig>> = nodes.values().map(|(r, _)| r).collect();
    let leader = leader_of(&rafts).await;
    for i in 0..50 {
        let response = nodes[&leader]
            .0
            .client_write(put(i).into())
            .await
            .expect("write");
        assert_eq!(response.data[0].result, Ok(Outcome::Applied));
    }
    let target = nodes[&leader].1.read().revision();
    assert_eq!(target, Revision(50));
    for (id, (_, shared)) in &nodes {
        eventually(&format!("node {id} to apply 50"), || {
            shared.read().revision() == target
        })
        .await;
    }

    // Cut the leader off and shut it down: the others elect a new one,
    // which takes writes.
    router.cut(leader);
    let (old, _) = nodes.remove(&leader).unwrap();
    old.shutdown().await.expect("shutdown");
    drop(old);
    let rest: Vec<&Raft<TypeConfig>> = nodes.values().map(|(r, _)| r).collect();
    let new_leader = leader_of(&rest).await;
    assert_ne!(new_leader, leader);
    for i in 50..100 {
        nodes[&new_leader]
            .0
            .client_write(put(i).into())
            .await
            .expect("write after failover");
    }
    let target = nodes[&new_leader].1.read().revision();
    assert_eq!(target, Revision(100));

    // The old leader restarts from its file and catches up.
    let (raft, shared) = start(&router, leader, dir.path()).await;
    eventually("the restarted node to catch up", || {
        shared.read().revision() == target
    })
    .await;
    let expected = nodes[&new_leader]
        .1
        .read()
        .register("k4")
        .map(<[u8]>::to_vec);
    assert_eq!(shared.read().register("k4").map(<[u8]>::to_vec), expected);
    // A refused command is a committed entry with a rejection, same everywhere.
    let refused = nodes[&new_leader]
        .0
        .client_write(
            Command::DeleteTenant {
                name: state::Name::new("tenant", "nobody").unwrap(),
            }
            .into(),
        )
        .await
        .expect("write");
    assert!(refused.data[0].result.is_err());
    // A batch is one entry whose commands apply in order, each with its own
    // revision and outcome; a refused one leaves the others applied.
    let batch = nodes[&new_leader]
        .0
        .client_write(Proposal::Batch(vec![
            put(1000),
            Command::DeleteTenant {
                name: state::Name::new("tenant", "nobody").unwrap(),
            },
            put(1001),
        ]))
        .await
        .expect("write a batch");
    let outcomes: Vec<_> = batch.data.iter().map(|r| r.result.is_ok()).collect();
    assert_eq!(outcomes, [true, false, true]);
    assert_eq!(batch.data[0].revision, Revision(target.0 + 1));
    assert_eq!(batch.data[2].revision, Revision(target.0 + 2));
    let target = batch.data[2].revision;
    eventually("the restarted node to apply the batch", || {
        shared.read().revision() == target
    })
    .await;
    raft.shutdown().await.unwrap();
    for (raft, _) in nodes.values() {
        raft.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_damaged_store_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    {
        let router = Router::default();
        let (raft, _) = start(&router, 1, dir.path()).await;
        let members = BTreeMap::from([(1, BasicNode::new("node-1"))]);
        raft.initialize(members).await.unwrap();
        eventually("a single node to lead", || {
            raft.metrics().borrow().current_leader == Some(1)
        })
        .await;
        for i in 0..10 {
            raft.client_write(put(i).into()).await.unwrap();
        }
        raft.shutdown().await.unwrap();
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
