//! Tenant against tenant, through a real node (127.0.71.1): an operator
//! of tenant `evil` (a user whose only role is there) cannot place an app
//! where it would take another tenant's traffic — the attack of issue 16,
//! `/hello` on host 127.0.0.1 or `/hello/login` next to the example app's
//! `/hello` — and the victim's requests still reach the victim.

mod common;

use std::time::Duration;

use common::{Answer, Cluster, as_user, request};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("(none)")
}

/// `GET path` on the gateway with `Host: host`.
fn get_as_host(gateway: &str, host: &str, path: &str) -> Answer {
    request(
        Duration::from_secs(30),
        gateway,
        "GET",
        path,
        &[("Host", host)],
        None,
    )
    .unwrap()
}

#[test]
fn another_tenant_cannot_take_the_example_app_s_traffic() {
    let (c, gateway) = Cluster::found_serving(71);
    let api = c.nodes[&1].api.clone();
    let ip = c.ip(1);
    let (status, body) = c.call(1, "POST", "/api/v1/tenants", Some(json!({"name": "evil"})));
    assert_eq!(status, 201, "{body}");
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "eve", "password": PASSWORD, "roles": {"evil": "operator"}})),
    );
    assert_eq!(status, 201, "{body}");
    let eve = common::login(&api, "eve", PASSWORD, None);
    let before = c.revision();

    // The attack: as evil's operator, then even with the admin token (the
    // rule is the state machine's, not the caller's).
    let attacks = [
        json!({"name": "steal", "route": "/hello", "host": ip}),
        json!({"name": "steal", "route": "/hello/login", "host": "evil.example.com"}),
        json!({"name": "steal", "route": "/", "host": "evil.example.com"}),
    ];
    for attack in &attacks {
        let (status, v) = as_user(
            &api,
            &eve,
            "POST",
            "/api/v1/tenants/evil/apps",
            attack.clone(),
        );
        // An IP address is no host of evil's own (400, the caller may not
        // take it); a route under another tenant's is the state's refusal
        // (409).
        let shared = attack["host"] == json!(ip);
        let want = if shared {
            (400, "host")
        } else {
            (409, "route")
        };
        assert_eq!((status, field(&v)), want, "{attack}: {v}");
    }
    for attack in [
        json!({"name": "steal", "route": "/hello", "host": ip}),
        json!({"name": "steal", "route": "/hello/login"}),
    ] {
        let (status, v) = c.call(1, "POST", "/api/v1/tenants/evil/apps", Some(attack.clone()));
        assert_eq!((status, field(&v)), (409, "route"), "{attack}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("tenant default has route /hello"),
            "{v}"
        );
    }
    // A scoped operator may not take every host, an IP or localhost even
    // for a route of their own.
    for host in [Value::Null, json!(ip), json!("localhost")] {
        let (status, v) = as_user(
            &api,
            &eve,
            "POST",
            "/api/v1/tenants/evil/apps",
            json!({"name": "own", "route": "/evil", "host": host}),
        );
        assert_eq!((status, field(&v)), (400, "host"), "{host}: {v}");
    }
    assert_eq!(c.revision(), before, "nothing was written");

    // On a host of its own, evil is served.
    let (status, v) = as_user(
        &api,
        &eve,
        "POST",
        "/api/v1/tenants/evil/apps",
        json!({"name": "own", "route": "/evil", "host": "evil.example.com"}),
    );
    assert_eq!(status, 201, "{v}");
    // Another tenant may not take that host.
    let (status, body) = c.call(1, "POST", "/api/v1/tenants", Some(json!({"name": "third"})));
    assert_eq!(status, 201, "{body}");
    let (status, v) = c.call(
        1,
        "POST",
        "/api/v1/tenants/third/apps",
        Some(json!({"name": "x", "route": "/x", "host": "evil.example.com"})),
    );
    assert_eq!((status, field(&v)), (409, "host"), "{v}");

    // The victim's traffic reaches the victim, by the IP and by any name
    // no tenant claimed.
    for (host, path) in [
        (ip.as_str(), "/hello"),
        (ip.as_str(), "/hello/login"),
        ("shop.example.org", "/hello/login"),
    ] {
        let a = get_as_host(&gateway, host, path);
        assert_eq!(
            (a.status, a.text().as_str()),
            (200, "Hello from DWCP!\n"),
            "{host}{path}"
        );
    }
    // evil's host is evil's alone: the example app (another tenant's, on
    // every host) does not answer on its origin.
    let a = get_as_host(&gateway, "evil.example.com", "/hello");
    assert_eq!(a.status, 404, "{}", a.text());
    let (status, v) = c.call(1, "GET", "/api/v1/route-conflicts", None);
    assert_eq!((status, v), (200, json!({"conflicts": []})));
}

/// `dwcp tenant list|show|quota get|quota set` on a real node (block
/// 173): the quotas given change and the others keep their value, a
/// value out of range is refused naming the flag and changes nothing, a
/// tenant that does not exist is named, and `-o json` prints the stored
/// record.
#[test]
fn tenant_commands_list_show_and_set_quotas() {
    let c = Cluster::found(173);
    let (status, body) = c.call(1, "POST", "/api/v1/tenants", Some(json!({"name": "acme"})));
    assert_eq!(status, 201, "{body}");
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/tenants/acme/apps",
        Some(json!({"name": "shop", "route": "/shop"})),
    );
    assert_eq!(status, 201, "{body}");

    let list = c.cli_ok(&["tenant", "list"]);
    assert!(list.starts_with("TENANT"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("acme ") && l.contains("4GiB")),
        "{list}"
    );
    let shown = c.cli_ok(&["tenant", "show", "acme"]);
    assert!(
        shown.contains("apps: 1 of at most 100") && shown.contains("/shop"),
        "{shown}"
    );

    let set: Value = serde_json::from_str(&c.cli_ok(&[
        "-o",
        "json",
        "tenant",
        "quota",
        "set",
        "acme",
        "--max-apps",
        "5",
        "--max-memory",
        "256MiB",
        "--max-timeout",
        "30s",
    ]))
    .unwrap();
    assert_eq!(set["name"], "acme", "{set}");
    let q: Value =
        serde_json::from_str(&c.cli_ok(&["tenant", "quota", "get", "acme", "--json"])).unwrap();
    assert_eq!(q, set["quotas"]);
    assert_eq!(
        (&q["max_apps"], &q["max_memory_bytes"], &q["max_timeout_ms"]),
        (&json!(5), &json!(256 << 20), &json!(30_000))
    );
    assert_eq!(q["max_replicas"], 1000, "kept: {q}");
    assert_eq!(q["max_body_bytes"], 64 << 20, "kept: {q}");
    let text = c.cli_ok(&["tenant", "quota", "get", "acme"]);
    assert!(text.contains("max-memory       256MiB"), "{text}");

    // Refused whole, naming the flag; nothing changes.
    let before = c.revision();
    let err = c.cli_err(&["tenant", "quota", "set", "acme", "--max-memory", "8GiB"]);
    assert!(err.contains("--max-memory"), "{err}");
    let err = c.cli_err(&["tenant", "quota", "set", "acme"]);
    assert!(err.contains("at least one quota"), "{err}");
    let err = c.cli_err(&["tenant", "quota", "set", "nobody", "--max-apps", "1"]);
    assert!(err.contains("tenant `nobody` does not exist"), "{err}");
    assert_eq!(c.revision(), before, "a refused quota change wrote");
    // The state machine's own check still holds: 5 apps, and one is there.
    let err = c.cli_err(&["tenant", "quota", "set", "acme", "--max-apps", "0"]);
    assert!(err.contains("max_apps"), "{err}");
}
