//! A Jepsen-style test in one process: concurrent clients write, read and
//! compare-and-set registers through a 3-node cluster while a nemesis cuts
//! nodes off, heals the network and restarts nodes from their files. The
//! recorded history must be linearizable, with nothing acknowledged lost,
//! for every seed. (The same test across real processes and a real network
//! comes with the TLS transport.)

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::linearizable::{self, Entry, Op};
use common::{Router, start_replica};
use replica::{NodeId, Replica, ReplicaError, Timing};
use rng::SplitMix64;
use state::{Command, Outcome};
use tokio::sync::RwLock;

const CLIENTS: u64 = 3;
const OPS_PER_CLIENT: u64 = 30;
/// A client keeps going past [`OPS_PER_CLIENT`] until this many of its
/// operations were acknowledged (a loaded machine can spend most of a short
/// run in elections), within [`CLIENT_DEADLINE`].
const MIN_ACKED_PER_CLIENT: usize = 10;
/// How long a client may keep going to reach [`MIN_ACKED_PER_CLIENT`].
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);
/// Values are `id * 1000 + n`: `n` stays below 1000 so clients' values never meet.
const MAX_OPS_PER_CLIENT: u64 = 999;
const KEYS: u64 = 2;
/// Bounds a client's tries (refusals included) so that a cluster that
/// never recovers fails the test instead of hanging it.
const MAX_ATTEMPTS_PER_CLIENT: u64 = 2000;

fn timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(250), Duration::from_millis(500)),
        snapshot_every: 20,
    }
}

type Nodes = Arc<RwLock<BTreeMap<NodeId, Arc<Replica>>>>;

fn encode(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn decode(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

/// One client's operations, recorded into `history`.
async fn client(id: u64, seed: u64, nodes: Nodes, clock: Instant, history: Arc<Mutex<Vec<Entry>>>) {
    let mut rng = SplitMix64::new(seed ^ (id + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let now = || clock.elapsed().as_nanos() as u64;
    // An operation refused without effect (no leader known, or a read that
    // could not be confirmed) is tried again after a pause, as a client
    // would, so that every client records its operations across the
    // nemesis's actions instead of failing fast through an election.
    let mut n = 0;
    let mut attempts = 0;
    let mut acked = 0;
    while attempts < MAX_ATTEMPTS_PER_CLIENT
        && n < MAX_OPS_PER_CLIENT
        && (n < OPS_PER_CLIENT
            || (acked < MIN_ACKED_PER_CLIENT && clock.elapsed() < CLIENT_DEADLINE))
    {
        attempts += 1;
        let key = format!("r{}", rng.next_u64() % KEYS);
        // Mostly to a node that believes it leads (it may be cut off and
        // stale), sometimes to any node.
        let target = {
            let nodes = nodes.read().await;
            let ids: Vec<&NodeId> = nodes.keys().collect();
            let any = nodes[ids[(rng.next_u64() % ids.len() as u64) as usize]].clone();
            let leader = nodes
                .values()
                .find(|r| r.status().role == "leader")
                .cloned();
            match leader {
                Some(l) if rng.next_u64() % 10 < 7 => l,
                _ => any,
            }
        };
        let value = id * 1000 + n;
        let invoked = now();
        let limit = Duration::from_secs(3);
        let entry = match rng.next_u64() % 3 {
            0 => {
                let cmd = Command::Put {
                    key: key.clone(),
                    value: encode(value),
                };
                match tokio::time::timeout(limit, target.write(cmd)).await {
                    Ok(Err(ReplicaError::NotLeader { .. })) => None, // never proposed
                    Ok(Ok(_)) => Some((Op::Write(value), Some(now()))),
                    _ => Some((Op::Write(value), None)),
                }
            }
            1 => match tokio::time::timeout(limit, target.read()).await {
                Ok(Ok(state)) => {
                    let seen = state.register(&key).map(decode);
                    Some((Op::Read(seen), Some(now())))
                }
                _ => None, // a failed read changed nothing
            },
            _ => {
                let expected = rng
                    .next_u64()
                    .is_multiple_of(2)
                    .then(|| (rng.next_u64() % CLIENTS) * 1000 + rng.next_u64() % n.max(1));
                let cmd = Command::CompareAndSwap {
                    key: key.clone(),
                    expected: expected.map(encode),
                    new: Some(encode(value)),
                };
                match tokio::time::timeout(limit, target.write(cmd)).await {
                    Ok(Err(ReplicaError::NotLeader { .. })) => None,
                    Ok(Ok(response)) => match response.result {
                        Ok(Outcome::Swapped { swapped, .. }) => Some((
                            Op::Cas {
                                expected,
                                new: value,
                                swapped,
                            },
                            Some(now()),
                        )),
                        other => panic!("a compare-and-swap answered {other:?}"),
                    },
                    _ => Some((
                        Op::Cas {
                            expected,
                            new: value,
                            swapped: false,
                        },
                        None,
                    )),
                }
            }
        };
        if let Some((op, returned)) = entry {
            acked += usize::from(returned.is_some());
            history.lock().unwrap().push(Entry {
                key,
                op,
                invoked,
                returned,
            });
            n += 1;
        }
        // Think time, so that the run spans the nemesis's actions.
        tokio::time::sleep(Duration::from_millis(10 + rng.next_u64() % 50)).await;
    }
}

/// Cuts, heals and restarts nodes until told to stop.
async fn nemesis(
    seed: u64,
    router: Router,
    nodes: Nodes,
    dir: std::path::PathBuf,
    stop: Arc<tokio::sync::Notify>,
) -> u32 {
    let mut rng = SplitMix64::new(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut actions = 0;
    loop {
        actions += 1;
        match rng.next_u64() % 3 {
            0 => router.cut(1 + rng.next_u64() % 3),
            1 => router.heal(),
            _ => {
                let id = 1 + rng.next_u64() % 3;
                let old = nodes.write().await.remove(&id);
                if let Some(old) = old {
                    old.shutdown().await;
                }
                let fresh = Arc::new(start_replica(&router, id, &dir, &timing()).await);
                nodes.write().await.insert(id, fresh);
            }
        }
        // The nemesis's schedule: act every 150-400 ms.
        let pause = Duration::from_millis(150 + rng.next_u64() % 250);
        tokio::select! {
            _ = stop.notified() => return actions,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::default();
    let nodes: Nodes = Arc::default();
    for id in 1..=3 {
        let replica = Arc::new(start_replica(&router, id, dir.path(), &timing()).await);
        nodes.write().await.insert(id, replica);
    }
    let members = (1..=3).map(|id| (id, format!("node-{id}"))).collect();
    nodes.read().await[&1].initialize(members).await.unwrap();

    let clock = Instant::now();
    let history = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let chaos = tokio::spawn(nemesis(
        seed,
        router.clone(),
        nodes.clone(),
        dir.path().to_path_buf(),
        stop.clone(),
    ));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(id, seed, nodes.clone(), clock, history.clone())))
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    stop.notify_one();
    let actions = chaos.await.unwrap();
    assert!(
        actions >= 3,
        "seed {seed}: the nemesis acted only {actions} times"
    );
    router.heal();

    // After the storm: every acknowledged write must still be visible. A
    // final linearizable read of each key joins the history.
    for k in 0..KEYS {
        let key = format!("r{k}");
        let mut read = None;
        for _ in 0..600 {
            let leader = {
                nodes
                    .read()
                    .await
                    .values()
                    .find(|r| r.status().role == "leader")
                    .cloned()
            };
            if let Some(leader) = leader {
                let invoked = clock.elapsed().as_nanos() as u64;
                if let Ok(state) = leader.read().await {
                    let seen = state.register(&key).map(decode);
                    read = Some(Entry {
                        key: key.clone(),
                        op: Op::Read(seen),
                        invoked,
                        returned: Some(clock.elapsed().as_nanos() as u64),
                    });
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        history
            .lock()
            .unwrap()
            .push(read.expect("the healed cluster serves a read"));
    }
    let history = history.lock().unwrap().clone();
    let acknowledged = history.iter().filter(|e| e.returned.is_some()).count();
    assert!(
        acknowledged > 20,
        "seed {seed}: too few operations completed ({acknowledged}) to judge"
    );
    if let Err(e) = linearizable::check(&history) {
        panic!("seed {seed}: {e}\n{history:#?}");
    }
    for replica in nodes.read().await.values() {
        replica.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_stay_linearizable_under_partitions_and_restarts() {
    linearizable::self_check();
    for seed in 1..=10 {
        run(seed).await;
    }
}
