//! `gateway-microvm-rps`, part of `dwcp bench microvm`: HTTP requests per
//! second through the node's gateway serving a microvm app, beside the
//! same app logic on the wasm tier and a plain hyper server, same run.
//!
//! The app is `examples/wagi/hello.c`, built by `scripts/build-examples.sh`
//! twice: for WASI (`examples/build/wagi-hello.wasm`) and as a static musl
//! program (`examples/build/microvm/wagi-hello.musl`). Three servers run in
//! this process on a multi-threaded tokio runtime, each behind
//! `cluster::serving::serve_plain` on its own loopback port:
//! - `hyper-floor`: a hyper service answering the app's bytes, no sandbox;
//! - `gateway-wasm`: `node::gateway::Gateway` with a cold route to the
//!   wasm build (a fresh sandbox per request, `fast` profile), as `dwcp up`
//!   serves a wasm app;
//! - `gateway-microvm`: the same gateway with the musl build as a microvm
//!   version (`MicroVmVersion`: a pooled VM reset per request), as
//!   `dwcp up`'s agent prepares it.
//!
//! The load is `dwcp bench gateway`'s: another process of this binary, a
//! closed loop on 32 keep-alive connections, round after round over the
//! three servers (see `gateway.rs`); a server's figure is the median of its
//! rounds. Every answer is checked to be the app's.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use node::gateway::{
    AccessLog, AppKey, Gateway, MicroVmVersion, PreparedVersion, Route, RouteLimits, RouteTable,
    RouteVersion, VersionHandle,
};
use sandbox::{Artifact, Engine, Limits, MicroVmEngine, WasmConfig, WasmEngine};
use state::Name;

use super::gateway::{CONNECTIONS, Plan, load};
use super::progress;
use super::report::{Series, histogram};

const PATH: &str = "/hello";
/// What `examples/wagi/hello.c` answers to `GET /hello` (no path below the
/// route, no query, no body).
const ANSWER: &str = "Hello from C!\nmethod=GET path= query=\nbody=\n";

/// One server under test.
struct Target {
    name: &'static str,
    url: String,
    server: tokio::task::JoinHandle<()>,
    rates: Vec<f64>,
    requests: u64,
    hist: Histogram<u64>,
}

/// The figures, as series of the microvm report and its notes.
pub(super) struct Measured {
    pub(super) series: Vec<Series>,
    pub(super) notes: Vec<String>,
}

/// An example built by `scripts/build-examples.sh`.
fn example(path: &str) -> Result<Vec<u8>> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/build")
        .join(path);
    std::fs::read(&full).with_context(|| {
        format!(
            "{} is missing: run `bash scripts/build-examples.sh` first",
            full.display()
        )
    })
}

pub(super) fn run(engine: &MicroVmEngine, quick: bool) -> Result<Measured> {
    let plan = Plan {
        rounds: if quick { 1 } else { 5 },
        warmup: std::time::Duration::from_millis(if quick { 250 } else { 500 }),
        slice: std::time::Duration::from_secs(2),
        // Unused: this benchmark has no quiet phase.
        quiet: std::time::Duration::ZERO,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let _entered = runtime.enter();

    // As `dwcp up`'s agent prepares versions with the default config.
    let limits = Limits::default();
    let wasm_engine = WasmEngine::new(WasmConfig::fast()).context("starting the wasm engine")?;
    let wasm = wasm_engine
        .prepare(&Artifact::new(example("wagi-hello.wasm")?), limits.clone())
        .context("preparing examples/build/wagi-hello.wasm")?;
    let native = engine
        .prepare(&Artifact::new(example("microvm/wagi-hello.musl")?), limits)
        .context("preparing examples/build/microvm/wagi-hello.musl")?;
    let route_limits = RouteLimits::default();
    let vm = MicroVmVersion::new(native, route_limits.max_concurrency);
    vm.warm_up_to(MicroVmVersion::DEFAULT_POOL)?;
    let versions: [(&'static str, Option<PreparedVersion>); 3] = [
        ("hyper-floor", None),
        (
            "gateway-wasm",
            Some(Arc::new(VersionHandle::new(wasm)).into()),
        ),
        ("gateway-microvm", Some(Arc::new(vm).into())),
    ];
    let mut targets = Vec::new();
    for (name, version) in versions {
        let listener = cluster::serving::listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .context("listening on loopback")?;
        let url = format!("http://{}{PATH}", listener.local_addr()?);
        let server = match version {
            None => cluster::serving::serve_plain(listener, |_request| async { floor() }),
            Some(version) => node::gateway::serve(listener, gateway(version)?),
        };
        targets.push(Target {
            name,
            url,
            server,
            rates: Vec::new(),
            requests: 0,
            hist: histogram(),
        });
    }
    let measured = measure(&mut targets, &plan);
    for t in &targets {
        t.server.abort();
    }
    measured?;

    let median = |t: &Target| {
        let mut rates = t.rates.clone();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied().unwrap_or(0.0)
    };
    let mut series = Vec::new();
    let mut notes = Vec::new();
    for t in &targets {
        series.push(Series::value(
            &format!("{}-rps", t.name),
            "ops/s",
            median(t),
            t.requests,
            match t.name {
                "hyper-floor" => None,
                "gateway-microvm" => Some("gateway-wasm-rps"),
                _ => Some("hyper-floor-rps"),
            },
        ));
    }
    for t in &targets {
        series.push(Series::latency(
            &format!("lab-{}-closed-loop-latency", t.name),
            &t.hist,
            None,
        ));
        let rates: Vec<String> = t.rates.iter().map(|r| format!("{r:.0}")).collect();
        notes.push(format!(
            "{}-rps is the median of {} rounds: {} req/s",
            t.name,
            t.rates.len(),
            rates.join(", ")
        ));
    }
    let rps = |n: &str| targets.iter().find(|t| t.name == n).map_or(0.0, &median);
    let (floor_rps, wasm_rps, vm_rps) = (
        rps("hyper-floor"),
        rps("gateway-wasm"),
        rps("gateway-microvm"),
    );
    notes.push(format!(
        "gateway-microvm-rps: {vm_rps:.0} req/s = {:.1} % of hyper-floor-rps ({floor_rps:.0}) and {:.2}x gateway-wasm-rps ({wasm_rps:.0}); the app is examples/wagi/hello.c on both tiers (musl static for microvm, wasi-libc for wasm), {CONNECTIONS} keep-alive connections, closed loop, load from another process sharing the cores",
        100.0 * vm_rps / floor_rps.max(1.0),
        vm_rps / wasm_rps.max(1.0),
    ));
    notes.push("lab-*-closed-loop-latency: the closed loop's own latencies (each connection sends its next request when the last is answered), not a paced latency".into());
    Ok(Measured { series, notes })
}

/// Round after round, each server's closed-loop rate.
fn measure(targets: &mut [Target], plan: &Plan) -> Result<()> {
    for round in 1..=plan.rounds {
        for t in targets.iter_mut() {
            let r = load(&t.url, plan.slice, plan, None)?;
            let failed = r.errors as f64 / r.sent.max(1) as f64;
            ensure!(
                failed <= 0.01 && r.requests > 0,
                "{}: {} of {} requests failed, {} answered; first failure: {}",
                t.name,
                r.errors,
                r.sent,
                r.requests,
                r.first_error.as_deref().unwrap_or("none recorded")
            );
            if let Some(body) = &r.sample_body {
                ensure!(
                    body == ANSWER,
                    "{}: answered {body:?} where {ANSWER:?} was expected",
                    t.name
                );
            }
            let rate = r.requests as f64 / r.elapsed_s;
            progress(
                "microvm",
                &format!(
                    "gateway, round {round}/{}: {} {rate:.0} req/s",
                    plan.rounds, t.name
                ),
            );
            t.rates.push(rate);
            t.requests += r.requests;
            t.hist
                .add(r.histogram()?)
                .context("merging latency histograms")?;
        }
    }
    Ok(())
}

/// The floor's answer: the app's bytes, no sandbox.
fn floor() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A gateway with one cold route, `/hello`, to `version`.
fn gateway(version: PreparedVersion) -> Result<Arc<Gateway>> {
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
        limits: RouteLimits::default(),
    };
    Ok(Gateway::new(
        RouteTable::new(vec![route])?,
        AccessLog::to_writer(io::sink()),
    ))
}
