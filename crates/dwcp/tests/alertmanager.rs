//! Alerts pushed into a real Alertmanager (Debian's
//! `prometheus-alertmanager`, which `scripts/test.sh` installs), as
//! Prometheus pushes them: a `dwcp up` node (127.0.187.1, the wall clock)
//! with an availability SLO whose target is `--alertmanager-api` the
//! Alertmanager on 127.0.187.9. Real errors through the gateway fire the
//! page alert, and Alertmanager's own API then shows it active with the
//! alert's labels; while it fires it is sent again each minute (its
//! `endsAt` moves on, so Alertmanager never resolves it by itself); good
//! requests clear it, and the "resolved" push (its `endsAt` now) takes it
//! out of Alertmanager's active alerts.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, exchange, wait_gateway};
use serde_json::Value;

const APP: &str = include_str!("../src/bench/apps/rollout.wat");
const ALERTMANAGER: &str = "127.0.187.9:9093";

/// The Alertmanager process, stopped when dropped.
struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Debian's Alertmanager on [`ALERTMANAGER`] with one receiver that
/// sends nothing, gossip off (it would bind a port on every address).
fn alertmanager(dir: &std::path::Path) -> Alertmanager {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
    )
    .unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address={ALERTMANAGER}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager is not installed: scripts/test.sh installs Debian's `prometheus-alertmanager`");
    let am = Alertmanager(child);
    wait("Alertmanager's API", DEADLINE, || {
        exchange(DEADLINE, ALERTMANAGER, "GET", "/-/ready", None, None, "")
            .ok()
            .filter(|a| a.status == 200)
    });
    am
}

/// The alerts Alertmanager holds active (resolved ones it leaves out).
fn active_alerts() -> Vec<Value> {
    let answer = exchange(
        DEADLINE,
        ALERTMANAGER,
        "GET",
        "/api/v2/alerts",
        None,
        None,
        "",
    )
    .expect("Alertmanager answers");
    assert_eq!(answer.status, 200, "{}", answer.text());
    serde_json::from_str::<Value>(&answer.text())
        .expect("a JSON list")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The page alert of `default/shop`'s availability SLO, if active.
fn page_alert() -> Option<Value> {
    active_alerts()
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "SloBurnRateFast")
}

/// Polls `f` until it gives `Some`, for up to `deadline`.
fn wait<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `n` requests through the gateway to the shop app: failing ones (a body
/// starting with `f`) or good ones.
fn requests(gateway: &str, n: usize, fail: bool) {
    let body: &[u8] = if fail { b"fail" } else { b"good" };
    for _ in 0..n {
        let answer = exchange(
            DEADLINE,
            gateway,
            "POST",
            "/shop",
            None,
            Some(body),
            "text/plain",
        )
        .expect("the gateway answers");
        assert_eq!(answer.status, if fail { 500 } else { 200 });
    }
}

#[test]
fn a_firing_slo_alert_is_pushed_into_alertmanager_kept_alive_and_resolved() {
    let mut c = Cluster::found_with(187, &["--allow-webhook-host", "127.0.187.9"]);
    let _am = alertmanager(c.root.path());
    c.wait_api(1);
    let gateway = c.nodes[&1].gateway.clone();
    let wat = APP
        .replace("TAG_TAG_", "shop-v1_")
        .replace("SPIN)", "0)")
        .replace("const FAILS)", "const 1)");
    let path = c.root.path().join("shop.wat");
    std::fs::write(&path, wat).unwrap();
    c.cli_ok(&["deploy", path.to_str().unwrap(), "--name", "shop"]);
    wait_gateway(&gateway, "/shop", |s, _| s == 200, "the shop app");
    let out = c.cli_ok(&[
        "slo",
        "put",
        "shop",
        "availability",
        "--availability",
        "--target",
        "0.999",
        "--alertmanager-api",
        &format!("http://{ALERTMANAGER}"),
    ]);
    assert!(
        out.contains("stored SLO default/shop/availability"),
        "{out}"
    );
    let (_, v) = c.call(
        1,
        "GET",
        "/api/v1/tenants/default/apps/shop/slos/availability",
        None,
    );
    assert_eq!(v["notify"][0]["kind"], "alertmanager_api", "{v}");
    assert!(active_alerts().is_empty());

    // Errors only: every window burns 1000x the budget.
    requests(&gateway, 5, true);
    let fired = wait("the page alert in Alertmanager", DEADLINE, page_alert);
    let labels = &fired["labels"];
    assert_eq!(labels["severity"], "page", "{fired}");
    assert_eq!(labels["tenant"], "default");
    assert_eq!(labels["app"], "shop");
    assert_eq!(labels["slo"], "availability");
    assert_eq!(labels["slo_name"], "availability");
    assert_eq!(fired["status"]["state"], "active", "{fired}");
    assert!(
        fired["generatorURL"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/tenants/default/apps/shop/slos/availability"),
        "{fired}"
    );
    assert!(
        fired["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("error budget burning"),
        "{fired}"
    );
    // Firing alerts end four minutes after each send (RFC 3339 in UTC
    // sorts as text).
    let (starts, ends) = (
        fired["startsAt"].as_str().unwrap().to_string(),
        fired["endsAt"].as_str().unwrap().to_string(),
    );
    assert!(ends > starts, "{fired}");
    // Sent again a minute later: Alertmanager's endsAt moves on.
    let again = wait("a resend", Duration::from_secs(180), || {
        page_alert().filter(|a| a["endsAt"].as_str().is_some_and(|e| e > ends.as_str()))
    });
    assert_eq!(again["startsAt"], fired["startsAt"], "{again}");
    assert_eq!(again["status"]["state"], "active");

    // Good requests until the burn is under every page rule's factor
    // (5 errors in 1,205 requests burn 4.1x, under 6x): the page clears,
    // and Alertmanager takes it out of its active alerts.
    requests(&gateway, 1_200, false);
    wait("the page resolved in Alertmanager", DEADLINE, || {
        page_alert().is_none().then_some(())
    });
    let log = c.nodes[&1].log();
    assert!(!log.contains("resending ("), "no resend failed: {log}");
}
