//! The autopilot's decisions as its API shows them, for the tests of its
//! act loop on real processes (`tests/act.rs`, `tests/act_traffic.rs`).
//! Node 1 leads in those tests and runs the hidden `--manual-clock`.

// Each test file that includes these helpers uses part of them.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Cluster, DEADLINE};

/// Advances the leader's clock (node 1 leads throughout).
pub fn advance(c: &Cluster, ms: u64) {
    let (status, v) = c.call(
        1,
        "POST",
        "/api/v1/test/clock",
        Some(json!({ "advance_ms": ms })),
    );
    assert_eq!(status, 200, "{v}");
}

/// Polls `f` until it gives `Some`, for up to twice the usual deadline (a
/// death is judged after 3 s of silent reports on a loaded machine).
pub fn wait<T>(c: &Cluster, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + 2 * DEADLINE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; decisions: {:#}\n{}",
            decisions(c),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The latest decisions, newest first.
pub fn decisions(c: &Cluster) -> Value {
    let (status, v) = c.call(1, "GET", "/api/v1/autopilot/decisions?limit=500", None);
    assert_eq!(status, 200, "{v}");
    v["decisions"].clone()
}

/// The newest decision about `place` after decision `after` that `ok`
/// accepts.
pub fn decision_about(
    c: &Cluster,
    place: &str,
    after: u64,
    ok: impl Fn(&Value) -> bool,
) -> Option<Value> {
    decisions(c)
        .as_array()?
        .iter()
        .find(|d| d["place"] == place && d["id"].as_u64() > Some(after) && ok(d))
        .cloned()
}

/// `GET /autopilot/decisions/{id}`: the decision with its evidence, its
/// approval and what was applied.
pub fn explained(c: &Cluster, id: u64) -> Value {
    let (status, v) = c.call(1, "GET", &format!("/api/v1/autopilot/decisions/{id}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

/// A decision's id.
pub fn id(d: &Value) -> u64 {
    d["id"].as_u64().expect("a decision's id")
}

/// Asserts that every stored decision replays from its evidence to the
/// same choice; how many there were.
pub fn assert_all_replay(c: &Cluster) -> usize {
    let all = decisions(c);
    let all = all.as_array().unwrap();
    for d in all {
        let v = explained(c, id(d));
        let decision: autopilot::act::Decision =
            serde_json::from_value(v["decision"].clone()).expect("a stored decision");
        assert!(
            autopilot::act::replays(&decision),
            "decision {} does not replay: {v:#}",
            id(d)
        );
    }
    all.len()
}
