//! Bad apps and bad deploys against one real `dwcp up` node (127.0.37.1),
//! through the `dwcp` client and the node's gateway: an app that traps
//! answers 500 and one that never answers 504, each with its request id,
//! and the gateway keeps serving; a module that is not valid or imports
//! what is not granted, and a deploy over the tenant's quota, are refused
//! by `dwcp deploy` with a clear error and leave the state as it was.
//!
//! And a 3-node cluster (127.0.38.x) serving an app placed on two of its
//! nodes: every gateway answers for it (the third forwards), and when one
//! of the two is killed with SIGKILL the scheduler moves its share to the
//! third node while requests through the surviving gateways keep
//! succeeding.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Answer, Cluster, get_answer, wait_gateway};
use serde_json::{Value, json};

const HELLO: &str = include_str!("../../../examples/wagi/hello.wat");
const TRAP: &str = include_str!("../../node/tests/apps/trap.wat");
const LOOP: &str = include_str!("../../node/tests/apps/loop.wat");
const COUNTER: &str = include_str!("../../node/tests/apps/counter.wat");

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Asserts that since `before` (a revision and the apps then) nothing but
/// node reports (a heartbeat a second) changed in the state.
fn assert_unchanged(c: &Cluster, before: &(u64, Value), what: &str) {
    assert_eq!(apps(c), before.1, "{what} changed the apps");
    let changes = c.changes_since(1, before.0);
    assert!(changes.is_empty(), "{what} changed the state: {changes:?}");
}

/// Every app of every tenant, with its versions and deployment.
fn apps(c: &Cluster) -> Value {
    let (status, v) = c.call(1, "GET", "/api/v1/apps", None);
    assert_eq!(status, 200, "{v}");
    v
}

fn app_names(apps: &Value) -> Vec<String> {
    apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{}",
                a["tenant"].as_str().unwrap(),
                a["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// The gateway's error document in `answer`, checked to carry the same
/// request id as the `x-request-id` header; returns (code, message, id).
fn gateway_error(answer: &Answer) -> (String, String, String) {
    let v: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", answer.text()));
    let e = &v["error"];
    let id = e["request_id"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "no request id in the body: {v}");
    assert_eq!(
        answer.header("x-request-id"),
        Some(id.as_str()),
        "the header and the body name different requests: {:?}",
        answer.headers
    );
    (
        e["code"].as_str().unwrap_or_default().to_string(),
        e["message"].as_str().unwrap_or_default().to_string(),
        id,
    )
}

/// `/hello` (the example app every new cluster deploys) answers as usual.
fn hello_still_answers(gateway: &str, after: &str) {
    let answer = get_answer(gateway, "/hello").unwrap();
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "Hello from DWCP!\n"),
        "/hello after {after}"
    );
    assert!(answer.header("x-request-id").is_some(), "{answer:?}");
}

#[test]
fn bad_apps_and_refused_deploys_leave_the_node_serving_and_the_state_unchanged() {
    let (c, gateway) = Cluster::found_serving(37);
    let dir = tempfile::tempdir().unwrap();

    two_apps_of_one_module_never_share_a_kept_alive_instance(&c, dir.path(), &gateway);
    a_trapping_app_answers_500_with_its_request_id(&c, dir.path(), &gateway);
    a_slow_app_answers_504_within_its_timeout(&c, dir.path(), &gateway);
    an_apps_own_limits_apply(&c, dir.path(), &gateway);
    modules_that_cannot_run_are_refused_and_nothing_is_stored(&c, dir.path());
    a_deploy_over_quota_is_refused_before_anything_is_written(&c, dir.path(), &gateway);
    a_deploy_to_a_region_without_nodes_or_room_is_refused_up_front(&c, dir.path());
    hello_still_answers(&gateway, "everything");
    an_app_on_a_host_comes_before_the_one_on_any_host(&c, dir.path(), &gateway);
    the_node_reports_what_it_served(&c);
}

/// An app deployed with `--host` at `/hello` answers requests for that
/// host in place of the example app (served on any host); deleting it
/// brings the example back.
fn an_app_on_a_host_comes_before_the_one_on_any_host(c: &Cluster, dir: &Path, gateway: &str) {
    // The test's requests name the gateway's address as their host.
    let host = gateway.split(':').next().unwrap();
    let hosted = write(
        dir,
        "hosted.wat",
        HELLO.replace("Hello from DWCP!", "Hello named host"),
    );
    c.cli_ok(&[
        "deploy",
        s(&hosted),
        "--name",
        "hosted",
        "--route",
        "/hello",
        "--host",
        host,
    ]);
    wait_gateway(
        gateway,
        "/hello",
        |s, b| s == 200 && b == "Hello named host\n",
        "the app on the named host",
    );
    let listing = c.cli_ok(&["apps"]);
    assert!(listing.contains(&format!("{host}/hello")), "{listing}");
    c.cli_ok(&["app", "delete", "hosted"]);
    wait_gateway(
        gateway,
        "/hello",
        |s, b| s == 200 && b == "Hello from DWCP!\n",
        "the example app again",
    );
}

/// The node's report (written once a second by its agent) comes to count
/// the requests and errors its gateway served.
fn the_node_reports_what_it_served(c: &Cluster) {
    let deadline = Instant::now() + common::DEADLINE;
    let version = |nodes: &Value, app: &str| -> Option<Value> {
        nodes["nodes"][0]["report"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["tenant"] == "default" && v["app"] == app)
            .cloned()
    };
    loop {
        let (status, nodes) = c.call(1, "GET", "/api/v1/nodes", None);
        assert_eq!(status, 200, "{nodes}");
        assert_eq!(nodes["nodes"][0]["node"]["name"], "node-1", "{nodes}");
        let hello = version(&nodes, "hello");
        let trap = version(&nodes, "trap");
        let counted = hello.as_ref().is_some_and(|h| {
            h["requests"].as_u64() >= Some(3) && h["latency_us"]["count"] == h["requests"]
        }) && trap
            .as_ref()
            .is_some_and(|t| t["errors"].as_u64() >= Some(1) && t["requests"] == t["errors"]);
        if counted {
            let report = &nodes["nodes"][0]["report"];
            assert!(report["sequence"].as_u64() >= Some(1), "{report}");
            assert!(report["templates_ready"].as_u64() >= Some(2), "{report}");
            let listing = c.cli_ok(&["nodes"]);
            assert!(
                listing.starts_with("NODE ") && listing.contains(&c.nodes[&1].gateway),
                "{listing}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the report never counted /hello and /trap: {nodes}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two keep-alive apps deployed from the same module (same digest, same
/// configuration) each get their own warm pool: the counter the first
/// one's instance keeps is not what the second one's first request sees.
fn two_apps_of_one_module_never_share_a_kept_alive_instance(
    c: &Cluster,
    dir: &Path,
    gateway: &str,
) {
    let counter = write(dir, "counter.wat", COUNTER);
    for name in ["count-a", "count-b"] {
        let route = format!("/{name}");
        c.cli_ok(&[
            "deploy",
            s(&counter),
            "--name",
            name,
            "--route",
            &route,
            "--warm",
        ]);
    }
    let first = wait_gateway(
        gateway,
        "/count-a",
        |s, _| s != 404,
        "/count-a to be routed",
    );
    assert_eq!((first.status, first.text()), (200, "1".to_string()));
    for expected in ["2", "3"] {
        let answer = get_answer(gateway, "/count-a").unwrap();
        assert_eq!(answer.text(), expected, "the warm instance keeps its count");
    }
    let other = wait_gateway(
        gateway,
        "/count-b",
        |s, _| s != 404,
        "/count-b to be routed",
    );
    assert_eq!(
        (other.status, other.text()),
        (200, "1".to_string()),
        "count-b's first request ran on count-a's instance"
    );
    for name in ["count-a", "count-b"] {
        c.cli_ok(&["app", "delete", name]);
    }
}

fn a_trapping_app_answers_500_with_its_request_id(c: &Cluster, dir: &Path, gateway: &str) {
    let trap = write(dir, "trap.wat", TRAP);
    c.cli_ok(&["deploy", s(&trap), "--name", "trap", "--route", "/trap"]);
    let first = wait_gateway(gateway, "/trap", |s, _| s != 404, "/trap to be routed");
    assert_eq!(first.status, 500, "{}", first.text());
    let (code, message, id) = gateway_error(&first);
    assert_eq!(code, "trap", "{message}");
    assert!(message.contains("default/trap"), "{message}");
    // Each request has an id of its own.
    let second = get_answer(gateway, "/trap").unwrap();
    assert_eq!(second.status, 500, "{}", second.text());
    let (code, _, id2) = gateway_error(&second);
    assert_eq!(code, "trap");
    assert_ne!(id, id2, "two requests, one id");
    hello_still_answers(gateway, "a trap");
}

fn a_slow_app_answers_504_within_its_timeout(c: &Cluster, dir: &Path, gateway: &str) {
    let slow = write(dir, "loop.wat", LOOP);
    c.cli_ok(&[
        "deploy",
        s(&slow),
        "--name",
        "slow",
        "--route",
        "/slow",
        "--timeout",
        "300ms",
    ]);
    let (status, v) = c.call(1, "GET", "/api/v1/tenants/default/apps/slow", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["versions"][0]["config"]["timeout_ms"], json!(300), "{v}");
    wait_gateway(gateway, "/slow", |s, _| s != 404, "/slow to be routed");
    for _ in 0..3 {
        let start = Instant::now();
        let answer = get_answer(gateway, "/slow").unwrap();
        let took = start.elapsed();
        assert_eq!(answer.status, 504, "{}", answer.text());
        let (code, message, _) = gateway_error(&answer);
        assert_eq!(code, "timeout", "{message}");
        assert!(
            message.contains("default/slow") && message.contains("300 ms"),
            "{message}"
        );
        // It waited for the app's deadline (300 ms) and answered well before
        // the default one (10 s), with slack for a loaded machine: the
        // version's timeout is what applies.
        assert!(took >= Duration::from_millis(300), "answered in {took:?}");
        assert!(took < Duration::from_secs(8), "answered in {took:?}");
    }
    hello_still_answers(gateway, "timeouts");
}

/// Limits given at deploy (`--max-request`, `--concurrency`) are the ones
/// the gateway applies to the app.
fn an_apps_own_limits_apply(c: &Cluster, dir: &Path, gateway: &str) {
    let tiny = write(dir, "tiny.wat", HELLO);
    c.cli_ok(&["deploy", s(&tiny), "--name", "tiny", "--max-request", "16"]);
    wait_gateway(gateway, "/tiny", |s, _| s == 200, "/tiny to be routed");
    let post = |body: &[u8]| {
        common::exchange(
            common::DEADLINE,
            gateway,
            "POST",
            "/tiny",
            None,
            Some(body),
            "text/plain",
        )
        .unwrap()
    };
    assert_eq!(post(&[b'x'; 16]).status, 200);
    let answer = post(&[b'x'; 17]);
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert_eq!(gateway_error(&answer).0, "request_too_large");

    // One request at a time: while one runs (to its 3 s deadline), the
    // next is turned away at once.
    let lone = write(dir, "lone.wat", LOOP);
    c.cli_ok(&[
        "deploy",
        s(&lone),
        "--name",
        "lone",
        "--concurrency",
        "1",
        "--timeout",
        "3s",
    ]);
    wait_gateway(gateway, "/lone", |s, _| s == 504, "/lone to be routed");
    // (A sandbox may outlive its 504 for a moment and hold the one place;
    // the first request asks until it gets in.)
    let first = {
        let gateway = gateway.to_string();
        std::thread::spawn(move || {
            loop {
                let status = get_answer(&gateway, "/lone").unwrap().status;
                if status != 503 {
                    return status;
                }
            }
        })
    };
    let mut turned_away = None;
    while !first.is_finished() {
        let answer = get_answer(gateway, "/lone").unwrap();
        if answer.status == 503 {
            turned_away = Some(gateway_error(&answer).0);
            break;
        }
    }
    assert_eq!(turned_away.as_deref(), Some("concurrency_limit"));
    assert_eq!(first.join().unwrap(), 504);
}

fn modules_that_cannot_run_are_refused_and_nothing_is_stored(c: &Cluster, dir: &Path) {
    let before = (c.revision(), apps(c));
    // A binary module whose first section is cut short.
    let garbage: &[u8] = b"\0asm\x01\0\0\0\x01\xff\xff\xff\x0f";
    // A valid module that imports what no sandbox is granted.
    let ungranted = r#"(module
  (import "env" "launch_missiles" (func $launch))
  (memory (export "memory") 1)
  (func (export "_start") (call $launch)))"#;
    let garbage_file = write(dir, "garbage.wasm", garbage);
    let ungranted_file = write(dir, "ungranted.wat", ungranted);

    let err = c.cli_err(&[
        "deploy",
        s(&garbage_file),
        "--name",
        "garbage",
        "--route",
        "/garbage",
    ]);
    assert!(
        err.contains("field: body") && err.contains("invalid module"),
        "{err}"
    );
    let err = c.cli_err(&[
        "deploy",
        s(&ungranted_file),
        "--name",
        "ungranted",
        "--route",
        "/ungranted",
    ]);
    assert!(
        err.contains("env::launch_missiles") && err.contains("not granted"),
        "{err}"
    );
    // Nor as a new version of an app that exists.
    let err = c.cli_err(&["deploy", s(&ungranted_file), "--name", "hello"]);
    assert!(err.contains("not granted"), "{err}");

    assert_unchanged(c, &before, "a refused module");
    let listing = c.cli_ok(&["apps"]);
    assert!(
        !listing.contains("garbage") && !listing.contains("ungranted"),
        "{listing}"
    );
    for bytes in [garbage, ungranted.as_bytes()] {
        let digest = state::digest_of(bytes);
        let (status, v) = c.call(1, "GET", &format!("/api/v1/blobs/{digest}"), None);
        assert_eq!(status, 404, "a refused module was stored: {v}");
        assert!(!c.nodes[&1].dir.join("blobs").join(&digest).exists());
    }
}

fn a_deploy_over_quota_is_refused_before_anything_is_written(
    c: &Cluster,
    dir: &Path,
    gateway: &str,
) {
    let (status, v) = c.call(
        1,
        "POST",
        "/api/v1/tenants",
        Some(json!({"name": "tight", "quotas": {"max_apps": 1, "max_replicas": 2}})),
    );
    assert_eq!(status, 201, "{v}");
    let hello = write(
        dir,
        "small.wat",
        HELLO.replace("Hello from DWCP!", "Small is fine!!!"),
    );
    let file = s(&hello);
    let deploy = |name: &'static str, route: &'static str, replicas: &'static str| {
        [
            "deploy",
            file,
            "--tenant",
            "tight",
            "--name",
            name,
            "--route",
            route,
            "--replicas",
            replicas,
        ]
    };
    let unchanged = |before: &(u64, Value), what: &str| {
        assert_unchanged(c, before, what);
    };

    // A new app with more replicas than the tenant may run.
    let before = (c.revision(), apps(c));
    let err = c.cli_err(&deploy("small", "/small", "5"));
    assert!(
        err.contains("tight") && err.contains("max_replicas") && err.contains("2"),
        "{err}"
    );
    unchanged(&before, "a deploy over max_replicas");
    assert!(!app_names(&before.1).contains(&"tight/small".to_string()));

    // Within the quota it goes through, and is served.
    c.cli_ok(&deploy("small", "/small", "2"));
    wait_gateway(
        gateway,
        "/small",
        |s, b| s == 200 && b == "Small is fine!!!\n",
        "the app within its quota",
    );

    // A new version of that app with more replicas: no version is added,
    // the deployment stays.
    let before = (c.revision(), apps(c));
    let err = c.cli_err(&deploy("small", "/small", "3"));
    assert!(err.contains("max_replicas"), "{err}");
    unchanged(&before, "a new version over max_replicas");
    let small = &before.1["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "small")
        .cloned()
        .unwrap();
    assert_eq!(small["versions"], json!(1), "{small}");
    assert_eq!(
        small["deployment"]["regions"],
        json!({"local": 2}),
        "{small}"
    );

    // One app more than the tenant may have.
    let err = c.cli_err(&deploy("second", "/second", "0"));
    assert!(err.contains("tight") && err.contains("max_apps"), "{err}");
    unchanged(&before, "a deploy over max_apps");
}

fn a_deploy_to_a_region_without_nodes_or_room_is_refused_up_front(c: &Cluster, dir: &Path) {
    let before = apps(c);
    let hello = write(dir, "typo.wat", HELLO);
    let err = c.cli_err(&[
        "deploy",
        s(&hello),
        "--name",
        "typo",
        "--route",
        "/typo",
        "--region",
        "nowhere",
    ]);
    assert!(err.contains("region `nowhere` has no nodes"), "{err}");
    assert!(err.contains("regions with nodes: local"), "{err}");
    assert_eq!(apps(c), before, "a refused deploy left its app behind");

    // More replicas than the region's one node has slots for (1,000, less
    // what the apps deployed so far hold, once the scheduler placed them).
    let (status, v) = c.call(
        1,
        "POST",
        "/api/v1/tenants",
        Some(json!({"name": "big", "quotas": {"max_apps": 10, "max_replicas": 5000}})),
    );
    assert_eq!(status, 201, "{v}");
    let before = apps(c);
    let free = 1000 - placed_replicas(c);
    let huge = |replicas: &str| {
        [
            "deploy",
            s(&hello),
            "--tenant",
            "big",
            "--name",
            "huge",
            "--replicas",
            replicas,
        ]
        .map(String::from)
    };
    let over = (free + 1).to_string();
    let err = c.cli_err(&huge(&over).each_ref().map(String::as_str));
    assert!(
        err.contains("not enough capacity in region `local`")
            && err.contains(&format!("wanted {over} replicas, {free} fit (1 short)")),
        "{err}"
    );
    assert_eq!(apps(c), before, "a refused deploy left its app behind");
    c.cli_ok(&huge(&free.to_string()).each_ref().map(String::as_str));
    // Its slots come back with its deletion.
    c.cli_ok(&["app", "delete", "huge", "--tenant", "big"]);
}

/// The replicas placed on the node, once the scheduler has placed every
/// deployment's.
fn placed_replicas(c: &Cluster) -> u64 {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let wanted: u64 = apps(c)["apps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["deployment"]["regions"]["local"].as_u64())
            .sum();
        let (status, nodes) = c.call(1, "GET", "/api/v1/nodes", None);
        assert_eq!(status, 200, "{nodes}");
        let placed: u64 = nodes["nodes"][0]["placements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum();
        if placed == wanted {
            return placed;
        }
        assert!(
            Instant::now() < deadline,
            "placed {placed} of {wanted}: {nodes}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the scheduler placed `default/web`, as (node, count), read
/// through node `via`.
fn placements(c: &Cluster, via: u8) -> Vec<(String, u64)> {
    let (status, v) = c.call(via, "GET", "/api/v1/tenants/default/apps/web", None);
    assert_eq!(status, 200, "{v}");
    let mut out: Vec<(String, u64)> = v["placements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["node"].as_str().unwrap().to_string(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Polls the placements of `default/web` through node `via` until `ok`.
fn wait_placements(
    c: &Cluster,
    via: u8,
    ok: impl Fn(&[(String, u64)]) -> bool,
    what: &str,
    mut meanwhile: impl FnMut(),
) -> Vec<(String, u64)> {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let now = placements(c, via);
        if ok(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: placements {now:?}");
        meanwhile();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_app_on_two_of_three_nodes_keeps_serving_when_one_is_killed() {
    let mut c = Cluster::with_voters(38, 3);
    let dir = tempfile::tempdir().unwrap();
    let web = write(
        dir.path(),
        "web.wat",
        HELLO.replace("Hello from DWCP!", "Served by web v1"),
    );
    c.cli_ok(&[
        "deploy",
        s(&web),
        "--name",
        "web",
        "--route",
        "/web",
        "--replicas",
        "2",
    ]);
    let placed = wait_placements(
        &c,
        1,
        |p| p.len() == 2 && p.iter().all(|(_, n)| *n == 1),
        "the scheduler to spread 2 replicas over 2 nodes",
        || {},
    );
    let number = |name: &str| -> u8 { name.strip_prefix("node-").unwrap().parse().unwrap() };
    let holders: Vec<u8> = placed.iter().map(|(n, _)| number(n)).collect();
    let spare = (1..=3).find(|n| !holders.contains(n)).unwrap();
    let gateways: Vec<String> = (1..=3).map(|n| c.nodes[&n].gateway.clone()).collect();
    // Every gateway serves it: the holders themselves, the spare by
    // forwarding to them.
    for g in &gateways {
        wait_gateway(
            g,
            "/web",
            |s, b| s == 200 && b == "Served by web v1\n",
            "/web",
        );
    }

    // Kill a holder (the leader, when it is one: the harder case).
    let leader = c.leader();
    let victim = if holders.contains(&leader) {
        leader
    } else {
        holders[0]
    };
    let survivor = *holders.iter().find(|&&n| n != victim).unwrap();
    c.kill(victim);
    let through = [survivor, spare].map(|n| c.nodes[&n].gateway.clone());
    let mut served = 0;
    let mut ask = || {
        for g in &through {
            let answer = get_answer(g, "/web").unwrap();
            assert_eq!(
                (answer.status, answer.text().as_str()),
                (200, "Served by web v1\n"),
                "through {g} after node {victim} was killed: {answer:?}"
            );
            served += 1;
        }
    };
    let moved = wait_placements(
        &c,
        survivor,
        |p| {
            p.len() == 2
                && p.iter()
                    .all(|(n, count)| *count == 1 && number(n) != victim)
        },
        "the dead node's share to move to the spare",
        &mut ask,
    );
    assert_eq!(
        moved,
        [survivor, spare]
            .map(|n| (format!("node-{n}"), 1))
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "the survivor keeps its replica, the spare takes the dead node's"
    );
    // And after the move, the spare serves it itself.
    for _ in 0..20 {
        ask();
    }
    assert!(served >= 40, "{served} requests");
}
