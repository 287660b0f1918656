//! Users on a real node: `dwcp user` makes a user and enrolls them in
//! TOTP, and the user logs in over HTTP with their password and a code
//! computed as an authenticator would (`ops::totp::code_at`), then acts
//! with the session cookie and its CSRF token. Loopback block 127.0.54.x.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Cluster;
use serde_json::{Value, json};

const PASSWORD: &str = "a long enough password";

fn dwcp(c: &Cluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args(args)
        .env("DWCP_API", format!("http://{}", c.nodes[&1].api))
        .env("DWCP_TOKEN", &c.admin)
        .env("DWCP_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the dwcp binary")
}

fn ok(c: &Cluster, args: &[&str]) -> String {
    let out = dwcp(c, args);
    assert!(
        out.status.success(),
        "dwcp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Unix seconds, waiting out the last seconds of a TOTP step so a code
/// computed now is checked within the same step.
fn steady_now() -> u64 {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now % 30 < 27 {
            return now;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One request with optional extra headers; status, headers, JSON body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let value = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_string(), value)
}

#[test]
fn a_user_made_with_the_cli_logs_in_with_a_totp_code() {
    let c = Cluster::found(54);
    let api = c.nodes[&1].api.clone();
    let out = ok(&c, &["user", "create", "ann", "--role", "*=admin"]);
    assert!(out.contains("made user ann"), "{out}");
    let err = dwcp(&c, &["user", "create", "bob", "--role", "acme"]);
    assert!(!err.status.success());
    let list = ok(&c, &["user", "list"]);
    assert!(
        list.contains("ann") && list.contains("*=admin") && list.contains("none"),
        "{list}"
    );

    let out = ok(&c, &["user", "totp", "ann"]);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret in {out}"))
        .trim()
        .to_string();
    assert!(out.contains("otpauth://totp/DWCP:ann?secret="), "{out}");
    let now = steady_now();
    let code = ops::totp::code_at(&secret, now - 30).unwrap();
    let out = ok(&c, &["user", "totp-confirm", "ann", &code]);
    assert!(out.contains("confirmed"), "{out}");
    assert!(ok(&c, &["user", "list"]).contains("confirmed"));

    // Logging in needs the code now; a computed one works once.
    let (status, _, v) = request(
        &api,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({"user": "ann", "password": PASSWORD})),
    );
    assert_eq!((status, v["error"]["field"].as_str()), (401, Some("totp")));
    let now = steady_now();
    let code = ops::totp::code_at(&secret, now).unwrap();
    let login = json!({"user": "ann", "password": PASSWORD, "totp": code});
    let (status, head, v) = request(&api, "POST", "/api/v1/session", &[], Some(login.clone()));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["mfa"], true);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie in {head}"))
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = v["csrf"].as_str().unwrap().to_string();
    let (status, _, v) = request(&api, "POST", "/api/v1/session", &[], Some(login));
    assert_eq!(status, 401);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // The session acts as an admin that passed TOTP.
    let (status, _, v) = request(&api, "GET", "/api/v1/session", &[("Cookie", &cookie)], None);
    assert_eq!((status, v["user"].as_str()), (200, Some("ann")));
    let (status, _, _) = request(
        &api,
        "POST",
        "/api/v1/cluster/join-tokens",
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(status, 403, "no CSRF token");
    let (status, _, v) = request(
        &api,
        "POST",
        "/api/v1/cluster/join-tokens",
        &[("Cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    );
    assert_eq!(status, 201, "{v}");
    let audit = ok(&c, &["audit"]);
    assert!(audit.contains("user:ann"), "{audit}");

    ok(&c, &["user", "delete", "ann"]);
    let (status, _, _) = request(&api, "GET", "/api/v1/session", &[("Cookie", &cookie)], None);
    assert_eq!(status, 401, "the user's sessions ended with them");
}
