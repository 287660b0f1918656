//! Guest against operator, in a real browser: headless Chromium signs in
//! to the dashboard of a real `dwcp up` node (127.0.72.1:7070), then loads
//! a guest page from the gateway on the same host (127.0.72.1:8080) — the
//! worst case, since a browser sends a host's cookies to all its ports —
//! that prints its whole CGI environment. The browser sends the host's
//! cookies there (an ordinary one arrives), but neither the session cookie
//! nor a DWCP token a client sends reaches the guest.
//!
//! It also shows what docs/security.md says of plain-HTTP loopback:
//! Chromium keeps a `__Host-` (so `Secure`) cookie set by
//! `http://127.0.72.1`, a loopback address being a secure context.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{Cluster, DEADLINE, request, wait_gateway};
use serde_json::{Value, json};
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery staple";
const SESSION_COOKIE: &str = "__Host-dwcp_session";

#[test]
fn a_guest_sees_no_credential_after_a_browser_signed_in() {
    let (c, gateway) = Cluster::found_serving(72);
    let api = c.nodes[&1].api.clone();
    let env_app = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/build/wagi-env.wasm"
    );
    c.cli_ok(&["deploy", env_app, "--name", "env", "--route", "/env"]);
    wait_gateway(
        &gateway,
        "/env",
        |s, b| s == 200 && b.contains("REQUEST_METHOD=GET"),
        "the environment app",
    );
    let (status, body) = c.call(
        1,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "ada", "password": PASSWORD, "roles": {"*": "admin"}})),
    );
    assert_eq!(status, 201, "{body}");

    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::start(dir.path());
    browser.goto(&format!("http://{api}/login"));
    browser.type_into("#user", "ada");
    browser.type_into("#password", PASSWORD);
    browser.click("#signin");
    browser.wait_for(
        "return location.pathname + ' ' + (document.getElementById('req-rate') !== null)",
        |v| v == &json!("/ true"),
        "the overview after signing in",
    );
    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == SESSION_COOKIE)
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    assert_eq!(
        (
            &session["secure"],
            &session["httpOnly"],
            &session["path"],
            &session["sameSite"]
        ),
        (&json!(true), &json!(true), &json!("/"), &json!("Strict")),
        "{session}"
    );
    let token = session["value"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64, "{session}");
    // An ordinary cookie of the host, which the guest may see.
    browser.add_cookie("theme", "dark");

    // The guest's page, in the same browser, on the same host.
    browser.goto(&format!("http://{gateway}/env"));
    let page = browser
        .script("return document.body.innerText")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(page.contains("REQUEST_METHOD=GET"), "{page}");
    assert!(
        page.contains("HTTP_COOKIE=theme=dark"),
        "the browser sends the host's cookies to the gateway: {page}"
    );
    assert!(
        !page.contains(&token),
        "the session token reached the guest: {page}"
    );
    assert!(!page.contains("dwcp_session"), "{page}");

    // A client that sends its token and the session to the gateway.
    let csrf = state::digest_of(format!("dwcp csrf v1:{token}").as_bytes());
    let bearer = format!("Bearer {}", c.admin);
    let cookie = format!("{SESSION_COOKIE}={token}; theme=dark; dwcp_session={token}");
    let a = request(
        DEADLINE,
        &gateway,
        "GET",
        "/env",
        &[
            ("Host", &gateway),
            ("Authorization", &bearer),
            ("Proxy-Authorization", &bearer),
            ("Cookie", &cookie),
            ("x-csrf-token", &csrf),
        ],
        None,
    )
    .unwrap();
    let env = a.text();
    assert_eq!(a.status, 200, "{env}");
    assert!(env.contains("HTTP_COOKIE=theme=dark\n"), "{env}");
    for secret in [c.admin.as_str(), token.as_str(), csrf.as_str()] {
        assert!(
            !env.contains(secret),
            "a credential reached the guest: {env}"
        );
    }
    assert!(!env.contains("HTTP_AUTHORIZATION"), "{env}");

    // The session still works on the dashboard (nothing was consumed).
    browser.goto(&format!("http://{api}/"));
    browser.wait_for(
        "return location.pathname",
        |v: &Value| v == &json!("/"),
        "the overview, still signed in",
    );
}
