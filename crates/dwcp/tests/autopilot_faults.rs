//! The autopilot's failure prediction on real `dwcp up` processes, for the
//! fault classes `tests/autopilot.rs` (disk fill, a version's latency)
//! does not cover: a version whose errors creep up, a node's memory
//! growing, load rising past an app's concurrency limit, a node running
//! out of sandbox slots, and a node that slows down and then dies.
//!
//! One cluster of three nodes (127.0.89.x) for all of them. The founder,
//! node 1, leads and runs the hidden `--manual-clock`: a round of the
//! autopilot runs, a minute later on its clock, at each
//! `POST /api/v1/test/clock`, once every running node has sent a new
//! report, so the signals are the nodes' own and an hour of autopilot time
//! passes in a minute or two. Every fault is real: requests that trap,
//! resident memory held (`--test-faults`' ballast), requests in flight
//! (an app that sleeps in `poll_oneoff`), sandboxes alive, the gateway
//! holding requests (`--test-faults`' delay) and a SIGKILL.
//!
//! After healthy rounds (no prediction of any of the kinds asserted),
//! the first ramp runs four faults at once, each in its own place:
//! - version errors: a rising share of shop@1's requests trap (node 1);
//! - memory: node 1 holds more and more ballast towards `--memory-limit`;
//! - load past capacity: more and more clients of app `nap` (concurrency
//!   limit [`NAP_CONCURRENCY`]) on node 1, until it refuses requests;
//! - slot exhaustion: more and more clients of app `edge` through node 2,
//!   which holds [`NODE2_SLOTS`] sandboxes at most.
//!
//! The second ramp slows node 2 (every request it serves held longer, a
//! step a round, towards `edge`'s timeout), then kills it.
//!
//! Each class must be predicted, naming the right place (the version, the
//! node, the app), while its signal is still below its limit and before
//! its failure: the prediction turning `happened`, or for load past
//! capacity the first request refused, or for the slowing node its death.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, exchange, voters, wait_gateway};
use serde_json::{Value, json};

const SHOP: &str = include_str!("../src/bench/apps/rollout.wat");
/// The autopilot's clock moves this much per round.
const ROUND_MS: u64 = 60_000;
const HEALTHY_ROUNDS: u64 = 30;
/// Each ramp reaches its limits after about this many rounds.
const RAMP_ROUNDS: u64 = 24;
/// Node 1's memory limit; its ballast grows towards it.
const MEMORY_LIMIT: u64 = 768 << 20;
/// Requests `nap` admits at once; its clients grow past it.
const NAP_CONCURRENCY: u64 = 8;
/// Sandboxes node 2 can hold; `edge`'s clients grow past it.
const NODE2_SLOTS: u64 = 10;
/// `edge`'s timeout: the latency at which node 2 fails.
const EDGE_TIMEOUT_MS: u64 = 4_000;
/// shop's availability SLO: it pages at 14.4 times its error budget, so
/// its errors fail at 28.8 % (a limit well above the noise of a ratio
/// over a few hundred requests a round).
const SHOP_TARGET: f64 = 0.98;
const SHOP_ERROR_LIMIT_PER_MILLE: u64 = 288;
/// The share of shop's requests that trap rises this much a round (past
/// its limit after about 18 rounds).
const ERROR_STEP_PER_MILLE: u64 = SHOP_ERROR_LIMIT_PER_MILLE / 18 + 1;

/// Drives rounds: each waits for a new report of every running node.
struct Rounds {
    /// The last sequence seen of each running node's report.
    seen: BTreeMap<String, u64>,
}

/// The nodes' reports, by node name.
fn reports(c: &Cluster) -> BTreeMap<String, Value> {
    let (status, v) = c.call(1, "GET", "/api/v1/nodes", None);
    assert_eq!(status, 200, "{v}");
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| {
            let r = &n["report"];
            Some((r["node"].as_str()?.to_string(), r.clone()))
        })
        .collect()
}

impl Rounds {
    /// Waits until every running node reported anew and `ready` holds for
    /// the reports, then advances the clock a round; the reports seen.
    fn next(
        &mut self,
        c: &Cluster,
        ready: impl Fn(&BTreeMap<String, Value>) -> bool,
    ) -> BTreeMap<String, Value> {
        let deadline = Instant::now() + DEADLINE;
        let reports = loop {
            let r = reports(c);
            let fresh = self.seen.iter().all(|(node, last)| {
                r.get(node)
                    .and_then(|r| r["sequence"].as_u64())
                    .is_some_and(|s| s > *last)
            });
            if fresh && ready(&r) {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "no new report of every node (after {:?}) as wanted; last: {r:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        for (node, last) in self.seen.iter_mut() {
            *last = reports[node]["sequence"].as_u64().unwrap();
        }
        let (status, v) = c.call(
            1,
            "POST",
            "/api/v1/test/clock",
            Some(json!({ "advance_ms": ROUND_MS })),
        );
        assert_eq!(status, 200, "{v}");
        reports
    }
}

/// The diagnosis ranked for the prediction of `kind` on `subject`
/// (`Value::Null` when there is none).
fn diagnosis(c: &Cluster, kind: &str, subject: &Value) -> Value {
    let (status, v) = c.call(1, "GET", "/api/v1/autopilot/causes?limit=200", None);
    assert_eq!(status, 200, "{v}");
    v["diagnoses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| {
            d["trigger"]["prediction"]["kind"] == kind
                && d["trigger"]["prediction"]["subject"] == *subject
        })
        .cloned()
        .unwrap_or(Value::Null)
}

fn predictions(c: &Cluster) -> Vec<Value> {
    let (status, v) = c.call(1, "GET", "/api/v1/autopilot/predictions", None);
    assert_eq!(status, 200, "{v}");
    v["predictions"].as_array().cloned().unwrap_or_default()
}

/// One class under watch: where it must be predicted, and what was seen.
struct Watch {
    kind: &'static str,
    subject: Value,
    /// The round it was first predicted (open, below its limit), and the
    /// prediction.
    predicted: Option<(u64, Value)>,
    /// The round it turned `happened`.
    happened: Option<u64>,
}

impl Watch {
    fn new(kind: &'static str, subject: Value) -> Watch {
        Watch {
            kind,
            subject,
            predicted: None,
            happened: None,
        }
    }

    /// Notes what round `k`'s predictions say of this class.
    fn look(&mut self, k: u64, list: &[Value]) {
        for p in list
            .iter()
            .filter(|p| p["kind"] == json!(self.kind) && p["subject"] == self.subject)
        {
            if p["status"] == json!("happened") {
                self.happened.get_or_insert(k);
            } else if p["status"] == json!("open") && self.predicted.is_none() {
                assert!(
                    p["value"].as_f64() < p["limit"].as_f64(),
                    "{} was predicted only past its limit: {p}",
                    self.kind
                );
                assert!(
                    p["eta"]["at_ms"].as_u64() >= p["updated_ms"].as_u64(),
                    "its ETA is ahead: {p}"
                );
                eprintln!("{} predicted at round {k}: {p}", self.kind);
                self.predicted = Some((k, p.clone()));
            }
        }
    }

    /// The round it was predicted at, asserting it was and that it came
    /// before `failed` (the round the failure was seen, when it was).
    fn before(&self, failed: Option<u64>) -> u64 {
        let (k, p) = self.predicted.as_ref().unwrap_or_else(|| {
            panic!(
                "{} of {} was never predicted (it happened at round {:?})",
                self.kind, self.subject, self.happened
            )
        });
        if let Some(f) = failed {
            assert!(
                *k < f,
                "{} predicted at round {k}, not before it failed at {f}: {p}",
                self.kind
            );
        }
        *k
    }
}

/// Clients that keep sending requests, `wanted` of them at a time.
struct Clients {
    stop: Arc<AtomicBool>,
    wanted: Arc<AtomicU64>,
    /// The first round in which a request was refused with the refusal
    /// watched for (`u64::MAX`: none).
    refused_at: Arc<AtomicU64>,
    /// Other failed requests (a loaded machine's hiccups), said at the end.
    other_failures: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    /// `most` threads sending requests to `path` on `gateway`, the first
    /// `wanted` of them busy. With `failing`, each is a POST whose body
    /// makes shop trap for that share (per mille) of them; else a GET.
    /// An answer whose body names `refusal` is the failure watched for;
    /// `round` says which round it falls in.
    fn start(
        gateway: &str,
        path: &'static str,
        most: u64,
        wanted: u64,
        round: &Arc<AtomicU64>,
        failing: Option<&Arc<AtomicU64>>,
        refusal: &'static str,
    ) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let wanted = Arc::new(AtomicU64::new(wanted));
        let refused_at = Arc::new(AtomicU64::new(u64::MAX));
        let other_failures = Arc::new(AtomicU64::new(0));
        let threads = (0..most)
            .map(|t| {
                let (stop, wanted, refused_at) = (stop.clone(), wanted.clone(), refused_at.clone());
                let (round, failing, gateway) =
                    (round.clone(), failing.cloned(), gateway.to_string());
                let other_failures = other_failures.clone();
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if t >= wanted.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        i += 1;
                        let b = failing
                            .as_ref()
                            .map(|f| maybe_failing(i * most + t, f.load(Ordering::Relaxed)));
                        let method = if b.is_some() { "POST" } else { "GET" };
                        match exchange(DEADLINE, &gateway, method, path, None, b, "text/plain") {
                            Ok(a) if a.status == 200 => {}
                            // shop's trapped requests are its errors.
                            Ok(a) if a.status == 500 && b == Some(&b"f"[..]) => {}
                            Ok(a) if a.text().contains(refusal) => {
                                let now = round.load(Ordering::Relaxed);
                                let _ = refused_at.compare_exchange(
                                    u64::MAX,
                                    now,
                                    Ordering::Relaxed,
                                    Ordering::Relaxed,
                                );
                            }
                            _ => {
                                other_failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Clients {
            stop,
            wanted,
            refused_at,
            other_failures,
            threads,
        }
    }

    fn want(&self, n: u64) {
        self.wanted.store(n, Ordering::Relaxed);
    }

    fn refused_at(&self) -> Option<u64> {
        Some(self.refused_at.load(Ordering::Relaxed)).filter(|&r| r != u64::MAX)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let other = self.other_failures.load(Ordering::Relaxed);
        if other > 0 {
            eprintln!("{other} requests failed otherwise (not counted)");
        }
    }
}

/// `f` (shop traps) for `per_mille` of the requests, spread evenly.
fn maybe_failing(i: u64, per_mille: u64) -> &'static [u8] {
    let fails = (i + 1) * per_mille / 1000 != i * per_mille / 1000;
    if fails { b"f" } else { b"ok" }
}

fn write_faults(dir: &std::path::Path, faults: Value) {
    std::fs::write(dir.join("test-faults.json"), faults.to_string()).unwrap();
}

#[test]
fn errors_memory_load_slots_and_a_dying_node_are_predicted_before_they_fail() {
    let started = Instant::now();
    // Raft timing for a loaded machine: node 1 must stay the leader (its
    // clock is the autopilot's).
    let common_flags = [
        "--manual-clock",
        "--test-faults",
        "--heartbeat",
        "100ms",
        "--election-timeout",
        "2s",
    ];
    let memory_limit = MEMORY_LIMIT.to_string();
    let mut c = Cluster::found_with(
        89,
        &[&common_flags[..], &["--memory-limit", &memory_limit]].concat(),
    );
    c.wait_api(1);
    let deploy = |c: &Cluster, name: &str, wat: String, more: &[&str]| {
        let path = c.root.path().join(format!("{name}.wat"));
        std::fs::write(&path, wat).unwrap();
        let mut args = vec!["deploy", path.to_str().unwrap(), "--name", name];
        args.extend_from_slice(more);
        c.cli_ok(&args);
    };
    // On node 1 alone (the others join later; placements stay).
    let shop = SHOP
        .replace("TAG_TAG_", "shop-v1_")
        .replace("SPIN)", "0)")
        .replace("FAILS)", "1)");
    deploy(&c, "shop", shop, &[]);
    let (status, v) = c.call(
        1,
        "PUT",
        "/api/v1/tenants/default/apps/shop/slos/ok",
        Some(json!({"objective": "availability", "target": SHOP_TARGET})),
    );
    assert!((200..300).contains(&status), "{status} {v}");
    let nap_concurrency = NAP_CONCURRENCY.to_string();
    let nap = common::nap_wat(100_000_000);
    deploy(&c, "nap", nap, &["--concurrency", &nap_concurrency]);
    let gateway1 = c.nodes[&1].gateway.clone();
    wait_gateway(&gateway1, "/shop", |s, _| s == 200, "the shop app");
    wait_gateway(&gateway1, "/nap", |s, _| s == 200, "the nap app");

    let slots = NODE2_SLOTS.to_string();
    c.join_node_with(2, &[&common_flags[..], &["--sandboxes", &slots]].concat());
    c.join_node_with(3, &common_flags);
    c.wait_for(|s| voters(s).len() == 3, "three voters");
    // On every node: node 2's gateway serves it itself.
    // 200 ms a request: a client holds a sandbox most of the time, so the
    // sandboxes alive at a report follow the clients.
    let edge = common::nap_wat(200_000_000);
    let timeout = format!("{EDGE_TIMEOUT_MS}ms");
    deploy(
        &c,
        "edge",
        edge,
        &["--replicas", "3", "--timeout", &timeout],
    );
    let gateway2 = c.nodes[&2].gateway.clone();
    wait_gateway(&gateway2, "/edge", |s, _| s == 200, "edge on node 2");

    let round = Arc::new(AtomicU64::new(0));
    let share = Arc::new(AtomicU64::new(0));
    let shop_load = Clients::start(
        &gateway1,
        "/shop",
        3,
        3,
        &round,
        Some(&share),
        "concurrency_limit",
    );
    let nap_load = Clients::start(
        &gateway1,
        "/nap",
        NAP_CONCURRENCY + 4,
        1,
        &round,
        None,
        "concurrency_limit",
    );
    let edge_load = Clients::start(
        &gateway2,
        "/edge",
        NODE2_SLOTS + 4,
        1,
        &round,
        None,
        "live_limit",
    );

    let mut rounds = Rounds {
        seen: BTreeMap::new(),
    };
    let names = reports(&c);
    for n in ["node-1", "node-2", "node-3"] {
        assert!(names.contains_key(n), "no report of {n}: {names:#?}");
        rounds.seen.insert(n.to_string(), 0);
    }
    let node = |n: &str| json!({"node": {"node": n}});
    let mut errors = Watch::new(
        "version_errors",
        json!({"version": {"tenant": "default", "app": "shop", "version": 1}}),
    );
    let mut memory = Watch::new("memory_exhaustion", node("node-1"));
    let mut load = Watch::new(
        "load_past_capacity",
        json!({"app": {"tenant": "default", "app": "nap"}}),
    );
    let mut slots = Watch::new("slot_exhaustion", node("node-2"));
    let mut silent = Watch::new("node_silent", node("node-2"));

    // Healthy: none of them is predicted.
    for k in 0..HEALTHY_ROUNDS {
        round.store(k, Ordering::Relaxed);
        rounds.next(&c, |_| true);
        let p = predictions(&c);
        for w in [&errors, &memory, &load, &slots, &silent] {
            assert!(
                !p.iter()
                    .any(|p| p["kind"] == json!(w.kind) && p["subject"] == w.subject),
                "a false alarm ({}) in healthy round {k}: {p:#?}",
                w.kind
            );
        }
    }
    assert_eq!(nap_load.refused_at(), None, "nap refused a healthy load");
    assert_eq!(edge_load.refused_at(), None, "edge refused a healthy load");
    assert_eq!(shop_load.refused_at(), None, "shop failed a healthy load");
    eprintln!("after the healthy rounds: {:?}", predictions(&c));

    // The first ramp.
    let at_rest = reports(&c);
    let base = at_rest["node-1"]["usage"]["memory_bytes"].as_u64().unwrap();
    assert!(
        base < MEMORY_LIMIT / 2,
        "node 1 already holds {base} bytes; the test grows it towards {MEMORY_LIMIT}"
    );
    let idle_slots = at_rest["node-2"]["live_sandboxes"].as_u64();
    eprintln!("node 1 holds {base} bytes; node 2 {idle_slots:?} sandboxes at rest");
    let step = (MEMORY_LIMIT - base) / RAMP_ROUNDS + 1;
    let dir1 = c.nodes[&1].dir.clone();
    let ramp1 = HEALTHY_ROUNDS..HEALTHY_ROUNDS + RAMP_ROUNDS + 6;
    for k in ramp1.clone() {
        let r = k - HEALTHY_ROUNDS + 1;
        round.store(k, Ordering::Relaxed);
        share.store(r * ERROR_STEP_PER_MILLE, Ordering::Relaxed);
        let ballast = (r * step).min(MEMORY_LIMIT);
        write_faults(&dir1, json!({ "memory_ballast_bytes": ballast }));
        // One more client of nap every other round, of edge every third
        // (edge's warm and kept-alive sandboxes count too), past the
        // limits.
        nap_load.want((1 + r / 2).min(NAP_CONCURRENCY + 4));
        edge_load.want((1 + r / 3).min(NODE2_SLOTS + 4));
        let want = base + ballast * 9 / 10;
        rounds.next(&c, |now| {
            now["node-1"]["usage"]["memory_bytes"].as_u64() >= Some(want)
        });
        let p = predictions(&c);
        for w in [&mut errors, &mut memory, &mut load, &mut slots] {
            w.look(k, &p);
        }
        if errors.happened.is_some()
            && memory.happened.is_some()
            && nap_load.refused_at().is_some()
            && (slots.happened.is_some() || edge_load.refused_at().is_some())
        {
            break;
        }
    }
    write_faults(&dir1, json!({}));
    let nap_refused = nap_load.refused_at();
    nap_load.stop();
    // shop's load goes on, healthy: node 2's peer keeps a current p99.
    share.store(0, Ordering::Relaxed);
    let e = errors.before(errors.happened);
    let m = memory.before(memory.happened);
    let l = load.before(nap_refused);
    eprintln!(
        "slots: happened at {:?}, edge refused at {:?}",
        slots.happened,
        edge_load.refused_at()
    );
    let s = slots.before(slots.happened.or(edge_load.refused_at()));
    assert!(
        errors.happened.is_some() && memory.happened.is_some() && nap_refused.is_some(),
        "each failure came: errors {:?}, memory {:?}, load {:?}",
        errors.happened,
        memory.happened,
        nap_refused
    );
    eprintln!(
        "lead in rounds (minutes): errors {:?}, memory {:?}, load {:?}, slots {:?}",
        errors.happened.map(|h| h - e),
        memory.happened.map(|h| h - m),
        nap_refused.map(|h| h - l),
        slots.happened.or(edge_load.refused_at()).map(|h| h - s),
    );
    for (w, place) in [
        (&errors, "shop"),
        (&memory, "node-1"),
        (&load, "nap"),
        (&slots, "node-2"),
    ] {
        let why = w.predicted.as_ref().unwrap().1["why"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(why.contains(place), "{}: {why}", w.kind);
    }

    // Root cause on real processes: each predicted fault's diagnosis
    // (ranked when its prediction opened, updated while it lasts) holds
    // its culprit — where the test put the fault — among its top five
    // (issue 19's Avg@5). Load past nap's capacity comes from more
    // clients of nap: its only version, or its tenant as the lab's bench
    // names it; edge's clients fill node 2's slots: edge's version, or
    // the node.
    let version = |app: &str| json!({"version": {"tenant": "default", "app": app, "version": 1}});
    let mut ranks = Vec::new();
    for (w, culprits) in [
        (&errors, vec![version("shop")]),
        (&memory, vec![node("node-1")]),
        (
            &load,
            vec![version("nap"), json!({"tenant": {"tenant": "default"}})],
        ),
        (&slots, vec![version("edge"), node("node-2")]),
    ] {
        let d = diagnosis(&c, w.kind, &w.subject);
        let ranked: Vec<&Value> = d["causes"]
            .as_array()
            .map(|a| a.iter().map(|c| &c["candidate"]).collect())
            .unwrap_or_default();
        let rank = ranked
            .iter()
            .position(|c| culprits.contains(c))
            .map(|i| i + 1);
        assert!(
            rank.is_some_and(|r| r <= 5),
            "the culprit of {} is not among the top five: {d:#}",
            w.kind
        );
        ranks.push((w.kind, rank));
    }
    eprintln!("the culprits' ranks: {ranks:?}");

    // The second ramp: node 2 slows, a step a round, then dies just
    // before its requests would time out.
    edge_load.want(3);
    let mut edge_load = Some(edge_load);
    let dir2 = c.nodes[&2].dir.clone();
    let delay_step = EDGE_TIMEOUT_MS / RAMP_ROUNDS;
    let start2 = ramp1.end;
    let mut killed = None;
    for k in start2..start2 + RAMP_ROUNDS + 4 {
        let r = k - start2 + 1;
        round.store(k, Ordering::Relaxed);
        if killed.is_none() {
            write_faults(&dir2, json!({ "request_delay_ms": r * delay_step }));
        }
        rounds.next(&c, |_| true);
        let p = predictions(&c);
        silent.look(k, &p);
        if killed.is_none() && r >= RAMP_ROUNDS - 2 {
            if let Some(l) = edge_load.take() {
                l.stop();
            }
            c.kill(2);
            rounds.seen.remove("node-2");
            killed = Some(k);
        } else if silent.happened.is_some() {
            break;
        }
    }
    shop_load.stop();
    let killed = killed.unwrap();
    let d = silent.before(Some(killed + 1));
    assert!(
        d <= killed,
        "predicted while node 2 still ran: round {d}, killed after {killed}"
    );
    assert!(silent.happened.is_some(), "node 2 was taken for dead");
    let why = silent.predicted.as_ref().unwrap().1["why"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("node-2") && why.contains("slower"), "{why}");
    eprintln!(
        "node_silent of node-2 predicted at round {d}, killed at {killed}, happened at {:?}; the test took {:?}",
        silent.happened,
        started.elapsed()
    );
}
