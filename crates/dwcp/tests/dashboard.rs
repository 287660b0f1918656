//! The dashboard in a real browser: headless Chromium (Debian's, driven
//! through chromedriver; `scripts/test.sh` installs both) signs in to a
//! real `dwcp up` node (127.0.55.1) with a password and a TOTP code, sees
//! the example app's request rate rise once load is sent to the gateway,
//! and saves a screenshot as the test's artefact
//! (`target/tmp/dashboard.png`).

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Cluster, get_answer};
use serde_json::{Value, json};
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery staple";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn signs_in_with_totp_and_sees_the_request_rate_rise() {
    let (c, gateway) = Cluster::found_serving(55);
    let api = c.nodes[&1].api.clone();

    // A viewer with a TOTP second factor, made by the admin token.
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "vera", "password": PASSWORD, "roles": {"*": "viewer"}})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, enrolled) = c.call(1, "POST", "/api/v1/users/vera/totp", Some(json!({})));
    assert_eq!(status, 201, "{enrolled}");
    let secret = enrolled["secret"].as_str().unwrap().to_string();
    let now = unix_now();
    let code = ops::totp::code_at(&secret, now).unwrap();
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users/vera/totp/confirm",
        Some(json!({ "code": code })),
    );
    assert!((200..300).contains(&status), "{status} {body}");

    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::start(dir.path());
    let base = format!("http://{api}");
    browser.goto(&format!("{base}/"));
    assert_eq!(
        browser.url(),
        format!("{base}/login"),
        "without a session the dashboard sends the browser to sign in"
    );

    // The code confirming the enrolment may not be used again; the next
    // step's code is within the allowed clock skew.
    let login_code = ops::totp::code_at(&secret, now + 30).unwrap();
    browser.type_into("#user", "vera");
    browser.type_into("#password", PASSWORD);
    browser.type_into("#totp", &login_code);
    browser.click("#signin");
    browser.wait_for(
        "return location.pathname + ' ' + (document.getElementById('req-rate') !== null)",
        |v| v == &json!("/ true"),
        "the overview after signing in",
    );
    // The live stream connected and carries frames.
    browser.wait_for(
        "return document.getElementById('live').className",
        |v| v == &json!("live on"),
        "the live indicator",
    );
    let rate = |b: &Browser| -> f64 {
        b.script("return document.getElementById('req-rate').dataset.value")
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1.0)
    };
    let before = rate(&browser);
    assert!(before >= 0.0, "the request rate tile shows a number");

    // Load on the example app until the page shows it.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, gateway) = (stop.clone(), gateway.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if get_answer(&gateway, "/hello").is_ok_and(|a| a.status == 200) {
                    sent += 1;
                }
            }
            sent
        })
    };
    let shown = browser.wait_for(
        "return document.getElementById('req-rate').dataset.value",
        |v: &Value| {
            v.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .is_some_and(|r| r > before.max(1.0))
        },
        "the request rate to rise on the overview",
    );
    // The chart has drawn the rise too.
    browser.wait_for(
        "return document.querySelectorAll('#charts svg path.line').length",
        |v| v.as_u64().unwrap_or(0) >= 1,
        "a chart line",
    );
    let png = browser.screenshot();
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().unwrap();
    assert!(sent > 0);
    assert_eq!(&png[1..4], b"PNG", "a PNG screenshot");
    let artefact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&artefact, &png).unwrap();
    eprintln!(
        "request rate shown: {shown}; screenshot: {} ({} bytes)",
        artefact.display(),
        png.len()
    );

    // The apps page lists the app with its own rate, and other pages load.
    browser.goto(&format!("{base}/apps"));
    browser.wait_for(
        "return document.querySelector('.app-rate[data-app=\"default/hello\"]') !== null",
        |v| v == &json!(true),
        "the example app on the apps page",
    );
    for page in [
        "rollouts",
        "nodes",
        "incidents",
        "slos",
        "capacity",
        "costs",
        "audit",
        "certification",
    ] {
        browser.goto(&format!("{base}/{page}"));
        browser.wait_for(
            "return document.body.dataset.page",
            |v| v == &json!(page),
            page,
        );
    }
    // The Certification page shows the latest recorded report: its score,
    // each criterion's verdict and measurement, and the sign-offs missing.
    let report = certify::Report::new(
        "http://dashboard-test",
        false,
        unix_now() * 1000,
        1,
        "0.1.0",
        &[(
            certify::Criterion {
                id: "operations.health".into(),
                category: certify::Category::Operations,
                description: "Members whose health does not answer 200".into(),
                threshold: certify::Threshold::at_most(0.0, "nodes"),
                remediation: "Start the node.".into(),
                controls: vec![],
            },
            certify::Measurement::of(1.0, "2 of 3 members answered 200"),
        )],
        &[],
    );
    // A cluster records only a report of itself.
    let (_, cluster) = c.call(1, "GET", "/api/v1/cluster", None);
    let report = report.for_cluster(cluster["cluster_id"].as_str().unwrap());
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/certify/reports",
        Some(serde_json::to_value(&report).unwrap()),
    );
    assert_eq!(status, 201, "{body}");
    // The example app marked production (issue 17's per-app gate): the
    // page shows the gate closed for it, and why.
    let (status, body) = c.call(
        1,
        "PUT",
        "/api/v1/certify/policy",
        Some(json!({"approvers": ["cto"], "max_report_age_ms": 3_600_000,
                     "production_apps": ["default/hello"]})),
    );
    assert_eq!(status, 204, "{body}");
    browser.goto(&format!("{base}/certification"));
    let shown = browser.wait_for(
        "return document.getElementById('certify-criteria').innerText",
        |v| {
            v.as_str().is_some_and(|t| {
                t.contains("operations.health") && t.contains("fail") && t.contains("1 nodes")
            })
        },
        "the report's criterion on the Certification page",
    );
    let summary = browser.script("return document.getElementById('certify-summary').innerText");
    let summary = summary.as_str().unwrap_or_default();
    assert!(
        summary.contains(&report.sha256) && summary.contains("missing") && summary.contains("cto"),
        "{summary} / {shown}"
    );
    let gate = browser.wait_for(
        "return document.getElementById('certify-gate').innerText",
        |v| {
            v.as_str().is_some_and(|t| {
                t.contains("default/hello")
                    && t.contains("closed")
                    && t.contains("operations.health")
            })
        },
        "the go-live gate on the Certification page",
    );
    assert!(
        gate.as_str().is_some_and(|t| t.contains("not_certified")),
        "{gate}"
    );
    // Signing out ends the session: the dashboard asks to sign in again.
    browser.click("#logout");
    browser.wait_for(
        "return location.pathname",
        |v| v == &json!("/login"),
        "the sign-in page after signing out",
    );
    browser.goto(&format!("{base}/"));
    assert_eq!(browser.url(), format!("{base}/login"));
}
