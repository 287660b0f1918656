//! `dwcp bench control`: commits through a 3-node cluster — Raft over
//! HTTP/2 and mutual TLS on loopback sockets, every log append synced to a
//! redb file — beside the same writes straight into one redb file with no
//! consensus (the durable floor).
//!
//! Two setups, because they answer different questions:
//! - `redb-floor`, `commit-1client` and `writes-64clients` run the three
//!   nodes in this process (each with its own store, server and sockets),
//!   so that the figures are Raft and storage without HTTP or a client.
//! - `commit-1client-processes`, `failover` and `handoff` run three `dwcp
//!   up` child processes ([`super::processes`]) with the timing a user
//!   gets, and write through the HTTP API as a client would; `failover`
//!   kills the leader process with SIGKILL (issue 3: "kill -9 the leader,
//!   time until the next write is acknowledged"), `handoff` stops it with
//!   SIGTERM, a planned restart (issue 21: time without a leader, failed
//!   writes).
//!
//! `redb-floor-rate`, the baseline of `writes-64clients`, is measured: the
//! batches the leader made of those writes, replayed into one synced redb
//! file.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cluster::tls::{self, ClusterCa};
use cluster::transport::{self, PeerNetwork};
use hdrhistogram::Histogram;
use redb::TableDefinition;
use replica::{NodeId, Replica, ReplicaError, Timing};
use state::Command;
use tokio::net::TcpListener;

use super::processes::ProcessCluster;
use super::progress;
use super::report::{Report, Series, histogram, record};
use crate::cli::client::Client;

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
    // Reuse the address, as a node does, so ports in TIME_WAIT do not matter.
    Ok(cluster::serving::listen(addr)?)
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
        let replica = Replica::start(id, &path, network, &bench_timing()).await?;
        let server_tls = tls::server_config(self.ca.cert_pem(), &identity)?;
        let server = transport::serve(listener, server_tls, replica.inbox());
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
    super::on_runtime(measure(quick))
}

async fn measure(quick: bool) -> Result<Report> {
    let samples: u64 = if quick { 300 } else { 2_000 };
    let span = Duration::from_secs(if quick { 1 } else { 3 });
    let trials: u32 = if quick { 5 } else { 20 };
    let process_samples: u64 = if quick { 100 } else { 1_000 };
    let dir = tempfile_dir()?;
    let (inner, user) = (bench_timing(), Timing::default());
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
            "in_process": {
                "series": ["commit-1client", "writes-64clients"],
                "setup": "one process: three nodes with their own stores, servers and sockets",
                "heartbeat_ms": inner.heartbeat.as_millis(),
                "election_timeout_ms": [inner.election.0.as_millis(), inner.election.1.as_millis()],
            },
            "processes": {
                "series": ["commit-1client-processes", "failover", "handoff", "handoff-failed-writes"],
                "setup": "three `dwcp up` child processes on 127.0.0.61-63",
                "heartbeat_ms": user.heartbeat.as_millis(),
                "election_timeout_ms": [user.election.0.as_millis(), user.election.1.as_millis()],
                "kill": "SIGKILL of the leader process",
                "client": "HTTP/1.1 PUT /api/v1/registers/{key}, one fresh connection per request",
                "samples": process_samples,
            },
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
    let cluster = Cluster::start(&dir).await?;
    let leader = cluster.leader().await?;

    progress("control", "commit latency, one client");
    let mut commit = histogram();
    let mut replica = cluster.nodes[&leader].replica.clone();
    // On a loaded machine a follower may time out and win an election
    // mid-run: a write refused as "not the leader" was not applied, so it
    // goes again to the new leader and that attempt is not recorded.
    let mut elections = 0;
    let mut i = 0;
    while i < samples + samples / 10 {
        let t = Instant::now();
        match replica.write(put(i)).await {
            Ok(_) => {}
            Err(ReplicaError::NotLeader { .. }) if elections < MAX_ELECTIONS => {
                elections += 1;
                replica = cluster.nodes[&cluster.leader().await?].replica.clone();
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        if i >= samples / 10 {
            record(&mut commit, t.elapsed());
        }
        i += 1;
    }
    if elections > 0 {
        report.notes.push(format!(
            "the leader changed {elections} time(s) during commit-1client (a loaded machine: a follower's election timeout ran out); the refused writes went again to the new leader and are not in the series"
        ));
    }
    report.series.push(Series::latency(
        "commit-1client",
        &commit,
        Some("redb-floor"),
    ));

    progress("control", "throughput, 64 concurrent clients");
    let first_entry = replica.status().last_log_index.map_or(0, |i| i + 1);
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
    // The batches the leader's group commit made of those writes, entry by
    // entry, replayed into one synced redb file: the durable floor for the
    // same work.
    let batches: Vec<usize> = replica
        .batch_sizes(first_entry)?
        .into_iter()
        .filter(|n| *n > 0)
        .collect();
    progress(
        "control",
        &format!(
            "redb floor for the same batches: {} entries, {} writes",
            batches.len(),
            batches.iter().sum::<usize>()
        ),
    );
    let floor_rate = redb_batched_floor(&dir.join("floor-batched.redb"), &batches)?;
    report.series.push(Series::value(
        "redb-floor-rate",
        "ops/s",
        floor_rate.writes_per_second(),
        floor_rate.writes,
        None,
    ));
    report.series.push(Series::value(
        "writes-64clients",
        "ops/s",
        writes as f64 / elapsed,
        writes,
        Some("redb-floor-rate"),
    ));
    let mean_batch = floor_rate.writes as f64 / batches.len().max(1) as f64;

    for node in cluster.nodes.values() {
        node.server.abort();
        node.replica.shutdown().await;
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);

    progress(
        "control",
        "starting a 3-node cluster of `dwcp up` processes",
    );
    let mut processes = ProcessCluster::start("control").await?;
    progress(
        "control",
        "commit latency through the leader's HTTP API, one client",
    );
    let commit = commit_over_api(&mut processes, process_samples).await?;
    report.series.push(Series::latency(
        "commit-1client-processes",
        &commit,
        Some("redb-floor"),
    ));
    progress(
        "control",
        &format!("failover: kill -9 of the leader process, {trials} trials"),
    );
    let failover = failover(&mut processes, trials).await?;
    report
        .series
        .push(Series::latency("failover", &failover, None));
    progress(
        "control",
        &format!("handoff: SIGTERM of the leader process (a planned restart), {trials} trials"),
    );
    let handoff = handoff(&mut processes, trials).await?;
    report
        .series
        .push(Series::latency("handoff", &handoff.gaps, None));
    report.series.push(Series::value(
        "handoff-failed-writes",
        "count",
        handoff.failed as f64,
        handoff.writes,
        None,
    ));
    processes.finish();

    let mut report = report.finish();
    report.notes.push(
        "commit-1client and writes-64clients run three nodes in this process (own stores, servers and sockets; heartbeat 50 ms, election timeout 200-400 ms); commit-1client is from the request to the leader until a majority has synced the entry and the leader applied it".into(),
    );
    report.notes.push(format!(
        "redb-floor-rate is measured, not derived: the batches the leader's group commit made during writes-64clients ({} entries, {mean_batch:.1} writes each on average), replayed in order into one redb file, one synced transaction per batch holding the batch's commands as JSON, as the log stores them; its value is writes per second",
        batches.len()
    ));
    report.notes.push(format!(
        "commit-1client-processes and failover run three `dwcp up` processes with the timing a user gets (heartbeat {} ms, election timeout {}-{} ms); commit-1client-processes is one PUT /api/v1/registers through the leader's API, each on a fresh HTTP/1.1 connection",
        user.heartbeat.as_millis(),
        user.election.0.as_millis(),
        user.election.1.as_millis()
    ));
    report.notes.push(
        "failover is from SIGKILL of the leader process to the first acknowledged (HTTP 200) register write through a surviving node's API; the killed node is restarted and caught up before the next trial; no baseline".into(),
    );
    report.notes.push(
        "handoff is a planned restart of the leader: SIGTERM to its process, which hands leadership to the most up-to-date voter before it exits, while one client writes back to back through another node's API (a fresh HTTP/1.1 connection per write); each trial's sample is the longest time between two acknowledged writes from just before the signal until the process has exited (so it includes one write's own latency); handoff-failed-writes counts the writes answered with an error over all trials (its samples: the writes made); the stopped node is restarted and caught up before the next trial".into(),
    );
    report.notes.push(format!(
        "failover has a floor from the timing: a follower that has heard a leader waits out the leader's lease (the election timeout's maximum, {} ms) plus its own election timeout (drawn once per process from {}-{} ms) after the last heartbeat before it stands, so no failover here can be shorter than about {} ms",
        user.election.1.as_millis(),
        user.election.0.as_millis(),
        user.election.1.as_millis(),
        (user.election.1 + user.election.0).saturating_sub(user.heartbeat).as_millis()
    ));
    Ok(report)
}

/// One client writing registers through the leader's HTTP API, one write
/// at a time; the first tenth warms up and is not recorded.
async fn commit_over_api(cluster: &mut ProcessCluster, samples: u64) -> Result<Histogram<u64>> {
    let leader = cluster.leader().await?;
    let client = cluster.client(leader);
    let mut hist = histogram();
    for i in 0..samples + samples / 10 {
        let t = Instant::now();
        put_register(client, "bench-commit", i)
            .await
            .with_context(|| format!("write {i}; see {}", cluster.log(leader).display()))?;
        if i >= samples / 10 {
            record(&mut hist, t.elapsed());
        }
    }
    Ok(hist)
}

/// Each trial: a write through a surviving node is acknowledged, the leader
/// process gets SIGKILL, and writes through the survivors are retried until
/// one is acknowledged; that span is the sample. The killed node then comes
/// back and catches up, so every trial starts from three healthy voters.
async fn failover(cluster: &mut ProcessCluster, trials: u32) -> Result<Histogram<u64>> {
    let mut hist = histogram();
    let mut counter = 0;
    for trial in 1..=trials {
        let leader = cluster.leader().await?;
        let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        write_until_acknowledged(cluster, &survivors, &mut counter)
            .await
            .with_context(|| format!("failover trial {trial}: writing before the kill"))?;
        cluster.kill(leader)?;
        let killed = Instant::now();
        write_until_acknowledged(cluster, &survivors, &mut counter)
            .await
            .with_context(|| {
                format!(
                    "failover trial {trial}: after killing the leader (its log: {})",
                    cluster.log(leader).display()
                )
            })?;
        let took = killed.elapsed();
        record(&mut hist, took);
        progress(
            "control",
            &format!("failover trial {trial}/{trials}: {} ms", took.as_millis()),
        );
        cluster.restart(leader).await?;
    }
    Ok(hist)
}

/// What the hand-off trials measured.
struct Handoff {
    /// Per trial: the longest time between two acknowledged writes.
    gaps: Histogram<u64>,
    /// Writes answered with an error, over all trials.
    failed: u64,
    /// Writes made, over all trials.
    writes: u64,
}

/// Writes before the signal in each hand-off trial: the client is in its
/// stride when the leader goes.
const HANDOFF_WARMUP_WRITES: usize = 20;
/// How long the client keeps writing after the stopped process exited:
/// enough for writes to flow again at their usual pace.
const HANDOFF_TAIL: Duration = Duration::from_millis(300);

/// Each trial: a client writes back to back through a node that does not
/// lead; the leader process gets SIGTERM (a planned restart: it hands
/// leadership over, then exits); the sample is the longest time between
/// two acknowledged writes. The stopped node then comes back and catches
/// up, so every trial starts from three healthy voters.
async fn handoff(cluster: &mut ProcessCluster, trials: u32) -> Result<Handoff> {
    let mut out = Handoff {
        gaps: histogram(),
        failed: 0,
        writes: 0,
    };
    for trial in 1..=trials {
        let leader = cluster.leader().await?;
        let through = (0..3).find(|&i| i != leader).context("three nodes")?;
        let client = Client::new(&crate::cli::client::ApiArgs {
            api: format!("http://{}", cluster.api(through)),
            token: Some(cluster.admin_token().to_string()),
            ca_file: None,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (warm_tx, warm_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(write_back_to_back(client, stop.clone(), warm_tx));
        // A cluster that takes no writes at all fails the trial below.
        let _ = tokio::time::timeout(FAILOVER_DEADLINE, warm_rx).await;
        cluster
            .terminate(leader)
            .await
            .with_context(|| format!("handoff trial {trial}: stopping the leader"))?;
        tokio::time::sleep(HANDOFF_TAIL).await;
        stop.store(true, Ordering::Relaxed);
        let log = writer.await?;
        let gap = log
            .acknowledged
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        record(&mut out.gaps, gap);
        out.failed += log.failed;
        out.writes += log.acknowledged.len() as u64 + log.failed;
        progress(
            "control",
            &format!(
                "handoff trial {trial}/{trials}: longest gap {} ms, {} failed writes",
                gap.as_millis(),
                log.failed
            ),
        );
        cluster.restart(leader).await?;
    }
    Ok(out)
}

/// What a back-to-back writer saw.
struct WriterLog {
    /// When each acknowledged write was answered, in order.
    acknowledged: Vec<Instant>,
    failed: u64,
}

/// Writes the next value to the `handoff` register through `client`, one
/// write after the other, until `stop`; says on `warm` once
/// [`HANDOFF_WARMUP_WRITES`] were acknowledged.
async fn write_back_to_back(
    client: Client,
    stop: Arc<AtomicBool>,
    warm: tokio::sync::oneshot::Sender<()>,
) -> WriterLog {
    let mut log = WriterLog {
        acknowledged: Vec::new(),
        failed: 0,
    };
    let mut warm = Some(warm);
    let mut value = 0;
    while !stop.load(Ordering::Relaxed) {
        value += 1;
        match put_register(&client, "handoff", value).await {
            Ok(()) => log.acknowledged.push(Instant::now()),
            Err(e) => {
                log.failed += 1;
                progress("control", &format!("handoff: a write failed: {e:#}"));
            }
        }
        if log.acknowledged.len() >= HANDOFF_WARMUP_WRITES
            && let Some(warm) = warm.take()
        {
            let _ = warm.send(());
        }
    }
    log
}

/// Bounds one trial's wait for an acknowledged write: far beyond any
/// election, so only a broken cluster reaches it.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

/// Writes the next counter value to the `failover` register through
/// `nodes` in turn until one write is acknowledged. A node whose leader is
/// gone holds the request until a new leader is known, or answers an error
/// (then the next node is asked).
async fn write_until_acknowledged(
    cluster: &ProcessCluster,
    nodes: &[usize],
    counter: &mut u64,
) -> Result<()> {
    let deadline = Instant::now() + FAILOVER_DEADLINE;
    let mut last = String::from("no node to write through");
    for &node in nodes.iter().cycle() {
        *counter += 1;
        match put_register(cluster.client(node), "failover", *counter).await {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            break;
        }
        // Errors come back at once (a refused or reset connection): a short
        // pause keeps the retries from starving the nodes of the CPU.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    anyhow::bail!(
        "no write was acknowledged within {} s; last error: {last}",
        FAILOVER_DEADLINE.as_secs()
    )
}

/// `PUT /api/v1/registers/{key}` with `value`; Ok once the API answered 200.
async fn put_register(client: &Client, key: &str, value: u64) -> Result<()> {
    let body = serde_json::json!({ "value": value.to_string() });
    client
        .put::<_, serde::de::IgnoredAny>(&format!("/registers/{key}"), &body)
        .await?;
    Ok(())
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

/// What a floor replay wrote and how long it took.
struct FloorRate {
    writes: u64,
    elapsed: Duration,
}

impl FloorRate {
    fn writes_per_second(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The batches `sizes` (commands per log entry, in order) written straight
/// into one redb file: each batch one synced transaction holding one row,
/// the JSON of a batch of that many writes (what the log stores for it).
fn redb_batched_floor(path: &Path, sizes: &[usize]) -> Result<FloorRate> {
    let db = redb::Database::create(path)?;
    let mut writes = 0u64;
    let started = Instant::now();
    for (index, &size) in sizes.iter().enumerate() {
        let batch: Vec<Command> = (0..size as u64).map(|i| put(writes + i)).collect();
        let bytes = serde_json::to_vec(&batch)?;
        let txn = db.begin_write()?;
        txn.open_table(FLOOR)?
            .insert(index as u64, bytes.as_slice())?;
        txn.commit()?;
        writes += size as u64;
    }
    Ok(FloorRate {
        writes,
        elapsed: started.elapsed(),
    })
}

/// A fresh directory for the bench's stores, under the system temp dir.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("dwcp-bench-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Leader changes the one-client series survives before it gives up.
const MAX_ELECTIONS: u32 = 10;

/// Heartbeat and election timing for the bench cluster (loopback: short).
fn bench_timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(200), Duration::from_millis(400)),
        ..Timing::default()
    }
}
