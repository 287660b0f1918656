//! The autopilot acting on what the nodes' served counters show at once
//! (issue 20; `autopilot::act::traffic`), on real `dwcp up` processes with
//! real traffic, no trouble handed in:
//! - a warm pool gone bad on one node (its instances poisoned: they keep
//!   answering 500 from their kept-alive state) while the same version
//!   serves on the other node: the restart of that pool is proposed while
//!   destructive actions are off, applied once they are on, and the node
//!   serves again from a fresh pool;
//! - a tenant flooding a node (its app holding the node's sandbox slots)
//!   while another tenant's app is refused: the flooding tenant's
//!   concurrency is halved, the other app serves again, and the undo gives
//!   the quota back;
//! - a rollout's canary failing mid-rollout (held at 50 % by a pause step,
//!   so the rollout itself would never stop it): the autopilot rolls it
//!   back by itself, asking no one (the version has not passed), and
//!   every request is answered, the only failures the canary's own.
//!
//! Each test asserts the decision left behind: its outcome and action, its
//! evidence and guardrail checks (`explain`), the applied entry, and that
//! every decision replays from its evidence.

#[path = "common/decisions.rs"]
mod act_api;
mod common;
#[path = "common/load.rs"]
mod load;

use std::time::{Duration, Instant};

use act_api::{advance, assert_all_replay, decision_about, explained, id, wait};
use common::{Cluster, DEADLINE, exchange, voters};
use load::{Load, Sent};
use serde_json::{Value, json};

/// A keep-alive WAGI app whose instance, once a request's body starts
/// with `p`, answers every later request `500 poisoned` from its kept
/// state (a global): a warm pool gone bad, which only fresh instances
/// mend. Other requests get `ok`.
const POISONABLE: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $poisoned (mut i32) (i32.const 0))
  (data (i32.const 64) "content-type: text/plain\0a\0aok\0a")
  (data (i32.const 128) "status: 500\0acontent-type: text/plain\0a\0apoisoned\0a")
  (func (export "_start")
    ;; the body's first byte, at 200 (cleared: memory is kept between requests)
    (i32.store8 (i32.const 200) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (if (i32.eq (i32.load8_u (i32.const 200)) (i32.const 112))
      (then (global.set $poisoned (i32.const 1))))
    ;; one iovec at 0
    (if (global.get $poisoned)
      (then
        (i32.store (i32.const 0) (i32.const 128))
        (i32.store (i32.const 4) (i32.const 47)))
      (else
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 29))))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

const ROLLOUT_APP: &str = include_str!("../src/bench/apps/rollout.wat");

/// Writes `text` into the cluster's temp dir; its path.
fn file(c: &Cluster, name: &str, text: &str) -> String {
    let path = c.root.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Waits until `path` on `gateway` (POSTed `body`) answers `status`
/// `n` times in a row.
fn wait_answers(gateway: &str, path: &str, body: &[u8], status: u16, n: usize) {
    let deadline = Instant::now() + 2 * DEADLINE;
    let mut in_a_row = 0;
    while in_a_row < n {
        let last = exchange(
            DEADLINE,
            gateway,
            "POST",
            path,
            None,
            Some(body),
            "text/plain",
        );
        if last.as_ref().is_ok_and(|a| a.status == status) {
            in_a_row += 1;
            continue;
        }
        in_a_row = 0;
        assert!(
            Instant::now() < deadline,
            "{gateway}{path} never answered {status} {n} times in a row: {:?}",
            last.map(|a| (a.status, a.text()))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The requests each node's last report says `tenant/app` served there.
fn served_on(c: &Cluster, tenant: &str, app: &str) -> Vec<(String, u64)> {
    let (status, v) = c.call(1, "GET", "/api/v1/nodes", None);
    assert_eq!(status, 200, "{v}");
    let mut out = Vec::new();
    for n in v["nodes"].as_array().unwrap() {
        let r = &n["report"];
        let requests: u64 = r["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["tenant"] == tenant && x["app"] == app)
            .filter_map(|x| x["requests"].as_u64())
            .sum();
        if let Some(node) = r["node"].as_str() {
            out.push((node.to_string(), requests));
        }
    }
    out
}

/// `autopilot explain ID`'s text, checked for the parts every acted
/// decision shows; the text.
fn explain_text(c: &Cluster, decision: u64, parts: &[&str]) -> String {
    let text = c.cli_ok(&["autopilot", "explain", &decision.to_string()]);
    for part in parts
        .iter()
        .chain(&["kill_switch", "cooldown", "counterfactual: "])
    {
        assert!(text.contains(part), "{part} not in: {text}");
    }
    text
}

#[test]
fn a_pool_gone_bad_on_one_node_is_restarted_by_the_autopilot() {
    let mut c = Cluster::found_with(131, &["--manual-clock"]);
    c.join_node(2);
    c.wait_for(
        |s| voters(s).len() == 2 && s["leader"] == 1,
        "two voters led by node 1",
    );
    let wat = file(&c, "poisonable.wat", POISONABLE);
    c.cli_ok(&[
        "deploy",
        &wat,
        "--name",
        "shop",
        "--replicas",
        "2",
        "--warm",
    ]);
    let (g1, g2) = (c.nodes[&1].gateway.clone(), c.nodes[&2].gateway.clone());
    for g in [&g1, &g2] {
        wait_answers(g, "/shop", b"x", 200, 3);
    }
    // Paced clients on both nodes: about 50 requests a second each, so
    // that every report window holds the 20 requests a judgement needs.
    let loads = [&g1, &g2].map(|g| {
        Load::start(
            std::slice::from_ref(g),
            "/shop",
            2,
            None,
            Duration::from_millis(40),
        )
    });
    // Both nodes serve the app from their own pool (one replica each).
    wait(&c, "both nodes serving shop", || {
        let served = served_on(&c, "default", "shop");
        (served.len() == 2 && served.iter().all(|(_, r)| *r > 0)).then_some(())
    });

    // Node 1's pool goes bad: poisoned by requests sent to its gateway.
    let poisoned_at = Instant::now();
    wait_answers(&g1, "/shop", b"p", 500, 3);
    let place = "version default/shop@1 on node-1";
    let proposed = wait(&c, "the restart of node-1's pool proposed", || {
        decision_about(&c, place, 0, |d| d["outcome"] == "proposed")
    });
    assert!(
        proposed["action"]
            .as_str()
            .unwrap()
            .contains("restart the warm pool of default/shop@1 on node-1"),
        "{proposed}"
    );
    assert!(
        proposed["why"].as_str().unwrap().contains("not enabled"),
        "{proposed}"
    );
    // Nothing was restarted: the pool still fails.
    let a = exchange(
        DEADLINE,
        &g1,
        "POST",
        "/shop",
        None,
        Some(b"x"),
        "text/plain",
    )
    .unwrap();
    assert_eq!((a.status, a.text()), (500, "poisoned\n".to_string()));

    // Destructive actions on; after the rule's cool-down the same trouble
    // is decided again and the restart applied.
    c.cli_ok(&["autopilot", "enable", "destructive"]);
    advance(&c, 301_000);
    let acted = wait(&c, "the restart of node-1's pool applied", || {
        decision_about(&c, place, id(&proposed), |d| d["outcome"] == "acted")
    });
    assert!(
        acted["action"]
            .as_str()
            .unwrap()
            .contains("restart the warm pool of default/shop@1 on node-1"),
        "{acted}"
    );
    // A fresh pool serves on node 1 again.
    wait_answers(&g1, "/shop", b"x", 200, 20);
    let mended_at = Instant::now();
    let [l1, l2] = loads;
    let (on1, on2) = (l1.stop(), l2.stop());

    let v = explained(&c, id(&acted));
    assert_eq!(v["applied"][0]["state"], "done", "{v:#}");
    let trouble = &v["decision"]["evidence"]["trouble"];
    assert_eq!(trouble["class"], "pool_unhealthy", "{v:#}");
    assert!(
        trouble["signal"]["observed"].as_f64() >= Some(0.5),
        "the pool's error ratio: {v:#}"
    );
    let text = explain_text(
        &c,
        id(&acted),
        &[
            "trouble: pool_unhealthy on version default/shop@1 on node-1",
            "rule: pool-unhealthy-observed",
            "terminations",
        ],
    );
    println!("{text}");

    // Node 2's pool was never touched and never failed; node 1 failed
    // only between its poisoning and its fresh pool.
    assert!(
        on2.iter().all(|s| s.status == 200),
        "node 2 failed requests"
    );
    let failed: Vec<&Sent> = on1.iter().filter(|s| s.status != 200).collect();
    assert!(!failed.is_empty(), "node 1's pool failed");
    assert!(
        failed
            .iter()
            .all(|s| s.status == 500 && s.at >= poisoned_at && s.at <= mended_at),
        "{failed:?}"
    );
    assert!(on1.iter().all(|s| s.status != 0), "every request answered");
    assert!(assert_all_replay(&c) >= 2);
}

#[test]
fn a_tenant_flooding_a_node_is_throttled_by_the_autopilot() {
    // One node with 10 sandbox slots, which both tenants' apps share.
    let mut c = Cluster::found_with(132, &["--manual-clock", "--sandboxes", "10"]);
    c.wait_api(1);
    let gateway = c.nodes[&1].gateway.clone();
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wagi/hello.wat");
    c.cli_ok(&["deploy", hello, "--name", "shop"]);
    let (status, v) = c.call(1, "POST", "/api/v1/tenants", Some(json!({"name": "flood"})));
    assert!((200..300).contains(&status), "{v}");
    let nap = file(&c, "nap.wat", &common::nap_wat(200_000_000));
    c.cli_ok(&[
        "deploy",
        &nap,
        "--name",
        "flood",
        "--tenant",
        "flood",
        "--concurrency",
        "12",
    ]);
    wait_answers(&gateway, "/shop", b"x", 200, 3);
    wait_answers(&gateway, "/flood", b"x", 200, 1);
    c.cli_ok(&["autopilot", "enable", "destructive"]);

    // shop: one client, about 20 requests a second. The flood: 16 clients
    // of an app that holds its sandbox 200 ms, up to 12 at once, past the
    // node's 10 slots; refused ones come back at once.
    let shop = Load::start(
        std::slice::from_ref(&gateway),
        "/shop",
        1,
        None,
        Duration::from_millis(50),
    );
    let flood = Load::start(
        std::slice::from_ref(&gateway),
        "/flood",
        16,
        None,
        Duration::from_millis(5),
    );
    let place = "tenant flood";
    let acted = wait(&c, "the flooding tenant throttled", || {
        decision_about(&c, place, 0, |d| d["outcome"] == "acted")
    });
    assert!(
        acted["action"]
            .as_str()
            .unwrap()
            .contains("set tenant flood's concurrency from 100000 to 6 requests"),
        "{acted}"
    );
    let quota = |c: &Cluster| -> Value {
        let (status, v) = c.call(1, "GET", "/api/v1/tenants", None);
        assert_eq!(status, 200, "{v}");
        v["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "flood")
            .map(|t| t["quotas"]["max_concurrency"].clone())
            .unwrap_or_default()
    };
    assert_eq!(quota(&c), 6);
    // With the flood held to 6 at once, shop serves again while the flood
    // goes on.
    wait_answers(&gateway, "/shop", b"x", 200, 30);
    let flooded = flood.stop();
    let served = shop.stop();
    assert!(
        served.iter().any(|s| s.status == 503),
        "shop was refused while the flood held the slots"
    );
    assert!(
        flooded.iter().filter(|s| s.status == 200).count() > 10,
        "the flood was served too"
    );

    let v = explained(&c, id(&acted));
    assert_eq!(v["applied"][0]["state"], "done", "{v:#}");
    let trouble = &v["decision"]["evidence"]["trouble"];
    assert_eq!(trouble["class"], "tenant_flood", "{v:#}");
    assert!(
        trouble["source"]
            .as_str()
            .unwrap()
            .contains("default/shop@1"),
        "the victim is named: {v:#}"
    );
    assert!(
        trouble["signal"]["observed"].as_f64() >= Some(200.0),
        "the flood's rate: {v:#}"
    );
    let text = explain_text(
        &c,
        id(&acted),
        &[
            "trouble: tenant_flood on tenant flood",
            "rule: tenant-flood-observed",
        ],
    );
    println!("{text}");

    // The undo gives the quota back (after the limits' own minute).
    advance(&c, 61_000);
    let out = c.cli_ok(&["autopilot", "undo", &id(&acted).to_string()]);
    assert!(out.contains("throttle"), "{out}");
    wait(&c, "the flood tenant's quota given back", || {
        (quota(&c) == 100_000).then_some(())
    });
    assert!(assert_all_replay(&c) >= 1);
}

#[test]
fn a_canary_failing_mid_rollout_is_rolled_back_by_the_autopilot() {
    let mut c = Cluster::found(133);
    c.wait_api(1);
    let gateway = c.nodes[&1].gateway.clone();
    // Version 1 answers every request; version 2 traps on bodies starting
    // with `f`, which the load sends.
    let version = |tag: &str, fails: bool| {
        ROLLOUT_APP
            .replace("TAG_TAG_", tag)
            .replace("SPIN)", "0)")
            .replace("const FAILS)", if fails { "const 1)" } else { "const 0)" })
    };
    let v1 = file(&c, "v1.wat", &version("stable-1", false));
    let v2 = file(&c, "v2.wat", &version("broken-2", true));
    c.cli_ok(&["deploy", &v1, "--name", "shop"]);
    c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    common::wait_version(&gateway, "/shop", 1, 3);
    c.cli_ok(&["autopilot", "enable", "destructive"]);

    let load = Load::start(
        std::slice::from_ref(&gateway),
        "/shop",
        2,
        Some(1),
        Duration::from_millis(10),
    );
    // Held at 50 % by a pause: the rollout never ends by itself.
    let plan = common::held_at(&c, 50);
    c.cli_ok(&["rollout", "start", "shop", "--to", "2", "--plan", &plan]);
    let acted = wait(&c, "the canary rolled back by the autopilot", || {
        decision_about(&c, "version default/shop@2", 0, |d| d["outcome"] == "acted")
    });
    assert!(
        acted["action"]
            .as_str()
            .unwrap()
            .contains("roll default/shop back from 2 to 1"),
        "{acted}"
    );
    let rollout = wait(&c, "the rollout aborted", || {
        let (status, v) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop/rollout", None);
        assert_eq!(status, 200, "{v}");
        v["rollout"]["finished_unix_ms"].is_u64().then_some(v)
    });
    let aborted_at = Instant::now();
    assert_eq!(
        rollout["rollout"]["progress"]["status"]["state"], "aborted",
        "{rollout:#}"
    );
    let reason = rollout["rollout"]["progress"]["status"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("the autopilot rolled version 2 back"),
        "{rollout:#}"
    );
    common::wait_version(&gateway, "/shop", 1, 20);
    let sent = load.stop();

    // Nothing lost: every request was answered; the only failures are the
    // canary's own traps; nothing after the abort reached it; the app
    // still runs version 1.
    assert!(sent.iter().all(|s| s.status != 0), "every request answered");
    let failed: Vec<&Sent> = sent.iter().filter(|s| s.status != 200).collect();
    assert!(!failed.is_empty(), "the canary served and failed");
    assert!(
        failed
            .iter()
            .all(|s| s.status == 500 && s.version == Some(2)),
        "{failed:?}"
    );
    let after: Vec<&Sent> = sent.iter().filter(|s| s.at > aborted_at).collect();
    assert!(!after.is_empty());
    assert!(
        after
            .iter()
            .all(|s| s.status == 200 && s.version == Some(1)),
        "{:?}",
        after
            .iter()
            .filter(|s| s.version != Some(1))
            .collect::<Vec<_>>()
    );
    let (_, app) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop", None);
    assert_eq!(app["deployment"]["version"], 1, "{app}");

    // Asked no one: the canary had not passed its rollout.
    let (status, approvals) = c.call(1, "GET", "/api/v1/autopilot/approvals", None);
    assert_eq!(status, 200, "{approvals}");
    assert_eq!(approvals["approvals"], json!([]), "{approvals}");
    let v = explained(&c, id(&acted));
    assert_eq!(v["applied"][0]["state"], "done", "{v:#}");
    let text = explain_text(
        &c,
        id(&acted),
        &[
            "trouble: version_errors on version default/shop@2",
            "rule: version-errors-observed",
        ],
    );
    println!("{text}");
    assert!(assert_all_replay(&c) >= 1);
}
