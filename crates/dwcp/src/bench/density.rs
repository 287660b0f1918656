//! `dwcp bench density`: how many live sandboxes one `dwcp up` node holds,
//! and what each costs in resident memory, beside wasmtime configured like
//! for like and wasmtime's default configuration.
//!
//! - `live-sandboxes`, `rss-per-sandbox`: a `dwcp up --profile dense
//!   --slot-memory 64KiB --sandboxes N` process (the product, as an
//!   operator starts it for a million one-page apps) is
//!   given keep-alive apps deployed with N replicas in all (at most
//!   100,000 per app, the most one app may have in a region, so several
//!   apps of the same module for a larger N); its agent fills the
//!   apps' warm pools (instances in groups sharing a store) and the node
//!   reports its live sandboxes through its API, which the bench polls.
//!   Resident memory is the node process's growth from before the deploy.
//!   Every instance runs the module's start function, which writes one
//!   byte of its memory, so each has one page of its own.
//! - `wasmtime-like-rss-per-sandbox` (the baseline): wasmtime with the
//!   same layout — the pooling allocator, the same 64 KiB slots without
//!   guard pages, images copied rather than mapped — and a store per
//!   instance (how
//!   wasmtime holds a live instance), the same module and linker imports,
//!   in a fresh process, up to [`BASELINE_CAP`].
//! - `wasmtime-default-*`: wasmtime's default configuration (a second,
//!   clearly named series: it reserves 4 GiB per instance, so it stops at
//!   the address space long before memory).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use wasmtime::{
    Enabled, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store,
};

use super::processes::ProcessCluster;
use super::progress;
use super::report::{Report, Series};
use crate::procfs;

/// The app: a WAGI command answering `ok`, whose start function writes one
/// byte of its one page of memory (so each live instance has a page of its
/// own, as any real app does).
const APP: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 64) "content-type: text/plain\0a\0aok\0a")
  (func $touch (i32.store8 (i32.const 0) (i32.const 1)))
  (start $touch)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 29))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// The node's slot (`--slot-memory`): the app's one page, so that the
/// whole pool is one memory map; the baseline uses the same.
const SLOT_BYTES: u64 = 64 << 10;

/// The baselines stop here: their cost per sandbox is flat well before,
/// and wasmtime's default configuration fails near 32,000 anyway.
const BASELINE_CAP: u32 = 100_000;

/// The tenant the bench deploys to, and its apps' names and routes
/// (`keep-0` at `/keep-0`, ...).
const TENANT: &str = "density";
const APP_NAME: &str = "keep";

/// Most replicas one app may have in a region (`state::check_replicas`):
/// a larger target is spread over several apps of the same module.
const REPLICAS_PER_APP: u32 = 100_000;

/// The first app's route, which the bench asks after the fill.
const ROUTE: &str = "/keep-0";

/// How long the node may take per 100,000 sandboxes to fill (a debug
/// build on a busy 2-core machine is slow; this only bounds a failure).
const FILL_PER_100K: Duration = Duration::from_secs(120);

pub fn run(quick: bool, target: Option<u32>) -> Result<Report> {
    let target = target.unwrap_or(if quick { 20_000 } else { 1_000_000 });
    anyhow::ensure!(target > 0, "--target must be at least 1");
    // Room beyond the app's replicas for the example app's cold pool.
    let sandboxes = target + target / 50 + 100;
    let mut report = Report::new(
        "density",
        serde_json::json!({
            "target": target,
            "node": format!("dwcp up --profile dense --slot-memory 64KiB --sandboxes {sandboxes}"),
            "slot_memory_bytes": SLOT_BYTES,
            "warm_group": sandbox::WasmConfig::dense().group,
            "module": "1 page of memory; its start function writes one byte, so one 4 KiB page per instance is its own",
            "baseline_cap": BASELINE_CAP,
            "vm.max_map_count": procfs::read_trimmed("/proc/sys/vm/max_map_count"),
            "memory_total_bytes": procfs::memory_total_bytes(),
        }),
    );

    progress(
        "density",
        &format!(
            "dwcp up --profile dense --sandboxes {sandboxes}, keep-alive apps with {target} replicas in all"
        ),
    );
    let node = super::on_runtime(measure_node(target, sandboxes))?;
    progress(
        "density",
        &format!(
            "wasmtime like for like (1 MiB pooled slots, a store each), aiming for {}",
            target.min(BASELINE_CAP)
        ),
    );
    let like = measure("wasmtime-like", target.min(BASELINE_CAP))?;
    progress(
        "density",
        &format!("wasmtime default, aiming for {}", target.min(BASELINE_CAP)),
    );
    let default = measure("wasmtime-default", target.min(BASELINE_CAP))?;

    report.series.push(Series::value(
        "wasmtime-default-live",
        "count",
        default.live as f64,
        default.live,
        None,
    ));
    report.series.push(Series::value(
        "live-sandboxes",
        "count",
        node.live as f64,
        node.live,
        None,
    ));
    report.series.push(Series::value(
        "wasmtime-like-rss-per-sandbox",
        "bytes",
        like.rss_per(),
        like.live,
        None,
    ));
    report.series.push(Series::value(
        "wasmtime-default-rss-per-sandbox",
        "bytes",
        default.rss_per(),
        default.live,
        None,
    ));
    report.series.push(Series::value(
        "rss-per-sandbox",
        "bytes",
        node.rss_per(),
        node.live,
        Some("wasmtime-like-rss-per-sandbox"),
    ));
    report.series.push(Series::value(
        "rss-per-sandbox-vs-default",
        "bytes",
        node.rss_per(),
        node.live,
        Some("wasmtime-default-rss-per-sandbox"),
    ));
    report.series.push(Series::value(
        "rss-total",
        "bytes",
        node.rss_grown as f64,
        node.live,
        None,
    ));
    report.series.push(Series::value(
        "fill-rate",
        "ops/s",
        node.live as f64 / node.seconds.max(1e-9),
        node.live,
        None,
    ));
    let mut report = report.finish();
    report.notes.push(format!(
        "the node reported {} live sandboxes ({} before the deploy) through GET /api/v1/nodes; its /metrics said dwcp_node_live_sandboxes {} and dwcp_node_capacity_sandboxes {}; {}",
        node.live + node.live_before,
        node.live_before,
        node.metrics_live,
        node.metrics_capacity,
        node.stopped_by
    ));
    report.notes.push(format!(
        "rss-per-sandbox: the node's resident memory grew by {} MiB for {} sandboxes ({} MiB before the deploy); the first keep-alive app answered {:?} at its route afterwards",
        node.rss_grown >> 20,
        node.live,
        node.rss_before >> 20,
        node.answer
    ));
    report.notes.push(format!(
        "wasmtime-like stopped at {}: {}; wasmtime-default stopped at {}: {}",
        like.live, like.stopped_by, default.live, default.stopped_by
    ));
    report.notes.push(format!(
        "memory maps at the peak: {} in the node, {} in wasmtime-like (the kernel allows {})",
        node.maps,
        like.maps,
        procfs::read_trimmed("/proc/sys/vm/max_map_count")
    ));
    Ok(report)
}

/// What the node measurement found.
struct NodeRun {
    live_before: u64,
    live: u64,
    rss_before: u64,
    rss_grown: u64,
    seconds: f64,
    maps: usize,
    metrics_live: String,
    metrics_capacity: String,
    answer: String,
    stopped_by: String,
}

impl NodeRun {
    fn rss_per(&self) -> f64 {
        self.rss_grown as f64 / self.live.max(1) as f64
    }
}

#[derive(Deserialize)]
struct NodeList {
    nodes: Vec<NodeEntry>,
}

#[derive(Deserialize)]
struct NodeEntry {
    report: Option<state::NodeReport>,
}

#[derive(Deserialize)]
struct Blob {
    digest: String,
}

#[derive(Deserialize)]
struct Version {
    number: u64,
}

async fn measure_node(target: u32, sandboxes: u32) -> Result<NodeRun> {
    let sandboxes = sandboxes.to_string();
    let cluster = ProcessCluster::start_configured(
        "density",
        1,
        &[
            "--profile",
            "dense",
            "--slot-memory",
            "64KiB",
            "--sandboxes",
            &sandboxes,
        ],
    )
    .await?;
    let client = cluster.client(0);
    let pid = cluster
        .pid(0)
        .context("the node is not running")?
        .to_string();
    let live_now = || async {
        let list: NodeList = client.get("/nodes").await?;
        anyhow::Ok(
            list.nodes
                .first()
                .and_then(|n| n.report.as_ref())
                .map(|r| r.live_sandboxes),
        )
    };
    // Settled: the node reports, and its example app's pool is filled.
    let mut live_before = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let now = live_now().await?;
        if now.is_some() && now == live_before {
            break;
        }
        live_before = now;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let live_before = live_before.context("the node never reported")?;
    let rss_before = procfs::rss_bytes(&pid)?;

    let apps = target.div_ceil(REPLICAS_PER_APP);
    client
        .post::<_, IgnoredAny>(
            "/tenants",
            &serde_json::json!({"name": TENANT, "quotas": {"max_apps": apps, "max_replicas": target}}),
        )
        .await?;
    let blob: Blob = client
        .upload(
            "/blobs",
            "application/wasm",
            Bytes::from_static(APP.as_bytes()),
        )
        .await?;
    let started = Instant::now();
    for i in 0..apps {
        let name = format!("{APP_NAME}-{i}");
        let app = format!("/tenants/{TENANT}/apps/{name}");
        client
            .post::<_, IgnoredAny>(
                &format!("/tenants/{TENANT}/apps"),
                &serde_json::json!({"name": name, "route": format!("/{name}")}),
            )
            .await?;
        let version: Version = client
            .post(
                &format!("{app}/versions"),
                &serde_json::json!({"digest": blob.digest, "config": {"memory_bytes": 65536, "warm": true}}),
            )
            .await?;
        let replicas = REPLICAS_PER_APP.min(target - i * REPLICAS_PER_APP);
        client
            .put::<_, IgnoredAny>(
                &format!("{app}/deployment"),
                &serde_json::json!({"version": version.number, "regions": {"local": replicas}}),
            )
            .await?;
    }

    let wanted = live_before + u64::from(target);
    let deadline = started + FILL_PER_100K * (target / 100_000 + 1);
    let mut last = live_before;
    let mut stopped_by = format!("reached the target of {target}");
    loop {
        let now = live_now().await?.unwrap_or(0);
        if now != last {
            progress("density", &format!("{now} live"));
            last = now;
        }
        if now >= wanted {
            break;
        }
        if Instant::now() > deadline {
            stopped_by = format!(
                "stopped waiting after {} s; see {}",
                started.elapsed().as_secs(),
                cluster.log(0).display()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rss_after = procfs::rss_bytes(&pid)?;
    let maps = procfs::count_maps(&pid);
    let metrics = http_get(cluster.api(0), "/metrics", Some(cluster.admin_token()))
        .await
        .unwrap_or_else(|e| format!("no answer: {e}"));
    let answer = match http_get(cluster.gateway(0), ROUTE, None).await {
        Ok(text) => {
            let status = text.lines().next().unwrap_or("").to_string();
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
            format!("{status} {body}")
        }
        Err(e) => format!("no answer: {e}"),
    };
    let run = NodeRun {
        live_before,
        live: last.saturating_sub(live_before),
        rss_before,
        rss_grown: rss_after.saturating_sub(rss_before),
        seconds,
        maps,
        metrics_live: metric(&metrics, "dwcp_node_live_sandboxes"),
        metrics_capacity: metric(&metrics, "dwcp_node_capacity_sandboxes"),
        answer,
        stopped_by,
    };
    cluster.finish();
    Ok(run)
}

/// The first sample of `name` in a Prometheus exposition, as text.
fn metric(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("absent")
        .to_string()
}

/// The whole answer (head and body) to `GET path` at `addr`, on a
/// connection of its own.
pub(super) async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs one baseline in a child process of this binary: resident memory
/// freed by one measurement stays in the process and would hide the next
/// one's growth.
fn measure(kind: &str, target: u32) -> Result<Live> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["bench", "density", "--worker", kind, "--target"])
        .arg(target.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the {kind} density measurement failed ({})",
        out.status
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One baseline, in this process: the child side of [`measure`].
pub fn worker(kind: &str, target: u32) -> Result<()> {
    let engine = match kind {
        "wasmtime-like" => wasmtime::Engine::new(&like_for_like(target))?,
        "wasmtime-default" => wasmtime::Engine::default(),
        other => anyhow::bail!("unknown density worker `{other}`"),
    };
    let live = wasmtime_live(&engine, target)?;
    println!("{}", serde_json::to_string(&live)?);
    Ok(())
}

/// wasmtime laid out as the dense node is: pooled 64 KiB slots without
/// guard pages, memory images copied (not mapped copy-on-write), slots
/// reset as DWCP's are.
fn like_for_like(target: u32) -> wasmtime::Config {
    let dense = sandbox::WasmConfig::dense();
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(target)
        .total_memories(target)
        .total_tables(target)
        .total_component_instances(1)
        // No fiber stacks: this baseline calls nothing asynchronously.
        .total_stacks(0)
        .max_memory_size(SLOT_BYTES as usize)
        .table_elements(dense.slot_table_elements as usize)
        .linear_memory_keep_resident(dense.keep_resident)
        .pagemap_scan(Enabled::Auto);
    let mut config = wasmtime::Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(false)
        .memory_reservation(SLOT_BYTES)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0)
        .guard_before_linear_memory(false);
    config
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Live {
    live: u64,
    rss_grown: u64,
    seconds: f64,
    maps: usize,
    stopped_by: String,
}

impl Live {
    fn rss_per(&self) -> f64 {
        self.rss_grown as f64 / self.live.max(1) as f64
    }
}

/// Instantiates [`APP`] in a store of its own each (its start function
/// runs) until `target` or a failure.
fn wasmtime_live(engine: &wasmtime::Engine, target: u32) -> Result<Live> {
    let module = Module::new(engine, APP)?;
    let mut linker: Linker<()> = Linker::new(engine);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |_: i32, _: i32, _: i32, _: i32| -> i32 { 0 },
    )?;
    let pre = linker.instantiate_pre(&module)?;
    let before = procfs::rss_bytes("self")?;
    let start = Instant::now();
    let mut live = Vec::new();
    let mut stopped_by = format!("reached the target of {target}");
    for _ in 0..target {
        let mut store = Store::new(engine, ());
        match pre.instantiate(&mut store) {
            Ok(_) => live.push(store),
            Err(e) => {
                stopped_by = format!("{e:#}");
                break;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let rss_grown = procfs::rss_bytes("self")?.saturating_sub(before);
    let maps = procfs::count_maps("self");
    let n = live.len() as u64;
    drop(live);
    Ok(Live {
        live: n,
        rss_grown,
        seconds,
        maps,
        stopped_by,
    })
}
