//! SLOs, burn-rate alerts and incidents on a real `dwcp up` node
//! (127.0.52.1) started with the hidden `--manual-clock`: the evaluator's
//! time moves only through `POST /api/v1/test/clock`, so hours of burn are
//! driven in seconds without sleeping. An app that fails the requests
//! whose body starts with `f` gets an availability SLO of 99.9 % with an
//! Alertmanager webhook pointing at a receiver inside this test (which
//! answers 500 to its first request, then 200). Driving real errors
//! through the gateway fires the page alert; exactly one incident opens
//! however many rounds follow; the receiver gets the Alertmanager v4 body,
//! retried after its 500; the CLI acknowledges and resolves the incident
//! with TTA/TTR on the manual clock and shows the runbook for the alert.
//! Bad SLOs are refused naming the field, and nothing is saved.
//!
//! Notification secrets (issue 16): the webhook URL's query and a PagerDuty
//! routing key are sealed at rest — no file of the data directory holds
//! them — and shown redacted by the API, the CLI, the audit trail and the
//! incident's delivery notes, while the receivers get them whole; targets
//! on internal addresses are refused unless the node allows the host
//! (`--allow-webhook-host`, given here for the two receivers only).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, exchange, wait_gateway};
use serde_json::{Value, json};

const APP: &str = include_str!("../src/bench/apps/rollout.wat");

/// What the receiver got: (status it answered, body).
type Received = Arc<Mutex<Vec<(u16, Value)>>>;

/// An HTTP receiver on `addr` answering 500 to the first request and 200
/// to the rest, recording each JSON body.
fn receiver(addr: &str) -> (String, Received) {
    let listener = TcpListener::bind(addr).expect("the receiver binds");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let record = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut all = record.lock().unwrap();
            let status = if all.is_empty() { 500 } else { 200 };
            all.push((status, value));
            drop(all);
            let reason = if status == 200 {
                "OK"
            } else {
                "Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Advances the evaluator's clock and runs one round; what it did.
fn advance(c: &Cluster, ms: u64) -> Value {
    let (status, v) = c.call(
        1,
        "POST",
        "/api/v1/test/clock",
        Some(json!({ "advance_ms": ms })),
    );
    assert_eq!(status, 200, "{v}");
    v
}

/// Polls `f` until it gives `Some`, for up to the deadline.
fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn incidents(c: &Cluster) -> Vec<Value> {
    let (status, v) = c.call(1, "GET", "/api/v1/incidents?status=all", None);
    assert_eq!(status, 200);
    v["incidents"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_burst_of_errors_pages_once_notifies_alertmanager_and_is_acknowledged_and_resolved() {
    let mut c = Cluster::found_with(
        52,
        &[
            "--manual-clock",
            "--allow-webhook-host",
            "127.0.52.9",
            "--allow-webhook-host",
            "127.0.52.10",
        ],
    );
    c.wait_api(1);
    let gateway = c.nodes[&1].gateway.clone();
    let (url, received) = receiver("127.0.52.9:0");
    // The query is the secret a webhook URL carries.
    let url = format!("{url}?key=SEKRETQUERY52");
    let (pd_url, pd_received) = receiver("127.0.52.10:0");
    let routing_key = "R0UTINGKEY52SEKRET";

    // The test app, failing requests whose body starts with `f`.
    let wat = APP
        .replace("TAG_TAG_", "shop-v1_")
        .replace("SPIN)", "0)")
        .replace("const FAILS)", "const 1)");
    let path = c.root.path().join("shop.wat");
    std::fs::write(&path, wat).unwrap();
    c.cli_ok(&["deploy", path.to_str().unwrap(), "--name", "shop"]);
    wait_gateway(&gateway, "/shop", |s, _| s == 200, "the shop app");
    let runbook = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../runbooks/slo-burn-fast.md"
    );
    c.cli_ok(&["runbook", "put", runbook]);

    // Bad SLOs are refused naming the field; nothing is saved.
    let slo_path = "/api/v1/tenants/default/apps/shop/slos/availability";
    for (body, field) in [
        (
            json!({"objective": "availability", "target": 1.0}),
            "target",
        ),
        (json!({"objective": "availability", "target": 0}), "target"),
        (
            json!({"objective": "availability", "target": 0.999, "notify": [{"kind": "alertmanager", "url": "not a url"}]}),
            "notify[0].url",
        ),
        (
            json!({"objective": "availability", "target": 0.999, "notify": [{"kind": "opsgenie", "url": "http://x"}]}),
            "notify[0].kind",
        ),
        (
            json!({"objective": "happiness", "target": 0.9}),
            "objective",
        ),
        // Internal targets the node does not allow.
        (
            json!({"objective": "availability", "target": 0.999, "notify": [{"kind": "alertmanager", "url": "http://127.0.52.11:9093/"}]}),
            "notify[0].url",
        ),
        (
            json!({"objective": "availability", "target": 0.999, "notify": [{"kind": "slack", "url": "http://169.254.169.254/latest/meta-data/"}]}),
            "notify[0].url",
        ),
        (
            json!({"objective": "availability", "target": 0.999, "notify": [{"kind": "slack", "url": "http://localhost:9093/x"}]}),
            "notify[0].url",
        ),
        (
            json!({"objective": "availability", "target": 0.999, "notify": [{"kind": "slack", "url": "http://0x7f.1/x"}]}),
            "notify[0].url",
        ),
    ] {
        let (status, v) = c.call(1, "PUT", slo_path, Some(body.clone()));
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let err = c.cli_err(&[
        "slo",
        "put",
        "shop",
        "availability",
        "--availability",
        "--target",
        "1.5",
    ]);
    assert!(err.contains("target"), "{err}");
    let (_, v) = c.call(1, "GET", "/api/v1/slos", None);
    assert_eq!(v["slos"], json!([]), "nothing saved");

    let out = c.cli_ok(&[
        "slo",
        "put",
        "shop",
        "availability",
        "--availability",
        "--target",
        "0.999",
        "--alertmanager",
        &url,
        "--pagerduty",
        &pd_url,
        "--routing-key",
        routing_key,
    ]);
    assert!(
        out.contains("stored SLO default/shop/availability"),
        "{out}"
    );
    let (_, v) = c.call(1, "GET", slo_path, None);
    assert_eq!(
        v["notify"],
        json!([
            {"kind": "alertmanager", "url": "http://127.0.52.9:PORT/…".replace("PORT", url.split(':').nth(2).unwrap().split('/').next().unwrap()), "routing_key": null},
            {"kind": "pagerduty", "url": "http://127.0.52.10:PORT/…".replace("PORT", pd_url.split(':').nth(2).unwrap().split('/').next().unwrap()), "routing_key": "…KRET"},
        ]),
        "{v}"
    );

    // The first round only sets the baseline.
    let first = advance(&c, 10_000);
    assert_eq!(first["opened"], json!([]), "{first}");

    // Real requests through the gateway, one in two failing.
    for i in 0..200 {
        let body: &[u8] = if i % 2 == 0 { b"fail" } else { b"good" };
        let answer = exchange(
            DEADLINE,
            &gateway,
            "POST",
            "/shop",
            None,
            Some(body),
            "text/plain",
        )
        .expect("the gateway answers");
        assert_eq!(answer.status, if i % 2 == 0 { 500 } else { 200 });
    }

    // Rounds until the node's report carries the errors and the page fires.
    let fired = wait("the page alert", || {
        let r = advance(&c, 10_000);
        let opened = r["opened"].as_array().cloned().unwrap_or_default();
        (!opened.is_empty()).then_some(r)
    });
    let opened = &fired["opened"][0];
    assert_eq!(opened["alert"], "SloBurnRateFast", "{fired}");
    assert_eq!(opened["new"], true);
    assert_eq!(opened["fingerprint"], "default/shop/availability/page");
    assert_eq!(
        fired["firing"],
        json!(["default/shop/availability/page"]),
        "the ticket is inhibited by the page"
    );
    let id = opened["incident"].as_u64().unwrap();

    // More rounds while it keeps firing open nothing more.
    for _ in 0..5 {
        let r = advance(&c, 10_000);
        assert_eq!(r["opened"], json!([]), "{r}");
    }
    let all = incidents(&c);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "open");
    assert_eq!(all[0]["severity"], "page");

    // The status of the SLO shows the burn.
    let (_, v) = c.call(1, "GET", "/api/v1/slos", None);
    let status = &v["slos"][0]["status"];
    assert!(
        status["rules"][0]["long_burn"].as_f64().unwrap() > 14.4,
        "{v}"
    );
    assert_eq!(status["rules"][0]["firing"], true);
    // Spent, though over the few seconds of history only a sliver of
    // the 30 days' budget (the window's budget is projected from them).
    let left = status["budget_remaining"].as_f64().unwrap();
    assert!(left < 1.0 && left > 0.0, "{v}");
    assert!(status["history_ms"].as_u64().unwrap() > 0, "{v}");
    let table = c.cli_ok(&["slo", "list"]);
    assert!(table.contains("default/shop"), "{table}");

    // The receiver: a 500 first, retried after a second, then delivered.
    let got = wait("two deliveries", || {
        let got = received.lock().unwrap().clone();
        (got.len() >= 2).then_some(got)
    });
    assert_eq!(got[0].0, 500);
    assert_eq!(got[1].0, 200);
    for (_, body) in &got[..2] {
        assert_eq!(body["version"], "4", "{body}");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "dwcp");
        let alert = &body["alerts"][0];
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["labels"]["alertname"], "SloBurnRateFast");
        assert_eq!(alert["labels"]["severity"], "page");
        assert_eq!(alert["labels"]["tenant"], "default");
        assert_eq!(alert["labels"]["app"], "shop");
        assert_eq!(alert["labels"]["slo"], "availability");
        assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
        assert!(alert["fingerprint"].as_str().unwrap().len() == 16);
    }
    // Both outcomes are on the timeline.
    let timeline = wait("the delivery on the timeline", || {
        let (_, v) = c.call(1, "GET", &format!("/api/v1/incidents/{id}"), None);
        let text: Vec<String> = v["timeline"]
            .as_array()?
            .iter()
            .map(|e| e["text"].as_str().unwrap_or("").to_string())
            .collect();
        text.iter().any(|t| t.contains("delivered")).then_some(text)
    });
    assert!(timeline[0].starts_with("opened: "), "{timeline:?}");
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("failed: answered 500 (attempt 1 of 12); retrying in 1 s")),
        "{timeline:?}"
    );

    // Acknowledged two minutes (of the manual clock) later, resolved ten
    // minutes after that: TTA and TTR on the evaluator's clock, which
    // moved 50 s since the incident opened.
    advance(&c, 120_000);
    let out = c.cli_ok(&["incident", "ack", &id.to_string()]);
    assert!(out.contains("acknowledged; TTA 2m 50s"), "{out}");
    advance(&c, 600_000);
    let out = c.cli_ok(&[
        "incident",
        "resolve",
        &id.to_string(),
        "--text",
        "the bad requests stopped",
    ]);
    assert!(out.contains("resolved; TTA 2m 50s; TTR 12m 50s"), "{out}");
    let (_, v) = c.call(1, "GET", &format!("/api/v1/incidents/{id}"), None);
    assert_eq!(v["time_to_acknowledge_ms"], 170_000);
    assert_eq!(v["time_to_resolve_ms"], 770_000);
    assert_eq!(v["acknowledged_by"], "admin");
    assert_eq!(v["runbooks"][0]["name"], "slo-burn-fast");

    let shown = c.cli_ok(&["incident", "show", &id.to_string()]);
    assert!(shown.contains("runbook slo-burn-fast"), "{shown}");
    assert!(
        shown.contains("An app burns its error budget fast"),
        "{shown}"
    );
    assert!(
        shown.contains("resolved: the bad requests stopped"),
        "{shown}"
    );
    let list = c.cli_ok(&["incident", "list", "--status", "all"]);
    assert!(list.contains("SloBurnRateFast"), "{list}");

    // The PagerDuty receiver got the routing key, opened from its seal.
    let pd = wait("the PagerDuty delivery", || {
        let got = pd_received.lock().unwrap().clone();
        got.iter().any(|(s, _)| *s == 200).then_some(got)
    });
    assert_eq!(pd[0].1["routing_key"], routing_key, "{pd:?}");
    assert_eq!(pd[0].1["event_action"], "trigger", "{pd:?}");
    // Nothing shows the secrets: the API, the CLI, the audit trail, the
    // incident's notes; and no file of the data directory holds them.
    let secrets = ["SEKRETQUERY52", routing_key];
    let mut seen = Vec::new();
    for path in [
        "/api/v1/slos".to_string(),
        slo_path.to_string(),
        "/api/v1/audit".to_string(),
        format!("/api/v1/incidents/{id}"),
        "/api/v1/incidents?status=all".to_string(),
    ] {
        let (status, v) = c.call(1, "GET", &path, None);
        assert_eq!(status, 200, "{path}: {v}");
        seen.push((path, v.to_string()));
    }
    for args in [
        &["slo", "list"][..],
        &["slo", "list", "--json"],
        &["incident", "show", &id.to_string()],
    ] {
        seen.push((args.join(" "), c.cli_ok(args)));
    }
    let (_, v) = c.call(1, "GET", &format!("/api/v1/incidents/{id}"), None);
    assert!(
        v["timeline"].as_array().unwrap().iter().any(|e| e["text"]
            .as_str()
            .unwrap()
            .contains("to alertmanager http://127.0.52.9:")),
        "the notes name the target by its redacted URL: {v}"
    );
    for entry in walk(&c.dir_of(1)) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        seen.push((
            entry.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (place, text) in &seen {
        for secret in secrets {
            assert!(!text.contains(secret), "{place} shows {secret}");
        }
    }
    // Resolving twice is refused, naming the field.
    let err = c.cli_err(&["incident", "resolve", &id.to_string()]);
    assert!(err.contains("status"), "{err}");
}
