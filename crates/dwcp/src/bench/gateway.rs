//! `dwcp bench gateway`: HTTP requests served per second, and their latency
//! at half that rate, by the node's gateway running `examples/wagi/hello.wat`
//! beside a plain hyper server answering the same text.
//!
//! Three servers run in this process, on a multi-threaded tokio runtime
//! (one worker thread per core, as `dwcp up`), each behind
//! `cluster::serving::serve_plain` on its own loopback port:
//! - `hyper-floor`: a hyper service answering `Hello from DWCP!\n` with no
//!   sandbox: what serving HTTP/1.1 alone costs here;
//! - `gateway-cold`: `node::gateway::Gateway` with one route to the app,
//!   prepared as `dwcp up`'s agent prepares a version (`fast` engine
//!   profile, `VersionConfig::default()` limits), a fresh sandbox per
//!   request (`RouteLimits { warm: false, .. }`);
//! - `gateway-warm`: the same with the version's warm pool (`warm: true`);
//! - `gateway-http`: the gateway with one route to the same app as a
//!   wasi:http component (`examples/http/hello.wat`, the same answer), a
//!   fresh instance per request, as `dwcp up` serves a component version;
//! - `wasmtime-serve`: the same component under `wasmtime serve`
//!   (wasmtime-cli 48.0.8, the wasmtime DWCP pins; its own process, its
//!   default options), found at `$DWCP_WASMTIME` or as `wasmtime` on the
//!   `PATH`. Without it (or at another version) the series is left out and
//!   a note says why.
//!
//! The load comes from another process: this binary started again as
//! `dwcp bench gateway --load-worker URL ...` ([`worker`]), a
//! single-threaded, hand-written HTTP/1.1 keep-alive client that checks
//! every response's status and records latencies in an hdrhistogram, which
//! it prints as JSON. Nothing is pinned: both processes share the machine's
//! cores. Each server is measured in two phases, each in rounds (a round
//! measures the three servers one after the other, one load process each,
//! so that the machine's noise hits all three alike):
//! 1. `*-rps`: a closed loop on `CONNECTIONS` connections (each sends its
//!    next request as soon as the last is answered), after a warm-up:
//!    responses ÷ seconds; the median of the rounds.
//! 2. `*-latency`: paced load at half of that server's own rate. A pacer
//!    thread in the load process hands out requests at evenly spaced times
//!    (it sleeps with the OS's precision; tokio's timer has 1 ms ticks),
//!    round-robin over the connections. A request's latency runs from its
//!    scheduled time when its connection was still busy then (so a stall
//!    counts for every request it delayed: no coordinated omission), else
//!    from when it was sent (the client's own lateness, reported apart).
//!    The rounds' histograms are merged.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use node::gateway::{
    AccessLog, AppKey, Gateway, PreparedVersion, Route, RouteLimits, RouteTable, RouteVersion,
    VersionHandle,
};
use sandbox::{Artifact, Engine, Limits, WasmConfig, WasmEngine};
use serde::{Deserialize, Serialize};
use state::Name;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::progress;
use super::report::{Report, Series, histogram, record};

/// The app: the one `dwcp up` deploys at `/hello` on a new cluster.
const HELLO_WAT: &[u8] = include_bytes!("../../../../examples/wagi/hello.wat");
/// What the app and the floor answer.
const HELLO: &str = "Hello from DWCP!\n";
const PATH: &str = "/hello";
/// The same app as a wasi:http component.
const HELLO_COMPONENT: &[u8] = include_bytes!("../../../../examples/http/hello.wat");
/// The wasmtime-cli version `wasmtime-serve` must be: the wasmtime DWCP pins.
const WASMTIME_CLI_VERSION: &str = "48.0.8";
/// Connections of both phases.
pub(super) const CONNECTIONS: u32 = 32;
/// The latency phase's rate, as a share of the same server's max rate.
const LATENCY_LOAD: f64 = 0.5;
/// A phase fails when more than this share of its requests failed.
const MAX_ERROR_RATE: f64 = 0.01;
/// The rate of the quiet phase, where each sandbox start finds caches as a
/// lightly used node leaves them (requests a second, over all
/// connections).
const QUIET_RATE: f64 = 20.0;

/// The hidden flags of the load worker (`--load-worker URL`).
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Internal: generate HTTP/1.1 load against URL from this process and
    /// print the result as JSON (`dwcp bench gateway` starts it).
    #[arg(long, hide = true, value_name = "URL")]
    load_worker: Option<String>,
    /// Internal: the load worker's connections.
    #[arg(long, hide = true, default_value_t = CONNECTIONS)]
    connections: u32,
    /// Internal: how long the load worker measures (after its warm-up).
    #[arg(long, hide = true, default_value = "2s", value_parser = crate::units::parse_duration)]
    duration: Duration,
    /// Internal: how long the load worker sends before it measures.
    #[arg(long, hide = true, default_value = "0s", value_parser = crate::units::parse_duration)]
    warmup: Duration,
    /// Internal: requests per second over all connections (paced load);
    /// without it, a closed loop.
    #[arg(long, hide = true, value_name = "PER_SECOND")]
    rate: Option<f64>,
    /// Internal: open --connections keep-alive connections to URL, one
    /// request each, and hold them until stdin closes (`bench/connections.rs`).
    #[arg(long, hide = true, value_name = "URL")]
    hold_worker: Option<String>,
}

impl LoadArgs {
    /// The URL when this process is a hold worker.
    pub fn hold_url(&self) -> Option<&str> {
        self.hold_worker.as_deref()
    }

    /// The worker's connections.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// The URL when this process is a load worker.
    pub fn worker_url(&self) -> Option<&str> {
        self.load_worker.as_deref()
    }
}

pub(super) struct Plan {
    /// Rounds of each phase; a round measures every server once, one after
    /// the other, so that the machine's noise hits all three alike.
    pub(super) rounds: usize,
    /// What one load worker sends before it measures...
    pub(super) warmup: Duration,
    /// ... and how long it measures.
    pub(super) slice: Duration,
    /// How long the quiet phase (at [`QUIET_RATE`]) measures.
    pub(super) quiet: Duration,
}

pub fn run(quick: bool) -> Result<Report> {
    let plan = if quick {
        Plan {
            rounds: 1,
            warmup: Duration::from_millis(250),
            slice: Duration::from_secs(2),
            quiet: Duration::from_secs(3),
        }
    } else {
        Plan {
            rounds: 5,
            warmup: Duration::from_millis(500),
            slice: Duration::from_secs(2),
            quiet: Duration::from_secs(15),
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let server_threads = runtime.metrics().num_workers();
    let _entered = runtime.enter();

    // As `dwcp up`'s agent prepares a version with the default config.
    let engine = WasmEngine::new(WasmConfig::fast()).context("starting the sandbox engine")?;
    let template = engine
        .prepare(&Artifact::new(HELLO_WAT.to_vec()), Limits::default())
        .context("preparing examples/wagi/hello.wat")?;
    let component: PreparedVersion = engine
        .prepare_http(&Artifact::new(HELLO_COMPONENT.to_vec()), Limits::default())
        .context("preparing examples/http/hello.wat")?
        .into();
    let wasmtime = wasmtime_cli();

    let route_defaults = RouteLimits::default();
    let mut report = Report::new(
        "gateway",
        serde_json::json!({
            "app": "examples/wagi/hello.wat (WAGI, 17-byte text/plain answer)",
            "request": format!("GET {PATH} HTTP/1.1, keep-alive"),
            "connections": CONNECTIONS,
            "rounds": plan.rounds,
            "warmup_seconds": plan.warmup.as_secs_f64(),
            "seconds_per_round": plan.slice.as_secs_f64(),
            "latency_load": LATENCY_LOAD,
            "server": format!("this process: tokio multi-thread runtime, {server_threads} worker threads; guests run on the worker that polls the request (wasmtime async, epoch yields); cluster::serving::serve_plain (HTTP/1.1 + HTTP/2)"),
            "client": "another process of this binary per round: one thread, hand-written HTTP/1.1 keep-alive client (plus a pacer thread when paced); both processes share the cores, nothing pinned",
            "engine": "fast profile, no code cache",
            "sandbox_limits": "sandbox::Limits::default() (64 MiB, 10 s deadline), as VersionConfig::default()",
            "route_limits": format!(
                "RouteLimits::default() (max_concurrency {}, timeout {:?}), warm pool capacity {}",
                route_defaults.max_concurrency,
                route_defaults.timeout,
                VersionHandle::DEFAULT_WARM_CAPACITY
            ),
            "access_log": "formatted per request into a sink (dwcp up writes it to stderr)",
            "max_error_rate": MAX_ERROR_RATE,
            "quiet_rate": QUIET_RATE,
            "quiet_seconds": plan.quiet.as_secs_f64(),
            "goals": {
                "gateway-cold-rps": "at least 50 % of hyper-floor-rps",
                "gateway-cold-latency": "p99 at most 1 ms at half of gateway-cold-rps",
                "gateway-sandbox-start-half/full": "p50 at most 2 µs, p99 at most 10 µs",
                "gateway-http-rps": "at least 1.5x wasmtime-serve-rps, with a lower p99",
            },
            "component": "examples/http/hello.wat (wasi:http/incoming-handler, the same answer), for gateway-http and wasmtime-serve",
            "wasmtime_serve": match &wasmtime {
                Ok(path) => format!("{} serve --addr 127.0.0.1:PORT <component> (wasmtime-cli {WASMTIME_CLI_VERSION}, default options)", path.display()),
                Err(why) => format!("not measured: {why}"),
            },
        }),
    );

    let mut targets = Vec::new();
    let wagi: PreparedVersion = Arc::new(VersionHandle::new(template.clone())).into();
    for (name, served) in [
        ("hyper-floor", None),
        ("gateway-cold", Some((wagi.clone(), false))),
        ("gateway-warm", Some((wagi, true))),
        ("gateway-http", Some((component, false))),
    ] {
        let listener = cluster::serving::listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .context("listening on loopback")?;
        let url = format!("http://{}{PATH}", listener.local_addr()?);
        let mut starts = None;
        let server = match served {
            None => cluster::serving::serve_plain(listener, |_request| async { hello() }),
            Some((version, warm)) => {
                let gw = gateway(version, warm)?;
                if name == "gateway-cold" {
                    starts = Some(Starts::new(gw.clone()));
                }
                node::gateway::serve(listener, gw)
            }
        };
        targets.push(Target::new(name, url, Server::Task(server), starts));
    }
    let mut notes = Vec::new();
    match &wasmtime {
        Ok(path) => {
            let (url, child) = wasmtime_serve(path)?;
            targets.push(Target::new(
                "wasmtime-serve",
                url,
                Server::Process(child),
                None,
            ));
        }
        Err(why) => notes.push(format!("wasmtime-serve not measured: {why}")),
    }
    let measured = measure(&mut targets, &plan);
    for t in &mut targets {
        t.server.stop();
    }
    measured?;

    for t in &targets {
        report.series.push(Series::value(
            &format!("{}-rps", t.name),
            "ops/s",
            t.rps(),
            t.max.requests,
            t.baseline("rps"),
        ));
        if t.max.rates.len() > 1 {
            notes.push(format!(
                "{}-rps is the median of {} rounds: {} req/s",
                t.name,
                t.max.rates.len(),
                t.max.rates_text()
            ));
        }
    }
    for t in &targets {
        report.series.push(Series::latency(
            &format!("{}-latency", t.name),
            &t.paced.hist,
            t.baseline("latency"),
        ));
        notes.push(format!(
            "{}-latency: paced at {:.0} req/s ({:.0} % of its rate), {:.0} req/s answered; the client sent late by up to {:.0} µs at p50, {:.0} µs at p99 (worst round; not counted)",
            t.name,
            t.rps() * LATENCY_LOAD,
            LATENCY_LOAD * 100.0,
            t.paced.requests as f64 / t.paced.seconds,
            t.paced.lag_p50_ns / 1e3,
            t.paced.lag_p99_ns / 1e3,
        ));
        for (phase, p) in [("max", &t.max), ("paced", &t.paced)] {
            if p.errors > 0 || p.unsent > 0 {
                notes.push(format!(
                    "{} {phase}: {} failed of {} sent, {} never sent (too far behind schedule){}",
                    t.name,
                    p.errors,
                    p.sent,
                    p.unsent,
                    p.first_error
                        .as_deref()
                        .map_or(String::new(), |e| format!("; first failure: {e}"))
                ));
            }
        }
    }
    if let Some(starts) = targets.iter().find_map(|t| t.starts.as_ref()) {
        for (phase, hist) in [
            ("quiet", &starts.quiet),
            ("half", &starts.half),
            ("full", &starts.full),
        ] {
            report.series.push(Series::latency(
                &format!("gateway-sandbox-start-{phase}"),
                hist,
                None,
            ));
        }
        let cold = targets
            .iter()
            .find(|t| t.starts.is_some())
            .map_or(0.0, Target::rps);
        notes.push(format!(
            "gateway-sandbox-start-*: the gateway-cold server's own histogram of sandbox starts (what a node's dwcp_sandbox_start_seconds exposes: from asking the version's cold pool to the call into the guest), differenced around each phase: quiet at {QUIET_RATE:.0} req/s, half at {:.0} req/s (the latency phase), full in the closed loops",
            cold * LATENCY_LOAD
        ));
    }
    runtime.block_on(super::connections::measure(&mut report, quick))?;
    let mut report = report.finish();
    report.notes.extend(goal_notes(&report));
    report.notes.extend(notes);
    report.notes.push(format!(
        "load: {CONNECTIONS} HTTP/1.1 keep-alive connections from a separate process (one thread, and a pacer thread in the latency phase); the servers run on {server_threads} tokio worker threads in this process; both share the {} cores, so the figures include the client's cost",
        report.machine.cores
    ));
    report.notes.push(
        "latency phase: a pacer thread in the load process schedules requests evenly at the rate, round-robin over the connections; a request's latency runs from its scheduled time when its connection was still busy then (a stall counts for every request it delayed: no coordinated omission), else from its send".into(),
    );
    Ok(report)
}

/// The two goals, measured against this run.
fn goal_notes(report: &Report) -> Vec<String> {
    let get = |n: &str| report.series.iter().find(|s| s.name == n);
    let mut notes = Vec::new();
    if let (Some(cold), Some(floor)) = (get("gateway-cold-rps"), get("hyper-floor-rps")) {
        let (c, f) = (cold.value.unwrap_or(0.0), floor.value.unwrap_or(0.0));
        let share = if f > 0.0 { c / f } else { 0.0 };
        notes.push(format!(
            "goal gateway-cold-rps >= 50 % of hyper-floor-rps: {:.1} % ({c:.0} of {f:.0} req/s): {}",
            share * 100.0,
            if share >= 0.5 { "met" } else { "NOT met" }
        ));
    }
    for phase in ["half", "full"] {
        if let Some(start) = get(&format!("gateway-sandbox-start-{phase}")) {
            let (p50, p99) = (
                start.p50.unwrap_or(f64::INFINITY),
                start.p99.unwrap_or(f64::INFINITY),
            );
            notes.push(format!(
                "goal gateway-sandbox-start-{phase} p50 <= 2 µs and p99 <= 10 µs: p50 {:.2} µs, p99 {:.2} µs: {}",
                p50 / 1e3,
                p99 / 1e3,
                if p50 <= 2e3 && p99 <= 10e3 { "met" } else { "NOT met" }
            ));
        }
    }
    if let (Some(http), Some(serve)) = (get("gateway-http-rps"), get("wasmtime-serve-rps")) {
        let (h, w) = (http.value.unwrap_or(0.0), serve.value.unwrap_or(0.0));
        let times = if w > 0.0 { h / w } else { 0.0 };
        let p99 = |name: &str| get(name).and_then(|s| s.p99).unwrap_or(f64::INFINITY);
        let (hp, wp) = (p99("gateway-http-latency"), p99("wasmtime-serve-latency"));
        notes.push(format!(
            "goal gateway-http-rps >= 1.5x wasmtime-serve-rps with a lower p99: {times:.2}x ({h:.0} vs {w:.0} req/s), p99 {:.3} ms vs {:.3} ms (each paced at half its own rate): {}",
            hp / 1e6,
            wp / 1e6,
            if times >= 1.5 && hp < wp { "met" } else { "NOT met" }
        ));
    }
    if let Some(lat) = get("gateway-cold-latency") {
        let p99 = lat.p99.unwrap_or(f64::INFINITY);
        notes.push(format!(
            "goal gateway-cold-latency p99 <= 1 ms at half its max rate: p99 {:.3} ms: {}",
            p99 / 1e6,
            if p99 <= 1e6 { "met" } else { "NOT met" }
        ));
    }
    notes
}

/// The floor's answer: the app's text, no sandbox.
pub(crate) fn hello() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(HELLO.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A gateway with one route, `/hello`, to one version of the app.
fn gateway(version: PreparedVersion, warm: bool) -> Result<Arc<Gateway>> {
    let route = Route {
        host: None,
        prefix: PATH.into(),
        app: AppKey::new(Name::new("tenant", "bench")?, Name::new("app", "hello")?),
        versions: vec![RouteVersion {
            number: 1,
            weight: 1,
            handle: version,
        }],
        forward: Vec::new(),
        limits: RouteLimits {
            warm,
            ..RouteLimits::default()
        },
    };
    Ok(Gateway::new(
        RouteTable::new(vec![route])?,
        AccessLog::to_writer(io::sink()),
    ))
}

/// The wasmtime-cli to run `wasmtime serve` with: `$DWCP_WASMTIME`, else
/// `wasmtime` on the `PATH`, if it is version [`WASMTIME_CLI_VERSION`].
fn wasmtime_cli() -> std::result::Result<std::path::PathBuf, String> {
    let path = std::env::var_os("DWCP_WASMTIME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "wasmtime".into());
    let out = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}); install wasmtime-cli {WASMTIME_CLI_VERSION} (`cargo install --locked wasmtime-cli@{WASMTIME_CLI_VERSION}`) and set DWCP_WASMTIME to it",
                path.display()
            )
        })?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !version.starts_with(&format!("wasmtime {WASMTIME_CLI_VERSION}")) {
        return Err(format!(
            "{} is `{version}`, not wasmtime-cli {WASMTIME_CLI_VERSION} (the wasmtime DWCP pins)",
            path.display()
        ));
    }
    Ok(path)
}

/// Starts `wasmtime serve` on the component on a free loopback port and
/// waits until it accepts connections; its URL and process.
fn wasmtime_serve(wasmtime: &std::path::Path) -> Result<(String, std::process::Child)> {
    let dir = std::env::temp_dir().join(format!("dwcp-bench-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let component = dir.join("hello.wat");
    std::fs::write(&component, HELLO_COMPONENT)
        .with_context(|| format!("writing {}", component.display()))?;
    // A free port: bound, then released for wasmtime to take.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(wasmtime)
        .arg("serve")
        .arg("--addr")
        .arg(&addr)
        .arg(&component)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} serve", wasmtime.display()))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err() {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("wasmtime serve exited ({status}) before it listened on {addr}");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("wasmtime serve did not listen on {addr} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((format!("http://{addr}{PATH}"), child))
}

/// How a server under test runs: a task of this process, or a process of
/// its own.
enum Server {
    Task(tokio::task::JoinHandle<()>),
    Process(std::process::Child),
}

impl Server {
    fn stop(&mut self) {
        match self {
            Server::Task(task) => task.abort(),
            Server::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A server under test and what was measured of it.
struct Target {
    name: &'static str,
    url: String,
    server: Server,
    max: Phase,
    paced: Phase,
    /// The gateway of a cold route: its own histogram of sandbox starts
    /// is read around each phase.
    starts: Option<Starts>,
}

/// Sandbox starts as the gateway recorded them, per phase, in ps.
struct Starts {
    gateway: Arc<Gateway>,
    quiet: Histogram<u64>,
    half: Histogram<u64>,
    full: Histogram<u64>,
}

impl Starts {
    fn new(gateway: Arc<Gateway>) -> Starts {
        Starts {
            gateway,
            quiet: histogram(),
            half: histogram(),
            full: histogram(),
        }
    }

    /// Runs `phase`, adding the starts the gateway recorded meanwhile to
    /// `into` (the gateway records ns; the report's histograms hold ps).
    fn during<T>(
        &mut self,
        pick: fn(&mut Starts) -> &mut Histogram<u64>,
        phase: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let before = self.gateway.sandbox_starts_ns();
        let out = phase()?;
        let after = self.gateway.sandbox_starts_ns();
        let into = pick(self);
        for v in after.iter_recorded() {
            let ns = v.value_iterated_to();
            let earlier = before.count_at(ns);
            let n = v.count_at_value().saturating_sub(earlier);
            if n > 0 {
                into.saturating_record_n(ns.saturating_mul(1000), n);
            }
        }
        Ok(out)
    }
}

impl Target {
    fn new(name: &'static str, url: String, server: Server, starts: Option<Starts>) -> Target {
        Target {
            name,
            url,
            server,
            max: Phase::new(),
            paced: Phase::new(),
            starts,
        }
    }

    /// The series its `kind` (`rps`, `latency`) series is measured
    /// against: the hyper floor, or `wasmtime serve` for the component.
    fn baseline(&self, kind: &str) -> Option<&'static str> {
        match (self.name, kind) {
            ("hyper-floor" | "wasmtime-serve", _) => None,
            ("gateway-http", "rps") => Some("wasmtime-serve-rps"),
            ("gateway-http", _) => Some("wasmtime-serve-latency"),
            (_, "rps") => Some("hyper-floor-rps"),
            _ => Some("hyper-floor-latency"),
        }
    }

    /// Its max throughput: the median of its rounds.
    fn rps(&self) -> f64 {
        let mut rates = self.max.rates.clone();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied().unwrap_or(0.0)
    }
}

/// One phase of one server, summed over its rounds.
struct Phase {
    /// Answers per second of each round.
    rates: Vec<f64>,
    requests: u64,
    seconds: f64,
    sent: u64,
    errors: u64,
    unsent: u64,
    first_error: Option<String>,
    /// The worst round's send lag (paced phase).
    lag_p50_ns: f64,
    lag_p99_ns: f64,
    hist: Histogram<u64>,
}

impl Phase {
    fn new() -> Phase {
        Phase {
            rates: Vec::new(),
            requests: 0,
            seconds: 0.0,
            sent: 0,
            errors: 0,
            unsent: 0,
            first_error: None,
            lag_p50_ns: 0.0,
            lag_p99_ns: 0.0,
            hist: histogram(),
        }
    }

    fn add(&mut self, r: LoadResult) -> Result<()> {
        self.rates.push(r.requests as f64 / r.elapsed_s);
        self.requests += r.requests;
        self.seconds += r.elapsed_s;
        self.sent += r.sent;
        self.errors += r.errors;
        self.unsent += r.unsent;
        if self.first_error.is_none() {
            self.first_error = r.first_error.clone();
        }
        self.lag_p50_ns = self.lag_p50_ns.max(r.send_lag_p50_ns.unwrap_or(0.0));
        self.lag_p99_ns = self.lag_p99_ns.max(r.send_lag_p99_ns.unwrap_or(0.0));
        self.hist
            .add(r.histogram()?)
            .context("merging latency histograms")?;
        Ok(())
    }

    fn rates_text(&self) -> String {
        let rates: Vec<String> = self.rates.iter().map(|r| format!("{r:.0}")).collect();
        rates.join(", ")
    }
}

/// Both phases, in rounds: every server's max throughput, round after
/// round; then every server's latency at half its median max throughput.
fn measure(targets: &mut [Target], plan: &Plan) -> Result<()> {
    let rounds = plan.rounds;
    for t in targets.iter_mut() {
        let Some(starts) = &mut t.starts else {
            continue;
        };
        progress(
            "gateway",
            &format!(
                "{}: {QUIET_RATE:.0} req/s for {:?}, for the gateway's own start histogram",
                t.name, plan.quiet
            ),
        );
        let r = starts.during(
            |s| &mut s.quiet,
            || load(&t.url, plan.quiet, plan, Some(QUIET_RATE)),
        )?;
        check(t.name, "quiet", &r)?;
    }
    for round in 1..=rounds {
        for t in targets.iter_mut() {
            let r = match &mut t.starts {
                Some(starts) => {
                    starts.during(|s| &mut s.full, || load(&t.url, plan.slice, plan, None))?
                }
                None => load(&t.url, plan.slice, plan, None)?,
            };
            check(t.name, "max throughput", &r)?;
            ensure!(
                r.requests > 0,
                "{}: no request was answered in {:?}",
                t.name,
                plan.slice
            );
            progress(
                "gateway",
                &format!(
                    "max throughput, round {round}/{rounds}: {} {:.0} req/s ({CONNECTIONS} connections, closed loop, {:?})",
                    t.name,
                    r.requests as f64 / r.elapsed_s,
                    plan.slice
                ),
            );
            t.max.add(r)?;
        }
    }
    for round in 1..=rounds {
        for t in targets.iter_mut() {
            let rate = t.rps() * LATENCY_LOAD;
            let r = match &mut t.starts {
                Some(starts) => starts.during(
                    |s| &mut s.half,
                    || load(&t.url, plan.slice, plan, Some(rate)),
                )?,
                None => load(&t.url, plan.slice, plan, Some(rate))?,
            };
            check(t.name, "latency", &r)?;
            let answered = r.requests;
            t.paced.add(r)?;
            progress(
                "gateway",
                &format!(
                    "latency, round {round}/{rounds}: {} paced at {rate:.0} req/s, p99 so far {:.3} ms",
                    t.name,
                    t.paced.hist.value_at_quantile(0.99) as f64 / 1e9
                ),
            );
            ensure!(
                answered > 0,
                "{}: no request was answered at {rate:.0} req/s",
                t.name
            );
        }
    }
    Ok(())
}

/// Fails on a phase whose figures would not mean anything.
fn check(name: &str, phase: &str, r: &LoadResult) -> Result<()> {
    let failed = r.errors as f64 / r.sent.max(1) as f64;
    ensure!(
        failed <= MAX_ERROR_RATE,
        "{name} ({phase}): {} of {} requests failed ({:.2} %, more than {} %); first failure: {}",
        r.errors,
        r.sent,
        failed * 100.0,
        MAX_ERROR_RATE * 100.0,
        r.first_error.as_deref().unwrap_or("none recorded")
    );
    if r.errors > 0 {
        progress(
            "gateway",
            &format!(
                "{name} ({phase}): {} of {} requests failed",
                r.errors, r.sent
            ),
        );
    }
    if let Some(body) = &r.sample_body {
        ensure!(
            body == HELLO,
            "{name}: answered {body:?} where {HELLO:?} was expected"
        );
    }
    Ok(())
}

/// Runs a load worker process against `url` for `seconds` (after the
/// plan's warm-up) and reads its result.
pub(super) fn load(
    url: &str,
    seconds: Duration,
    plan: &Plan,
    rate: Option<f64>,
) -> Result<LoadResult> {
    // This very binary even when a rebuild has replaced its file since.
    let exe = match std::path::Path::new("/proc/self/exe") {
        p if p.exists() => p.to_path_buf(),
        _ => std::env::current_exe().context("finding this binary to start the load worker")?,
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "gateway", "--load-worker", url])
        .arg("--connections")
        .arg(CONNECTIONS.to_string())
        .arg("--duration")
        .arg(format!("{}s", seconds.as_secs_f64()))
        .arg("--warmup")
        .arg(format!("{}s", plan.warmup.as_secs_f64()));
    if let Some(rate) = rate {
        cmd.arg("--rate").arg(format!("{rate:.3}"));
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting the load worker")?;
    ensure!(
        out.status.success(),
        "the load worker against {url} failed ({})",
        out.status
    );
    serde_json::from_slice(&out.stdout).context("reading the load worker's result")
}

/// What a load worker prints.
#[derive(Serialize, Deserialize)]
pub(super) struct LoadResult {
    /// Total rate of the paced phase; `None` for a closed loop.
    rate: Option<f64>,
    /// Answers with status 200 in the measured window (closed loop: that
    /// finished in it; paced: that were scheduled in it).
    pub(super) requests: u64,
    /// Seconds of the measured window.
    pub(super) elapsed_s: f64,
    /// Requests sent, warm-up included.
    pub(super) sent: u64,
    /// Of those: answered with another status, or lost to an I/O error.
    pub(super) errors: u64,
    /// Paced: requests scheduled in the window but not sent, because the
    /// connection was still too far behind when the run had to end.
    unsent: u64,
    pub(super) first_error: Option<String>,
    /// Paced: how late requests went out on a connection that was free at
    /// their scheduled time (this client's own delay, not counted in the
    /// latency), median and 99th percentile in ns.
    send_lag_p50_ns: Option<f64>,
    send_lag_p99_ns: Option<f64>,
    /// The body of the first 200 answer.
    pub(super) sample_body: Option<String>,
    /// Latencies of `requests` in picoseconds, as (value, count) pairs of
    /// the histogram's buckets.
    latency_ps: Vec<(u64, u64)>,
}

impl LoadResult {
    pub(super) fn histogram(&self) -> Result<Histogram<u64>> {
        let mut hist = histogram();
        for &(value, count) in &self.latency_ps {
            hist.record_n(value, count)
                .context("a latency out of the histogram's range")?;
        }
        Ok(hist)
    }
}

/// The load worker: the child side of [`load`].
pub fn worker(url: &str, args: &LoadArgs) -> Result<()> {
    ensure!(args.connections > 0, "--connections must be at least 1");
    if let Some(rate) = args.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number"
        );
    }
    let target = Arc::new(Endpoint::parse(url)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(generate(target, args))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Where to send, and the request's bytes.
struct Endpoint {
    addr: SocketAddr,
    request: Vec<u8>,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint> {
        let uri: hyper::Uri = url.parse().with_context(|| format!("URL `{url}`"))?;
        ensure!(
            uri.scheme_str() == Some("http"),
            "URL `{url}`: only http:// is supported"
        );
        let authority = uri
            .authority()
            .with_context(|| format!("URL `{url}` has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} has no address"))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes();
        Ok(Endpoint { addr, request })
    }
}

/// One connection's share of the result.
struct Tally {
    requests: u64,
    sent: u64,
    errors: u64,
    unsent: u64,
    first_error: Option<String>,
    sample_body: Option<String>,
    hist: Histogram<u64>,
    /// Paced: send time less scheduled time, for connections free then.
    lag: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            requests: 0,
            sent: 0,
            errors: 0,
            unsent: 0,
            first_error: None,
            sample_body: None,
            hist: histogram(),
            lag: histogram(),
        }
    }

    /// Counts a failed request; the first failure's reason is kept.
    fn fail(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }
}

/// The phase's timeline, shared by every connection.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    /// Measuring starts here (after the warm-up)...
    from: Instant,
    /// ... and ends here.
    to: Instant,
}

async fn generate(target: Arc<Endpoint>, args: &LoadArgs) -> Result<LoadResult> {
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(
            Conn::open(target.clone())
                .await
                .with_context(|| format!("connecting to {}", target.addr))?,
        );
    }
    let start = Instant::now();
    let window = Window {
        start,
        from: start + args.warmup,
        to: start + args.warmup + args.duration,
    };
    let mut tasks = JoinSet::new();
    let mut pacer = None;
    match args.rate {
        None => {
            for conn in conns {
                tasks.spawn(closed_loop(conn, window));
            }
        }
        Some(rate) => {
            let mut schedules = Vec::new();
            for conn in conns {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                schedules.push(tx);
                tasks.spawn(paced(conn, window, rx));
            }
            pacer = Some(std::thread::spawn(move || pace(window, rate, schedules)));
        }
    }
    let mut total = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        let t = joined.context("a load connection panicked")?;
        total.requests += t.requests;
        total.sent += t.sent;
        total.errors += t.errors;
        total.unsent += t.unsent;
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
        if total.sample_body.is_none() {
            total.sample_body = t.sample_body;
        }
        total
            .hist
            .add(&t.hist)
            .context("merging latency histograms")?;
        total.lag.add(&t.lag).context("merging lag histograms")?;
    }
    if let Some(pacer) = pacer {
        pacer
            .join()
            .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    }
    let lag = |q: f64| (!total.lag.is_empty()).then(|| total.lag.value_at_quantile(q) as f64 / 1e3);
    Ok(LoadResult {
        rate: args.rate,
        send_lag_p50_ns: lag(0.5),
        send_lag_p99_ns: lag(0.99),
        requests: total.requests,
        elapsed_s: args.duration.as_secs_f64(),
        sent: total.sent,
        errors: total.errors,
        unsent: total.unsent,
        first_error: total.first_error,
        sample_body: total.sample_body,
        latency_ps: total
            .hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
    })
}

/// Sends the next request as soon as the last is answered, until the
/// window ends; counts the answers that arrive inside the window.
async fn closed_loop(mut conn: Conn, window: Window) -> Tally {
    let mut tally = Tally::new();
    loop {
        let sent = Instant::now();
        if sent >= window.to {
            break;
        }
        let ok = conn.exchange(&mut tally).await;
        let done = Instant::now();
        if ok && done >= window.from && done <= window.to {
            tally.requests += 1;
            record(&mut tally.hist, done - sent);
        }
        if conn.broken && !conn.reopen(&mut tally).await {
            break;
        }
    }
    tally
}

/// The paced phase's schedule: request `k` is due at `start + k / rate`
/// and goes to connection `k mod connections`. A thread of its own, which
/// sleeps with the operating system's precision (tokio's timer has 1 ms
/// ticks, coarser than the gaps between requests).
fn pace(window: Window, rate: f64, schedules: Vec<UnboundedSender<Instant>>) {
    let start = window.start.into_std();
    let to = window.to.into_std();
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        if due >= to {
            break;
        }
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // A connection that gave up no longer listens; nothing to do then.
        let _ = schedules[(k % schedules.len() as u64) as usize].send(Instant::from_std(due));
    }
}

/// Sends each request the pacer hands it; records those scheduled inside
/// the window.
async fn paced(mut conn: Conn, window: Window, mut schedule: UnboundedReceiver<Instant>) -> Tally {
    let mut tally = Tally::new();
    let mut free_at = window.start;
    // A connection still behind schedule this long after the window gives
    // up on the rest.
    let give_up = window.to + (window.to - window.from).max(Duration::from_secs(1));
    let mut broken = false;
    while let Some(due) = schedule.recv().await {
        let sent = Instant::now();
        if broken || sent >= give_up {
            tally.unsent += 1;
            continue;
        }
        // Busy at its scheduled time: the request waited for the server,
        // which counts. Free then: it waited only for this client.
        let from = if free_at > due {
            due
        } else {
            record(&mut tally.lag, sent - due);
            sent
        };
        let ok = conn.exchange(&mut tally).await;
        let done = Instant::now();
        free_at = done;
        if ok && due >= window.from {
            tally.requests += 1;
            record(&mut tally.hist, done - from);
        }
        if conn.broken && !conn.reopen(&mut tally).await {
            broken = true;
        }
    }
    tally
}

/// One keep-alive HTTP/1.1 connection of the load worker.
struct Conn {
    target: Arc<Endpoint>,
    stream: TcpStream,
    buf: Vec<u8>,
    /// The connection failed or the server is closing it: open another.
    broken: bool,
}

impl Conn {
    async fn open(target: Arc<Endpoint>) -> io::Result<Conn> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            target,
            stream,
            buf: Vec::with_capacity(4096),
            broken: false,
        })
    }

    /// Replaces a broken connection; false (and one more error) when no
    /// new one could be opened.
    async fn reopen(&mut self, tally: &mut Tally) -> bool {
        match Conn::open(self.target.clone()).await {
            Ok(conn) => {
                *self = conn;
                true
            }
            Err(e) => {
                tally.fail(format!("reconnecting: {e}"));
                false
            }
        }
    }

    /// One request and its answer: true for a 200. Any other status, or a
    /// failed connection, is counted as an error.
    async fn exchange(&mut self, tally: &mut Tally) -> bool {
        tally.sent += 1;
        match self.round_trip().await {
            Ok((status, close)) => {
                // The server may end a connection; that is no error.
                self.broken = close;
                if status != 200 {
                    tally.fail(format!("HTTP status {status}"));
                    return false;
                }
                if tally.sample_body.is_none() {
                    tally.sample_body = Some(String::from_utf8_lossy(&self.buf).into_owned());
                }
                true
            }
            Err(e) => {
                self.broken = true;
                tally.fail(format!("connection: {e}"));
                false
            }
        }
    }

    /// Writes the request and reads one response; leaves its body in
    /// `buf`. Returns the status and whether the server will close.
    async fn round_trip(&mut self) -> io::Result<(u16, bool)> {
        self.stream.write_all(&self.target.request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| invalid("a response head that is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| invalid("a response that is not HTTP/1.1"))?;
        let mut length = None;
        let mut close = false;
        // `wasmtime serve` streams a body as chunks; the gateway sends it whole.
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid("a bad content-length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                ensure_io(
                    value.eq_ignore_ascii_case("chunked"),
                    "a transfer-encoding other than chunked",
                )?;
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        if chunked {
            let (wire, body) = loop {
                if let Some(done) = parse_chunked(&self.buf[head_end..])? {
                    break done;
                }
                self.read_more().await?;
            };
            ensure_io(
                self.buf.len() == head_end + wire,
                "more bytes than one response (none were asked for)",
            )?;
            self.buf.clear();
            self.buf.extend_from_slice(&body);
            return Ok((status, close));
        }
        let length = length.ok_or_else(|| invalid("a response without content-length"))?;
        while self.buf.len() < head_end + length {
            self.read_more().await?;
        }
        ensure_io(
            self.buf.len() == head_end + length,
            "more bytes than one response (none were asked for)",
        )?;
        self.buf.drain(..head_end);
        Ok((status, close))
    }

    async fn read_more(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(())
    }
}

/// A chunked body at the start of `bytes`: `None` until all of it has
/// arrived, then how many bytes it takes on the wire and its data.
fn parse_chunked(bytes: &[u8]) -> io::Result<Option<(usize, Vec<u8>)>> {
    let line_end = |from: usize| bytes[from..].windows(2).position(|w| w == b"\r\n");
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let Some(eol) = line_end(at) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&bytes[at..at + eol])
            .map_err(|_| invalid("a chunk size that is not text"))?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| invalid("a bad chunk size"))?;
        at += eol + 2;
        if size == 0 {
            // Trailer lines, if any, up to an empty one.
            loop {
                let Some(eol) = line_end(at) else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some((at, body)));
                }
            }
        }
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[at..at + size]);
        ensure_io(
            &bytes[at + size..at + size + 2] == b"\r\n",
            "a chunk not ended by CRLF",
        )?;
        at += size + 2;
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server sent {what}"),
    )
}

fn ensure_io(ok: bool, what: &str) -> io::Result<()> {
    if ok { Ok(()) } else { Err(invalid(what)) }
}

#[cfg(test)]
mod tests {
    use super::parse_chunked;

    #[test]
    fn a_chunked_body_is_read_once_whole() {
        let wire = b"5\r\nHello\r\n6;ext=1\r\n from \r\n0\r\n\r\n";
        assert_eq!(
            parse_chunked(wire).unwrap(),
            Some((wire.len(), b"Hello from ".to_vec()))
        );
        for cut in 0..wire.len() {
            assert_eq!(parse_chunked(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse_chunked(b"zz\r\n").is_err());
        assert!(parse_chunked(b"2\r\nabXY0\r\n\r\n").is_err());
    }
}
