//! `dwcp bench ops`: what live dashboards cost the API.
//!
//! A `dwcp up` process (one node) serves the API and the dashboard's
//! server-sent events. The bench measures, in the same run:
//! - `api-latency-idle`: `GET /api/v1/apps` on one keep-alive connection,
//!   one request at a time, with no dashboard open (the baseline);
//! - `api-latency-under-streams`: the same requests while [`STREAMS`]
//!   clients hold `GET /api/v1/events?page=overview` open and take a frame
//!   a second each (the overview page: tiles, five SVG charts, regions);
//! - `memory-per-stream`: the node's resident memory with the streams open
//!   less before, per stream; its baseline `memory-per-idle-connection` is
//!   the same for as many idle keep-alive API connections, in a second,
//!   fresh node process (so neither measurement reuses the other's heap).
//!
//! Both processes share the machine's cores with this one (the clients).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::processes::ProcessCluster;
use super::progress;
use super::report::{Report, Series, histogram, record};

/// Dashboard clients holding event streams.
const STREAMS: usize = 1_000;
/// Bounds the wait for every stream's first frame.
const DEADLINE: Duration = Duration::from_secs(120);
/// After the streams are open, frames flow this long before memory is read.
const SETTLE: Duration = Duration::from_secs(3);
/// One API request every this long.
const REQUEST_EVERY: Duration = Duration::from_millis(5);
/// Requests to the gateway's example app per second meanwhile, so that the
/// pages have rates and charts to draw.
const BACKGROUND_RPS: u64 = 20;

pub fn run(quick: bool) -> Result<Report> {
    super::on_runtime(measure(if quick { 300 } else { 3_000 }))
}

async fn measure(requests: u32) -> Result<Report> {
    let mut report = Report::new(
        "ops",
        serde_json::json!({
            "node": "one `dwcp up` child process on 127.0.0.61 (a fresh one for each memory measurement)",
            "streams": STREAMS,
            "stream": "GET /api/v1/events?page=overview with an admin token, HTTP/1.1, one connection each (hyper client in this process); the node renders the page once a second and sends it to every stream",
            "api_request": format!("GET /api/v1/apps, one keep-alive HTTP/1.1 connection, one request every {} ms", REQUEST_EVERY.as_millis()),
            "requests_per_series": requests,
            "background_load_rps": BACKGROUND_RPS,
            "memory": "VmRSS of the node process (from /proc), after the connections are open and SETTLE has passed, less before they were opened, divided by their number",
            "settle_s": SETTLE.as_secs(),
        }),
    );

    progress("ops", "starting a `dwcp up` process");
    let mut cluster = ProcessCluster::start_with("ops", 1).await?;
    cluster.leader().await?;
    let (api, gateway, token) = (
        cluster.api(0),
        cluster.gateway(0),
        cluster.admin_token().to_string(),
    );
    let pid = cluster.pid(0).context("the node is not running")?;
    let background = tokio::spawn(background_load(gateway));
    // The dashboard's history fills once a second; let a few samples in.
    tokio::time::sleep(SETTLE).await;

    progress(
        "ops",
        &format!("{requests} API requests with no stream open"),
    );
    let mut api_conn = connect(api).await?;
    let idle = api_latency(&mut api_conn, api, &token, requests).await?;

    let before = rss_bytes(pid)?;
    progress("ops", &format!("opening {STREAMS} event streams"));
    let streams = Streams::open(api, &token, STREAMS).await?;
    tokio::time::sleep(SETTLE).await;
    let after = rss_bytes(pid)?;
    let per_stream = after.saturating_sub(before) as f64 / STREAMS as f64;

    progress(
        "ops",
        &format!("{requests} API requests with {STREAMS} streams open"),
    );
    let frames_before = streams.frames();
    let started = Instant::now();
    let under = api_latency(&mut api_conn, api, &token, requests).await?;
    let seconds = started.elapsed().as_secs_f64();
    let frames = streams.frames() - frames_before;
    let alive = streams.alive();
    let bytes = streams.bytes();
    streams.close().await;
    background.abort();
    cluster.finish();
    if alive < STREAMS {
        bail!("only {alive} of {STREAMS} streams were still open after the measurement");
    }

    progress(
        "ops",
        &format!("the baseline: {STREAMS} idle API connections in a fresh node"),
    );
    let mut fresh = ProcessCluster::start_with("ops-idle", 1).await?;
    fresh.leader().await?;
    let fresh_pid = fresh.pid(0).context("the node is not running")?;
    tokio::time::sleep(SETTLE).await;
    let before_idle = rss_bytes(fresh_pid)?;
    let idle_conns = idle_connections(fresh.api(0), fresh.admin_token(), STREAMS).await?;
    tokio::time::sleep(SETTLE).await;
    let after_idle = rss_bytes(fresh_pid)?;
    drop(idle_conns);
    fresh.finish();
    let per_idle = after_idle.saturating_sub(before_idle) as f64 / STREAMS as f64;

    report
        .series
        .push(Series::latency("api-latency-idle", &idle, None));
    report.series.push(Series::latency(
        "api-latency-under-streams",
        &under,
        Some("api-latency-idle"),
    ));
    report.series.push(Series::value(
        "memory-per-idle-connection",
        "bytes",
        per_idle.round(),
        STREAMS as u64,
        None,
    ));
    report.series.push(Series::value(
        "memory-per-stream",
        "bytes",
        per_stream.round(),
        STREAMS as u64,
        Some("memory-per-idle-connection"),
    ));
    report.notes.push(format!(
        "While the API requests ran, the {STREAMS} streams took {frames} frames in {seconds:.1} s ({:.0} a second; one per stream a second is the most the node sends) and {:.1} MB over the whole run",
        frames as f64 / seconds.max(1e-9),
        bytes as f64 / 1e6,
    ));
    report.notes.push(
        "Memory is resident memory of the whole node process: it includes the allocator's slack and the frames queued for each stream (one at most), not the kernel's socket buffers.".into(),
    );
    Ok(report.finish())
}

/// A keep-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn get(addr: SocketAddr, path: &str, token: &str) -> Result<Request<Empty<Bytes>>> {
    Ok(Request::get(path)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())?)
}

/// `n` requests of `GET /api/v1/apps` one after the other on `conn`.
async fn api_latency(
    conn: &mut SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
    token: &str,
    n: u32,
) -> Result<hdrhistogram::Histogram<u64>> {
    let mut hist = histogram();
    // Paced, so that the requests span several of the feed's one-second
    // renders rather than slipping between two.
    let mut pace = tokio::time::interval(REQUEST_EVERY);
    for _ in 0..n {
        pace.tick().await;
        let request = get(addr, "/api/v1/apps", token)?;
        let started = Instant::now();
        conn.ready().await?;
        let response = conn.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        record(&mut hist, started.elapsed());
        if !status.is_success() {
            bail!("GET /api/v1/apps answered {status}");
        }
    }
    Ok(hist)
}

/// Open event streams, each read by a task of its own.
struct Streams {
    tasks: JoinSet<()>,
    frames: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
}

impl Streams {
    /// Opens `n` streams and waits until each has its first frame.
    async fn open(addr: SocketAddr, token: &str, n: usize) -> Result<Streams> {
        let frames = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..n {
            let mut conn = connect(addr).await?;
            let response = conn
                .send_request(get(addr, "/api/v1/events?page=overview", token)?)
                .await?;
            if !response.status().is_success() {
                bail!("GET /api/v1/events answered {}", response.status());
            }
            let (frames, bytes, open) = (frames.clone(), bytes.clone(), open.clone());
            tasks.spawn(async move {
                let _conn = conn;
                let mut body = response.into_body();
                let mut first = true;
                while let Some(Ok(frame)) = body.frame().await {
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    // Frames are small enough to arrive whole here; a split
                    // one counts when its end arrives.
                    let ends = data.windows(2).filter(|w| w == b"\n\n").count() as u64;
                    frames.fetch_add(ends, Ordering::Relaxed);
                    if first && ends > 0 {
                        first = false;
                        open.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !first {
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            });
        }
        let streams = Streams {
            tasks,
            frames,
            bytes,
            open,
        };
        let deadline = Instant::now() + DEADLINE;
        while streams.alive() < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} streams had a frame within {} s",
                    streams.alive(),
                    DEADLINE.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(streams)
    }

    fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Streams that had a frame and have not ended.
    fn alive(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    async fn close(mut self) {
        self.tasks.shutdown().await;
    }
}

/// `n` keep-alive API connections that each made one request and wait.
async fn idle_connections(
    addr: SocketAddr,
    token: &str,
    n: usize,
) -> Result<Vec<SendRequest<Empty<Bytes>>>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut conn = connect(addr).await?;
        let response = conn.send_request(get(addr, "/api/v1/apps", token)?).await?;
        response.into_body().collect().await?;
        conns.push(conn);
    }
    Ok(conns)
}

/// Requests to the gateway's example app, [`BACKGROUND_RPS`] a second.
async fn background_load(gateway: SocketAddr) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / BACKGROUND_RPS));
    let mut conn = None;
    loop {
        tick.tick().await;
        if conn.is_none() {
            conn = connect(gateway).await.ok();
        }
        let Some(sender) = conn.as_mut() else {
            continue;
        };
        let Ok(request) = Request::get("/hello")
            .header(HOST, gateway.to_string())
            .body(Empty::<Bytes>::new())
        else {
            continue;
        };
        let ok = match sender.send_request(request).await {
            Ok(response) => response.into_body().collect().await.is_ok(),
            Err(_) => false,
        };
        if !ok {
            conn = None;
        }
    }
}

/// The resident memory of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> Result<u64> {
    crate::procfs::rss_bytes(&pid.to_string())
}
