//! The autopilot end to end on a real `dwcp up` node (127.0.83.1) started
//! with the hidden `--manual-clock` (a round runs, a minute later on the
//! autopilot's clock, at each `POST /api/v1/test/clock`) and
//! `--test-faults` (`test-faults.json` in the data directory slows every
//! request the gateway serves). Each round waits for the node's next real
//! report, so the signals are the node's own: an hour of autopilot time
//! passes in a minute or two of wall time.
//!
//! After 40 healthy rounds under steady load, two faults creep in at once
//! on the same node: its data directory fills (a real file grows in it
//! towards `--disk-limit`) and the app's version slows (the injected delay
//! grows towards its latency SLO's threshold). The test asserts that each
//! is predicted — `disk_full` of the node, `version_latency` of the
//! version — while its signal is still below its limit, with an ETA ahead,
//! that the version's prediction opens an incident (with the runbook)
//! before the SLO's own alert would, and that the disk prediction turns
//! `happened` when the disk reaches its limit. Then the CLI and the API
//! show the findings, bad queries get 400 naming the field, and the
//! dashboard's Autopilot page (headless Chromium) lists the predictions
//! and draws a forecast band.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, get_answer, wait_gateway};
use serde_json::{Value, json};
use webdriver::Browser;

const APP: &str = include_str!("../src/bench/apps/rollout.wat");
/// The autopilot's clock moves this much per round.
const ROUND_MS: u64 = 60_000;
const HEALTHY_ROUNDS: u32 = 40;
/// The faults reach their limits after this many rounds.
const RAMP_ROUNDS: u64 = 24;
const DISK_LIMIT: u64 = 96 << 20;
/// The latency SLO's threshold, and the delay added per round.
const THRESHOLD_MS: u64 = 960;
const DELAY_STEP_MS: u64 = THRESHOLD_MS / RAMP_ROUNDS;
const PASSWORD: &str = "correct horse battery staple";

/// Drives rounds: each waits for a report newer than the last round's.
struct Rounds<'a> {
    c: &'a Cluster,
    sequence: u64,
}

impl Rounds<'_> {
    fn report(&self) -> Value {
        let (status, v) = self.c.call(1, "GET", "/api/v1/nodes", None);
        assert_eq!(status, 200, "{v}");
        v["nodes"][0]["report"].clone()
    }

    /// Waits for a new report that satisfies `ready`, then advances the
    /// clock a round; the round's answer and the report it saw.
    fn next(&mut self, ready: impl Fn(&Value) -> bool) -> (Value, Value) {
        let deadline = Instant::now() + DEADLINE;
        let report = loop {
            let r = self.report();
            if r["sequence"].as_u64().unwrap_or(0) > self.sequence && ready(&r) {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "no new report (after {}) as wanted; last: {r}",
                self.sequence
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        self.sequence = report["sequence"].as_u64().unwrap();
        let (status, v) = self.c.call(
            1,
            "POST",
            "/api/v1/test/clock",
            Some(json!({ "advance_ms": ROUND_MS })),
        );
        assert_eq!(status, 200, "{v}");
        (v, report)
    }
}

fn predictions(c: &Cluster) -> Vec<Value> {
    let (status, v) = c.call(1, "GET", "/api/v1/autopilot/predictions", None);
    assert_eq!(status, 200, "{v}");
    v["predictions"].as_array().cloned().unwrap_or_default()
}

fn incidents(c: &Cluster) -> Vec<Value> {
    let (status, v) = c.call(1, "GET", "/api/v1/incidents?status=all", None);
    assert_eq!(status, 200, "{v}");
    v["incidents"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(list: &'a [Value], kind: &str, subject: &Value) -> Option<&'a Value> {
    list.iter()
        .find(|p| p["kind"] == json!(kind) && &p["subject"] == subject)
}

#[test]
fn disk_fill_and_creeping_latency_are_predicted_before_they_fail_and_shown() {
    let c = Cluster::found_with(
        83,
        &[
            "--manual-clock",
            "--test-faults",
            "--disk-limit",
            &DISK_LIMIT.to_string(),
        ],
    );
    let dir = c.nodes[&1].dir.clone();
    let gateway = c.nodes[&1].gateway.clone();
    let wat = APP
        .replace("TAG_TAG_", "shop-v1_")
        .replace("SPIN)", "0)")
        .replace("const FAILS)", "const 0)");
    let path = c.root.path().join("shop.wat");
    std::fs::write(&path, wat).unwrap();
    c.cli_ok(&["deploy", path.to_str().unwrap(), "--name", "shop"]);
    wait_gateway(&gateway, "/shop", |s, _| s == 200, "the shop app");
    let (status, v) = c.call(
        1,
        "PUT",
        "/api/v1/tenants/default/apps/shop/slos/fast",
        Some(json!({"objective": "latency", "threshold_ms": THRESHOLD_MS, "target": 0.99})),
    );
    assert!((200..300).contains(&status), "{status} {v}");
    let runbook = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../runbooks/autopilot-prediction.md"
    );
    c.cli_ok(&["runbook", "put", runbook]);

    // Steady load through the real gateway for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, gateway) = (stop.clone(), gateway.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = get_answer(&gateway, "/shop");
                }
            })
        })
        .collect();

    let mut rounds = Rounds { c: &c, sequence: 0 };
    let node = rounds.report()["node"].clone();
    let node_subject = json!({"node": {"node": node}});
    let version_subject = json!({"version": {"tenant": "default", "app": "shop", "version": 1}});

    // Healthy: nothing of either kind is predicted.
    for i in 0..HEALTHY_ROUNDS {
        rounds.next(|_| true);
        let p = predictions(&c);
        assert!(
            find(&p, "disk_full", &node_subject).is_none()
                && find(&p, "version_latency", &version_subject).is_none(),
            "a false alarm in healthy round {i}: {p:#?}"
        );
    }
    let others = predictions(&c);
    eprintln!("predictions after the healthy rounds: {others:?}");

    // The faults creep in: a file in the data directory grows and every
    // request is held longer, a step a round.
    let base = rounds.report()["usage"]["disk_bytes"].as_u64().unwrap();
    assert!(
        base < DISK_LIMIT / 2,
        "the data directory already holds {base} bytes; the test fills it towards {DISK_LIMIT}"
    );
    let step = (DISK_LIMIT - base) / RAMP_ROUNDS + 1;
    let mut fill = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("fill.bin"))
        .unwrap();
    let chunk = vec![0x5au8; step as usize];
    let (mut disk_predicted, mut latency_predicted) = (None, None);
    let mut disk_happened = None;
    for k in 1..=RAMP_ROUNDS + 4 {
        fill.write_all(&chunk).unwrap();
        fill.sync_all().unwrap();
        std::fs::write(
            dir.join("test-faults.json"),
            json!({ "request_delay_ms": k * DELAY_STEP_MS }).to_string(),
        )
        .unwrap();
        let want = base + k * step * 9 / 10;
        let (round, report) = rounds.next(|r| r["usage"]["disk_bytes"].as_u64() >= Some(want));
        let disk = report["usage"]["disk_bytes"].as_u64().unwrap();
        let p = predictions(&c);
        if disk_predicted.is_none()
            && let Some(d) = find(&p, "disk_full", &node_subject)
        {
            assert!(
                disk < report["usage"]["disk_limit_bytes"].as_u64().unwrap(),
                "disk_full was predicted only once the disk was full: {d}"
            );
            assert!(
                d["eta"]["at_ms"].as_u64() > d["updated_ms"].as_u64(),
                "its ETA is ahead: {d}"
            );
            eprintln!("disk_full predicted at ramp round {k} ({disk} bytes): {d}");
            disk_predicted = Some((k, d.clone()));
        }
        if latency_predicted.is_none()
            && let Some(l) = find(&p, "version_latency", &version_subject)
        {
            assert!(
                l["value"].as_f64() < l["limit"].as_f64(),
                "version_latency was predicted only past its limit: {l}"
            );
            // The incident it opened, before the SLO's alert.
            let open = incidents(&c);
            assert!(
                open.iter().any(
                    |i| i["alert"] == json!("AutopilotPrediction") && i["app"] == json!("shop")
                ),
                "the prediction opens an incident: {open:#?}"
            );
            assert!(
                !open
                    .iter()
                    .any(|i| i["alert"].as_str().is_some_and(|a| a.starts_with("Slo"))),
                "before the SLO's alert: {open:#?}"
            );
            eprintln!(
                "version_latency predicted at ramp round {k} (delay {} ms): {l}",
                k * DELAY_STEP_MS
            );
            latency_predicted = Some((k, l.clone()));
        }
        if let Some(d) = p.iter().find(|p| {
            p["kind"] == json!("disk_full")
                && p["subject"] == node_subject
                && p["status"] == json!("happened")
        }) {
            disk_happened = Some((k, d.clone()));
            if latency_predicted.is_some() {
                break;
            }
        }
        let _ = round;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().unwrap();
    }
    let (dk, _) = disk_predicted.expect("disk_full of the node was predicted");
    let (hk, happened) =
        disk_happened.expect("the disk filled and the prediction says it happened");
    assert!(
        dk < hk,
        "predicted at round {dk}, before it happened at {hk}: {happened}"
    );
    let (lk, latency) = latency_predicted.expect("version_latency of shop@1 was predicted");
    eprintln!(
        "lead: disk {} rounds ({} min on the autopilot's clock); latency predicted at round {lk} of {RAMP_ROUNDS}",
        hk - dk,
        (hk - dk) * ROUND_MS / 60_000
    );
    assert!(
        latency["why"].as_str().unwrap().contains("shop"),
        "{latency}"
    );

    // The CLI shows them; -o json is the API's.
    let text = c.cli_ok(&["autopilot", "predictions"]);
    assert!(
        text.contains("disk_full") && text.contains("version_latency"),
        "{text}"
    );
    let json_text = c.cli_ok(&["-o", "json", "autopilot", "predictions", "--app", "shop"]);
    let v: Value = serde_json::from_str(&json_text).unwrap();
    let kinds: Vec<&str> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"version_latency") && !kinds.contains(&"disk_full"),
        "--app shows the app's own: {kinds:?}"
    );
    let forecast = c.cli_ok(&["autopilot", "forecast", "shop", "--horizon", "15m"]);
    assert!(
        forecast.contains("request_rate of app default/shop"),
        "{forecast}"
    );
    c.cli_ok(&["autopilot", "anomalies"]);
    c.cli_ok(&["autopilot", "causes"]);

    // Bad queries: 400 naming the field (404 for a record that does not
    // exist); the CLI says it too.
    let path = "/api/v1/autopilot/forecast?tenant=default&app=nope";
    let (status, v) = c.call(1, "GET", path, None);
    assert_eq!(status, 404, "{path}: {v}");
    assert_eq!(v["error"]["field"], json!("app"), "{path}: {v}");
    for (path, field) in [
        (
            "/api/v1/tenants/default/apps/shop/autopilot/forecast?horizon=25h",
            "horizon",
        ),
        (
            "/api/v1/tenants/default/apps/shop/autopilot/forecast?horizon=1m",
            "horizon",
        ),
        ("/api/v1/autopilot/predictions?kind=meltdown", "kind"),
        ("/api/v1/autopilot/anomalies?metric=vibes", "metric"),
        ("/api/v1/autopilot/predictions?limit=0", "limit"),
    ] {
        let (status, v) = c.call(1, "GET", path, None);
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"]["field"], json!(field), "{path}: {v}");
    }
    let err = c.cli_err(&["autopilot", "forecast", "shop", "--horizon", "25h"]);
    assert!(err.contains("field: horizon"), "{err}");
    let err = c.cli_err(&["autopilot", "predictions", "--app", "nope"]);
    assert!(err.contains("field: app"), "{err}");

    // The dashboard's Autopilot page, signed in as a viewer.
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "vera", "password": PASSWORD, "roles": {"*": "viewer"}})),
    );
    assert_eq!(status, 201, "{body}");
    let tmp = tempfile::tempdir().unwrap();
    let browser = Browser::start(tmp.path());
    let base_url = format!("http://{}", c.nodes[&1].api);
    browser.goto(&format!("{base_url}/login"));
    browser.type_into("#user", "vera");
    browser.type_into("#password", PASSWORD);
    browser.click("#signin");
    browser.wait_for(
        "return location.pathname",
        |v| v == &json!("/"),
        "the overview after signing in",
    );
    browser.goto(&format!("{base_url}/autopilot"));
    browser.wait_for(
        "return document.body.dataset.page",
        |v| v == &json!("autopilot"),
        "the autopilot page",
    );
    browser.wait_for(
        "return document.getElementById('predictions').textContent",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("disk_full") && t.contains("version_latency"))
        },
        "the predictions on the page",
    );
    browser.wait_for(
        "return document.querySelectorAll('#forecasts svg.forecast path.band').length",
        |v| v.as_u64().unwrap_or(0) >= 1,
        "a forecast band drawn",
    );
    browser.wait_for(
        "return document.getElementById('decisions') !== null",
        |v| v == &json!(true),
        "room for the decisions",
    );
}
