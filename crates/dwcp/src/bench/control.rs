//! `dwcp bench control`: commits through a 3-node cluster — Raft over
//! HTTP/2 and mutual TLS on loopback sockets, every log append synced to a
//! redb file — beside the same writes straight into one redb file with no
//! consensus (the durable floor).
//!
//! The three nodes run in this process (each with its own store, server and
//! sockets); the failover series stops the leader in-process (its server
//! goes away with its connections), which is gentler than `kill -9` of a
//! separate process: that version comes with `dwcp up`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use control::Command;
use control::replica::{NodeId, Replica, ReplicaError, Timing};
use control::tls::{self, ClusterCa};
use control::transport::{self, PeerNetwork};
use redb::TableDefinition;
use tokio::net::{TcpListener, TcpSocket};

use super::progress;
use super::report::{Report, Series, histogram, record};

struct Node {
    replica: Arc<Replica>,
    server: tokio::task::JoinHandle<()>,
}

struct Cluster {
    ca: ClusterCa,
    addrs: BTreeMap<NodeId, SocketAddr>,
    nodes: BTreeMap<NodeId, Node>,
}

fn listen(addr: SocketAddr) -> Result<TcpListener> {
    // Reuse the address: a restarted node comes back on the port its peers know.
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(128)?)
}

impl Cluster {
    async fn start(dir: &Path) -> Result<Cluster> {
        let ca = ClusterCa::create("bench")?;
        let mut cluster = Cluster {
            ca,
            addrs: BTreeMap::new(),
            nodes: BTreeMap::new(),
        };
        for id in 1..=3 {
            let listener = listen("127.0.0.1:0".parse()?)?;
            cluster.addrs.insert(id, listener.local_addr()?);
            cluster.start_node(id, dir, listener).await?;
        }
        let members = cluster
            .addrs
            .iter()
            .map(|(id, a)| (*id, a.to_string()))
            .collect();
        cluster.nodes[&1].replica.initialize(members).await?;
        Ok(cluster)
    }

    async fn start_node(&mut self, id: NodeId, dir: &Path, listener: TcpListener) -> Result<()> {
        let identity = self
            .ca
            .issue(&format!("node-{id}"), &["127.0.0.1".into()])?;
        let network = PeerNetwork::new(tls::client_config(self.ca.cert_pem(), &identity)?);
        let path = dir.join(format!("node-{id}.redb"));
        // A node restarted in this process waits for its old tasks to let
        // go of the file.
        let mut tries = 0;
        let replica = loop {
            match Replica::start(id, &path, network.clone(), &bench_timing()).await {
                Ok(r) => break r,
                Err(e) if e.to_string().contains("already open") && tries < 200 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let server_tls = tls::server_config(self.ca.cert_pem(), &identity)?;
        let server = transport::serve(listener, server_tls, replica.raft().clone());
        self.nodes.insert(
            id,
            Node {
                replica: Arc::new(replica),
                server,
            },
        );
        Ok(())
    }

    /// The node that leads, once one does.
    async fn leader(&self) -> Result<NodeId> {
        for _ in 0..1200 {
            for (id, node) in &self.nodes {
                if node.replica.status().role == "leader" {
                    return Ok(*id);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("no leader was elected within 6 s")
    }
}

fn put(i: u64) -> Command {
    Command::Put {
        key: format!("bench-{}", i % 64),
        value: i.to_le_bytes().to_vec(),
    }
}

pub fn run(quick: bool) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(quick))
}

async fn measure(quick: bool) -> Result<Report> {
    let samples: u64 = if quick { 300 } else { 2_000 };
    let span = Duration::from_secs(if quick { 1 } else { 3 });
    let trials = if quick { 3 } else { 20 };
    let dir = tempfile_dir()?;
    let mut report = Report::new(
        "control",
        serde_json::json!({
            "nodes": 3,
            "transport": "HTTP/2 over mutual TLS 1.3 on loopback",
            "storage": "redb, each append synced",
            "samples": samples,
            "clients_for_throughput": 64,
            "throughput_seconds": span.as_secs_f64(),
            "failover_trials": trials,
            "heartbeat_ms": 50,
            "election_timeout_ms": [200, 400],
            "processes": "one (three nodes with their own stores, servers and sockets)",
        }),
    );

    progress(
        "control",
        "redb floor: the same writes into one redb file, synced, no consensus",
    );
    let floor = redb_floor(&dir.join("floor.redb"), samples)?;
    report
        .series
        .push(Series::latency("redb-floor", &floor, None));

    progress("control", "starting a 3-node cluster");
    let mut cluster = Cluster::start(&dir).await?;
    let leader = cluster.leader().await?;

    progress("control", "commit latency, one client");
    let mut commit = histogram();
    let replica = cluster.nodes[&leader].replica.clone();
    for i in 0..samples + samples / 10 {
        let t = Instant::now();
        replica.write(put(i)).await?;
        if i >= samples / 10 {
            record(&mut commit, t.elapsed());
        }
    }
    report.series.push(Series::latency(
        "commit-1client",
        &commit,
        Some("redb-floor"),
    ));

    progress("control", "throughput, 64 concurrent clients");
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..64u64)
        .map(|c| {
            let (replica, done, stop) = (replica.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = c << 32;
                while !stop.load(Ordering::Relaxed) {
                    if replica.write(put(i)).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(span).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let writes = done.load(Ordering::Relaxed);
    let floor_rate = 1e12 / floor.mean().max(1.0); // ps per write -> writes/s
    report.series.push(Series::value(
        "redb-floor-rate",
        "ops/s",
        floor_rate,
        floor.len(),
        None,
    ));
    report.series.push(Series::value(
        "writes-64clients",
        "ops/s",
        writes as f64 / elapsed,
        writes,
        Some("redb-floor-rate"),
    ));

    progress(
        "control",
        &format!("failover: stopping the leader, {trials} trials"),
    );
    let mut failover = histogram();
    for trial in 0..trials {
        let leader = cluster.leader().await?;
        let addr = cluster.addrs[&leader];
        let old = cluster.nodes.remove(&leader).context("leader")?;
        let t = Instant::now();
        old.server.abort();
        old.replica.shutdown().await;
        drop(old);
        let mut acknowledged = false;
        while t.elapsed() < Duration::from_secs(30) {
            for node in cluster.nodes.values() {
                match node.replica.write(put(trial)).await {
                    Ok(_) => acknowledged = true,
                    Err(ReplicaError::NotLeader { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                if acknowledged {
                    break;
                }
            }
            if acknowledged {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        anyhow::ensure!(
            acknowledged,
            "no write was acknowledged within 30 s of stopping the leader"
        );
        record(&mut failover, t.elapsed());
        // Bring the node back and let it catch up before the next trial.
        let listener = listen(addr)?;
        cluster.start_node(leader, &dir, listener).await?;
        let target = cluster
            .nodes
            .values()
            .map(|n| n.replica.read_local().revision())
            .max();
        for _ in 0..2000 {
            if Some(cluster.nodes[&leader].replica.read_local().revision()) >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    report
        .series
        .push(Series::latency("failover", &failover, None));

    for node in cluster.nodes.values() {
        node.server.abort();
        node.replica.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut report = report.finish();
    report.notes.push(
        "commit-1client is from the request to the leader until a majority has synced the entry and the leader applied it".into(),
    );
    report.notes.push(
        "failover is from stopping the leader (in this process: its server and connections go away) to the next acknowledged write; heartbeat 50 ms, election timeout 200-400 ms".into(),
    );
    Ok(report)
}

const FLOOR: TableDefinition<u64, &[u8]> = TableDefinition::new("floor");

/// The same writes straight into one redb file: one synced transaction each.
fn redb_floor(path: &Path, samples: u64) -> Result<hdrhistogram::Histogram<u64>> {
    let db = redb::Database::create(path)?;
    let mut hist = histogram();
    for i in 0..samples + samples / 10 {
        let t = Instant::now();
        let bytes = serde_json::to_vec(&put(i))?;
        let txn = db.begin_write()?;
        txn.open_table(FLOOR)?.insert(i, bytes.as_slice())?;
        txn.commit()?;
        if i >= samples / 10 {
            record(&mut hist, t.elapsed());
        }
    }
    Ok(hist)
}

/// A fresh directory for the bench's stores, under the system temp dir.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("dwcp-bench-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Heartbeat and election timing for the bench cluster (loopback: short).
fn bench_timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(200), Duration::from_millis(400)),
        ..Timing::default()
    }
}
