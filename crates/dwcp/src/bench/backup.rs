//! `dwcp bench backup`: the backup and restore drill — recovery time (RTO)
//! and recovery point (RPO) of `dwcp backup` and `dwcp restore`, measured
//! on real processes.
//!
//! Setup: one `dwcp up` child process ([`super::processes`]) filled through
//! its API with 100,000 registers and 1 GiB of artifacts (18 modules of
//! 60 MiB, each named by a version; `--quick`: 5,000 registers, 2 modules of
//! 8 MiB). A writer keeps writing one register (`bench-backup-rpo`, a
//! counter) through the API the whole time.
//!
//! Series:
//! - `backup-take`: `dwcp backup`'s code path (`cli::backup::take`): the
//!   node's linearizable read, the artifacts fetched over the API, sealed
//!   and synced into a new file;
//! - `restore-rto`: recovery time — from starting the `dwcp restore`
//!   process until a `dwcp up` on the restored directory answers a read
//!   of the counter with the backup's value (restore, found, start, serve);
//! - `restore-process`: the `dwcp restore` process alone;
//! - `restore-copy-floor` (baseline): copying the source node's data
//!   directory file by file and syncing it — the same bytes moved with no
//!   sealing, checking or founding, the least any restore costs here;
//! - `rpo-on-demand`: the age of the newest write a backup holds when the
//!   backup is complete (the writes acknowledged after the node's read are
//!   in the next backup, not this one). Every write acknowledged before
//!   `dwcp backup` started is checked to be in the restored cluster;
//! - `rpo-scheduled-bound`: for `dwcp up --backup-every 1h`, the worst
//!   case, computed (not measured): the interval plus `rpo-on-demand`.
//!
//! The restored cluster is checked (every 1,000th register, the counter,
//! and every artifact by digest) after the clock stops; a mismatch fails
//! the bench.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use cluster::backup::BackupKey;
use serde::de::IgnoredAny;

use super::processes::ProcessCluster;
use super::progress;
use super::report::{Report, Series};
use crate::cli::client::{ApiArgs, Client};

const BENCH: &str = "backup";
/// The counter the writer increments through the whole drill.
const COUNTER: &str = "bench-backup-rpo";
/// Concurrent writers while filling the registers.
const FILLERS: u64 = 64;
/// The interval `rpo-scheduled-bound` assumes (`dwcp up`'s default).
const SCHEDULE_EVERY: Duration = Duration::from_secs(3600);
/// Bounds the wait for the restored node to serve.
const SERVE_DEADLINE: Duration = Duration::from_secs(300);

/// How much the drill backs up.
struct Size {
    registers: u64,
    artifacts: usize,
    artifact_bytes: usize,
}

pub fn run(quick: bool) -> Result<Report> {
    super::on_runtime(measure(quick))
}

async fn measure(quick: bool) -> Result<Report> {
    let size = if quick {
        Size {
            registers: 5_000,
            artifacts: 2,
            artifact_bytes: 8 << 20,
        }
    } else {
        Size {
            registers: 100_000,
            artifacts: 18,
            artifact_bytes: 60 << 20,
        }
    };
    let total_artifact_bytes = (size.artifacts * size.artifact_bytes) as u64;
    let cluster = ProcessCluster::start_with(BENCH, 1).await?;
    let api = format!("http://{}", cluster.api(0));
    let admin = cluster.admin_token().to_string();
    let client = client_for(&api, &admin)?;

    progress(BENCH, &format!("writing {} registers", size.registers));
    fill_registers(&api, &admin, size.registers).await?;
    progress(
        BENCH,
        &format!(
            "uploading {} artifacts of {} MiB, each a version",
            size.artifacts,
            size.artifact_bytes >> 20
        ),
    );
    let digests = fill_artifacts(&client, &size).await?;

    // The writer runs through the backup; its acknowledgements say which
    // writes a backup must hold.
    let writer = Writer::start(client_for(&api, &admin)?);
    writer.wait_for_acks(20).await?;
    let dir = cluster.dir().join("drill");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = BackupKey::generate()?;
    let key_file = dir.join("backup.key");
    key.save(&key_file)?;
    let file = dir.join("cluster.dwcpbak");
    progress(BENCH, "taking the backup while the writer writes");
    let acked_before = writer.last_acked();
    let taken = crate::cli::backup::take(&client, false, &file, &key).await?;
    let done = Instant::now();
    let acks = writer.stop().await?;

    progress(BENCH, "restoring into a new cluster and starting it");
    let served = restore_and_serve(
        &file,
        &key_file,
        &cluster.dir().join("restored"),
        &cluster.dir().join("restored.log"),
        &admin,
        COUNTER,
    )
    .await?;
    let (restored, node, restore_process, rto) = (
        served.client,
        served.node,
        served.restore_process,
        served.elapsed,
    );
    let in_backup: u64 = served
        .value
        .parse()
        .context("the counter is not a number")?;

    // What the backup holds: every write acknowledged before it began.
    if in_backup < acked_before {
        bail!(
            "the restored counter is {in_backup}, but write {acked_before} was acknowledged before the backup began"
        );
    }
    let newest_ack = acks
        .iter()
        .find(|(n, _)| *n == in_backup)
        .map(|(_, at)| *at)
        .with_context(|| format!("write {in_backup} was never acknowledged to the writer"))?;
    let rpo = done.saturating_duration_since(newest_ack);
    let lost_after = acks.iter().filter(|(n, _)| *n > in_backup).count();
    check_restored(&restored, &size, &digests).await?;
    drop(node);

    progress(BENCH, "baseline: copying the source node's data directory");
    let floor = copy_floor(&cluster.data_dir(0), &cluster.dir().join("copy"))?;

    let mut report = Report::new(
        BENCH,
        serde_json::json!({
            "setup": "one `dwcp up` child process (127.0.0.61), filled through its API; the restored node is a second `dwcp up` (127.0.0.69)",
            "registers": size.registers,
            "artifacts": size.artifacts,
            "artifact_bytes": total_artifact_bytes,
            "backup_file_bytes": taken.file_bytes,
            "backup_revision": taken.header.revision,
            "backup_log_index": taken.log_index,
            "writer": format!("one client writing `{COUNTER}` (a counter) through PUT /api/v1/registers in a loop during the backup"),
            "writes_acknowledged_during_backup": acks.iter().filter(|(n, _)| *n > acked_before).count(),
            "writes_not_in_backup": lost_after,
            "scheduled_every_s": SCHEDULE_EVERY.as_secs(),
        }),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (name, value, baseline) in [
        ("backup-take", taken.elapsed, None),
        ("restore-rto", rto, Some("restore-copy-floor")),
        (
            "restore-process",
            restore_process,
            Some("restore-copy-floor"),
        ),
        ("restore-copy-floor", floor, None),
        ("rpo-on-demand", rpo, None),
        ("rpo-scheduled-bound", SCHEDULE_EVERY + rpo, None),
    ] {
        report
            .series
            .push(Series::value(name, "ms", ms(value), 1, baseline).fewer_is_better());
    }
    let mut report = report.finish();
    report.notes.push(format!(
        "RTO {:.1} s for {} registers and {:.0} MiB of artifacts (goal <= 60 s): `dwcp restore` {:.1} s, then `dwcp up` on the restored directory until it served the counter",
        rto.as_secs_f64(),
        size.registers,
        total_artifact_bytes as f64 / f64::from(1 << 20),
        restore_process.as_secs_f64()
    ));
    report.notes.push(format!(
        "RPO: an on-demand backup holds every write acknowledged before `dwcp backup` started (checked: counter {in_backup} >= {acked_before}); it misses those acknowledged after the node's read ({lost_after} here), so when it is complete its newest write is {:.0} ms old. Scheduled backups (`--backup-every`) lose at most the interval plus that",
        ms(rpo)
    ));
    report.notes.push(
        "one trial per series (a drill, not a distribution): compare runs, not percentiles".into(),
    );
    cluster.finish();
    Ok(report)
}

fn client_for(api: &str, token: &str) -> Result<Client> {
    Ok(Client::new(&ApiArgs {
        api: api.to_string(),
        token: Some(token.to_string()),
        ca_file: None,
    })?)
}

/// `PUT /api/v1/registers/{key}` with `value`.
async fn put(client: &Client, key: &str, value: &str) -> Result<()> {
    client
        .put::<_, IgnoredAny>(
            &format!("/registers/{key}"),
            &serde_json::json!({ "value": value }),
        )
        .await?;
    Ok(())
}

/// The register `bench-backup-{i}` holds `value-{i}`.
fn register(i: u64) -> (String, String) {
    (format!("bench-backup-{i}"), format!("value-{i}"))
}

/// Writes `n` registers from [`FILLERS`] concurrent clients.
async fn fill_registers(api: &str, token: &str, n: u64) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..FILLERS {
        let client = client_for(api, token)?;
        tasks.spawn(async move {
            let mut i = w;
            while i < n {
                let (key, value) = register(i);
                put(&client, &key, &value).await?;
                i += FILLERS;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a filler stopped")??;
    }
    Ok(())
}

/// A module the node admits (a `_start` that returns) followed by a custom
/// section of `payload_bytes` pseudo-random bytes seeded by `seed`, so
/// every module is distinct and none compresses.
pub(crate) fn module(seed: u64, payload_bytes: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    m.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type () -> ()
    m.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]); // one function of type 0
    m.extend_from_slice(&[0x07, 0x0a, 0x01, 0x06]); // export, 6-byte name
    m.extend_from_slice(b"_start");
    m.extend_from_slice(&[0x00, 0x00]); // function 0
    m.extend_from_slice(&[0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]); // empty body
    let name = b"dwcp-bench-backup";
    m.push(0x00); // custom section
    let mut size = Vec::new();
    leb(1 + name.len() + payload_bytes, &mut size);
    m.extend_from_slice(&size);
    m.push(name.len() as u8);
    m.extend_from_slice(name);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    m.reserve(payload_bytes);
    for _ in 0..payload_bytes / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.extend_from_slice(&x.to_le_bytes());
    }
    m.resize(m.len() + payload_bytes % 8, 0);
    m
}

/// Uploads the artifacts, each a version of the app `bench-backup`;
/// their digests.
async fn fill_artifacts(client: &Client, size: &Size) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Blob {
        digest: String,
    }
    client
        .post::<_, IgnoredAny>(
            "/tenants/default/apps",
            &serde_json::json!({"name": "bench-backup", "route": "/bench-backup"}),
        )
        .await?;
    let mut digests = Vec::new();
    for i in 0..size.artifacts {
        let bytes = module(i as u64 + 1, size.artifact_bytes);
        let blob: Blob = client
            .upload("/blobs", "application/wasm", Bytes::from(bytes))
            .await
            .with_context(|| format!("uploading artifact {i}"))?;
        client
            .post::<_, IgnoredAny>(
                "/tenants/default/apps/bench-backup/versions",
                &serde_json::json!({"digest": blob.digest, "config": {}}),
            )
            .await?;
        digests.push(blob.digest);
    }
    Ok(digests)
}

/// Writes 1, 2, 3, … into [`COUNTER`] one after the other, noting when
/// each was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acks: Arc<std::sync::Mutex<Vec<(u64, Instant)>>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Writer {
    fn start(client: Client) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acks.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                put(&client, COUNTER, &n.to_string()).await?;
                a.lock()
                    .expect("no writer panics holding the lock")
                    .push((n, Instant::now()));
            }
            Ok(())
        });
        Writer { stop, acks, task }
    }

    fn last_acked(&self) -> u64 {
        self.acks
            .lock()
            .expect("no writer panics holding the lock")
            .last()
            .map_or(0, |(n, _)| *n)
    }

    async fn wait_for_acks(&self, n: u64) -> Result<()> {
        let deadline = Instant::now() + SERVE_DEADLINE;
        while self.last_acked() < n {
            if self.task.is_finished() || Instant::now() > deadline {
                bail!("the writer made {} writes, expected {n}", self.last_acked());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn stop(self) -> Result<Vec<(u64, Instant)>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("the writer stopped")??;
        let acks = std::mem::take(&mut *self.acks.lock().expect("no writer panics"));
        Ok(acks)
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Register {
    /// The register's text.
    pub value: String,
}

/// A restored node, serving.
pub(crate) struct Served {
    /// The `dwcp up` on the restored directory (killed when dropped).
    pub node: harness::NodeProcess,
    /// Its API, with the token given.
    pub client: Client,
    /// The `dwcp restore` process alone.
    pub restore_process: Duration,
    /// From starting `dwcp restore` until the node served `register`.
    pub elapsed: Duration,
    /// The register's value as the restored node served it.
    pub value: String,
}

/// Restores `file` (sealed under the key in `key_file`) into `dir` with
/// `dwcp restore`, starts `dwcp up` on it (logging to `log`) on fresh
/// loopback ports, and waits until its API serves `register` to `token`
/// (a token of the backed-up cluster): the recovery time, measured.
pub(crate) async fn restore_and_serve(
    file: &Path,
    key_file: &Path,
    dir: &Path,
    log: &Path,
    token: &str,
    register: &str,
) -> Result<Served> {
    let ip = std::net::Ipv4Addr::new(127, 0, 0, 69);
    let [peer, api, gateway] = harness::free_ports(ip)?;
    let started = Instant::now();
    let exe = std::env::current_exe().context("finding the dwcp binary")?;
    let restore = tokio::process::Command::new(&exe)
        .arg("restore")
        .arg(file)
        .arg("--data-dir")
        .arg(dir)
        .arg("--key-file")
        .arg(key_file)
        .args(["--listen", &peer.to_string(), "--api", &api.to_string()])
        .env_remove("DWCP_BACKUP_KEY_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running dwcp restore")?;
    let restore_process = started.elapsed();
    if !restore.status.success() {
        bail!(
            "dwcp restore failed: {}",
            String::from_utf8_lossy(&restore.stderr)
        );
    }
    let node = harness::NodeProcess::start(
        harness::NodeSpec {
            exe,
            data_dir: dir.to_path_buf(),
            peer: peer.to_string(),
            api: api.to_string(),
            gateway: gateway.to_string(),
            log: log.to_path_buf(),
            env: Vec::new(),
            env_remove: vec!["DWCP_DATA_DIR".into()],
        },
        &[],
    )?;
    let client = client_for(&format!("http://{api}"), token)?;
    let deadline = Instant::now() + SERVE_DEADLINE;
    let value = loop {
        match client
            .get::<Register>(&format!("/registers/{register}"))
            .await
        {
            Ok(r) => break r.value,
            Err(e) if Instant::now() > deadline => bail!(
                "the restored node did not serve within {} s: {e}; see {}",
                SERVE_DEADLINE.as_secs(),
                log.display()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    Ok(Served {
        node,
        client,
        restore_process,
        elapsed: started.elapsed(),
        value,
    })
}

/// Every 1,000th register and every artifact are in the restored cluster.
async fn check_restored(client: &Client, size: &Size, digests: &[String]) -> Result<()> {
    for i in (0..size.registers).step_by(1000) {
        let (key, value) = register(i);
        let got: Register = client
            .get(&format!("/registers/{key}"))
            .await
            .with_context(|| format!("register {key} in the restored cluster"))?;
        if got.value != value {
            bail!("register {key} is `{}`, not `{value}`", got.value);
        }
    }
    for digest in digests {
        let bytes = client
            .download(&format!("/blobs/{digest}/content"))
            .await
            .with_context(|| format!("artifact {digest} in the restored cluster"))?;
        if bytes.len() < size.artifact_bytes {
            bail!("artifact {digest} has {} bytes", bytes.len());
        }
    }
    Ok(())
}

/// The baseline: copies every file under `from` into `to` and syncs it.
fn copy_floor(from: &Path, to: &Path) -> Result<Duration> {
    let started = Instant::now();
    let mut stack: Vec<(PathBuf, PathBuf)> = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
        for entry in std::fs::read_dir(&src).with_context(|| format!("{}", src.display()))? {
            let entry = entry?;
            let target = dst.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                stack.push((entry.path(), target));
            } else {
                std::fs::copy(entry.path(), &target)
                    .with_context(|| format!("copying {}", entry.path().display()))?;
                std::fs::File::open(&target)?.sync_all()?;
            }
        }
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drill_modules_are_admitted_webassembly() {
        let engine = wasmtime::Engine::default();
        let m = module(1, 1000);
        wasmtime::Module::new(&engine, &m).expect("a valid module");
        assert_ne!(module(2, 1000), m, "distinct");
        assert_eq!(module(1, 1000).len(), m.len());
    }
}
