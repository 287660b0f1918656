//! `dwcp bench rollout`: how fast a bad canary is caught and taken back, and
//! how many requests fail meanwhile, on three `dwcp up` processes
//! ([`super::processes`]) under HTTP load at every node's gateway.
//!
//! Setup: the app `default/bench-rollout` (`apps/rollout.wat`) is deployed
//! as version 1 (`FAILS 0`: it never fails) with one replica per node, and
//! the bad build (`FAILS 1`: it traps, a 500, on a body starting with `f`)
//! is uploaded. A load of keep-alive HTTP/1.1 clients, a few per gateway,
//! POSTs the body `f` to the app's route all the time, so every request the
//! canary serves fails and every one stable serves succeeds.
//!
//! Each iteration has two trials:
//! 1. a rollout: the bad build becomes a new version (fresh, see below) and
//!    a rollout to it starts with the plan [`plan`] (weight 10 %, then an
//!    analysis: `error_rate <= 0.01` every 1 s, 3 times, no failure
//!    allowed). The rollout controller in `dwcp up` aborts it; the bench
//!    reads the verdict's time from the rollout record (`finished_unix_ms`,
//!    the controller's wall clock when it decided) and the time of the
//!    first load response the canary answered (the client's wall clock:
//!    the same machine, the same clock). Meanwhile a prober per gateway
//!    asks every [`PROBE_EVERY`] for the rollout's baseline version by name
//!    (`x-dwcp-version`), which a gateway honours only while the version is
//!    in its route: the answer comes from the baseline until the gateway
//!    has applied the abort, from stable after it.
//! 2. the old way (`rollback-redeploy`): the same bad version is deployed
//!    outright (`PUT .../deployment`), and once every gateway serves it,
//!    the deployment is put back to version 1; the same probe, asking for
//!    the bad version, times when every gateway has left it.
//!
//! Why a fresh canary version per iteration (the same module, a new
//! version number): every gateway keeps a circuit breaker per version
//! (five failures in a row take it out of the split for 5 s), and it
//! outlives a rollout. Rolling the same version out again within 5 s would
//! start with its breakers open, so the load would not reach the canary
//! until a breaker's trial request.
//!
//! Why the probe names the baseline and not the canary: a request to the
//! canary changes what is measured. A failing one counts towards the
//! canary's breaker (five probes would take the canary out of the load's
//! split before the load reached it), a succeeding one closes the breaker
//! again and dilutes the canary's error rate in the analysis. The baseline
//! (a copy of stable, judged only by checks this plan does not use) enters
//! and leaves every gateway's route together with the canary: both come
//! from the one rollout record, and the agent swaps a whole route table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use node::gateway::VERSION_HEADER;
use serde::Deserialize;
use serde::de::IgnoredAny;
use state::{Rollout, Version};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::processes::ProcessCluster;
use super::progress;
use super::report::{Report, Series, histogram, record};
use crate::cli::client::Client;

/// The app's template; [`module`] fills it in.
const APP_WAT: &str = include_str!("apps/rollout.wat");
const TENANT: &str = "default";
const APP: &str = "bench-rollout";
const ROUTE: &str = "/bench-rollout";
/// The region `dwcp up` puts its node in by default.
const REGION: &str = "local";
/// One per node, so that every gateway serves the app itself.
const REPLICAS: u32 = 3;

/// The plan's canary weight, in %.
const CANARY_WEIGHT: u32 = 10;
/// The analysis: a measurement every `INTERVAL_MS`, `MEASUREMENTS` times.
const INTERVAL_MS: u64 = 500;
const MEASUREMENTS: u32 = 3;
const ERROR_RATE_LIMIT: f64 = 0.01;
/// The plan's own timeout; no rollout here should come near it.
const PLAN_TIMEOUT_MS: u64 = 60_000;

/// Load clients (one keep-alive connection each) per gateway...
const CLIENTS_PER_GATEWAY: u32 = 4;
/// ... each sending a request this often (later when an answer is late).
const CLIENT_EVERY: Duration = Duration::from_millis(10);
/// What the load sends: the canary fails it, stable does not.
const BAD_BODY: &[u8] = b"f";
/// What the probes send: no version fails it.
const PROBE_BODY: &[u8] = b"p";
/// How often each gateway is probed: the resolution of `rollback`.
const PROBE_EVERY: Duration = Duration::from_millis(2);
/// Answers in a row that show a gateway has settled on (or off) a version.
const SETTLED: usize = 20;
/// Load answers in a row, all from stable and successful, before a trial.
const QUIET: usize = 100;

/// Bounds every wait for the cluster (a deploy, a verdict, a gateway to
/// follow); only a broken cluster reaches it.
const DEADLINE: Duration = Duration::from_secs(60);
/// How often waits look again.
const POLL: Duration = Duration::from_millis(25);
/// Bounds one HTTP request to a gateway (the app's own timeout is 10 s).
const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// The goal for `detect` and `rollback`: p99 at most this, in ms.
const GOAL_MS: f64 = 1000.0;

pub fn run(quick: bool) -> Result<Report> {
    super::on_runtime(measure(if quick { 5 } else { 20 }))
}

/// The rollout plan of every trial.
fn plan() -> serde_json::Value {
    serde_json::json!({
        "steps": [
            {"set_weight": {"weight": CANARY_WEIGHT}},
            {"analysis": {
                "checks": [{"metric": "error_rate", "comparator": "<=", "threshold": ERROR_RATE_LIMIT}],
                "interval_ms": INTERVAL_MS,
                "count": MEASUREMENTS,
                "failure_limit": 0,
            }},
            {"set_weight": {"weight": 100}},
        ],
        "timeout_ms": PLAN_TIMEOUT_MS,
    })
}

/// The index of the plan's analysis step (the one that aborts).
const ANALYSIS_STEP: usize = 1;

/// The app's module text: `tag` (8 bytes) is what it answers; `fails`: it
/// traps on a body starting with `f`.
fn module(tag: &str, fails: bool) -> String {
    debug_assert_eq!(tag.len(), 8, "the template's answer has room for 8 bytes");
    APP_WAT
        .replace("TAG_TAG_", tag)
        .replace("SPIN)", "0)")
        .replace("const FAILS)", if fails { "const 1)" } else { "const 0)" })
}

async fn measure(iterations: u32) -> Result<Report> {
    let load_rate = 3.0 * f64::from(CLIENTS_PER_GATEWAY) / CLIENT_EVERY.as_secs_f64();
    let mut report = Report::new(
        "rollout",
        serde_json::json!({
            "nodes": 3,
            "setup": "three `dwcp up` child processes on 127.0.0.61-63 (one region), the app deployed with one replica per node",
            "app": "crates/dwcp/src/bench/apps/rollout.wat (WAGI, cold sandboxes, default limits): stable FAILS 0; canary FAILS 1 (traps, a 500, on a body starting with `f`); SPIN 0",
            "iterations": iterations,
            "plan": plan(),
            "canary_weight_percent": CANARY_WEIGHT,
            "load": {
                "request": format!("POST {ROUTE} with body `f` (every canary answer fails, no stable answer does)"),
                "clients": 3 * CLIENTS_PER_GATEWAY,
                "clients_per_gateway": CLIENTS_PER_GATEWAY,
                "each_client_every_ms": CLIENT_EVERY.as_millis(),
                "requests_per_second": load_rate,
                "client": "one HTTP/1.1 keep-alive connection per client (hyper), in the bench process, no version pinned",
            },
            "probe": {
                "request": format!("POST {ROUTE} with body `p` and x-dwcp-version: the rollout's baseline (rollback) or the bad version (rollback-redeploy)"),
                "every_ms": PROBE_EVERY.as_millis(),
                "resolution_ms": PROBE_EVERY.as_millis(),
                "per_gateway": "one keep-alive connection",
                "settled_after_answers": SETTLED,
            },
            "clocks": "verdict: the rollout's finished_unix_ms (the controller's wall clock, ms); client times: SystemTime in this process (µs); one machine, one clock",
            "fresh_canary_version_per_iteration": true,
        }),
    );

    progress(
        "rollout",
        "starting a 3-node cluster of `dwcp up` processes",
    );
    let mut cluster = ProcessCluster::start("rollout").await?;
    let leader = cluster.leader().await?;
    let gateways: Vec<SocketAddr> = (0..3).map(|i| cluster.gateway(i)).collect();
    let client = cluster.client(leader);
    let app = format!("/tenants/{TENANT}/apps/{APP}");

    progress(
        "rollout",
        &format!("deploying the stable version with {REPLICAS} replicas"),
    );
    let stable_digest = upload(client, &module("stable-1", false)).await?;
    let bad_digest = upload(client, &module("canary-1", true)).await?;
    client
        .post::<_, IgnoredAny>(
            &format!("/tenants/{TENANT}/apps"),
            &serde_json::json!({"name": APP, "route": ROUTE}),
        )
        .await?;
    let stable = add_version(client, &app, &stable_digest).await?;
    deploy(client, &app, stable).await?;
    // Every gateway serves stable (the probe asks for it by name; it is
    // in every route once deployed).
    let probers = Probers::start(&gateways, stable);
    let waited = probers
        .wait("every gateway to serve the stable version", |p| {
            settled_on(p, stable, SETTLED)
        })
        .await;
    probers.stop().await;
    waited.with_context(|| format!("node logs: {}", cluster.log(0).display()))?;

    progress(
        "rollout",
        &format!(
            "load: {} clients at {load_rate:.0} requests/s over the 3 gateways ({})",
            3 * CLIENTS_PER_GATEWAY,
            gateways
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let load = Load::start(&gateways);
    let mut trials = Vec::new();
    let mut redeploys = Vec::new();
    let mut failure = None;
    for i in 1..=iterations {
        let outcome = async {
            let bad = add_version(client, &app, &bad_digest).await?;
            let trial = rollout_trial(client, &app, &load, &gateways, stable, bad).await?;
            let redeploy = redeploy_trial(client, &app, &gateways, stable, bad).await?;
            Ok::<_, anyhow::Error>((bad, trial, redeploy))
        }
        .await;
        match outcome {
            Ok((bad, trial, redeploy)) => {
                progress(
                    "rollout",
                    &format!(
                        "iteration {i}/{iterations} (canary v{bad}, baseline v{}): first bad request -> verdict {:.0} ms (floor {:.0} ms, measurement {}), verdict -> every gateway on stable {:.0} ms; {} of {} load requests failed in between; redeploy back to stable {:.0} ms",
                        trial.baseline,
                        ms(trial.detect_us),
                        ms(trial.floor_us),
                        trial.measurement,
                        ms(trial.rollback_us),
                        trial.window.failed,
                        trial.window.requests,
                        ms(redeploy),
                    ),
                );
                trials.push(trial);
                redeploys.push(redeploy);
            }
            Err(e) => {
                failure = Some(e.context(format!(
                    "iteration {i}; node logs in {}",
                    cluster
                        .log(0)
                        .parent()
                        .map_or(String::new(), |d| d.display().to_string())
                )));
                break;
            }
        }
    }
    load.stop().await;
    if let Some(e) = failure {
        return Err(e);
    }
    cluster.finish();

    let summary = Summary::of(&trials, &redeploys);
    report
        .series
        .push(Series::latency("detect-floor", &summary.floor, None));
    report.series.push(Series::latency(
        "detect",
        &summary.detect,
        Some("detect-floor"),
    ));
    report.series.push(Series::latency(
        "rollback-redeploy",
        &summary.redeploy,
        None,
    ));
    report.series.push(Series::latency(
        "rollback",
        &summary.rollback,
        Some("rollback-redeploy"),
    ));
    report.series.push(Series::value(
        "failed-per-10k-bound",
        "count",
        summary.bound_per_10k(),
        summary.window.requests,
        None,
    ));
    report.series.push(
        Series::value(
            "failed-per-10k",
            "count",
            summary.window.per_10k(),
            summary.window.requests,
            Some("failed-per-10k-bound"),
        )
        .fewer_is_better(),
    );
    let mut report = report.finish();
    report.notes.extend(summary.notes(&report));
    Ok(report)
}

/// Uploads a module's text (the node compiles WAT as it does binary
/// WebAssembly); its digest.
pub(crate) async fn upload(client: &Client, text: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Blob {
        digest: String,
    }
    let blob: Blob = client
        .upload(
            "/blobs",
            "application/wasm",
            Bytes::from(text.as_bytes().to_vec()),
        )
        .await?;
    Ok(blob.digest)
}

/// Adds a version of the app with the default configuration; its number.
pub(crate) async fn add_version(client: &Client, app: &str, digest: &str) -> Result<u64> {
    let version: Version = client
        .post(
            &format!("{app}/versions"),
            &serde_json::json!({"digest": digest, "config": {}}),
        )
        .await?;
    Ok(version.number)
}

/// Deploys `version` of the app with [`REPLICAS`] in [`REGION`].
async fn deploy(client: &Client, app: &str, version: u64) -> Result<()> {
    client
        .put::<_, IgnoredAny>(
            &format!("{app}/deployment"),
            &serde_json::json!({"version": version, "regions": {REGION: REPLICAS}}),
        )
        .await?;
    Ok(())
}

/// What `GET .../rollout` and `POST .../rollouts` answer; only the record
/// is needed.
#[derive(Deserialize)]
struct Live {
    rollout: Rollout,
}

/// One rollout of a bad canary, measured.
struct Trial {
    baseline: u64,
    /// First bad request to the verdict, µs.
    detect_us: u64,
    /// The earliest verdict the plan allows (analysis start + interval),
    /// from the first bad request, µs.
    floor_us: u64,
    /// The verdict to every gateway answering from stable, µs.
    rollback_us: u64,
    /// Durations that came out negative and were clipped at 0.
    clipped: u32,
    /// The analysis measurement that aborted (1-based).
    measurement: u32,
    reason: String,
    /// Load answers from first bad request to every gateway on stable.
    window: Tally,
    /// Load answers the canary served, in the window...
    canary_in_window: Tally,
    /// ... and in the whole trial.
    canary: Tally,
}

/// Runs one rollout of the bad version `bad` under the load and measures
/// it.
async fn rollout_trial(
    client: &Client,
    app: &str,
    load: &Load,
    gateways: &[SocketAddr],
    stable: u64,
    bad: u64,
) -> Result<Trial> {
    load.wait_quiet(stable).await?;
    load.take();
    let started: Live = client
        .post(
            &format!("{app}/rollouts"),
            &serde_json::json!({"to": bad, "plan": plan()}),
        )
        .await?;
    let id = started.rollout.id;
    let baseline = started
        .rollout
        .baseline
        .context("the rollout has no baseline version to probe")?;
    let probers = Probers::start(gateways, baseline);
    let rollout = wait_for_verdict(client, app, id).await;
    let rollout = match rollout {
        Ok(r) => r,
        Err(e) => {
            probers.stop().await;
            return Err(e);
        }
    };
    let verdict_ms = rollout
        .finished_unix_ms
        .context("a finished rollout without its time")?;
    let trail = || {
        rollout
            .trail
            .iter()
            .map(|t| format!("{} {}: {}", t.unix_ms, t.by, t.text))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    let ::rollout::Status::Aborted { reason } = &rollout.progress.status else {
        probers.stop().await;
        bail!(
            "rollout {id} to the bad version {bad} was not aborted ({:?}); its trail:\n  {}",
            rollout.progress.status,
            trail()
        );
    };
    ensure!(
        rollout.progress.step == ANALYSIS_STEP,
        "rollout {id} was aborted at step {}, not in its analysis; its trail:\n  {}",
        rollout.progress.step + 1,
        trail()
    );
    let verdict_us = verdict_ms * 1000;
    let waited = probers
        .wait("every gateway to leave the rollout's versions", |p| {
            settled_off(p, baseline, verdict_us, SETTLED)
        })
        .await;
    let logs = probers.stop().await;
    waited?;
    let stable_at = all_left_at(&logs, baseline)?;
    let served = load.take();
    let first_bad = first_answer_from(&served, bad)
        .context("no load request reached the canary before the verdict")?;
    let floor_end_us = (rollout.progress.step_started_ms + INTERVAL_MS) * 1000;
    let mut clipped = 0;
    let mut since = |end: u64, start: u64| {
        if end < start {
            clipped += 1;
        }
        end.saturating_sub(start)
    };
    Ok(Trial {
        baseline,
        detect_us: since(verdict_us, first_bad),
        floor_us: since(floor_end_us, first_bad),
        rollback_us: since(stable_at, verdict_us),
        clipped,
        measurement: rollout.progress.analysis.measurements,
        reason: reason.clone(),
        window: tally(&served, first_bad, stable_at, |_| true),
        canary_in_window: tally(&served, first_bad, stable_at, |s| s.version == Some(bad)),
        canary: tally(&served, 0, u64::MAX, |s| s.version == Some(bad)),
    })
}

/// Polls the app's rollout `id` until it has finished.
async fn wait_for_verdict(client: &Client, app: &str, id: u64) -> Result<Rollout> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let live: Live = client.get(&format!("{app}/rollout")).await?;
        ensure!(
            live.rollout.id == id,
            "the app's latest rollout is {}, not {id}",
            live.rollout.id
        );
        if live.rollout.finished_unix_ms.is_some() {
            return Ok(live.rollout);
        }
        if Instant::now() >= deadline {
            bail!(
                "rollout {id} had no verdict within {} s (progress: {:?})",
                DEADLINE.as_secs(),
                live.rollout.progress
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The old way back: `bad` deployed outright, then the deployment put back
/// to `stable`; µs from that PUT's send to every gateway answering from
/// stable.
async fn redeploy_trial(
    client: &Client,
    app: &str,
    gateways: &[SocketAddr],
    stable: u64,
    bad: u64,
) -> Result<u64> {
    let probers = Probers::start(gateways, bad);
    let measured = async {
        deploy(client, app, bad).await?;
        probers
            .wait("every gateway to serve the redeployed bad version", |p| {
                settled_on(p, bad, SETTLED)
            })
            .await?;
        let sent = unix_us();
        deploy(client, app, stable).await?;
        probers
            .wait("every gateway to serve stable again", |p| {
                settled_off(p, bad, sent, SETTLED)
            })
            .await?;
        Ok::<_, anyhow::Error>(sent)
    }
    .await;
    let logs = probers.stop().await;
    let sent = measured?;
    Ok(all_left_at(&logs, bad)?.saturating_sub(sent))
}

/// When every gateway had left `pinned`: the latest of their
/// [`left_at`]s.
fn all_left_at(logs: &[Vec<Probe>], pinned: u64) -> Result<u64> {
    let mut latest = 0;
    for (i, log) in logs.iter().enumerate() {
        let at = left_at(log, pinned).with_context(|| {
            format!(
                "gateway {} never answered from version {pinned} while probed ({} probes)",
                i + 1,
                log.len()
            )
        })?;
        latest = latest.max(at);
    }
    Ok(latest)
}

// ------------------------------------------------------------ the figures

/// Load answers counted over a span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    requests: u64,
    /// 5xx answers, and requests that got no answer.
    failed: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.failed += other.failed;
    }

    fn per_10k(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.failed as f64 * 10_000.0 / self.requests as f64
    }

    fn rate(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.failed as f64 / self.requests as f64
    }
}

/// The load's answers received in `[from_us, to_us]` that `counted` keeps.
fn tally(served: &[Served], from_us: u64, to_us: u64, counted: impl Fn(&Served) -> bool) -> Tally {
    let mut t = Tally::default();
    for s in served
        .iter()
        .filter(|s| (from_us..=to_us).contains(&s.at_us) && counted(s))
    {
        t.requests += 1;
        if s.failed() {
            t.failed += 1;
        }
    }
    t
}

/// When the first load answer from `version` was received.
fn first_answer_from(served: &[Served], version: u64) -> Option<u64> {
    served
        .iter()
        .filter(|s| s.version == Some(version))
        .map(|s| s.at_us)
        .min()
}

/// The send time of the first answered probe after the last answer from
/// `pinned`: from then on the gateway answered only from other versions.
/// `None` when it never answered from `pinned`, or nothing came after.
fn left_at(probes: &[Probe], pinned: u64) -> Option<u64> {
    let last = probes.iter().rposition(|p| p.version == Some(pinned))?;
    probes[last + 1..]
        .iter()
        .find(|p| p.version.is_some())
        .map(|p| p.sent_us)
}

/// Whether the last `n` answers came from `version`.
fn settled_on(probes: &[Probe], version: u64, n: usize) -> bool {
    let last: Vec<&Probe> = probes
        .iter()
        .rev()
        .filter(|p| p.version.is_some())
        .take(n)
        .collect();
    last.len() == n && last.iter().all(|p| p.version == Some(version))
}

/// Whether the last `n` answers came from versions other than `pinned`,
/// all to probes sent at or after `after_us`.
fn settled_off(probes: &[Probe], pinned: u64, after_us: u64, n: usize) -> bool {
    let last: Vec<&Probe> = probes
        .iter()
        .rev()
        .filter(|p| p.version.is_some())
        .take(n)
        .collect();
    last.len() == n
        && last
            .iter()
            .all(|p| p.version != Some(pinned) && p.sent_us >= after_us)
}

/// Every trial's figures together.
struct Summary {
    detect: Histogram<u64>,
    floor: Histogram<u64>,
    rollback: Histogram<u64>,
    redeploy: Histogram<u64>,
    window: Tally,
    canary: Tally,
    /// Load answers in the windows the canary served.
    canary_in_window: u64,
    clipped: u32,
    /// Trials by the measurement that aborted them.
    by_measurement: BTreeMap<u32, u32>,
    /// Trials by the kind of reason.
    by_reason: BTreeMap<String, u32>,
    trials: usize,
}

impl Summary {
    fn of(trials: &[Trial], redeploys: &[u64]) -> Summary {
        let mut s = Summary {
            detect: histogram(),
            floor: histogram(),
            rollback: histogram(),
            redeploy: histogram(),
            window: Tally::default(),
            canary: Tally::default(),
            canary_in_window: 0,
            clipped: 0,
            by_measurement: BTreeMap::new(),
            by_reason: BTreeMap::new(),
            trials: trials.len(),
        };
        for t in trials {
            record(&mut s.detect, Duration::from_micros(t.detect_us));
            record(&mut s.floor, Duration::from_micros(t.floor_us));
            record(&mut s.rollback, Duration::from_micros(t.rollback_us));
            s.window.add(t.window);
            s.canary.add(t.canary);
            s.canary_in_window += t.canary_in_window.requests;
            s.clipped += t.clipped;
            *s.by_measurement.entry(t.measurement).or_default() += 1;
            *s.by_reason.entry(reason_kind(&t.reason)).or_default() += 1;
        }
        for &r in redeploys {
            record(&mut s.redeploy, Duration::from_micros(r));
        }
        s
    }

    /// What the canary's weight and the detection window allow: every
    /// request in the window has a `CANARY_WEIGHT` % chance to go to the
    /// canary, which fails at its measured rate.
    fn bound_per_10k(&self) -> f64 {
        bound_per_10k(CANARY_WEIGHT, self.canary.rate())
    }

    fn notes(&self, report: &Report) -> Vec<String> {
        let get = |n: &str| report.series.iter().find(|s| s.name == n);
        let p99_ms = |n: &str| get(n).and_then(|s| s.p99).map_or(f64::NAN, |v| v / 1e6);
        let mut notes = Vec::new();
        for (name, what) in [
            ("detect", "first bad request to verdict"),
            ("rollback", "verdict to every gateway on stable"),
        ] {
            let p99 = p99_ms(name);
            notes.push(format!(
                "goal {name} p99 <= 1 s ({what}): p99 {p99:.0} ms over {} rollouts: {}",
                self.trials,
                if p99 <= GOAL_MS { "met" } else { "NOT met" }
            ));
        }
        let total = p99_ms("detect") + p99_ms("rollback");
        notes.push(format!(
            "first bad request to every gateway on stable, p99 of detect + p99 of rollback: {total:.0} ms; with this plan no verdict can come before the analysis' first measurement, {INTERVAL_MS} ms after the weight was set (detect-floor)"
        ));
        let measurements: Vec<String> = self
            .by_measurement
            .iter()
            .map(|(m, n)| format!("measurement {m} in {n}"))
            .collect();
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .map(|(r, n)| format!("{n} x {r}"))
            .collect();
        notes.push(format!(
            "verdicts: {} of {} rollouts aborted ({}); at {}",
            self.by_reason.values().sum::<u32>(),
            self.trials,
            reasons.join(", "),
            measurements.join(", ")
        ));
        notes.push(
            "detect: from the client's receive time of the first load answer carrying x-dwcp-version: <canary> to the rollout's finished_unix_ms (the controller's wall clock when it aborted; same machine); detect-floor: (the analysis step's start + interval_ms) - that first bad request, the earliest verdict the plan allows, so detect - detect-floor is the controller's rounds (every 100 ms) and the nodes' reports (every 250 ms while a rollout runs) waiting".into(),
        );
        notes.push(format!(
            "rollback: the latest over the 3 gateways of the send time of the first probe after which every answer came from stable, minus the verdict, clipped at 0; resolution {} ms (the probe interval) plus a round trip. rollback-redeploy: the same probe, from sending PUT .../deployment back to stable (with the bad version deployed outright and served by every gateway) to every gateway answering from stable",
            PROBE_EVERY.as_millis()
        ));
        notes.push(format!(
            "failed-per-10k: load answers that were 5xx or never came, per 10,000 load answers received between the first bad request and every gateway on stable ({} failed of {}); failed-per-10k-bound: the canary weight ({CANARY_WEIGHT} %) x the canary's measured failure rate ({:.3}, {} of {} canary answers) x 10,000, what the weight and the window allow",
            self.window.failed,
            self.window.requests,
            self.canary.rate(),
            self.canary.failed,
            self.canary.requests,
        ));
        let share = if self.window.requests == 0 {
            0.0
        } else {
            self.canary_in_window as f64 * 100.0 / self.window.requests as f64
        };
        notes.push(format!(
            "the canary answered {share:.2} % of the load in those windows, against a weight of {CANARY_WEIGHT} %: each gateway's circuit breaker takes a version out of the split after five failures in a row (for 5 s), so a canary that fails every request loses its share within a few requests per gateway, long before the verdict"
        ));
        if self.clipped > 0 {
            notes.push(format!(
                "{} durations came out negative (an event before the one it is timed from, within the clocks' ms resolution) and count as 0",
                self.clipped
            ));
        }
        if self.window.failed == 0 {
            notes.push(
                "no load request failed in the windows: failed-per-10k is 0 and has no ratio"
                    .into(),
            );
        }
        notes.push(
            "each iteration rolls out a fresh version of the same bad module (a version's breaker state outlives a rollout on every gateway); probes ask for the rollout's baseline, not the canary, so that they neither trip nor reset the canary's breaker nor change its error rate; the baseline leaves every route in the same table swap as the canary".into(),
        );
        notes
    }
}

/// The bound on failed requests per 10,000 that a canary at `weight` %
/// failing at `failure_rate` allows.
fn bound_per_10k(weight: u32, failure_rate: f64) -> f64 {
    f64::from(weight) / 100.0 * failure_rate * 10_000.0
}

/// A rollout's abort reason without its figures, to count alike ones.
fn reason_kind(reason: &str) -> String {
    let head = reason.split(" (").next().unwrap_or(reason);
    head.split(':').next().unwrap_or(head).trim().to_string()
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

// ------------------------------------------------------ load and probes

/// One load answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Served {
    /// When it was received (or the request failed), Unix µs.
    at_us: u64,
    /// `None`: no answer (a connection error or no answer in time).
    status: Option<u16>,
    /// Its `x-dwcp-version`.
    version: Option<u64>,
}

impl Served {
    fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// The load: [`CLIENTS_PER_GATEWAY`] clients per gateway, each POSTing
/// [`BAD_BODY`] every [`CLIENT_EVERY`] (or as soon as its last answer came,
/// when that took longer) on its own keep-alive connection.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<Mutex<Vec<Served>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(gateways: &[SocketAddr]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let clients = gateways.len() as u32 * CLIENTS_PER_GATEWAY;
        let mut tasks = Vec::new();
        for (i, addr) in gateways
            .iter()
            .flat_map(|g| std::iter::repeat_n(*g, CLIENTS_PER_GATEWAY as usize))
            .enumerate()
        {
            // Spread over the interval, so the clients do not send in step.
            let first = Instant::now() + CLIENT_EVERY * i as u32 / clients;
            let (stop, served) = (stop.clone(), served.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(addr, ROUTE);
                let mut tick = tokio::time::interval_at(first, CLIENT_EVERY);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let answer = conn.post(BAD_BODY, None).await;
                    let at_us = unix_us();
                    let s = match answer {
                        Ok(a) => Served {
                            at_us,
                            status: Some(a.status),
                            version: a.version,
                        },
                        Err(_) => Served {
                            at_us,
                            status: None,
                            version: None,
                        },
                    };
                    lock(&served).push(s);
                }
            }));
        }
        Load {
            stop,
            served,
            tasks,
        }
    }

    /// The answers since the last call.
    fn take(&self) -> Vec<Served> {
        std::mem::take(&mut *lock(&self.served))
    }

    /// Waits until the last [`QUIET`] answers all came from `stable` and
    /// succeeded: the last trial's changes are over.
    async fn wait_quiet(&self, stable: u64) -> Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            {
                let served = lock(&self.served);
                let tail = &served[served.len().saturating_sub(QUIET)..];
                if tail.len() == QUIET
                    && tail
                        .iter()
                        .all(|s| s.version == Some(stable) && s.status == Some(200))
                {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    let last = tail.last();
                    bail!(
                        "the load was not served by the stable version {stable} alone within {} s (last answer: {last:?})",
                        DEADLINE.as_secs()
                    );
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// One probe: when it was sent and which version answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Probe {
    sent_us: u64,
    /// `None`: no answer, or one without `x-dwcp-version`.
    version: Option<u64>,
}

/// A prober per gateway, asking for version `pinned` every
/// [`PROBE_EVERY`] with [`PROBE_BODY`], each on its own keep-alive
/// connection.
struct Probers {
    stop: Arc<AtomicBool>,
    logs: Vec<Arc<Mutex<Vec<Probe>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Probers {
    fn start(gateways: &[SocketAddr], pinned: u64) -> Probers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut logs = Vec::new();
        let mut tasks = Vec::new();
        for &addr in gateways {
            let log = Arc::new(Mutex::new(Vec::new()));
            logs.push(log.clone());
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(addr, ROUTE);
                let mut tick = tokio::time::interval(PROBE_EVERY);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let sent_us = unix_us();
                    let version = conn
                        .post(PROBE_BODY, Some(pinned))
                        .await
                        .ok()
                        .and_then(|a| a.version);
                    lock(&log).push(Probe { sent_us, version });
                }
            }));
        }
        Probers { stop, logs, tasks }
    }

    /// Polls until `ready` holds for every gateway's probes, or
    /// [`DEADLINE`] passes.
    async fn wait(&self, what: &str, ready: impl Fn(&[Probe]) -> bool) -> Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let pending: Vec<String> = self
                .logs
                .iter()
                .enumerate()
                .filter_map(|(i, log)| {
                    let log = lock(log);
                    (!ready(&log)).then(|| {
                        format!(
                            "gateway {} (last answer from {:?})",
                            i + 1,
                            log.iter().rev().find_map(|p| p.version)
                        )
                    })
                })
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "waiting for {what}: not within {} s: {}",
                    DEADLINE.as_secs(),
                    pending.join(", ")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops probing; every gateway's probes, in order.
    async fn stop(self) -> Vec<Vec<Probe>> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        self.logs
            .iter()
            .map(|log| std::mem::take(&mut *lock(log)))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A gateway's answer: its status and `x-dwcp-version`.
pub(crate) struct Answer {
    pub(crate) status: u16,
    version: Option<u64>,
}

/// A keep-alive HTTP/1.1 connection to a gateway, opened again on the next
/// request after a failure.
pub(crate) struct Conn {
    addr: SocketAddr,
    /// The app's route it POSTs to.
    route: &'static str,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub(crate) fn new(addr: SocketAddr, route: &'static str) -> Conn {
        Conn {
            addr,
            route,
            sender: None,
        }
    }

    /// POSTs `body` to the app's route, asking for version `pin` if given.
    pub(crate) async fn post(&mut self, body: &'static [u8], pin: Option<u64>) -> Result<Answer> {
        match tokio::time::timeout(REQUEST_DEADLINE, self.exchange(body, pin)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                bail!("no answer within {} s", REQUEST_DEADLINE.as_secs())
            }
        }
    }

    async fn exchange(&mut self, body: &'static [u8], pin: Option<u64>) -> Result<Answer> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                self.sender.insert(sender)
            }
        };
        sender.ready().await?;
        let mut request = Request::post(self.route)
            .header(HOST, self.addr.to_string())
            .header(CONTENT_TYPE, "text/plain");
        if let Some(version) = pin {
            request = request.header(VERSION_HEADER, version.to_string());
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from_static(body)))?)
            .await?;
        let status = response.status().as_u16();
        let version = response
            .headers()
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        response.into_body().collect().await?;
        Ok(Answer { status, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(answers: &[(u64, Option<u64>)]) -> Vec<Probe> {
        answers
            .iter()
            .map(|&(sent_us, version)| Probe { sent_us, version })
            .collect()
    }

    #[test]
    fn a_gateway_leaves_a_version_at_the_first_answer_after_its_last() {
        // Stable (1) before the rollout reached the gateway, the baseline
        // (7) during it, a lost probe, then stable for good.
        let p = probes(&[
            (10, Some(1)),
            (20, Some(7)),
            (30, Some(7)),
            (40, None),
            (50, Some(1)),
            (60, Some(1)),
        ]);
        assert_eq!(left_at(&p, 7), Some(50));
        // Never answered from 7, or still answering from it: no time.
        assert_eq!(left_at(&p, 9), None);
        assert_eq!(left_at(&p[..3], 7), None);
        // A stray answer from 7 after stable ones moves the time on.
        let p = probes(&[(10, Some(7)), (20, Some(1)), (30, Some(7)), (40, Some(1))]);
        assert_eq!(left_at(&p, 7), Some(40));
    }

    #[test]
    fn settled_needs_enough_answers_after_the_moment() {
        let p = probes(&[(10, Some(7)), (20, Some(1)), (30, None), (40, Some(1))]);
        assert!(settled_off(&p, 7, 20, 2));
        assert!(!settled_off(&p, 7, 25, 2), "one answer was sent too early");
        assert!(!settled_off(&p, 7, 0, 3), "the third last answer is from 7");
        assert!(settled_on(&p, 1, 2));
        assert!(!settled_on(&p, 1, 3));
        assert!(!settled_on(&p[..1], 7, 2), "too few answers");
    }

    #[test]
    fn the_window_counts_failures_and_lost_requests() {
        let s = |at_us, status, version| Served {
            at_us,
            status,
            version,
        };
        let served = [
            s(5, Some(200), Some(1)),
            s(10, Some(500), Some(3)),
            s(11, Some(200), Some(1)),
            s(12, None, None),
            s(20, Some(200), Some(1)),
            s(21, Some(500), Some(3)),
        ];
        assert_eq!(first_answer_from(&served, 3), Some(10));
        assert_eq!(first_answer_from(&served, 4), None);
        let window = tally(&served, 10, 20, |_| true);
        assert_eq!(
            window,
            Tally {
                requests: 4,
                failed: 2
            }
        );
        assert_eq!(window.per_10k(), 5_000.0);
        let canary = tally(&served, 0, u64::MAX, |s| s.version == Some(3));
        assert_eq!(canary.rate(), 1.0);
        assert_eq!(Tally::default().per_10k(), 0.0);
        // 10 % of the traffic to a canary failing every request.
        assert_eq!(bound_per_10k(10, 1.0), 1_000.0);
        assert_eq!(bound_per_10k(10, 0.5), 500.0);
    }

    #[test]
    fn reasons_are_counted_by_kind() {
        assert_eq!(
            reason_kind(
                "analysis failed: error_rate is 1, wanted <= 0.01 (error_rate <= 0.01: 1 FAILED)"
            ),
            "analysis failed"
        );
        assert_eq!(
            reason_kind(
                "analysis inconclusive 3 times, past its limit of 2: too little traffic: in 30 s the window had 16 canary and 15 baseline requests (error_rate <= 0.01: not measured)"
            ),
            "analysis inconclusive 3 times, past its limit of 2"
        );
    }

    #[test]
    fn the_module_is_filled_in() {
        let text = module("canary-1", true);
        assert!(text.contains("canary-1\\0a"));
        assert!(text.contains("(i32.const 0))"));
        assert!(text.contains("(i32.const 1)"));
        assert!(!text.contains("FAILS)") && !text.contains("SPIN)"));
        let parsed = wasmtime::Module::new(&wasmtime::Engine::default(), &text);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
        assert!(module("stable-1", false).contains("(i32.and (i32.const 0)"));
    }
}
