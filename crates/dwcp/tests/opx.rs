//! Operator experience on real `dwcp up` processes: an app's log lines
//! (what its guest wrote to stderr, why a request failed) read with `dwcp
//! logs` through any node's API and shipped as JSON lines; a killed node
//! shown unreachable and down by `dwcp cluster status` and `dwcp nodes`,
//! which then exit with status 3 for scripts.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, get_answer, talker, wait_gateway};
use serde_json::Value;

/// An app that traps at once.
const CRASHER: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;

/// `dwcp logs APP --json` through node `n`: its lines.
fn log_lines(c: &Cluster, n: u8, app: &str) -> Vec<Value> {
    let out = c.cli(n, &["logs", app, "--json"]);
    assert!(
        out.status.success(),
        "dwcp logs {app} via node {n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until `dwcp logs APP` through node `n` has the line of request
/// `id`; that line.
fn wait_line(c: &Cluster, n: u8, app: &str, id: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lines = log_lines(c, n, app);
        if let Some(line) = lines.iter().find(|l| l["request_id"] == id) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no line of request {id} via node {n}: {lines:#?}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_app_s_stderr_and_failures_reach_dwcp_logs_through_any_node_and_the_shipped_file() {
    let shipped = tempfile::tempdir().unwrap();
    let file = |n: u8| shipped.path().join(format!("apps-{n}.jsonl"));
    let (f1, f2) = (file(1), file(2));
    let mut c = Cluster::found_with(90, &["--app-log-file", f1.to_str().unwrap()]);
    c.wait_api(1);
    c.join_node_with(2, &["--app-log-file", f2.to_str().unwrap()]);
    let wat = c.root.path().join("talker.wat");
    std::fs::write(&wat, talker("hello from the guest", "ok")).unwrap();
    c.cli_ok(&[
        "deploy",
        wat.to_str().unwrap(),
        "--name",
        "talker",
        "--replicas",
        "2",
    ]);
    let gateway = c.nodes[&2].gateway.clone();
    let answer = wait_gateway(
        &gateway,
        "/talker",
        |s, b| s == 200 && b == "ok\n",
        "talker",
    );
    let id = answer.header("x-request-id").unwrap().to_string();

    // Whichever node ran it, both nodes' APIs show its line: at least one
    // of them read it from its peer.
    for n in [1, 2] {
        let line = wait_line(&c, n, "talker", &id);
        assert_eq!(line["text"], "hello from the guest", "{line}");
        assert_eq!(line["stream"], "stderr");
        assert_eq!(line["app"], "talker");
        assert_eq!(line["tenant"], "default");
        assert_eq!(line["version"], 1);
        assert!(
            ["node-1", "node-2"].contains(&line["node"].as_str().unwrap()),
            "{line}"
        );
    }
    let text = String::from_utf8_lossy(&c.cli(1, &["logs", "talker"]).stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.ends_with(&format!(" v1 {id} hello from the guest"))),
        "{text}"
    );

    // Shipped as JSON lines with Loki-friendly labels, by the node that ran it.
    let deadline = Instant::now() + DEADLINE;
    let shipped_line = loop {
        let found = [&f1, &f2]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .find(|l| l["request_id"] == id.as_str());
        if let Some(line) = found {
            break line;
        }
        assert!(Instant::now() < deadline, "request {id} never shipped");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shipped_line["msg"], "hello from the guest");
    assert_eq!(shipped_line["app"], "talker");
    assert_eq!(shipped_line["stream"], "stderr");
    assert!(shipped_line["ts"].as_str().unwrap().ends_with('Z'));

    // Following: the lines after a page's cursor are only the new ones.
    let (status, page) = c.call(2, "GET", "/api/v1/tenants/default/apps/talker/logs", None);
    assert_eq!(status, 200, "{page}");
    let cursor = page_cursor(&page);
    let next = get_answer(&gateway, "/talker").unwrap();
    let next_id = next.header("x-request-id").unwrap().to_string();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, after) = c.call(
            2,
            "GET",
            &format!("/api/v1/tenants/default/apps/talker/logs?after={cursor}"),
            None,
        );
        assert_eq!(status, 200, "{after}");
        let ids: Vec<&str> = after["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["request_id"].as_str())
            .collect();
        assert!(
            !ids.contains(&id.as_str()),
            "an old line came again: {after}"
        );
        if ids.contains(&next_id.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{next_id} never followed: {after}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A trap: the client's 500 says where to look, the log has the reason.
    let crasher = c.root.path().join("crasher.wat");
    std::fs::write(&crasher, CRASHER).unwrap();
    c.cli_ok(&["deploy", crasher.to_str().unwrap(), "--name", "crasher"]);
    let failed = wait_gateway(&gateway, "/crasher", |s, _| s == 500, "the crasher");
    let body = failed.text();
    assert!(
        body.contains("\"trap\"") && body.contains("dwcp logs") && !body.contains("unreachable"),
        "{body}"
    );
    let id = failed.header("x-request-id").unwrap().to_string();
    let line = wait_line(&c, 1, "crasher", &id);
    assert_eq!(line["stream"], "dwcp", "{line}");
    let text = line["text"].as_str().unwrap();
    assert!(
        text.starts_with("request failed (trap):") && text.contains("unreachable"),
        "{text}"
    );

    // Bad input: a clear error, exit status 1 (2 for a flag clap refuses).
    let err = c.cli_err(&["logs", "nosuch"]);
    assert!(err.contains("`default/nosuch` does not exist"), "{err}");
    let out = c.cli(1, &["logs", "talker", "--since", "5 fortnights"]);
    assert_eq!(out.status.code(), Some(2));
    let (status, v) = c.call(
        1,
        "GET",
        "/api/v1/tenants/default/apps/talker/logs?limit=0",
        None,
    );
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("limit")),
        "{v}"
    );
    let (status, v) = c.call(
        1,
        "GET",
        "/api/v1/tenants/default/apps/talker/logs?after=x",
        None,
    );
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("after")),
        "{v}"
    );
}

/// A page's `cursor` in its text form (`NODE:BOOT:SEQ,…`, boot in hex).
fn page_cursor(page: &Value) -> String {
    page["cursor"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(node, p)| {
            format!(
                "{node}:{:x}:{}",
                p["boot"].as_u64().unwrap(),
                p["seq"].as_u64().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_killed_node_is_shown_unreachable_and_down_and_fails_the_scripts() {
    let mut c = Cluster::with_voters(91, 3);
    // Every node reports and answers: both commands succeed.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let out = c.cli(1, &["nodes", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let healthy = list["nodes"].as_array().map(|n| {
            n.iter()
                .filter(|e| e["health"]["state"] == "healthy")
                .count()
        });
        if out.status.success() && healthy == Some(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never three healthy nodes: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let table = c.cli_ok(&["cluster", "status"]);
    assert!(table.contains("REACHABLE"), "{table}");
    assert!(!table.contains("unknown"), "{table}");

    // A follower is killed: once its report stood still for 3 s it is down.
    let victim = if c.leader() == 3 { 2 } else { 3 };
    c.kill(victim);
    let ask = if victim == 2 { 3 } else { 2 };
    let deadline = Instant::now() + DEADLINE;
    let member = loop {
        let out = c.cli(ask, &["cluster", "status", "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let member = status["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == victim).cloned());
        if let Some(m) = member.filter(|m| m["reachable"] == false && m["health"] == "down") {
            assert_eq!(out.status.code(), Some(3), "{status:#}");
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} never shown down: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        member["role"], "unknown",
        "not its last known role: {member}"
    );
    assert!(
        member["heartbeat_age_ms"].as_u64().unwrap() >= 3_000,
        "{member}"
    );

    let out = c.cli(ask, &["cluster", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{victim} ")))
        .unwrap_or_else(|| panic!("{stdout}"));
    for cell in ["unknown", "NO", "down", "s ago"] {
        assert!(row.contains(cell), "{cell} not in {row:?}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("unreachable: node {victim}")),
        "{stderr}"
    );

    let out = c.cli(ask, &["nodes"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("node-{victim} ")))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains(" down "), "{row}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("down: node-{victim}")), "{stderr}");

    // Back again: the scripts pass again.
    c.restart(victim);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (a, b) = (c.cli(ask, &["cluster", "status"]), c.cli(ask, &["nodes"]));
        if a.status.success() && b.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} never shown back: {}{}",
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&b.stdout)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A deploy of a large module on a terminal (a pseudo-terminal made by
/// util-linux's `script`) draws a byte bar while it uploads; piped, it
/// writes one plain line and no escape code. Both uploads arrive whole.
#[test]
fn a_large_upload_draws_a_byte_bar_on_a_terminal_and_a_line_when_piped() {
    let mut c = Cluster::found(213);
    c.wait_api(1);
    // 2 MiB of data segment: past the 1 MiB from which deploy reports.
    let big = |tag: &str| {
        format!(
            r#"(module (memory (export "memory") 64) (data (i32.const 0) "{tag}{}") (func (export "_start")))"#,
            "a".repeat(2 << 20)
        )
    };
    let piped = c.root.path().join("piped.wat");
    std::fs::write(&piped, big("piped")).unwrap();
    let out = c.cli(1, &["deploy", piped.to_str().unwrap(), "--name", "big"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with(&format!("uploading {} (2.0 MiB)...\n", piped.display())),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "no escape code when piped: {stderr:?}"
    );

    let tty = c.root.path().join("tty.wat");
    std::fs::write(&tty, big("a-tty")).unwrap();
    let command = format!(
        "{} deploy {} --name big",
        env!("CARGO_BIN_EXE_dwcp"),
        tty.display()
    );
    let out = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("DWCP_API", format!("http://{}", c.nodes[&1].api))
        .env("DWCP_TOKEN", &c.admin)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux's `script` runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("uploading [") && screen.contains("MiB"),
        "a byte bar was drawn: {screen:?}"
    );
    assert!(
        !screen.contains("(2.0 MiB)..."),
        "the bar, not the line: {screen:?}"
    );
    assert!(screen.contains("version 2"), "{screen:?}");
    let (_, app) = c.call(1, "GET", "/api/v1/tenants/default/apps/big", None);
    assert_eq!(app["versions"].as_array().map(Vec::len), Some(2), "{app}");
}
