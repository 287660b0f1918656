//! wasi:http components through the product, on a real `dwcp up` node
//! (127.0.201.1): `dwcp deploy` of a component (`examples/http/hello.wat`,
//! detected from its bytes) is served by the gateway in a fresh instance
//! per request; rolled out to the same app as a WAGI module
//! (`examples/wagi/hello.wat`), both versions answer alike; a component
//! that spins (`examples/http/spin.wat`) is stopped at its deadline and its
//! circuit breaker takes it out of the split, as a WAGI version's would.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{
    Cluster, DEADLINE, added_version, get_answer, get_keyed, held_at, metrics, wait_gateway,
    wait_version,
};

fn example(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(rel);
    path.to_str().unwrap().to_string()
}

#[test]
fn a_wasi_http_component_is_deployed_rolled_out_and_broken_like_a_wagi_app() {
    let (c, gateway) = Cluster::found_serving(201);

    // Deployed from its bytes (no flag says it is a component) and served.
    let out = c.cli_ok(&["deploy", &example("http/hello.wat"), "--name", "web"]);
    assert!(out.contains("deployed default/web version 1"), "{out}");
    let answer = wait_gateway(&gateway, "/web/x?y=1", |s, _| s != 404, "/web to be routed");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "Hello from DWCP!\n");
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    for _ in 0..3 {
        // A fresh instance every time: it has seen one request, this one.
        let a = get_answer(&gateway, "/web").unwrap();
        assert_eq!(a.header("x-requests-seen"), Some("1"), "{a:?}");
    }

    // Rolled out to the same app as a WAGI module: both answer alike.
    let out = c.cli_ok(&[
        "deploy",
        &example("wagi/hello.wat"),
        "--name",
        "web",
        "--version-only",
    ]);
    let wagi = added_version(&out);
    c.cli_ok(&[
        "rollout",
        "start",
        "web",
        "--to",
        &wagi,
        "--plan",
        &held_at(&c, 50),
    ]);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while !seen.contains(&wagi) || seen.len() < 2 {
        assert!(Instant::now() < deadline, "only versions {seen:?} answered");
        for i in 0..20 {
            let a = get_keyed(&gateway, "/web/", &format!("user-{i}"));
            assert_eq!(
                (a.status, a.text().as_str()),
                (200, "Hello from DWCP!\n"),
                "{a:?}"
            );
            assert_eq!(a.header("content-type"), Some("text/plain"), "{a:?}");
            seen.extend(a.header("x-dwcp-version").map(String::from));
        }
    }
    c.cli_ok(&["rollout", "promote", "web"]);
    let wagi_number: u64 = wagi.parse().unwrap();
    wait_version(&gateway, "/web/", wagi_number, 10);

    // A component that spins: stopped at its 300 ms deadline (504), and
    // after five failures in a row its breaker sends its share to the
    // WAGI version.
    let out = c.cli_ok(&[
        "deploy",
        &example("http/spin.wat"),
        "--name",
        "web",
        "--timeout",
        "300ms",
        "--version-only",
    ]);
    let spinning = added_version(&out);
    c.cli_ok(&[
        "rollout",
        "start",
        "web",
        "--to",
        &spinning,
        "--plan",
        &held_at(&c, 50),
    ]);
    let deadline = Instant::now() + DEADLINE;
    let mut i = 0;
    let first_failure = loop {
        let a = get_keyed(&gateway, "/web/", &format!("key-{i}"));
        i += 1;
        if a.header("x-dwcp-version") == Some(spinning.as_str()) {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "version {spinning} never took traffic"
        );
    };
    assert_eq!(first_failure.status, 504, "{}", first_failure.text());
    assert!(
        first_failure.text().contains("300 ms"),
        "{}",
        first_failure.text()
    );
    // A trial after the 5 s cool-down may fail once more on a slow machine.
    let mut failures = 1;
    for j in 0..40 {
        let a = get_keyed(&gateway, "/web/", &format!("other-{j}"));
        match a.status {
            504 => failures += 1,
            200 => assert_ne!(a.header("x-dwcp-version"), Some(spinning.as_str()), "{a:?}"),
            s => panic!("unexpected {s}: {}", a.text()),
        }
    }
    assert!(
        failures <= 7,
        "{failures} failures: the breaker did not open"
    );
    let open = format!(r#"dwcp_circuit_open{{tenant="default",app="web",version="{spinning}"}} 1"#);
    let text = metrics(&c);
    assert!(text.contains(&open), "{text}");
    let out = c.cli_ok(&["rollout", "abort", "web", "--reason", "it spins"]);
    assert!(
        out.contains(&format!("all traffic is back on version {wagi}")),
        "{out}"
    );
    // The node and its other apps carry on.
    let hello = get_answer(&gateway, "/hello").unwrap();
    assert_eq!(
        (hello.status, hello.text().as_str()),
        (200, "Hello from DWCP!\n")
    );
}
