//! The connection series of `dwcp bench gateway`: how many idle keep-alive
//! clients one `dwcp up` node's gateway holds, what each costs in the
//! node's resident memory, and how fast the gateway still answers while it
//! holds them.
//!
//! A node is started (`bench/processes.rs`), then a *hold worker* — this
//! binary again, `dwcp bench gateway --hold-worker URL --connections N` —
//! opens N connections from several loopback source addresses (one
//! address's ephemeral ports would not be enough past about 28,000), sends
//! one `GET /hello` on each, reads the answer, and keeps them all open
//! while the bench measures the node's resident memory and times requests
//! on a connection of its own; then the worker is told to let go. Both
//! processes run under this machine's cap on file descriptors per process
//! (`ulimit -n`), which the worker and the node raise to the hard limit.
//!
//! - `connections-held`: connections the node held, each after one
//!   answered request (baseline: those asked for).
//! - `memory-per-connection`: the node's resident memory growth ÷ held.
//! - `latency-held` against `latency-idle`: one request at a time on a
//!   fresh keep-alive connection while the others are held, and before.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use super::processes::ProcessCluster;
use super::progress;
use super::report::{Report, Series, histogram, record};
use crate::procfs;

/// Source addresses the hold worker connects from: `127.0.0.(FIRST_SOURCE + i)`.
const FIRST_SOURCE: u8 = 100;
const SOURCES: u8 = 4;
/// Connections opened at once while the worker builds up.
const OPENING_AT_ONCE: usize = 256;
/// Requests timed one after another on the probe connection.
const PROBES: usize = 2_000;
/// File descriptors the node and the worker keep for everything else.
const SPARE_FDS: u64 = 500;

/// What the hold worker prints when all its connections are open.
#[derive(Serialize, Deserialize)]
struct Held {
    held: u64,
    failed: u64,
    first_error: Option<String>,
}

/// Adds the connection series to `report`.
pub async fn measure(report: &mut Report, quick: bool) -> Result<()> {
    let limit = crate::fd_limit::raise_to_hard();
    let wanted = if quick {
        2_000
    } else {
        limit.saturating_sub(SPARE_FDS).min(19_500)
    };
    let cluster = ProcessCluster::start_with("gateway-connections", 1).await?;
    let gateway = cluster.gateway(0);
    let pid = cluster
        .pid(0)
        .context("the node is not running")?
        .to_string();
    // The example app is served once the agent has prepared it.
    let idle = probe_until_served(gateway).await?;
    let rss_before = procfs::rss_bytes(&pid)?;
    progress(
        "gateway",
        &format!("holding {wanted} idle keep-alive connections to one dwcp up node"),
    );
    let mut worker = HoldWorker::start(gateway, wanted)?;
    let held = worker.held().await?;
    let rss_held = procfs::rss_bytes(&pid)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let while_held = probes(gateway).await?;
    worker.release().await?;
    cluster.finish();

    let grown = rss_held.saturating_sub(rss_before);
    report.series.push(Series::value(
        "connections-wanted",
        "count",
        wanted as f64,
        1,
        None,
    ));
    report.series.push(Series::value(
        "connections-held",
        "count",
        held.held as f64,
        held.held,
        Some("connections-wanted"),
    ));
    report.series.push(Series::value(
        "memory-per-connection",
        "bytes",
        grown as f64 / held.held.max(1) as f64,
        held.held,
        None,
    ));
    report
        .series
        .push(Series::latency("latency-idle", &idle, None));
    report.series.push(Series::latency(
        "latency-held",
        &while_held,
        Some("latency-idle"),
    ));
    report.notes.push(format!(
        "connections: {} held of {wanted} ({} failed{}), from {SOURCES} source addresses, each after one answered GET /hello; the node's resident memory went from {} MiB to {} MiB ({} open file descriptors); per-process descriptor limit {limit}",
        held.held,
        held.failed,
        held.first_error
            .as_deref()
            .map_or(String::new(), |e| format!(", first: {e}")),
        rss_before >> 20,
        rss_held >> 20,
        fds
    ));
    report.notes.push(format!(
        "latency-idle and latency-held: {PROBES} GET /hello one at a time on one keep-alive connection, before and while the others are held"
    ));
    let per = grown as f64 / held.held.max(1) as f64;
    report.notes.push(format!(
        "goal connections-held >= 19,000 at memory-per-connection <= 8 KB: {} held at {:.0} bytes each: {}",
        held.held,
        per,
        if held.held >= 19_000 && per <= 8_000.0 {
            "met"
        } else {
            "NOT met"
        }
    ));
    Ok(())
}

/// Times [`PROBES`] requests once `/hello` answers (waiting for the agent
/// to have prepared it).
async fn probe_until_served(gateway: SocketAddr) -> Result<Histogram<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match probes(gateway).await {
            Ok(h) => return Ok(h),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One request at a time on one keep-alive connection; each timed.
async fn probes(gateway: SocketAddr) -> Result<Histogram<u64>> {
    let mut conn = TcpStream::connect(gateway).await?;
    conn.set_nodelay(true)?;
    let mut hist = histogram();
    let mut buf = Vec::with_capacity(1024);
    for _ in 0..PROBES {
        let t = Instant::now();
        let status = exchange(&mut conn, &mut buf).await?;
        ensure!(status == 200, "GET /hello answered {status}");
        record(&mut hist, t.elapsed());
    }
    Ok(hist)
}

/// Sends `GET /hello` and reads one answer (status line, headers up to an
/// empty line, a `content-length` body); its status.
async fn exchange(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16> {
    conn.write_all(b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await?;
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = conn.read(&mut chunk).await?;
        ensure!(n > 0, "the gateway closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("an answer without a status")?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .context("an answer without content-length")?;
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 1024];
        let n = conn.read(&mut chunk).await?;
        ensure!(n > 0, "the gateway closed the connection mid-answer");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// The hold worker child and its pipes.
struct HoldWorker {
    child: tokio::process::Child,
}

impl HoldWorker {
    fn start(gateway: SocketAddr, connections: u64) -> Result<HoldWorker> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let child = tokio::process::Command::new(exe)
            .args(["bench", "gateway", "--hold-worker"])
            .arg(format!("http://{gateway}/hello"))
            .arg("--connections")
            .arg(connections.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the hold worker")?;
        Ok(HoldWorker { child })
    }

    /// Waits for the worker to say it holds its connections.
    async fn held(&mut self) -> Result<Held> {
        let stdout = self.child.stdout.as_mut().context("the worker's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        serde_json::from_str(&line).with_context(|| format!("the hold worker said {line:?}"))
    }

    /// Tells the worker to close its connections and waits for it.
    async fn release(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait().await?;
        ensure!(status.success(), "the hold worker failed ({status})");
        Ok(())
    }
}

/// The hold worker: the child side of [`HoldWorker`].
pub fn worker(url: &str, connections: u32) -> Result<()> {
    crate::fd_limit::raise_to_hard();
    let uri: hyper::Uri = url.parse().with_context(|| format!("URL `{url}`"))?;
    let target: SocketAddr = uri
        .authority()
        .context("a URL without a host")?
        .as_str()
        .parse()
        .context("the hold worker takes an IP:PORT URL")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (held, tally) = hold(target, connections as usize).await;
        println!("{}", serde_json::to_string(&tally)?);
        // Held until the bench closes stdin.
        let mut rest = Vec::new();
        tokio::io::stdin().read_to_end(&mut rest).await?;
        drop(held);
        anyhow::Ok(())
    })
}

/// Opens `n` connections (from [`SOURCES`] source addresses, a few hundred
/// at a time), each with one answered request.
async fn hold(target: SocketAddr, n: usize) -> (Vec<TcpStream>, Held) {
    let mut held = Vec::with_capacity(n);
    let mut tally = Held {
        held: 0,
        failed: 0,
        first_error: None,
    };
    let mut next = 0usize;
    while next < n {
        let batch: Vec<_> = (next..n.min(next + OPENING_AT_ONCE))
            .map(|i| {
                let source =
                    Ipv4Addr::new(127, 0, 0, FIRST_SOURCE + (i % usize::from(SOURCES)) as u8);
                tokio::spawn(open(source, target))
            })
            .collect();
        next += batch.len();
        for opening in batch {
            match opening.await {
                Ok(Ok(conn)) => held.push(conn),
                Ok(Err(e)) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert(format!("{e:#}"));
                }
                Err(e) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert(e.to_string());
                }
            }
        }
    }
    tally.held = held.len() as u64;
    (held, tally)
}

/// One connection from `source`, after one answered request.
async fn open(source: Ipv4Addr, target: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let mut conn = socket.connect(target).await?;
    conn.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(256);
    let status = exchange(&mut conn, &mut buf).await?;
    ensure!(status == 200, "GET /hello answered {status}");
    Ok(conn)
}
