//! The ops center on a real `dwcp up` node. `/metrics` (127.0.49.1): after
//! requests to the example app, the Prometheus exposition counts them, its
//! latency and sandbox-start histograms agree with the count, and
//! Prometheus' own checker (`promtool check metrics`, from Debian's
//! `prometheus` package, which `scripts/test.sh` installs) accepts it.
//! Runbooks (127.0.50.1): the repository's own are stored with `dwcp
//! runbook put`, listed and shown; a broken one is refused whole. Tokens
//! (same node): a viewer token made with `dwcp token create` reads and is
//! refused every change.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Cluster, DEADLINE, exchange, get_answer};

/// The value of the sample `line_start` (name and labels) in `text`.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {line_start} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_requests_and_pass_promtool() {
    let (c, gateway) = Cluster::found_serving(49);
    let api = c.nodes[&1].api.clone();
    for _ in 0..20 {
        assert_eq!(get_answer(&gateway, "/hello").unwrap().status, 200);
    }
    assert_eq!(get_answer(&gateway, "/nowhere").unwrap().status, 404);
    let scrape =
        |token: Option<&str>| exchange(DEADLINE, &api, "GET", "/metrics", token, None, "").unwrap();
    assert_eq!(scrape(None).status, 401, "metrics need a token");
    let answer = scrape(Some(&c.admin));
    assert_eq!(answer.status, 200);
    let text = answer.text();
    let hello = r#"{tenant="default",app="hello",version="1"}"#;
    // found_serving asked for /hello too, until it answered.
    let requests = sample(&text, &format!("dwcp_requests_total{hello}"));
    assert!(requests >= 20.0, "{requests}");
    assert_eq!(
        sample(
            &text,
            &format!("dwcp_request_duration_seconds_count{hello}")
        ),
        requests
    );
    let le_inf = r#"{tenant="default",app="hello",version="1",le="+Inf"}"#;
    assert_eq!(
        sample(
            &text,
            &format!("dwcp_request_duration_seconds_bucket{le_inf}")
        ),
        requests
    );
    // The example app is cold: a fresh sandbox per request.
    assert!(sample(&text, "dwcp_sandbox_start_seconds_count") >= 20.0);
    // (found_serving may have met a 404 before the route was in place.)
    assert!(sample(&text, "dwcp_gateway_unrouted_total") >= 1.0);
    assert_eq!(sample(&text, "dwcp_raft_leader{node_id=\"1\"}"), 1.0);
    assert!(sample(&text, "dwcp_apps") >= 1.0);

    // Costs: the same requests, priced.
    c.cli_ok(&[
        "prices",
        "--set",
        "--currency",
        "EUR",
        "--sandbox-second",
        "1",
        "--gb-second",
        "0",
        "--million-requests",
        "500000",
    ]);
    // Costs come from the nodes' reports (one a second): wait for the one
    // that has the 20 requests.
    let deadline = std::time::Instant::now() + DEADLINE;
    let hello = loop {
        let costs: serde_json::Value =
            serde_json::from_str(&c.cli_ok(&["costs", "--json"])).unwrap();
        let found = costs["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app"] == "hello" && a["requests"].as_u64() >= Some(20))
            .cloned();
        if let Some(hello) = found {
            break hello;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report with the requests: {costs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // A report comes every second: at least the first 20 requests are in.
    let requests = hello["requests"].as_f64().unwrap();
    let seconds = hello["sandbox_seconds"].as_f64().unwrap();
    assert!(seconds > 0.0, "{hello}");
    let cost = hello["cost"].as_f64().unwrap();
    assert!(
        (cost - (seconds + requests / 2.0)).abs() < 1e-6,
        "1 per second and 0.5 per request: {hello}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed: scripts/test.sh installs Debian's `prometheus` package, which carries it");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn runbooks_are_put_listed_and_shown_and_a_broken_one_is_refused() {
    let mut c = Cluster::found(50);
    c.wait_api(1);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../runbooks");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .filter(|p| p.ends_with(".md"))
        .collect();
    files.sort();
    let mut args = vec!["runbook", "put"];
    args.extend(files.iter().map(String::as_str));
    let out = c.cli_ok(&args);
    assert_eq!(out.lines().count(), files.len(), "{out}");
    let list = c.cli_ok(&["runbook", "list"]);
    assert!(
        list.contains("node-down") && list.contains("NodeDown"),
        "{list}"
    );
    let shown = c.cli_ok(&["runbook", "show", "node-down"]);
    let on_disk = std::fs::read_to_string(format!("{dir}/node-down.md")).unwrap();
    assert_eq!(shown, on_disk);
    // A broken file among good ones: refused before anything is sent.
    let broken = c.root.path().join("broken.md");
    std::fs::write(&broken, "+++\ntitle = \"x\"\n+++\nno alerts\n").unwrap();
    let good = c.root.path().join("extra.md");
    std::fs::write(&good, "+++\ntitle = \"x\"\nalerts = [\"X\"]\n+++\n").unwrap();
    let err = c.cli_err(&[
        "runbook",
        "put",
        good.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    assert!(err.contains("broken.md") && err.contains("alerts"), "{err}");
    assert!(
        !c.cli_ok(&["runbook", "list"]).contains("extra"),
        "nothing was stored"
    );
}

#[test]
fn a_viewer_token_reads_and_changes_nothing() {
    let mut c = Cluster::found(51);
    c.wait_api(1);
    let out = c.cli(1, &["token", "create", "dashboard", "--role", "viewer"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("dwcp-viewer."), "{token}");
    let listed = c.cli_as(1, &token, &["apps"]);
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("hello"));
    let refused = c.cli_as(1, &token, &["app", "create", "blog", "--route", "/blog"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("viewer") && err.contains("only read"), "{err}");
    assert!(!c.cli_ok(&["apps"]).contains("blog"));
    // Capacity reads with a viewer token too.
    let capacity = c.cli_as(1, &token, &["capacity"]);
    assert!(capacity.status.success());
    let capacity = String::from_utf8_lossy(&capacity.stdout).into_owned();
    assert!(
        capacity.starts_with("REGION") && capacity.contains("\nNODE "),
        "{capacity}"
    );
    let tokens = c.cli_ok(&["token", "list"]);
    assert!(
        tokens.contains("dashboard") && tokens.contains("viewer"),
        "{tokens}"
    );
    c.cli_ok(&["token", "delete", "dashboard"]);
    // Both token changes are in the audit log, by the admin token, from
    // the test's address.
    let audit = c.cli_ok(&["audit"]);
    let lines: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("/api/v1/tokens"))
        .collect();
    assert_eq!(lines.len(), 2, "{audit}");
    assert!(
        lines[0].contains("POST /api/v1/tokens") && lines[0].contains("127.0.0.1"),
        "{audit}"
    );
    assert!(
        lines[1].contains("DELETE /api/v1/tokens/dashboard"),
        "{audit}"
    );
    assert!(
        !c.cli_as(1, &token, &["apps"]).status.success(),
        "a deleted token stops working"
    );
}
