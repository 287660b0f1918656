//! Progressive delivery on real `dwcp up` processes with real traffic:
//! a good version is promoted through every step with no failed request;
//! one that fails 5 % of requests is aborted at its first analysis with
//! its failures all its own; a version three times slower is aborted by
//! the latency judge; a blue-green switch and its rollback; a region wave
//! that stops in its first region; and invalid plans refused before
//! anything changes.
//!
//! The apps are `src/bench/apps/rollout.wat` made into versions: a tag to
//! tell them apart, a busy loop for latency, and a switch to fail requests
//! whose body starts with `f` (the load sends such bodies on purpose).

mod common;
#[path = "common/load.rs"]
mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, exchange, get_answer};
use load::{Load, Sent};
use serde_json::{Value, json};

const APP: &str = include_str!("../src/bench/apps/rollout.wat");

/// Rollouts wait on analyses of a few seconds each, on a busy machine.
const ROLLOUT_DEADLINE: Duration = Duration::from_secs(180);

/// A version of the test app: answers `tag` (8 bytes) after `spin` loop
/// turns, failing requests whose body starts with `f` when `fails`.
fn version(tag: &str, spin: u32, fails: bool) -> String {
    assert_eq!(tag.len(), 8);
    APP.replace("TAG_TAG_", tag)
        .replace("SPIN)", &format!("{spin})"))
        .replace("const FAILS)", if fails { "const 1)" } else { "const 0)" })
}

/// Writes `text` into the cluster's temp dir; its path.
fn file(c: &Cluster, name: &str, text: &str) -> String {
    let path = c.root.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `GET .../rollout` of app `shop`.
fn rollout(c: &Cluster) -> Value {
    let (status, v) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop/rollout", None);
    assert_eq!(status, 200, "{v}");
    v
}

/// Waits until the latest rollout of `shop` has ended; it, as the API shows it.
fn wait_end(c: &Cluster) -> Value {
    let deadline = Instant::now() + ROLLOUT_DEADLINE;
    loop {
        let v = rollout(c);
        if !v["rollout"]["finished_unix_ms"].is_null() {
            return v;
        }
        assert!(Instant::now() < deadline, "the rollout never ended: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The state of a rollout (`succeeded`, `aborted`, ...).
fn state(v: &Value) -> &str {
    v["rollout"]["progress"]["status"]["state"]
        .as_str()
        .unwrap()
}

/// Waits until `path` on `gateway` answers from `version` `n` times in a row.
fn wait_version(gateway: &str, path: &str, version: u64, n: usize) {
    let deadline = Instant::now() + DEADLINE;
    let mut in_a_row = 0;
    while in_a_row < n {
        let last = match get_answer(gateway, path) {
            Ok(a)
                if a.status == 200 && a.header("x-dwcp-version") == Some(&version.to_string()) =>
            {
                in_a_row += 1;
                continue;
            }
            Ok(a) => (
                a.status,
                a.header("x-dwcp-version").map(String::from),
                a.text(),
            ),
            Err(e) => (0, None, e.to_string()),
        };
        in_a_row = 0;
        assert!(
            Instant::now() < deadline,
            "{gateway}{path} never answered from version {version}: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plan of `set_weight first`, one analysis of `checks`, then the rest
/// of `more` weights (each after an analysis), ending at 100.
fn plan(first: u32, checks: Value, interval_ms: u64, count: u32, more: &[u32]) -> Value {
    let analysis = json!({"analysis": {"checks": checks, "interval_ms": interval_ms, "count": count, "inconclusive_limit": count - 1}});
    let mut steps = vec![json!({"set_weight": {"weight": first}}), analysis.clone()];
    for &w in more {
        steps.push(json!({"set_weight": {"weight": w}}));
        steps.push(analysis.clone());
    }
    steps.push(json!({"set_weight": {"weight": 100}}));
    json!({"steps": steps, "timeout_ms": 150_000})
}

#[test]
fn a_good_version_is_promoted_and_one_failing_5_percent_is_aborted_at_its_first_analysis() {
    let (c, gateway) = Cluster::found_serving(45);
    let v1 = file(&c, "v1.wat", &version("stable-1", 0, false));
    let v2 = file(&c, "v2.wat", &version("good--v2", 0, false));
    let v3 = file(&c, "v3.wat", &version("bad---v3", 0, true));
    c.cli_ok(&["deploy", &v1, "--name", "shop"]);
    let out = c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    assert!(out.contains("added version 2"), "{out}");
    c.cli_ok(&["deploy", &v3, "--name", "shop", "--version-only"]);
    wait_version(&gateway, "/shop", 1, 3);

    // Invalid plans are refused, naming the step, before anything changes.
    let revision = c.revision();
    for (plan, want) in [
        (
            r#"{"steps": [{"set_weight": {"weight": 150}}]}"#,
            "step 1: set_weight.weight: 150 is not a percentage",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"dance": {}}]}"#,
            "step 2: dance: unknown step",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 60}}, {"set_weight": {"weight": 30}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: set_weight.weight: 30 is below the 60",
        ),
        (
            r#"{"steps": [{"set_weight": {"weight": 10}}, {"analysis": {"checks": [{"metric": "happiness", "comparator": ">", "threshold": 1}]}}, {"set_weight": {"weight": 100}}]}"#,
            "step 2: analysis.checks.metric: no metric `happiness`",
        ),
    ] {
        let path = file(&c, "bad-plan.json", plan);
        let err = c.cli_err(&["rollout", "start", "shop", "--to", "2", "--plan", &path]);
        assert!(err.contains(want), "{plan}: {err}");
        // The API refuses it the same way, for clients other than the CLI.
        let plan: Value = serde_json::from_str(plan).unwrap();
        let (status, v) = c.call(
            1,
            "POST",
            "/api/v1/tenants/default/apps/shop/rollouts",
            Some(json!({"to": 2, "plan": plan})),
        );
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (400, Some("plan")),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(want),
            "{v}"
        );
    }
    assert_eq!(
        c.changes_since(1, revision),
        Vec::<Value>::new(),
        "refused plans changed the state"
    );

    // The good version, under load that sends `f` bodies on 5 % of
    // requests (which only the bad version fails on).
    let load = Load::start(
        std::slice::from_ref(&gateway),
        "/shop",
        4,
        Some(20),
        Duration::ZERO,
    );
    let checks = json!([{"metric": "error_rate", "comparator": "<=", "threshold": 0.01}]);
    // A query over the window's counters, beside the named metric.
    let mut good_checks = checks.clone();
    good_checks.as_array_mut().unwrap().push(json!({
        "metric": "canary_errors - baseline_errors", "comparator": "<=", "threshold": 0
    }));
    let good = file(
        &c,
        "good.json",
        &plan(25, good_checks, 1000, 2, &[60]).to_string(),
    );
    let out = c.cli_ok(&["rollout", "start", "shop", "--to", "2", "--plan", &good]);
    assert!(out.contains("version 1 -> 2"), "{out}");
    let end = wait_end(&c);
    let sent = load.stop();
    assert_eq!(state(&end), "succeeded", "{end:#}");
    let failed: Vec<&Sent> = sent.iter().filter(|s| s.status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        sent.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        sent.iter().any(|s| s.version == Some(2)),
        "the canary served"
    );
    let baseline = end["rollout"]["baseline"].as_u64().unwrap();
    assert!(
        sent.iter().any(|s| s.version == Some(baseline)),
        "the baseline served"
    );
    let trail = end["rollout"]["trail"].to_string();
    for step in [
        "weight 0 -> 25",
        "weight 25 -> 60",
        "weight 60 -> 100",
        "judge:",
        "succeeded",
    ] {
        assert!(trail.contains(step), "{step} not in the trail: {trail}");
    }
    let (_, app) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop", None);
    assert_eq!(app["deployment"]["version"], 2, "{app}");
    wait_version(&gateway, "/shop", 2, 5);

    // The bad version fails the 5 % of `f` requests it gets.
    let load = Load::start(
        std::slice::from_ref(&gateway),
        "/shop",
        4,
        Some(20),
        Duration::ZERO,
    );
    let bad = file(
        &c,
        "bad.json",
        &plan(20, checks, 1000, 5, &[50]).to_string(),
    );
    c.cli_ok(&["rollout", "start", "shop", "--to", "3", "--plan", &bad]);
    let end = wait_end(&c);
    let aborted_at = Instant::now();
    wait_version(&gateway, "/shop", 2, 20);
    let sent = load.stop();
    assert_eq!(state(&end), "aborted", "{end:#}");
    let reason = end["rollout"]["progress"]["status"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("error_rate"), "{reason}");
    assert_eq!(
        end["rollout"]["progress"]["step"], 1,
        "aborted at the first analysis: {end:#}"
    );
    assert_eq!(end["weights"]["local"]["canary"], 0);
    // Every failure is the canary's, and they stay within its share of
    // the detection window: 20 % of the requests, 5 % of those failing.
    let failed: Vec<&Sent> = sent.iter().filter(|s| s.status != 200).collect();
    assert!(!failed.is_empty(), "the canary failed some requests");
    assert!(
        failed
            .iter()
            .all(|s| s.version == Some(3) && s.status == 500),
        "{failed:?}"
    );
    let first_bad = sent.iter().find(|s| s.version == Some(3)).unwrap().at;
    let window = sent
        .iter()
        .filter(|s| s.at >= first_bad && s.at <= aborted_at)
        .count() as f64;
    let expected = window * 0.20 * 0.05;
    assert!(
        (failed.len() as f64) <= 3.0 * expected + 5.0,
        "{} failures of {window} requests in the window; the canary's share allows about {expected:.1}",
        failed.len()
    );
    // Nothing after the abort reached the canary.
    let after = sent.iter().filter(|s| s.at > aborted_at);
    assert!(after.clone().count() > 0);
    assert!(
        after.clone().all(|s| s.version == Some(2)),
        "{:?}",
        after.filter(|s| s.version != Some(2)).collect::<Vec<_>>()
    );
    // The history keeps both rollouts with their trails.
    let history = c.cli_ok(&["rollout", "history", "shop"]);
    assert!(
        history.contains("rollout 2: version 2 -> 3: aborted"),
        "{history}"
    );
    assert!(
        history.contains("rollout 1: version 1 -> 2: succeeded"),
        "{history}"
    );
    // Scripts see the abort: exit status 4 and the reason, with or without
    // --watch (which, off a terminal, prints the trail as lines).
    for args in [
        &["rollout", "status", "shop"][..],
        &["rollout", "status", "shop", "--watch"],
    ] {
        let out = c.cli(1, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(
            stderr.contains("rollout 2 of default/shop was aborted: analysis failed"),
            "{stderr}"
        );
    }
    let watched =
        String::from_utf8_lossy(&c.cli(1, &["rollout", "status", "shop", "--watch"]).stdout)
            .into_owned();
    assert!(
        watched.starts_with("rollout 2 of default/shop: version 2 -> 3"),
        "{watched}"
    );
    assert!(
        watched
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("state: aborted: analysis failed"),
        "{watched}"
    );
    assert_eq!(
        watched.matches("rollout 2 of").count(),
        1,
        "not redrawn off a terminal: {watched}"
    );
}

#[test]
fn a_version_three_times_slower_is_aborted_by_the_latency_judge() {
    let (c, gateway) = Cluster::found_serving(46);
    // About a millisecond of spinning for stable, three for the canary.
    let spin = 1_000_000;
    let v1 = file(&c, "v1.wat", &version("stable-1", spin, false));
    let v2 = file(&c, "v2.wat", &version("slow--v2", 3 * spin, false));
    c.cli_ok(&["deploy", &v1, "--name", "shop"]);
    c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    wait_version(&gateway, "/shop", 1, 3);
    let load = Load::start(
        std::slice::from_ref(&gateway),
        "/shop",
        4,
        None,
        Duration::ZERO,
    );
    let checks = json!([
        {"metric": "error_rate", "comparator": "<=", "threshold": 0.01},
        {"metric": "judge_latency_p", "comparator": ">", "threshold": 0.01}
    ]);
    let slow = file(&c, "slow.json", &plan(30, checks, 2000, 3, &[]).to_string());
    c.cli_ok(&["rollout", "start", "shop", "--to", "2", "--plan", &slow]);
    let end = wait_end(&c);
    let sent = load.stop();
    assert_eq!(state(&end), "aborted", "{end:#}");
    let reason = end["rollout"]["progress"]["status"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("judge_latency_p"), "{reason}");
    let trail = end["rollout"]["trail"].to_string();
    assert!(
        trail.contains("Mann-Whitney U"),
        "the evidence is in the trail: {trail}"
    );
    assert!(
        sent.iter().all(|s| s.status == 200),
        "a slow canary fails nothing"
    );
    wait_version(&gateway, "/shop", 1, 10);
}

#[test]
fn a_blue_green_switch_and_its_rollback() {
    let (c, gateway) = Cluster::found_serving(47);
    let v1 = file(&c, "v1.wat", &version("blue---1", 0, false));
    let v2 = file(&c, "v2.wat", &version("green--2", 0, false));
    c.cli_ok(&["deploy", &v1, "--name", "shop"]);
    c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    wait_version(&gateway, "/shop", 1, 3);
    c.cli_ok(&[
        "rollout",
        "start",
        "shop",
        "--to",
        "2",
        "--blue-green",
        "/preview/shop",
        "--hold",
        "10m",
    ]);
    // The preview answers from green; the app's route stays on blue.
    wait_version(&gateway, "/preview/shop", 2, 3);
    assert!(
        get_answer(&gateway, "/preview/shop")
            .unwrap()
            .text()
            .contains("green--2")
    );
    wait_version(&gateway, "/shop", 1, 20);
    let status = c.cli_ok(&["rollout", "status", "shop"]);
    assert!(status.contains("paused until promoted"), "{status}");
    // Promoted: every request switches at once.
    c.cli_ok(&["rollout", "promote", "shop"]);
    wait_version(&gateway, "/shop", 2, 20);
    let v = rollout(&c);
    assert_eq!(v["weights"]["local"]["canary"], 100, "{v:#}");
    assert!(
        v["rollout"]["finished_unix_ms"].is_null(),
        "blue stays ready during the hold"
    );
    // Rolled back during the hold: blue again, the preview gone.
    let out = c.cli_ok(&[
        "rollout",
        "abort",
        "shop",
        "--reason",
        "green checkout is broken",
    ]);
    assert!(out.contains("all traffic is back on version 1"), "{out}");
    wait_version(&gateway, "/shop", 1, 20);
    assert_eq!(get_answer(&gateway, "/preview/shop").unwrap().status, 404);
    let v = rollout(&c);
    assert_eq!(state(&v), "aborted");
    let trail = v["rollout"]["trail"].to_string();
    assert!(
        trail.contains("promotion asked") && trail.contains("green checkout is broken"),
        "{trail}"
    );
}

#[test]
fn a_region_wave_stops_at_the_first_region_when_its_canary_fails() {
    let mut c = Cluster::found_with(48, &["--region", "eu"]);
    c.wait_api(1);
    c.join_node_with(2, &["--region", "us"]);
    let (eu, us) = (c.nodes[&1].gateway.clone(), c.nodes[&2].gateway.clone());
    let v1 = file(&c, "v1.wat", &version("stable-1", 0, false));
    let v2 = file(&c, "v2.wat", &version("broken-2", 0, true));
    c.cli_ok(&["deploy", &v1, "--name", "shop", "--region", "eu"]);
    let (status, v) = c.call(
        1,
        "PUT",
        "/api/v1/tenants/default/apps/shop/deployment",
        Some(json!({"version": 1, "regions": {"eu": 1, "us": 1}})),
    );
    assert_eq!(status, 200, "{v}");
    c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    wait_version(&eu, "/shop", 1, 3);
    wait_version(&us, "/shop", 1, 3);
    // Every request carries an `f` body: the canary fails them all.
    let load = Load::start(
        &[eu.clone(), us.clone()],
        "/shop",
        4,
        Some(1),
        Duration::ZERO,
    );
    let waves = json!({"steps": [
        {"region_wave": {"waves": [["eu"], ["us"]]}},
        {"set_weight": {"weight": 50}},
        {"analysis": {"checks": [{"metric": "error_rate", "comparator": "<=", "threshold": 0.01}], "interval_ms": 1000, "count": 3}},
        {"set_weight": {"weight": 100}}
    ]});
    let path = file(&c, "waves.json", &waves.to_string());
    c.cli_ok(&["rollout", "start", "shop", "--to", "2", "--plan", &path]);
    let end = wait_end(&c);
    wait_version(&eu, "/shop", 1, 20);
    let sent = load.stop();
    assert_eq!(state(&end), "aborted", "{end:#}");
    assert_eq!(
        end["rollout"]["progress"]["wave"], 0,
        "stopped in the first wave: {end:#}"
    );
    let in_eu = |s: &&Sent| s.gateway == 0;
    assert!(
        sent.iter().filter(in_eu).any(|s| s.version == Some(2)),
        "the canary ran in eu"
    );
    let us_canary: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.gateway == 1 && s.version != Some(1))
        .collect();
    assert!(
        us_canary.is_empty(),
        "us never saw the canary: {us_canary:?}"
    );
    assert!(sent.iter().filter(|s| s.gateway == 1).count() > 0);
}

/// An answer's status (0: none came) and the version that gave it.
type Answered = (u16, Option<u64>);

/// Open-loop load at about `rate_per_s` requests a second to `gateway`
/// (paced from a few threads, catching up when an answer was slow), until
/// stopped; each thread's answers.
struct Paced {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Answered>>>,
}

impl Paced {
    fn start(gateway: &str, path: &str, rate_per_s: f64) -> Paced {
        const THREADS: u32 = 4;
        let stop = Arc::new(AtomicBool::new(false));
        let every = Duration::from_secs_f64(f64::from(THREADS) / rate_per_s);
        let threads = (0..THREADS)
            .map(|i| {
                let stop = stop.clone();
                let (gateway, path) = (gateway.to_string(), path.to_string());
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    // Staggered, so the threads' requests interleave.
                    let mut next = Instant::now() + every * i / THREADS;
                    while !stop.load(Ordering::Relaxed) {
                        // Pacing the load generator, not waiting for a
                        // condition: this is the traffic's shape.
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += every;
                        let answer = exchange(
                            DEADLINE,
                            &gateway,
                            "POST",
                            &path,
                            None,
                            Some(b"x"),
                            "text/plain",
                        );
                        answers.push(match answer {
                            Ok(a) => (
                                a.status,
                                a.header("x-dwcp-version").and_then(|v| v.parse().ok()),
                            ),
                            Err(_) => (0, None),
                        });
                    }
                    answers
                })
            })
            .collect();
        Paced { stop, threads }
    }

    fn stop(self) -> Vec<Answered> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    }
}

/// The issue's case: at ~50 requests/s the classic default plan (1 %,
/// 10 s windows) cannot feed the judge and always aborted inconclusive;
/// `dwcp rollout start` now sizes the default plan to the app's observed
/// rate, says so, and the rollout of an identical version promotes
/// (`--wait` exits 0) on a loaded machine: the default latency check
/// fails only at p <= 0.001 and a canary under a millisecond slower is
/// not slower (a p of 0.0037 between identical versions once aborted it).
#[test]
fn at_50_requests_a_second_the_sized_default_plan_promotes() {
    let (c, gateway) = Cluster::found_serving(92);
    let v1 = file(&c, "v1.wat", &version("stable-1", 0, false));
    let v2 = file(&c, "v2.wat", &version("good--v2", 0, false));
    c.cli_ok(&["deploy", &v1, "--name", "shop"]);
    c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    wait_version(&gateway, "/shop", 1, 3);
    let load = Paced::start(&gateway, "/shop", 50.0);
    // The API node has sampled the rate for at least 20 s.
    let deadline = Instant::now() + DEADLINE;
    let traffic = loop {
        let (status, t) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop/traffic", None);
        assert_eq!(status, 200, "{t}");
        if t["over_ms"].as_u64().unwrap_or(0) >= 20_000 {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the rate was never measured: {t}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let rate = traffic["requests_per_s"].as_f64().unwrap();
    assert!(
        (20.0..=70.0).contains(&rate),
        "the paced load is about 50/s (a busy machine may slow it): {traffic}"
    );
    // At that rate the classic plan starves at its first analysis.
    assert!(!rollout::sizing::shortfalls(&rollout::Plan::default_plan(), rate, 20).is_empty());

    let out = c.cli(
        1,
        &[
            "rollout",
            "start",
            "shop",
            "--to",
            "2",
            "--wait",
            "--timeout",
            "8m",
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("plan: ") && stderr.contains("sized for the app's ~"),
        "{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(
        stdout.contains("state: succeeded: version 2 is deployed"),
        "{stdout}"
    );
    let answers = load.stop();
    let end = rollout(&c);
    // The judge's evidence, for a reader of the test's output.
    for record in end["rollout"]["trail"].as_array().into_iter().flatten() {
        eprintln!("{record}");
    }
    assert_eq!(state(&end), "succeeded", "{end:#}");
    let first = end["rollout"]["plan"]["steps"][0]["set_weight"]["weight"]
        .as_u64()
        .unwrap();
    assert!(first > 1, "a larger first weight at this rate: {end:#}");
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "no request failed during the rollout"
    );
    assert!(answers.iter().any(|(_, v)| *v == Some(2)));
}
