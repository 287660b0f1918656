//! The measurements: each probe talks to the live cluster through its
//! public doors (the API, the gateway, the peer port, and — for a scratch
//! cluster — its data directories) and returns a [`Measurement`] per
//! criterion id. A probe that cannot measure says why; the verdict is
//! `certify::judge`'s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use certify::Measurement;
use hyper::Method;
use serde_json::{Value, json};

use super::http::{self, Conn};
use super::{records, routes};
use crate::bench::report::{histogram, record};

/// What the probes reach.
pub struct Target {
    /// The API the run talks to.
    pub api: SocketAddr,
    /// Every member's API.
    pub apis: Vec<SocketAddr>,
    pub admin: String,
    pub gateway: Option<SocketAddr>,
    /// Every member's peer port.
    pub peers: Vec<SocketAddr>,
    /// The nodes' data directories, when this machine holds them.
    pub data_dirs: Vec<PathBuf>,
    pub quick: bool,
    /// Names of what this run creates (unique per run).
    pub run: String,
}

/// Measurements by criterion id.
pub type Found = BTreeMap<&'static str, Measurement>;

fn progress(what: &str) {
    crate::cli::progress::line(format!("[certify] {what}"));
}

/// p50 and p99 of samples in ms, via hdrhistogram.
fn percentiles(samples_ms: &[f64]) -> (f64, f64) {
    let mut h = histogram();
    for s in samples_ms {
        record(&mut h, Duration::from_secs_f64(s / 1e3));
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e9;
    (ms(0.5), ms(0.99))
}

impl Target {
    async fn conn(&self) -> Result<Conn> {
        Conn::open(self.api).await
    }

    /// An admin request that must succeed; its JSON.
    async fn admin_json(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let a = http::once(
            self.api,
            &method,
            path,
            Some(&self.admin),
            body.as_ref().and_then(http::json),
        )
        .await?;
        if !(200..300).contains(&a.status) {
            return Err(anyhow!(
                "{method} {path} answered {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            ));
        }
        if a.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&a.body).with_context(|| format!("{method} {path}: not JSON"))
    }

    /// Forgets this address's failed authentications (the API locks out an
    /// address after 10 in a minute; an authenticated request resets it).
    async fn reset_lockout(&self) {
        let _ = http::once(
            self.api,
            &Method::GET,
            "/api/v1/cluster",
            Some(&self.admin),
            None,
        )
        .await;
    }
}

/// Latency and throughput of the API and the log.
pub async fn api_latency(t: &Target, found: &mut Found) -> Result<()> {
    progress("API latency: commits, reads, lists");
    let n = if t.quick { 100 } else { 500 };
    let mut conn = t.conn().await?;
    let (mut commits, mut reads, mut lists) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let path = format!("/api/v1/registers/certify-{}-{i}", t.run);
        let body = http::json(&json!({ "value": format!("v{i}") }));
        let (a, ms) = conn
            .timed(&Method::PUT, &path, Some(&t.admin), body)
            .await?;
        anyhow::ensure!(a.status == 200, "PUT {path} answered {}", a.status);
        commits.push(ms);
        let (a, ms) = conn
            .timed(&Method::GET, &path, Some(&t.admin), None)
            .await?;
        anyhow::ensure!(a.status == 200, "GET {path} answered {}", a.status);
        reads.push(ms);
        let (a, ms) = conn
            .timed(&Method::GET, "/api/v1/apps", Some(&t.admin), None)
            .await?;
        anyhow::ensure!(a.status == 200, "GET /api/v1/apps answered {}", a.status);
        lists.push(ms);
    }
    let detail = |what: &str| format!("{n} sequential {what} on one keep-alive connection");
    let (p50, p99) = percentiles(&commits);
    found.insert(
        "performance.commit.p50",
        Measurement::with_samples(p50, commits.clone(), detail("PUT register")),
    );
    found.insert(
        "performance.commit.p99",
        Measurement::with_samples(p99, commits, detail("PUT register")),
    );
    let (p50, p99) = percentiles(&reads);
    found.insert(
        "performance.read.p50",
        Measurement::with_samples(p50, reads.clone(), detail("GET register")),
    );
    found.insert(
        "performance.read.p99",
        Measurement::with_samples(p99, reads, detail("GET register")),
    );
    let (_, p99) = percentiles(&lists);
    found.insert(
        "performance.api.list_p99",
        Measurement::with_samples(p99, lists, detail("GET /api/v1/apps")),
    );

    progress("write throughput, 16 clients");
    let span = Duration::from_secs(if t.quick { 1 } else { 3 });
    let rate = closed_loop(
        t.api,
        16,
        span,
        |i| {
            (
                Method::PUT,
                format!("/api/v1/registers/certify-{}-load-{}", "x", i % 64),
                http::json(&json!({ "value": i.to_string() })),
            )
        },
        Some(t.admin.clone()),
    )
    .await?;
    found.insert(
        "performance.commit.throughput",
        Measurement::of(rate, format!("16 clients writing for {} s", span.as_secs())),
    );

    progress("API under 32 concurrent clients");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (api, admin) = (t.api, t.admin.clone());
        tasks.spawn(async move {
            let mut conn = Conn::open(api).await?;
            let (mut samples, mut refused) = (Vec::new(), BTreeMap::new());
            for _ in 0..20 {
                let (a, ms) = conn
                    .timed(&Method::GET, "/api/v1/apps", Some(&admin), None)
                    .await?;
                if a.status == 200 {
                    samples.push(ms);
                } else {
                    *refused.entry(a.status).or_insert(0u32) += 1;
                }
            }
            anyhow::Ok((samples, refused))
        });
    }
    let (mut all, mut refused) = (Vec::new(), BTreeMap::new());
    while let Some(done) = tasks.join_next().await {
        let (samples, statuses) = done??;
        all.extend(samples);
        for (status, n) in statuses {
            *refused.entry(status).or_insert(0u32) += n;
        }
    }
    let (_, p99) = percentiles(&all);
    let m = if refused.is_empty() {
        Measurement::with_samples(p99, all, "32 clients x 20 GET /api/v1/apps")
    } else {
        // A refused request has no latency to count: the criterion fails.
        Measurement::unmeasured(format!(
            "32 clients x 20 GET /api/v1/apps: answers other than 200 (status: count) {refused:?}; p99 of the others {p99:.1} ms"
        ))
    };
    found.insert("scalability.api.concurrent_p99", m);
    Ok(())
}

/// Requests per second from `clients` keep-alive connections for `span`.
async fn closed_loop(
    addr: SocketAddr,
    clients: usize,
    span: Duration,
    request: impl Fn(u64) -> (Method, String, Option<(&'static str, Bytes)>)
    + Clone
    + Send
    + Sync
    + 'static,
    token: Option<String>,
) -> Result<f64> {
    let started = Instant::now();
    let until = started + span;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (request, token) = (request.clone(), token.clone());
        tasks.spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut done = 0u64;
            let mut i = c as u64;
            while Instant::now() < until {
                let (method, path, body) = request(i);
                let a = conn.send(&method, &path, token.as_deref(), body).await?;
                anyhow::ensure!(
                    (200..300).contains(&a.status),
                    "{path} answered {}",
                    a.status
                );
                done += 1;
                i += clients as u64;
            }
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The gateway's latency and rate, beside a plain hyper server.
pub async fn gateway(t: &Target, found: &mut Found) -> Result<()> {
    progress("gateway latency and rate (GET /hello)");
    let Some(gw) = t.gateway else {
        for id in [
            "performance.gateway.p50",
            "performance.gateway.p99",
            "performance.gateway.rate",
            "performance.gateway.vs_hyper",
        ] {
            found.insert(
                id,
                Measurement::unmeasured("no node lists a gateway address (GET /api/v1/nodes)"),
            );
        }
        return Ok(());
    };
    let mut conn = Conn::open(gw).await?;
    let n = if t.quick { 100 } else { 500 };
    let mut samples = Vec::new();
    for _ in 0..n {
        let (a, ms) = conn.timed(&Method::GET, "/hello", None, None).await?;
        anyhow::ensure!(
            a.status == 200,
            "GET /hello at the gateway answered {} (is the hello app deployed?)",
            a.status
        );
        samples.push(ms);
    }
    let (p50, p99) = percentiles(&samples);
    let what = format!("{n} sequential GET /hello on one keep-alive connection to {gw}");
    found.insert(
        "performance.gateway.p50",
        Measurement::with_samples(p50, samples.clone(), what.clone()),
    );
    found.insert(
        "performance.gateway.p99",
        Measurement::with_samples(p99, samples, what),
    );
    let span = Duration::from_secs(if t.quick { 1 } else { 3 });
    let hello = |_| (Method::GET, "/hello".to_string(), None);
    let rate = closed_loop(gw, 8, span, hello, None).await?;
    let listener = cluster::serving::listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let floor_addr = listener.local_addr()?;
    let server =
        cluster::serving::serve_plain(listener, |_r| async { crate::bench::gateway::hello() });
    let floor = closed_loop(floor_addr, 8, span, hello, None).await;
    server.abort();
    let floor = floor?;
    found.insert(
        "performance.gateway.rate",
        Measurement::of(rate, format!("8 clients for {} s", span.as_secs())),
    );
    found.insert(
        "performance.gateway.vs_hyper",
        Measurement::of(
            rate / floor,
            format!(
                "gateway {rate:.0} req/s, plain hyper in this process {floor:.0} req/s, same load"
            ),
        ),
    );
    Ok(())
}

/// The example app and the hostile modules, deployed as apps of this run.
pub(super) const HELLO_WAT: &[u8] = include_bytes!("../../../../examples/wagi/hello.wat");
const LOOP_WAT: &[u8] = include_bytes!("../../../../examples/hostile/loop.wat");
/// examples/hostile/memory-bomb.wat's loop as a WAGI program (`_start`).
const MEMORY_BOMB_WAT: &[u8] = b"(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (drop (memory.grow (i32.const 16))) (br $l))))";
const ENV_WAT: &str = include_str!("../../../../examples/env.wat");

/// examples/env.wat made a WAGI program: a `content-type` header first,
/// then every environment variable the guest is given.
fn env_wagi() -> Option<Vec<u8>> {
    let anchor = "(local $end i32) (local $need i32) (local $i i32) (local $s i32) (local $p i32)";
    let data = "(data (i32.const 48) \"\\n\")";
    if !ENV_WAT.contains(anchor) || !ENV_WAT.contains(data) {
        return None;
    }
    let text = ENV_WAT
        .replacen(
            anchor,
            &format!("{anchor}\n    (call $write (i32.const 64) (i32.const 26))"),
            1,
        )
        .replacen(
            data,
            &format!("{data}\n  (data (i32.const 64) \"content-type: text/plain\\0a\\0a\")"),
            1,
        );
    Some(text.into_bytes())
}

/// Uploads `module` and deploys it as app `name` at `/name` with one
/// replica in `region`; the version's config.
pub(super) async fn deploy(
    t: &Target,
    name: &str,
    module: &[u8],
    region: &str,
    config: Value,
) -> Result<()> {
    let a = http::once(
        t.api,
        &Method::POST,
        "/api/v1/blobs",
        Some(&t.admin),
        Some(("application/wasm", Bytes::copy_from_slice(module))),
    )
    .await?;
    anyhow::ensure!(
        a.status == 200 || a.status == 201,
        "uploading {name}: {} {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    let digest = serde_json::from_slice::<Value>(&a.body)?["digest"]
        .as_str()
        .context("no digest")?
        .to_string();
    t.admin_json(
        Method::POST,
        "/api/v1/tenants/default/apps",
        Some(json!({"name": name, "route": format!("/{name}")})),
    )
    .await?;
    let v = t
        .admin_json(
            Method::POST,
            &format!("/api/v1/tenants/default/apps/{name}/versions"),
            Some(json!({"digest": digest, "config": config})),
        )
        .await?;
    let number = v["number"].as_u64().context("no version number")?;
    t.admin_json(
        Method::PUT,
        &format!("/api/v1/tenants/default/apps/{name}/deployment"),
        Some(json!({"version": number, "regions": {region: 1}})),
    )
    .await?;
    Ok(())
}

pub(super) async fn delete_app(t: &Target, name: &str) {
    let _ = http::once(
        t.api,
        &Method::DELETE,
        &format!("/api/v1/tenants/default/apps/{name}"),
        Some(&t.admin),
        None,
    )
    .await;
}

/// Polls the gateway at `/name` until `done` holds for an answer; how long.
pub(super) async fn wait_gateway(
    gw: SocketAddr,
    path: &str,
    headers_token: Option<&str>,
    done: impl Fn(u16, &[u8]) -> bool,
    deadline: Duration,
) -> Result<(Duration, u16, Bytes)> {
    let started = Instant::now();
    let mut last: String;
    loop {
        match http::once(gw, &Method::GET, path, headers_token, None).await {
            Ok(a) if done(a.status, &a.body) => return Ok((started.elapsed(), a.status, a.body)),
            Ok(a) => {
                let shown = String::from_utf8_lossy(&a.body[..a.body.len().min(200)]).into_owned();
                last = format!("{} {shown}", a.status);
            }
            Err(e) => last = format!("{e:#}"),
        }
        if started.elapsed() > deadline {
            return Err(anyhow!(
                "the gateway did not answer {path} as expected within {} s; last: {last}",
                deadline.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A deploy until serving, the hostile guests, the credential stripping,
/// and what the audit log recorded of them.
pub async fn guests(t: &Target, region: &str, found: &mut Found) -> Result<()> {
    let Some(gw) = t.gateway else {
        for id in [
            "performance.deploy.to_serving",
            "security.guest.loop_contained",
            "security.guest.memory_contained",
            "security.gateway.strips_credentials",
            "compliance.change.audited_deploy",
        ] {
            found.insert(id, Measurement::unmeasured("no gateway address listed"));
        }
        return Ok(());
    };
    progress("deploying an app until the gateway serves it");
    let app = format!("certify-{}-hello", t.run);
    let started = Instant::now();
    deploy(t, &app, HELLO_WAT, region, json!({})).await?;
    let served = wait_gateway(
        gw,
        &format!("/{app}"),
        None,
        |s, b| s == 200 && b.starts_with(b"Hello"),
        Duration::from_secs(120),
    )
    .await;
    found.insert("performance.deploy.to_serving", match served {
        Ok(_) => Measurement::of(started.elapsed().as_secs_f64() * 1e3, "upload, app, version, deployment (1 replica) until GET at the gateway answered 200"),
        Err(e) => Measurement::unmeasured(e.to_string()),
    });
    let audit = t.admin_json(Method::GET, "/api/v1/audit", None).await?;
    let audited = audit["entries"].as_array().map_or(0, |e| {
        e.iter()
            .filter(|x| x["what"].as_str().is_some_and(|w| w.contains(&app)))
            .count()
    });
    found.insert(
        "compliance.change.audited_deploy",
        Measurement::of(
            if audited > 0 { 0.0 } else { 1.0 },
            format!("{audited} audit entries name {app}"),
        ),
    );

    progress("hostile guests: an endless loop, a memory bomb");
    for (id, module, what) in [
        ("security.guest.loop_contained", LOOP_WAT, "loop"),
        ("security.guest.memory_contained", MEMORY_BOMB_WAT, "memory"),
    ] {
        let name = format!("certify-{}-{what}", t.run);
        let m = async {
            if let Err(e) = deploy(t, &name, module, region, json!({"timeout_ms": 1000})).await {
                let text = format!("{e:#}");
                if text.starts_with("uploading") && text.contains(" 400 ") {
                    return anyhow::Ok(Measurement::of(
                        0.0,
                        format!("{what} guest refused at upload: {text}"),
                    ));
                }
                return Err(e);
            }
            // Once placed, the guest answers with an error (never 200),
            // within the deadline; and /hello still works.
            let (_, status, _) = wait_gateway(
                gw,
                &format!("/{name}"),
                None,
                |s, _| s >= 500,
                Duration::from_secs(120),
            )
            .await?;
            let hello = http::once(gw, &Method::GET, "/hello", None, None).await?;
            let escaped = u8::from(hello.status != 200);
            anyhow::Ok(Measurement::of(
                f64::from(escaped),
                format!(
                    "{what} guest answered {status}; /hello then answered {}",
                    hello.status
                ),
            ))
        }
        .await
        .unwrap_or_else(|e| Measurement::unmeasured(format!("{e:#}")));
        found.insert(id, m);
        delete_app(t, &name).await;
    }

    progress("does the gateway hand DWCP credentials to guests?");
    let name = format!("certify-{}-env", t.run);
    let m = async {
        let module =
            env_wagi().context("examples/env.wat changed: its WAGI form could not be made")?;
        deploy(t, &name, &module, region, json!({})).await?;
        // Shaped as a DWCP token (`dwcp-<kind>.<64 hex>`): what the gateway
        // strips (a guest's own `Authorization` passes, docs/security.md).
        let secret = format!(
            "dwcp-certify.{}",
            state::digest_of(format!("certify-secret-{}", t.run).as_bytes())
        );
        wait_gateway(
            gw,
            &format!("/{name}"),
            None,
            |s, _| s == 200,
            Duration::from_secs(120),
        )
        .await?;
        // The dashboard's session cookie and CSRF header too, beside a
        // cookie of the site's own that must pass.
        let session = format!("certify-session-{}", t.run);
        let csrf = format!("certify-csrf-{}", t.run);
        let bearer = format!("Bearer {secret}");
        let cookie = format!(
            "{}={session}; theme=certify-{}",
            cluster::credentials::SESSION_COOKIE,
            t.run
        );
        let a = http::Conn::open(gw)
            .await?
            .send_headers(
                &Method::GET,
                &format!("/{name}"),
                &[
                    ("authorization", bearer.as_str()),
                    ("cookie", cookie.as_str()),
                    ("x-csrf-token", csrf.as_str()),
                ],
                None,
            )
            .await?;
        anyhow::ensure!(a.status == 200, "the env guest answered {}", a.status);
        let seen = |text: &str| a.body.windows(text.len()).any(|w| w == text.as_bytes());
        let own = format!("theme=certify-{}", t.run);
        anyhow::ensure!(
            seen(&own),
            "the env guest does not print the request's cookies (HTTP_COOKIE): the probe cannot tell"
        );
        let leaked: Vec<&str> = [
            ("the Authorization bearer token", secret.as_str()),
            ("the session cookie", session.as_str()),
            ("the CSRF header", csrf.as_str()),
        ]
        .into_iter()
        .filter(|(_, text)| seen(text))
        .map(|(what, _)| what)
        .collect();
        anyhow::Ok(Measurement::of(
            leaked.len() as f64,
            format!(
                "a guest printing its environment, sent a DWCP token, the dashboard's session cookie and CSRF header (and a cookie of its own, which it saw); it saw: {}",
                if leaked.is_empty() { "none of DWCP's".to_string() } else { leaked.join(", ") }
            ),
        ))
    }
    .await
    .unwrap_or_else(|e| Measurement::unmeasured(format!("{e:#}")));
    found.insert("security.gateway.strips_credentials", m);
    delete_app(t, &name).await;
    delete_app(t, &app).await;
    Ok(())
}

/// Every route's doors: no credential, a forged token, a viewer, an operator.
pub async fn routes(t: &Target, found: &mut Found) -> Result<()> {
    progress("every OpenAPI route without a credential, with a forged token, as a viewer");
    let doc = http::once(t.api, &Method::GET, "/api/v1/openapi.json", None, None).await?;
    let doc: Value = serde_json::from_slice(&doc.body).context("the OpenAPI document")?;
    let plan = routes::plan(&doc)?;
    found.insert(
        "operations.openapi",
        Measurement::of(plan.paths as f64, "paths in GET /api/v1/openapi.json"),
    );
    let mut no_credential = Vec::new();
    for r in &plan.no_credential {
        let a = http::once(t.api, &r.method, &r.path, None, http::json(&json!({}))).await?;
        no_credential.push((r.clone(), a.status));
        t.reset_lockout().await;
    }
    let forged = format!("dwcp-forged-{}", t.run);
    let mut with_forged = Vec::new();
    for r in &plan.forged {
        let a = http::once(t.api, &r.method, &r.path, Some(&forged), None).await?;
        with_forged.push((r.clone(), a.status));
        t.reset_lockout().await;
    }
    let open = routes::unrefused(&no_credential, 401);
    let forged_ok = routes::unrefused(&with_forged, 401);
    found.insert(
        "security.routes.no_credential",
        Measurement::of(
            open.len() as f64,
            format!(
                "{} routes tried; answered without 401: {}",
                plan.routes,
                routes::listed(&open)
            ),
        ),
    );
    found.insert(
        "security.routes.forged_token",
        Measurement::of(
            forged_ok.len() as f64,
            format!("accepted a random token: {}", routes::listed(&forged_ok)),
        ),
    );

    let before = t.admin_json(Method::GET, "/api/v1/audit", None).await?;
    let floor = before["entries"]
        .as_array()
        .and_then(|e| e.iter().filter_map(|x| x["revision"].as_u64()).max())
        .unwrap_or(0);
    let (viewer_name, viewer) = make_token(t, "viewer").await?;
    let (operator_name, operator) = make_token(t, "operator").await?;
    let mut as_viewer = Vec::new();
    for r in &plan.viewer {
        let a = http::once(
            t.api,
            &r.method,
            &r.path,
            Some(&viewer),
            http::json(&json!({})),
        )
        .await?;
        as_viewer.push((r.clone(), a.status));
    }
    let wrote = routes::unrefused(&as_viewer, 403);
    found.insert(
        "security.routes.viewer_writes",
        Measurement::of(
            wrote.len() as f64,
            format!(
                "changing routes not refused to a viewer with 403: {}",
                routes::listed(&wrote)
            ),
        ),
    );
    let mut admin_only = Vec::new();
    for path in [
        "/api/v1/users",
        "/api/v1/backup",
        "/api/v1/blobs/0000000000000000000000000000000000000000000000000000000000000000/content",
    ] {
        let a = http::once(t.api, &Method::GET, path, Some(&operator), None).await?;
        if a.status != 403 {
            admin_only.push(format!("GET {path} -> {}", a.status));
        }
    }
    found.insert(
        "security.routes.operator_admin_only",
        Measurement::of(
            admin_only.len() as f64,
            format!(
                "3 admin-only routes; not refused to an operator: {}",
                routes::listed(&admin_only)
            ),
        ),
    );
    let list = http::once(t.api, &Method::GET, "/api/v1/tokens", Some(&t.admin), None).await?;
    let shown = [&t.admin, &viewer, &operator]
        .iter()
        .filter(|s| list.body.windows(s.len()).any(|w| w == s.as_bytes()))
        .count();
    found.insert(
        "security.tokens.not_shown",
        Measurement::of(
            shown as f64,
            "the admin, viewer and operator tokens searched for in GET /api/v1/tokens",
        ),
    );
    let audit = t.admin_json(Method::GET, "/api/v1/audit", None).await?;
    found.extend(records::audit(&audit, floor, "POST /api/v1/tokens", 2));
    for name in [&viewer_name, &operator_name] {
        let _ = http::once(
            t.api,
            &Method::DELETE,
            &format!("/api/v1/tokens/{name}"),
            Some(&t.admin),
            None,
        )
        .await;
    }

    progress("login rate limit");
    let mut attempts = 0.0;
    let limited = loop {
        attempts += 1.0;
        let a = http::once(
            t.api,
            &Method::POST,
            "/api/v1/session",
            None,
            http::json(&json!({"user": "certify-nobody", "password": "wrong password"})),
        )
        .await?;
        if a.status == 429 {
            break true;
        }
        if attempts >= 30.0 {
            break false;
        }
    };
    found.insert(
        "security.login.rate_limited",
        Measurement::of(
            attempts,
            if limited {
                format!("429 after {attempts} wrong logins")
            } else {
                "30 wrong logins, never limited".into()
            },
        ),
    );
    Ok(())
}

/// A token of `role` named for this run: its name and secret.
async fn make_token(t: &Target, role: &str) -> Result<(String, String)> {
    let name = format!("certify-{}-{role}", t.run);
    let made = t
        .admin_json(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": name, "role": role})),
        )
        .await?;
    let token = made["token"].as_str().context("no token")?.to_string();
    Ok((name, token))
}

/// The cluster's shape, its nodes' health and clocks, and the state's
/// operational records: read here, judged by `records::measure` (pure).
pub async fn cluster_and_records(t: &Target, found: &mut Found) -> Result<()> {
    progress("quorum, health, clocks, metrics, records");
    let status = t.admin_json(Method::GET, "/api/v1/cluster", None).await?;
    let mut members = Vec::new();
    for api in &t.apis {
        let leader =
            match http::once(*api, &Method::GET, "/api/v1/cluster", Some(&t.admin), None).await {
                Ok(a) => serde_json::from_slice::<Value>(&a.body)
                    .ok()
                    .map(|v| v["leader"].to_string()),
                Err(_) => None,
            };
        let before = std::time::SystemTime::now();
        let (mut health, mut skew_ms) = (None, None);
        if let Ok(a) = http::once(*api, &Method::GET, "/api/v1/health", None, None).await {
            health = Some(a.status);
            if let Some(date) = a.date.as_deref().and_then(httpdate_ms) {
                let here = before
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                skew_ms = Some(here as f64 - date as f64);
            }
        }
        members.push(records::MemberView {
            api: api.to_string(),
            leader,
            health,
            skew_ms,
        });
    }
    let metrics = http::once(t.api, &Method::GET, "/metrics", Some(&t.admin), None).await?;
    let page = http::once(t.api, &Method::GET, "/", Some(&t.admin), None).await?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let seen = records::Records {
        members,
        metrics: (metrics.status, text(&metrics.body)),
        page: (page.status, text(&page.body)),
        nodes: t.admin_json(Method::GET, "/api/v1/nodes", None).await?,
        capacity: t.admin_json(Method::GET, "/api/v1/capacity", None).await?,
        apps: t.admin_json(Method::GET, "/api/v1/apps", None).await?,
        slos: t.admin_json(Method::GET, "/api/v1/slos", None).await?,
        runbooks: t.admin_json(Method::GET, "/api/v1/runbooks", None).await?,
        incidents: t.admin_json(Method::GET, "/api/v1/incidents", None).await?,
        tokens: t.admin_json(Method::GET, "/api/v1/tokens", None).await?,
        users: t.admin_json(Method::GET, "/api/v1/users", None).await?,
        backups: t.admin_json(Method::GET, "/api/v1/backups", None).await?,
        status,
    };
    found.extend(records::measure(&seen));
    Ok(())
}

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT` in ms after the epoch.
fn httpdate_ms(date: &str) -> Option<u64> {
    let parts: Vec<&str> = date.split_whitespace().collect();
    let [_, day, month, year, time, _] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let days = autopilot::time::days_from_civil(year, month, day);
    u64::try_from(((days * 24 + h) * 60 + m) * 60 + s)
        .ok()
        .map(|s| s * 1000)
}

/// Compare-and-swap increments from 4 clients, and reads at every node
/// after a write acknowledged at one.
pub async fn linearizability(t: &Target, found: &mut Found) -> Result<()> {
    progress("compare-and-swap increments from 4 clients; reads at every node");
    let key = format!("certify-{}-cas", t.run);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..4 {
        let (api, admin, key) = (t.apis[c % t.apis.len()], t.admin.clone(), key.clone());
        tasks.spawn(async move {
            let mut mine = 0u64;
            let mut conn = Conn::open(api).await?;
            while mine < 13 {
                let path = format!("/api/v1/registers/{key}");
                let a = conn.send(&Method::GET, &path, Some(&admin), None).await?;
                let current: Option<String> = if a.status == 404 {
                    None
                } else {
                    serde_json::from_slice::<Value>(&a.body)?["value"]
                        .as_str()
                        .map(str::to_string)
                };
                let next = current.as_deref().map_or(Ok(0), str::parse::<u64>)? + 1;
                let a = conn
                    .send(
                        &Method::POST,
                        &format!("{path}/cas"),
                        Some(&admin),
                        http::json(&json!({"expected": current, "new": next.to_string()})),
                    )
                    .await?;
                anyhow::ensure!(a.status == 200, "CAS answered {}", a.status);
                if serde_json::from_slice::<Value>(&a.body)?["swapped"] == true {
                    mine += 1;
                }
            }
            anyhow::Ok(mine)
        });
    }
    let mut swaps = 0;
    while let Some(done) = tasks.join_next().await {
        swaps += done??;
    }
    let end = t
        .admin_json(Method::GET, &format!("/api/v1/registers/{key}"), None)
        .await?;
    let end: u64 = end["value"].as_str().unwrap_or("0").parse().unwrap_or(0);
    found.insert(
        "reliability.cas.lost_updates",
        Measurement::of(
            swaps.abs_diff(end) as f64,
            format!("{swaps} successful swaps, the register ends at {end}"),
        ),
    );

    let mut stale = 0;
    let rounds = 20;
    for i in 0..rounds {
        let writer = t.apis[i % t.apis.len()];
        let path = format!("/api/v1/registers/certify-{}-read", t.run);
        let a = http::once(
            writer,
            &Method::PUT,
            &path,
            Some(&t.admin),
            http::json(&json!({"value": i.to_string()})),
        )
        .await?;
        anyhow::ensure!(a.status == 200, "PUT answered {}", a.status);
        for api in &t.apis {
            let a = http::once(*api, &Method::GET, &path, Some(&t.admin), None).await?;
            if serde_json::from_slice::<Value>(&a.body)
                .ok()
                .and_then(|v| v["value"].as_str().map(str::to_string))
                != Some(i.to_string())
            {
                stale += 1;
            }
        }
    }
    found.insert(
        "reliability.reads.stale",
        Measurement::of(
            f64::from(stale),
            format!("{rounds} writes, each read at all {} nodes", t.apis.len()),
        ),
    );
    Ok(())
}

/// Webhook targets on internal addresses, on an app of this run.
pub async fn webhooks(t: &Target, region: &str, found: &mut Found) -> Result<()> {
    progress("webhook targets on internal addresses");
    let app = format!("certify-{}-slo", t.run);
    deploy(t, &app, HELLO_WAT, region, json!({})).await?;
    let mut accepted = Vec::new();
    for url in [
        "http://127.0.0.1:9093/api/v2/alerts",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1:9093/",
        "http://[::1]:9093/",
    ] {
        let a = http::once(t.api, &Method::PUT, &format!("/api/v1/tenants/default/apps/{app}/slos/certify"), Some(&t.admin), http::json(&json!({"objective": "availability", "target": 0.99, "notify": [{"kind": "alertmanager", "url": url}]}))).await?;
        if (200..300).contains(&a.status) {
            accepted.push(url);
        }
    }
    found.insert(
        "security.webhooks.restricted",
        Measurement::of(
            accepted.len() as f64,
            format!("4 internal targets tried; accepted: {accepted:?}"),
        ),
    );
    delete_app(t, &app).await;
    Ok(())
}

/// The peer port: TLS 1.2, a stranger's certificate, no certificate.
pub async fn peer_port(t: &Target, found: &mut Found) -> Result<()> {
    progress("peer port: TLS 1.2, a stranger's certificate, no certificate");
    let Some(peer) = t.peers.first().copied() else {
        for id in [
            "security.peer.tls12_refused",
            "security.peer.stranger_refused",
            "security.peer.anonymous_refused",
        ] {
            found.insert(
                id,
                Measurement::unmeasured("no member lists a peer address"),
            );
        }
        return Ok(());
    };
    let tls12 = super::tls::handshake_tls12(peer).await;
    found.insert(
        "security.peer.tls12_refused",
        Measurement::of(
            f64::from(u8::from(tls12.is_ok())),
            match tls12 {
                Ok(()) => format!("{peer} completed a TLS 1.2 handshake"),
                Err(e) => format!("{peer} refused TLS 1.2: {e:#}"),
            },
        ),
    );
    for (id, stranger) in [
        ("security.peer.stranger_refused", true),
        ("security.peer.anonymous_refused", false),
    ] {
        let m = match super::tls::raft_status(peer, stranger).await {
            Ok(status) => Measurement::of(
                f64::from(u8::from(status != 403)),
                format!("POST /raft/call over TLS 1.3 answered {status}"),
            ),
            Err(e) => Measurement::of(0.0, format!("refused before HTTP: {e:#}")),
        };
        found.insert(id, m);
    }
    Ok(())
}

/// The data directories: tokens in plain text, and modes.
pub fn data_dirs(t: &Target, found: &mut Found) {
    if t.data_dirs.is_empty() {
        for id in [
            "security.data_dir.plaintext_tokens",
            "security.data_dir.modes",
        ] {
            found.insert(id, Measurement::unmeasured("the data directories are not on this machine (give --data-dir, or run without --api)"));
        }
        return;
    }
    progress("scanning the data directories");
    use std::os::unix::fs::PermissionsExt;
    let (mut holding, mut open, mut files) = (Vec::new(), Vec::new(), 0);
    let needle = t.admin.as_bytes();
    let mut stack = t.data_dirs.clone();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            open.push(format!(
                "{} ({:o})",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if meta.is_file() {
            files += 1;
            if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                holding.push(path.display().to_string());
            }
        }
    }
    found.insert(
        "security.data_dir.plaintext_tokens",
        Measurement::of(
            holding.len() as f64,
            format!("{files} files scanned for the admin token; holding it: {holding:?}"),
        ),
    );
    let shown: Vec<&String> = open.iter().take(5).collect();
    found.insert(
        "security.data_dir.modes",
        Measurement::of(
            open.len() as f64,
            format!(
                "readable by others: {shown:?}{}",
                if open.len() > 5 { " …" } else { "" }
            ),
        ),
    );
}

/// Garbage refused as an artifact; the upload rate of a 4 MiB module.
pub async fn artifacts(t: &Target, found: &mut Found) -> Result<()> {
    progress("uploads: garbage, and a 4 MiB module");
    let a = http::once(
        t.api,
        &Method::POST,
        "/api/v1/blobs",
        Some(&t.admin),
        Some((
            "application/wasm",
            Bytes::from_static(b"this is not WebAssembly"),
        )),
    )
    .await?;
    found.insert(
        "security.artifact.garbage_refused",
        Measurement::of(
            f64::from(u8::from((200..300).contains(&a.status))),
            format!("POST /api/v1/blobs of text answered {}", a.status),
        ),
    );
    let module = crate::bench::backup::module(t.run.len() as u64 ^ 0x5eed, 4 << 20);
    let started = Instant::now();
    let a = http::once(
        t.api,
        &Method::POST,
        "/api/v1/blobs",
        Some(&t.admin),
        Some(("application/wasm", Bytes::from(module))),
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    found.insert(
        "performance.upload.rate",
        if (200..300).contains(&a.status) {
            Measurement::of(4.0 / secs, format!("4 MiB in {:.0} ms", secs * 1e3))
        } else {
            Measurement::unmeasured(format!("the upload answered {}", a.status))
        },
    );
    Ok(())
}

/// Event streams held while the API answers.
pub async fn streams(t: &Target, found: &mut Found) -> Result<()> {
    progress("event streams");
    let want = 60;
    let mut held = Vec::new();
    for _ in 0..want {
        match super::http::open_stream(t.api, "/api/v1/events", &t.admin).await {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    let a = http::once(t.api, &Method::GET, "/api/v1/apps", Some(&t.admin), None).await?;
    let n = if a.status == 200 { held.len() } else { 0 };
    drop(held);
    found.insert(
        "scalability.events.streams",
        Measurement::of(
            n as f64,
            format!(
                "{want} streams tried; GET /api/v1/apps then answered {}",
                a.status
            ),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_read_as_ms_after_the_epoch() {
        assert_eq!(
            httpdate_ms("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(httpdate_ms("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(httpdate_ms("yesterday"), None);
    }

    /// The latency criteria's values: a slow tail of 2 % of the samples
    /// is the p99 (and fails `performance.commit.p99`), not the p50.
    #[test]
    fn a_slow_tail_is_the_p99_and_fails_the_latency_criterion() {
        let mut samples = vec![5.0; 98];
        samples.extend([450.0, 450.0]);
        let (p50, p99) = percentiles(&samples);
        assert!((4.9..5.1).contains(&p50), "{p50}");
        assert!((449.0..451.0).contains(&p99), "{p99}");
        let def = crate::certify::catalog::CATALOG
            .iter()
            .find(|d| d.id == "performance.commit.p99")
            .unwrap();
        let v = certify::judge(
            &def.criterion(),
            &Measurement::with_samples(p99, samples, "PUT"),
            &[],
            0,
        );
        assert_eq!(v.status, certify::Status::Fail);
    }

    /// The data-directory scan on a real directory: clean, then a file
    /// holding the admin token in plain text, then a file others can read
    /// — each fails its criterion, and the other holds.
    #[test]
    fn the_data_dir_scan_fails_on_a_plaintext_token_and_on_loose_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let admin = "dwcp-admin.0123456789abcdef0123456789abcdef".to_string();
        let private = |path: &std::path::Path, bytes: &[u8]| {
            std::fs::write(path, bytes).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        private(&dir.path().join("state.redb"), b"sealed bytes and a hash");
        let t = Target {
            api: SocketAddr::from(([127, 0, 0, 1], 9)),
            apis: Vec::new(),
            admin: admin.clone(),
            gateway: None,
            peers: Vec::new(),
            data_dirs: vec![dir.path().to_path_buf()],
            quick: false,
            run: "t".into(),
        };
        let scan = || {
            let mut found = Found::new();
            data_dirs(&t, &mut found);
            let value = |id: &str| found[id].value;
            (
                value("security.data_dir.plaintext_tokens"),
                value("security.data_dir.modes"),
            )
        };
        assert_eq!(scan(), (Some(0.0), Some(0.0)));
        let key = dir.path().join("admin.token");
        private(&key, format!("token = {admin}\n").as_bytes());
        assert_eq!(scan(), (Some(1.0), Some(0.0)));
        std::fs::remove_file(&key).unwrap();
        let open = dir.path().join("node.log");
        std::fs::write(&open, "no secret here").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(scan(), (Some(0.0), Some(1.0)));
        let none = Target {
            data_dirs: Vec::new(),
            ..t
        };
        let mut found = Found::new();
        data_dirs(&none, &mut found);
        assert_eq!(found["security.data_dir.modes"].value, None, "unmeasured");
    }

    fn peer_target(peer: SocketAddr) -> Target {
        Target {
            api: peer,
            apis: Vec::new(),
            admin: String::new(),
            gateway: None,
            peers: vec![peer],
            data_dirs: Vec::new(),
            quick: true,
            run: "t".into(),
        }
    }

    async fn peer_values(peer: SocketAddr) -> [Option<f64>; 3] {
        let mut found = Found::new();
        peer_port(&peer_target(peer), &mut found).await.unwrap();
        [
            "security.peer.tls12_refused",
            "security.peer.stranger_refused",
            "security.peer.anonymous_refused",
        ]
        .map(|id| found[id].value)
    }

    /// The peer-port probe against real TLS servers on loopback: the
    /// cluster's own peer configuration (TLS 1.3, mutual) refuses all
    /// three; a port that asks for no client certificate lets the stranger
    /// and the anonymous client reach Raft (both criteria fail); a port
    /// that answers a TLS 1.2 hello fails the TLS 1.2 criterion.
    #[tokio::test]
    async fn the_peer_port_probe_fails_a_port_without_mutual_tls_or_with_tls12() {
        use http_body_util::Full;
        let ca = cluster::tls::ClusterCa::create("certify-test").unwrap();
        let node = ca.issue("node-1", &["127.0.0.1".to_string()]).unwrap();
        let ok = |_r| async { hyper::Response::new(Full::new(Bytes::from_static(b"{}"))) };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));

        let listener = cluster::serving::listen(loopback).unwrap();
        let peer = listener.local_addr().unwrap();
        let mutual = cluster::tls::server_config(ca.cert_pem(), &node).unwrap();
        let server = cluster::serving::serve_tls(listener, mutual, ok);
        assert_eq!(peer_values(peer).await, [Some(0.0); 3]);
        server.abort();

        let listener = cluster::serving::listen(loopback).unwrap();
        let peer = listener.local_addr().unwrap();
        let open = cluster::tls::api_server_config(&node.cert_pem, &node.key_pem).unwrap();
        let server = cluster::serving::serve_tls(listener, open, ok);
        assert_eq!(
            peer_values(peer).await,
            [Some(0.0), Some(1.0), Some(1.0)],
            "no client certificate asked for"
        );
        server.abort();

        // Answers any hello with a TLS 1.2 ServerHello's first bytes.
        let listener = tokio::net::TcpListener::bind(loopback).await.unwrap();
        let peer = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut hello = [0u8; 5];
                if tcp.read_exact(&mut hello).await.is_ok() {
                    let _ = tcp.write_all(&[0x16, 0x03, 0x03, 0x00, 0x2a, 0x02]).await;
                }
            }
        });
        let mut found = Found::new();
        peer_port(&peer_target(peer), &mut found).await.unwrap();
        server.abort();
        let tls12 = &found["security.peer.tls12_refused"];
        assert_eq!(tls12.value, Some(1.0), "{}", tls12.detail);
        assert!(tls12.detail.contains("TLS 1.2"), "{}", tls12.detail);
    }
}
