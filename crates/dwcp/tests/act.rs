//! The autopilot's acting (issue 20) on a real three-node `dwcp up`
//! cluster (127.0.86.x) whose founder, the leader, runs the hidden
//! `--manual-clock`: the autopilot's time (cool-downs, approvals) moves
//! only through `POST /api/v1/test/clock`, so a quarter of an hour of
//! waiting for a person takes a second. Nodes die for real (SIGKILL) and
//! the leader's loop judges them silent from their reports.
//!
//! One cluster for the whole story, in order:
//! - the defaults: running, destructive actions only proposed; a bad
//!   policy refused naming the rule and the field (CLI and API), a good
//!   one stored and reset;
//! - node 3 dies: the drain is proposed (dry run) until `enable
//!   destructive`, then applied after its cool-down: the scheduler's
//!   schedule says drained;
//! - node 3 comes back (still drained), node 2 dies: draining a second
//!   node waits for a person; an incident tells people, a reminder and a
//!   page follow, and at the deadline the safe default (cordon) applies;
//!   a late approval is refused;
//! - the cordon is undone; at once the drain is refused by the cool-down
//!   (the incident opens instead); after it, the drain is asked again and
//!   approved from the dashboard (headless Chromium: the Decisions
//!   section's Approve button, by an admin whose login passed TOTP), and
//!   begins, the page showing it;
//! - the kill switch: paused, an undo is refused and a new decision is
//!   refused by `kill_switch`; resumed, the undo goes through;
//! - region failover: node 4 joins in region `far` and dies; the failover
//!   waits for a person, is approved and written as the failover record,
//!   then undone (the region given back);
//! - scale and rollback: app `shop` (version 2 deployed whole over 1, 10
//!   replicas); troubles handed to the loop through the test clock (the
//!   detectors need an hour of signal): version errors → the rollback
//!   waits for a person (version 2 passed), approved, shop runs version 1;
//!   undone, version 2 again; load past capacity → scaled out to 11,
//!   undone, 10 again;
//! - every stored decision replays from its evidence to the same choice;
//!   a tenant's scoped log holds its app's decisions and none of the
//!   nodes'.

#[path = "common/decisions.rs"]
mod act_api;
mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::time::{SystemTime, UNIX_EPOCH};

use act_api::{advance, decision_about, decisions, explained, id, wait};
use common::{Cluster, http, members, voters};
use serde_json::{Value, json};
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery staple";

fn controls(c: &Cluster) -> Value {
    let (status, v) = c.call(1, "GET", "/api/v1/autopilot/controls", None);
    assert_eq!(status, 200, "{v}");
    v
}

fn schedule(c: &Cluster, node: &str) -> Value {
    controls(c)["schedules"][node].clone()
}

fn approval_state(c: &Cluster, id: u64) -> String {
    let state = &explained(c, id)["approval"]["approval"]["state"];
    match state {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Signs an admin with TOTP (`ada`, made here) in to the dashboard, finds
/// approval `approval` waiting in the Autopilot page's Decisions section
/// and clicks its Approve button (the page's script adds the session's
/// CSRF token). The browser, still on the page.
fn approve_on_the_page(c: &Cluster, approval: u64) -> Browser {
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "ada", "password": PASSWORD, "roles": {"*": "admin"}})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, enrolled) = c.call(1, "POST", "/api/v1/users/ada/totp", Some(json!({})));
    assert_eq!(status, 201, "{enrolled}");
    let secret = enrolled["secret"].as_str().unwrap().to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = ops::totp::code_at(&secret, now).unwrap();
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users/ada/totp/confirm",
        Some(json!({ "code": code })),
    );
    assert!((200..300).contains(&status), "{status} {body}");

    let dir = c.root.path().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let browser = Browser::start(&dir);
    let base = format!("http://{}", c.nodes[&1].api);
    browser.goto(&format!("{base}/login"));
    // The confirming code may not be used again; the next step's is
    // within the allowed skew.
    let login_code = ops::totp::code_at(&secret, now + 30).unwrap();
    browser.type_into("#user", "ada");
    browser.type_into("#password", PASSWORD);
    browser.type_into("#totp", &login_code);
    browser.click("#signin");
    browser.wait_for(
        "return location.pathname",
        |v| v == &json!("/"),
        "the overview after signing in",
    );
    browser.goto(&format!("{base}/autopilot"));
    let approve =
        format!("#decisions button[data-post=\"/api/v1/autopilot/approvals/{approval}/approve\"]");
    let row = browser.wait_for(
        &format!(
            "const b = document.querySelector('{approve}'); return b ? b.closest('tr').innerText : ''"
        ),
        |v| v.as_str().is_some_and(|t| !t.is_empty()),
        "the waiting approval with its Approve button",
    );
    let row = row.as_str().unwrap_or_default();
    assert!(
        row.contains("drain node node-2")
            && row.contains("draining a second node")
            && row.contains("Reject"),
        "{row}"
    );
    // Live: the page's frames keep coming while it waits.
    browser.wait_for(
        "return document.getElementById('live').className",
        |v| v == &json!("live on"),
        "the live indicator",
    );
    browser.click(&approve);
    // The next frame drops it from the waiting list.
    browser.wait_for(
        &format!("return document.querySelector('{approve}') === null"),
        |v| v == &json!(true),
        "the approval gone from the waiting list",
    );
    browser
}

#[test]
fn the_autopilot_acts_within_guardrails_asks_people_and_explains_itself() {
    let mut c = Cluster::found_with(86, &["--manual-clock"]);
    c.join_node(2);
    c.join_node(3);
    c.wait_for(
        |s| voters(s).len() == 3 && s["leader"] == 1,
        "three voters led by node 1",
    );

    // The defaults.
    let out = c.cli_ok(&["autopilot", "status"]);
    assert!(
        out.contains("running") && out.contains("only proposed"),
        "{out}"
    );
    let out = c.cli_ok(&["autopilot", "policy", "show"]);
    assert!(
        out.contains("policy: defaults") && out.contains("node-silent-observed"),
        "{out}"
    );

    // A bad policy is refused whole, naming the rule and the field.
    let bad = "[[rule]]\nname = \"ok\"\non = \"node_silent\"\nbasis = \"observed\"\nactions = [\"drain\"]\n\n[[rule]]\nname = \"too-eager\"\non = \"node_silent\"\nbasis = \"forecast\"\nactions = [\"drain\"]\n";
    let path = c.root.path().join("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let err = c.cli_err(&["autopilot", "policy", "set", path.to_str().unwrap()]);
    assert!(
        err.contains("rule 2 (too-eager)") && err.contains("actions[0]"),
        "{err}"
    );
    let (status, body) = http(
        &c.nodes[&1].api,
        "PUT",
        "/api/v1/autopilot/policy",
        Some(&c.admin),
        Some(bad.as_bytes()),
        "text/plain",
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["field"], "rule[1].actions[0]", "{v}");
    let out = c.cli_ok(&["autopilot", "policy", "show"]);
    assert!(out.contains("policy: defaults"), "nothing stored: {out}");
    let good = "[[rule]]\nname = \"silent-drain\"\non = \"node_silent\"\nbasis = \"observed\"\nactions = [\"drain\", \"open_incident\"]\ncooldown_s = 300\n";
    let path = c.root.path().join("good.toml");
    std::fs::write(&path, good).unwrap();
    let out = c.cli_ok(&["autopilot", "policy", "set", path.to_str().unwrap()]);
    assert!(out.contains("1 rules"), "{out}");
    let out = c.cli_ok(&["autopilot", "policy", "show"]);
    assert!(
        out.contains("policy: custom") && out.contains("silent-drain"),
        "{out}"
    );
    c.cli_ok(&["autopilot", "policy", "reset"]);

    // Node 3 dies: the drain is only proposed until destructive actions
    // are enabled.
    c.kill(3);
    let proposed = wait(&c, "a proposed drain of node-3", || {
        decision_about(&c, "node node-3", 0, |d| d["outcome"] == "proposed")
    });
    assert!(
        proposed["why"].as_str().unwrap().contains("not enabled"),
        "{proposed}"
    );
    assert!(
        proposed["action"]
            .as_str()
            .unwrap()
            .contains("drain node node-3"),
        "{proposed}"
    );
    let log = c.cli_ok(&["autopilot", "log"]);
    assert!(
        log.contains("proposed") && log.contains("node node-3"),
        "{log}"
    );
    let text = c.cli_ok(&["autopilot", "explain", &id(&proposed).to_string()]);
    // Shown with --nocapture (docs/autopilot.md quotes it).
    println!("{text}");
    for part in [
        "trouble: node_silent on node node-3",
        "rule: node-silent-observed",
        "kill_switch",
        "cooldown",
        "counterfactual: ",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let out = c.cli_ok(&[
        "-o",
        "json",
        "autopilot",
        "explain",
        &id(&proposed).to_string(),
    ]);
    let v: Value = serde_json::from_str(&out).expect("explain -o json is JSON");
    assert_eq!(v["decision"]["id"], proposed["id"]);
    assert!(schedule(&c, "node-3").is_null(), "nothing applied");

    let err = c.cli_err(&["autopilot", "enable", "everything"]);
    assert!(err.contains("destructive"), "{err}");
    let out = c.cli_ok(&["autopilot", "enable", "destructive"]);
    assert!(out.contains("applied"), "{out}");
    advance(&c, 301_000);
    let acted = wait(&c, "the drain of node-3 applied", || {
        decision_about(&c, "node node-3", id(&proposed), |d| {
            d["outcome"] == "acted"
        })
    });
    assert!(
        acted["action"]
            .as_str()
            .unwrap()
            .contains("drain node node-3"),
        "{acted}"
    );
    wait(&c, "node-3 drained", || {
        (schedule(&c, "node-3") == "drained").then_some(())
    });
    let entry = &explained(&c, id(&acted))["applied"][0];
    assert_eq!(entry["state"], "done", "{entry}");

    // Node 3 returns, still drained; node 2 dies: a second drained node
    // needs a person.
    c.restart(3);
    c.kill(2);
    let asked = wait(&c, "an approval to drain node-2", || {
        decision_about(&c, "node node-2", 0, |d| d["outcome"] == "proposed")
    });
    assert!(
        asked["why"]
            .as_str()
            .unwrap()
            .contains("draining a second node"),
        "{asked}"
    );
    let approval = id(&asked);
    assert_eq!(approval_state(&c, approval), "asked");
    let fingerprint = format!("autopilot:approval:{approval}");
    let incident = wait(&c, "the approval's incident", || {
        let (_, v) = c.call(1, "GET", "/api/v1/incidents?status=all", None);
        v["incidents"]
            .as_array()?
            .iter()
            .find(|i| i["fingerprint"] == fingerprint.as_str())
            .cloned()
    });
    let out = c.cli_ok(&["autopilot", "approvals"]);
    assert!(
        out.contains(&approval.to_string()) && out.contains("asked"),
        "{out}"
    );

    // Nobody answers: reminded, paged, then the safe default.
    advance(&c, 121_000);
    wait(&c, "a reminder", || {
        (approval_state(&c, approval) == "reminded").then_some(())
    });
    advance(&c, 180_000);
    wait(&c, "a page", || {
        (approval_state(&c, approval) == "paged").then_some(())
    });
    // The page reaches the incident's timeline through the incident
    // controller, a moment after the approval says paged.
    wait(&c, "the page on the incident's timeline", || {
        let (_, v) = c.call(
            1,
            "GET",
            &format!("/api/v1/incidents/{}", incident["id"]),
            None,
        );
        v.to_string().contains("paging").then_some(())
    });
    advance(&c, 600_000);
    wait(&c, "the approval expired", || {
        (approval_state(&c, approval) == "expired").then_some(())
    });
    wait(&c, "node-2 cordoned, the safe default", || {
        (schedule(&c, "node-2") == "cordoned").then_some(())
    });
    let err = c.cli_err(&["autopilot", "approve", &approval.to_string()]);
    assert!(err.contains("expired"), "{err}");
    // Only one question was asked while it waited.
    let asked_again = decisions(&c)
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["place"] == "node node-2" && d["outcome"] == "proposed")
        .count();
    assert_eq!(asked_again, 1, "{:#}", decisions(&c));

    // The cordon is undone (after the limits' own minute); at once the
    // drain is refused by the cool-down and the incident opens instead.
    advance(&c, 61_000);
    let last = decisions(&c)[0]["id"].as_u64().unwrap();
    let out = c.cli_ok(&["autopilot", "undo", &approval.to_string()]);
    assert!(out.contains("uncordon node=node-2"), "{out}");
    assert!(schedule(&c, "node-2").is_null());
    let cooled = wait(&c, "a decision held by the cool-down", || {
        decision_about(&c, "node node-2", last, |_| true)
    });
    let v = explained(&c, id(&cooled));
    let considered = &v["decision"]["considered"];
    assert_eq!(considered[0]["kind"], "drain", "{v}");
    assert_eq!(considered[0]["note"], "refused by cooldown", "{v}");
    assert_eq!(cooled["outcome"], "acted", "{v:#}");
    assert!(
        cooled["action"].as_str().unwrap().contains("open incident"),
        "{cooled}"
    );
    advance(&c, 301_000);
    let asked = wait(&c, "the drain asked again", || {
        decision_about(&c, "node node-2", id(&cooled), |d| {
            d["outcome"] == "proposed"
        })
    });
    // Approved from the dashboard's Decisions section by an admin whose
    // login passed TOTP; the page shows the state change live.
    let browser = approve_on_the_page(&c, id(&asked));
    wait(&c, "node-2 drained after the approval", || {
        (schedule(&c, "node-2") == "drained").then_some(())
    });
    browser.wait_for(
        &format!(
            "const d = document.querySelector('#decisions .decision[data-id=\"{}\"]'); return d ? d.closest('tr').innerText : ''",
            id(&asked)
        ),
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("approved by user:ada") && t.contains("done"))
        },
        "the decision approved by ada and its drain done, on the page",
    );
    drop(browser);
    let err = c.cli_err(&["autopilot", "reject", &id(&asked).to_string()]);
    assert!(err.contains("already approved"), "{err}");

    // The kill switch stops everything at once.
    let out = c.cli_ok(&["autopilot", "pause"]);
    assert!(out.contains("paused"), "{out}");
    advance(&c, 61_000);
    let err = c.cli_err(&["autopilot", "undo", &id(&asked).to_string()]);
    assert!(err.contains("kill_switch"), "{err}");
    assert_eq!(schedule(&c, "node-2"), "drained");
    c.cli_ok(&["autopilot", "resume"]);
    let last = decisions(&c)[0]["id"].as_u64().unwrap();
    c.cli_ok(&["autopilot", "undo", &id(&asked).to_string()]);
    assert!(schedule(&c, "node-2").is_null());
    // The uncordoned node is decided at once (the cool-down holds it).
    wait(&c, "the decision after the undo", || {
        decision_about(&c, "node node-2", last, |_| true)
    });
    c.cli_ok(&["autopilot", "pause"]);
    let last = decisions(&c)[0]["id"].as_u64().unwrap();
    advance(&c, 301_000);
    let refused = wait(&c, "a decision refused by the kill switch", || {
        decision_about(&c, "node node-2", last, |_| true)
    });
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["why"], "refused by kill_switch", "{refused}");
    assert!(schedule(&c, "node-2").is_null(), "nothing applied");

    // A region lost, failed over and back on real processes: node 4
    // joins in its own region `far` (node 2 back first, so that the
    // store keeps its quorum when node 4 dies), then dies. The failover
    // waits for a person; approved, the loop writes the failover record
    // the existing machinery reads; undone, the region is given back.
    c.cli_ok(&["autopilot", "resume"]);
    c.restart(2);
    let last = decisions(&c)[0]["id"].as_u64().unwrap();
    c.join_node_with(4, &["--region", "far"]);
    c.wait_for(
        |s| members(s).len() == 4 && s["leader"] == 1,
        "node 4 a member, node 1 leading",
    );
    c.kill(4);
    let asked = wait(&c, "the failover of region far asked", || {
        decision_about(&c, "region far", last, |d| d["outcome"] == "proposed")
    });
    assert!(
        asked["action"]
            .as_str()
            .unwrap()
            .contains("fail region far over to local"),
        "{asked}"
    );
    assert!(
        asked["why"]
            .as_str()
            .unwrap()
            .contains("always approved by a person"),
        "{asked}"
    );
    let out = c.cli_ok(&["autopilot", "approve", &id(&asked).to_string()]);
    assert!(out.contains("approved"), "{out}");
    let failover = |c: &Cluster| -> Option<Value> {
        let (status, v) = c.call(1, "GET", "/api/v1/failovers", None);
        assert_eq!(status, 200, "{v}");
        v["failovers"]
            .as_array()?
            .iter()
            .find(|f| f["region"] == "far")
            .cloned()
    };
    let f = wait(&c, "region far failed over", || {
        failover(&c).filter(|f| f["recovered_ms"].is_null())
    });
    assert_eq!(f["targets"][0][0], "local", "{f}");
    wait(&c, "the failover applied", || {
        let e = &explained(&c, id(&asked))["applied"][0];
        (e["state"] == "done").then_some(())
    });
    advance(&c, 61_000);
    let out = c.cli_ok(&["autopilot", "undo", &id(&asked).to_string()]);
    assert!(out.contains("failback"), "{out}");
    wait(&c, "region far given back", || {
        failover(&c).filter(|f| f["recovered_ms"].is_u64())
    });

    // Scale and rollback on real processes. Their troubles come from
    // detectors that need an hour of signal, so the test hands them to the
    // loop through the test clock (`troubles`), as `sense` would make
    // them; the decision, the guardrails, the approval, the commands and
    // the undo are the product's. App `shop`: version 1, then version 2,
    // deployed whole with 10 replicas. The same module deployed again with
    // the same limits is no new version, so version 2 differs in its timeout.
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wagi/hello.wat");
    for timeout in ["5s", "6s"] {
        c.cli_ok(&[
            "deploy",
            wat,
            "--name",
            "shop",
            "--replicas",
            "10",
            "--timeout",
            timeout,
        ]);
    }
    let shop = |c: &Cluster| -> Value {
        let (status, v) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop", None);
        assert_eq!(status, 200, "{v}");
        v["deployment"].clone()
    };
    assert_eq!(shop(&c)["version"], 2, "{}", shop(&c));
    let hand = |c: &Cluster, class: &str, place: Value| {
        let trouble = json!({
            "source": "handed by tests/act.rs",
            "class": class,
            "place": place,
            "basis": "observed",
            "score": 1.0,
            "seen_ms": 0,
            "signal": { "series": "handed", "observed": 1.0, "band_low": null, "band_high": null, "limit": 0.5 },
        });
        let (status, v) = c.call(
            1,
            "POST",
            "/api/v1/test/clock",
            Some(json!({ "advance_ms": 1000, "troubles": [trouble] })),
        );
        assert_eq!(status, 200, "{v}");
    };
    let place = "version default/shop@2";
    let last = decisions(&c)[0]["id"].as_u64().unwrap();
    hand(
        &c,
        "version_errors",
        json!({"version": {"tenant": "default", "app": "shop", "version": 2}}),
    );
    // Version 2 was deployed whole (it passed): a person decides.
    let asked = wait(&c, "the rollback of shop@2 asked", || {
        decision_about(&c, place, last, |d| d["outcome"] == "proposed")
    });
    assert!(
        asked["action"]
            .as_str()
            .unwrap()
            .contains("roll default/shop back from 2 to 1"),
        "{asked}"
    );
    c.cli_ok(&["autopilot", "approve", &id(&asked).to_string()]);
    wait(&c, "shop back on version 1", || {
        (shop(&c)["version"] == 1).then_some(())
    });
    advance(&c, 61_000);
    let out = c.cli_ok(&["autopilot", "undo", &id(&asked).to_string()]);
    assert!(out.contains("roll_forward"), "{out}");
    wait(&c, "shop forward on version 2 again", || {
        (shop(&c)["version"] == 2).then_some(())
    });

    // Load past capacity: scaled out by one (10 % more cost: within the
    // guardrail), then scaled back in by the undo.
    advance(&c, 301_000);
    let last = decisions(&c)[0]["id"].as_u64().unwrap();
    hand(
        &c,
        "load_past_capacity",
        json!({"app": {"tenant": "default", "app": "shop"}}),
    );
    let scaled = wait(&c, "shop scaled out", || {
        decision_about(&c, "app default/shop", last, |d| d["outcome"] == "acted")
    });
    assert!(
        scaled["action"]
            .as_str()
            .unwrap()
            .contains("scale default/shop from 10 to 11"),
        "{scaled}"
    );
    wait(&c, "11 replicas of shop", || {
        (shop(&c)["regions"]["local"] == 11).then_some(())
    });
    advance(&c, 61_000);
    c.cli_ok(&["autopilot", "undo", &id(&scaled).to_string()]);
    wait(&c, "10 replicas of shop again", || {
        (shop(&c)["regions"]["local"] == 10).then_some(())
    });
    // A trouble that does not read is refused, naming it.
    let (status, v) = c.call(
        1,
        "POST",
        "/api/v1/test/clock",
        Some(json!({ "advance_ms": 0, "troubles": [{"class": "meltdown"}] })),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["field"], "troubles", "{v}");

    // Every decision replays from its stored evidence to the same choice.
    assert!(act_api::assert_all_replay(&c) >= 7);

    // A tenant's log holds only its apps' decisions: shop's two, none of
    // the nodes' or the region's.
    let (status, v) = c.call(
        1,
        "GET",
        "/api/v1/tenants/default/autopilot/decisions",
        None,
    );
    assert_eq!(status, 200, "{v}");
    let places: Vec<&str> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["place"].as_str())
        .collect();
    assert_eq!(
        places,
        ["app default/shop", "version default/shop@2"],
        "{v}"
    );
}
