//! The gateway over real loopback sockets, with WAT apps from `tests/apps/`.
//!
//! No test sleeps as a way of doing work: waits are for a condition (a
//! metric reaching a value) under a generous deadline.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use node::gateway::{
    AccessLog, AppKey, Gateway, Route, RouteLimits, RouteTable, RouteVersion, VersionHandle, serve,
};
use sandbox::{Artifact, Engine, Limits, WasmConfig, WasmEngine};
use state::Name;
use tokio::net::{TcpListener, TcpStream};

/// Every test finishes well within this, or fails.
const TEST_DEADLINE: Duration = Duration::from_secs(120);

fn engine() -> &'static WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        WasmEngine::new(WasmConfig {
            max_live: 64,
            ..WasmConfig::dense()
        })
        .expect("engine")
    })
}

fn app_source(name: &str) -> String {
    let path = format!("{}/tests/apps/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A WAGI app answering `text` as text/plain.
fn text_app(text: &str) -> String {
    let head = "content-type: text/plain\n\n";
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{head}{text}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        head = head.replace('\n', "\\0a"),
        len = head.len() + text.len(),
    )
}

/// A version of `source` (WAT) whose sandboxes stop after `deadline`.
fn version(source: &str, number: u64, weight: u32, deadline: Duration) -> RouteVersion {
    version_of(source.as_bytes().to_vec(), number, weight, deadline)
}

/// A version of a module (binary or text).
fn version_of(module: Vec<u8>, number: u64, weight: u32, deadline: Duration) -> RouteVersion {
    let limits = Limits {
        memory_bytes: 1 << 20,
        table_elements: 1_000,
        deadline,
        ..Limits::default()
    };
    let template = engine()
        .prepare(&Artifact::new(module), limits)
        .expect("prepare");
    RouteVersion {
        number,
        weight,
        handle: Arc::new(VersionHandle::new(template)).into(),
    }
}

fn app(name: &str) -> AppKey {
    AppKey::new(
        Name::new("tenant", "acme").unwrap(),
        Name::new("app", name).unwrap(),
    )
}

fn route(prefix: &str, versions: Vec<RouteVersion>, limits: RouteLimits) -> Route {
    Route {
        host: None,
        prefix: prefix.to_string(),
        app: app(prefix.trim_start_matches('/')),
        versions,
        forward: Vec::new(),
        limits,
    }
}

/// A loopback address nobody listens on: bound, then closed.
async fn dead_address() -> String {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// A route whose app other gateways hold: requests go to `peers`.
fn forwarding(prefix: &str, peers: Vec<String>) -> Route {
    Route {
        forward: peers,
        ..route(prefix, Vec::new(), limits(Duration::from_secs(30)))
    }
}

fn limits(timeout: Duration) -> RouteLimits {
    RouteLimits {
        timeout,
        ..RouteLimits::default()
    }
}

/// The apps most tests use: `/hello`, `/trap`, `/echo` (16-byte requests,
/// 64-byte responses), and `/loop` with a 200 ms timeout.
fn standard_table() -> RouteTable {
    let t = Duration::from_secs(30);
    let short = Duration::from_millis(200);
    RouteTable::new(vec![
        route(
            "/hello",
            vec![version(&app_source("hello"), 1, 1, t)],
            limits(t),
        ),
        route(
            "/trap",
            vec![version(&app_source("trap"), 1, 1, t)],
            limits(t),
        ),
        route(
            "/echo",
            vec![version(&app_source("echo"), 1, 1, t)],
            RouteLimits {
                max_request_bytes: 16,
                max_response_bytes: 64,
                ..limits(t)
            },
        ),
        route(
            "/loop",
            vec![version(&app_source("loop"), 1, 1, short)],
            limits(short),
        ),
    ])
    .expect("table")
}

/// The access log, captured.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

struct Running {
    gateway: Arc<Gateway>,
    addr: SocketAddr,
    log: LogBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(table: RouteTable) -> Running {
    let log = LogBuf::default();
    let gateway = Gateway::new(table, AccessLog::to_writer(log.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = serve(listener, gateway.clone());
    Running {
        gateway,
        addr,
        log,
        task,
    }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn request_id(&self) -> String {
        let id = self.headers["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        id
    }

    /// The `error` object of a JSON error answer.
    fn error(&self) -> serde_json::Value {
        assert_eq!(self.headers["content-type"], "application/json");
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        v["error"].clone()
    }
}

/// Sends one request over a new HTTP/1.1 connection.
async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "gw.test")
        .body(Full::default())
        .unwrap()
}

fn post(path: &str, body: &[u8]) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "gw.test")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

/// Waits for `cond` to hold, checking every few milliseconds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn in_flight(gw: &Gateway, app: &str) -> u64 {
    gw.metrics()
        .version("acme", app, 1)
        .map_or(0, |v| v.in_flight)
}

async fn within_deadline<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, f)
        .await
        .expect("the test ran past its deadline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_via_wagi() {
    within_deadline(async {
        let gw = start(standard_table()).await;
        let r = send(gw.addr, get("/hello/x?y=1")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.text(), "hello");
        assert_eq!(r.headers["content-type"], "text/plain");
        let id = r.request_id();
        let log = gw.log.text();
        let line = log.lines().find(|l| l.contains(&id)).expect("log line");
        assert!(
            line.contains("method=GET path=/hello/x app=acme/hello version=1 status=200"),
            "{line}"
        );
        let metrics = gw.gateway.metrics();
        let v = metrics.version("acme", "hello", 1).unwrap();
        assert_eq!((v.requests, v.errors_5xx, v.in_flight), (1, 0, 0));
        assert_eq!(v.latency_us.count, 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_miss_is_404_with_a_clear_body() {
    within_deadline(async {
        let gw = start(standard_table()).await;
        for path in ["/nope", "/hellox", "/"] {
            let r = send(gw.addr, get(path)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            let e = r.error();
            assert_eq!(e["code"], "no_route");
            assert_eq!(e["request_id"], r.request_id());
            assert!(e["message"].as_str().unwrap().contains(path), "{e}");
        }
        assert_eq!(gw.gateway.metrics().unrouted, 3);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_app_answers_500_with_its_request_id_and_the_gateway_stays_healthy() {
    within_deadline(async {
        let gw = start(standard_table()).await;
        for _ in 0..3 {
            let r = send(gw.addr, get("/trap")).await;
            assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
            let e = r.error();
            let id = r.request_id();
            assert_eq!(e["code"], "trap");
            assert_eq!(e["request_id"], id.as_str());
            assert!(e["message"].as_str().unwrap().contains("acme/trap"), "{e}");
            assert!(gw.log.text().contains(&format!("request_id={id}")));

            let ok = send(gw.addr, get("/hello")).await;
            assert_eq!((ok.status, ok.text().as_str()), (StatusCode::OK, "hello"));
        }
        let m = gw.gateway.metrics();
        let trap = m.version("acme", "trap", 1).unwrap();
        assert_eq!((trap.requests, trap.errors_5xx), (3, 3));
        assert!(gw.log.text().contains("status=500 "));
        assert!(gw.log.text().contains("error=trap"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_hits_its_timeout_with_504_and_the_gateway_still_serves() {
    within_deadline(async {
        let gw = start(standard_table()).await;
        let r = send(gw.addr, get("/loop")).await;
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
        let e = r.error();
        assert_eq!(e["code"], "timeout");
        assert_eq!(e["request_id"], r.request_id());
        let ok = send(gw.addr, get("/hello")).await;
        assert_eq!(ok.status, StatusCode::OK);
        // The sandbox itself is stopped by its deadline too.
        until("the looping sandbox to stop", || {
            in_flight(&gw.gateway, "loop") == 0
        })
        .await;
        let m = gw.gateway.metrics();
        assert_eq!(m.version("acme", "loop", 1).unwrap().timeouts, 1);
    })
    .await
}

/// One worker thread serves everything here: the spinning guest runs on it
/// and must yield for the other requests to be answered at all.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_is_stopped_at_its_deadline_while_its_worker_keeps_answering() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        // Long enough that twenty answers on a slow machine come first.
        let spin_for = Duration::from_secs(15);
        let table = RouteTable::new(vec![
            route(
                "/hello",
                vec![version(&app_source("hello"), 1, 1, t)],
                limits(t),
            ),
            route(
                "/loop",
                vec![version(&app_source("loop"), 1, 1, spin_for)],
                limits(spin_for),
            ),
        ])
        .unwrap();
        let gw = start(table).await;
        let spinning = tokio::spawn(send(gw.addr, get("/loop")));
        until("the spinning guest to run", || {
            in_flight(&gw.gateway, "loop") == 1
        })
        .await;
        for _ in 0..20 {
            let ok = send(gw.addr, get("/hello")).await;
            assert_eq!((ok.status, ok.text().as_str()), (StatusCode::OK, "hello"));
        }
        assert!(
            !spinning.is_finished(),
            "the spinner must still be running while the others were answered"
        );
        let r = spinning.await.unwrap();
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
        let m = gw.gateway.metrics();
        assert_eq!(m.version("acme", "loop", 1).unwrap().timeouts, 1);
        assert_eq!(m.version("acme", "hello", 1).unwrap().requests, 20);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_sizes_are_limited() {
    within_deadline(async {
        let gw = start(standard_table()).await;
        let r = send(gw.addr, post("/echo", b"0123456789")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.body, b"0123456789");

        let r = send(gw.addr, post("/echo", &[b'x'; 100])).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = r.error();
        assert_eq!(e["code"], "request_too_large");
        assert!(e["message"].as_str().unwrap().contains("16 bytes"), "{e}");
        r.request_id();

        // 16 bytes in is allowed; the echo app's answer is small enough.
        let r = send(gw.addr, post("/echo", &[b'y'; 16])).await;
        assert_eq!(r.status, StatusCode::OK);
        let m = gw.gateway.metrics();
        let echo = m.version("acme", "echo", 1).unwrap();
        assert_eq!((echo.requests, echo.errors_4xx), (3, 1));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_past_the_route_limit_is_500() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let table = RouteTable::new(vec![route(
            "/echo",
            vec![version(&app_source("echo"), 1, 1, t)],
            RouteLimits {
                max_request_bytes: 1024,
                max_response_bytes: 8,
                ..limits(t)
            },
        )])
        .unwrap();
        let gw = start(table).await;
        let r = send(gw.addr, post("/echo", b"12345678")).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = send(gw.addr, post("/echo", b"123456789")).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.error()["code"], "response_too_large");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_a_request_gets_503_at_once() {
    within_deadline(async {
        let t = Duration::from_secs(2);
        let table = RouteTable::new(vec![
            route(
                "/loop",
                vec![version(&app_source("loop"), 1, 1, t)],
                RouteLimits {
                    max_concurrency: 1,
                    ..limits(t)
                },
            ),
            route(
                "/hello",
                vec![version(&app_source("hello"), 1, 1, t)],
                limits(t),
            ),
        ])
        .unwrap();
        let gw = start(table).await;
        let addr = gw.addr;
        let first = tokio::spawn(async move { send(addr, get("/loop")).await });
        until("the first request to be admitted", || {
            in_flight(&gw.gateway, "loop") == 1
        })
        .await;
        let second = send(addr, get("/loop")).await;
        assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(second.error()["code"], "concurrency_limit");
        assert_eq!(second.headers["retry-after"], "1");
        // Other apps are not held up.
        let other = send(addr, get("/hello")).await;
        assert_eq!(other.status, StatusCode::OK);

        let first = first.await.unwrap();
        assert_eq!(first.status, StatusCode::GATEWAY_TIMEOUT);
        until("the first sandbox to stop", || {
            in_flight(&gw.gateway, "loop") == 0
        })
        .await;
        // The place is free again.
        let third = send(addr, get("/loop")).await;
        assert_eq!(third.status, StatusCode::GATEWAY_TIMEOUT);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_follows_the_weights_and_weight_zero_gets_nothing() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let table = RouteTable::new(vec![route(
            "/split",
            vec![
                version(&text_app("v1"), 1, 90, t),
                version(&text_app("v2"), 2, 10, t),
                version(&text_app("v3"), 3, 0, t),
            ],
            limits(t),
        )])
        .unwrap();
        let gw = start(table).await;
        let mut counts = [0usize; 3];
        let keys = 300;
        for i in 0..keys {
            let req = Request::get("/split")
                .header("host", "gw.test")
                .header("x-dwcp-key", format!("user-{i}"))
                .body(Full::default())
                .unwrap();
            let r = send(gw.addr, req).await;
            assert_eq!(r.status, StatusCode::OK);
            let served: usize = r.text()[1..].parse().unwrap();
            counts[served - 1] += 1;
        }
        assert_eq!(counts[2], 0, "{counts:?}");
        let share = counts[0] as f64 / keys as f64;
        assert!((0.84..=0.96).contains(&share), "{counts:?}");
        // The same key always reaches the same version.
        let with_key = || {
            Request::get("/split")
                .header("x-dwcp-key", "sticky")
                .body(Full::default())
                .unwrap()
        };
        let a = send(gw.addr, with_key()).await.text();
        for _ in 0..5 {
            assert_eq!(send(gw.addr, with_key()).await.text(), a);
        }
        // Without a key the request id decides; it is still served.
        assert_eq!(send(gw.addr, get("/split")).await.status, StatusCode::OK);
        let m = gw.gateway.metrics();
        assert!(m.version("acme", "split", 3).is_none());

        // A tester reaches a version by header or cookie, even one at
        // weight 0; a version the route does not serve falls back to the
        // weights.
        let pinned = |name: &str, value: &str| {
            Request::get("/split")
                .header(name, value)
                .body(Full::default())
                .unwrap()
        };
        assert_eq!(
            send(gw.addr, pinned("x-dwcp-version", "3")).await.text(),
            "v3"
        );
        let cookie = pinned("cookie", "theme=dark; dwcp-version=2");
        assert_eq!(send(gw.addr, cookie).await.text(), "v2");
        let unknown = send(gw.addr, pinned("x-dwcp-version", "9")).await;
        assert_eq!(unknown.status, StatusCode::OK);
        assert_ne!(unknown.text(), "v3");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_traffic_answers_503() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let table = RouteTable::new(vec![
            route("/none", vec![version(&text_app("v1"), 1, 0, t)], limits(t)),
            route("/empty", vec![], limits(t)),
        ])
        .unwrap();
        let gw = start(table).await;
        for path in ["/none", "/empty"] {
            let r = send(gw.addr, get(path)).await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.error()["code"], "no_version");
        }
        assert_eq!(gw.gateway.metrics().no_version, 2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_table_swap_takes_effect_for_the_next_request() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let table = |text: &str, n: u64| {
            RouteTable::new(vec![route(
                "/hello",
                vec![version(&text_app(text), n, 1, t)],
                limits(t),
            )])
            .unwrap()
        };
        let gw = start(table("one", 1)).await;
        assert_eq!(send(gw.addr, get("/hello")).await.text(), "one");
        gw.gateway.set_routes(table("two", 2));
        let r = send(gw.addr, get("/hello")).await;
        assert_eq!(r.text(), "two");
        assert!(gw.log.text().contains(&format!(
            "request_id={} method=GET path=/hello app=acme/hello version=2",
            r.request_id()
        )));
        gw.gateway.set_routes(RouteTable::empty());
        assert_eq!(
            send(gw.addr, get("/hello")).await.status,
            StatusCode::NOT_FOUND
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_are_served() {
    within_deadline(async {
        let gw = start(standard_table()).await;
        let tcp = TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        for path in ["/hello", "/trap", "/hello"] {
            let req = Request::get(format!("http://{}{path}", gw.addr))
                .body(Full::<Bytes>::default())
                .unwrap();
            let response = sender.send_request(req).await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            let status = response.status();
            assert!(response.headers().contains_key("x-request-id"));
            let body = response.into_body().collect().await.unwrap().to_bytes();
            match path {
                "/hello" => assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello"[..])),
                _ => assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_routes_keep_instances_and_cold_routes_do_not() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let counter = app_source("counter");
        let table = RouteTable::new(vec![
            route(
                "/warm",
                vec![version(&counter, 1, 1, t)],
                RouteLimits {
                    warm: true,
                    ..limits(t)
                },
            ),
            route("/cold", vec![version(&counter, 1, 1, t)], limits(t)),
        ])
        .unwrap();
        let gw = start(table).await;
        let mut warm = Vec::new();
        let mut cold = Vec::new();
        // The warm pool keeps its 8 instances in one group (this engine is
        // dense) and serves them round robin: the ninth request finds the
        // first instance's state again.
        let rounds = VersionHandle::DEFAULT_WARM_CAPACITY + 2;
        for _ in 0..rounds {
            warm.push(send(gw.addr, get("/warm")).await.text());
            cold.push(send(gw.addr, get("/cold")).await.text());
        }
        let mut expected = vec!["1"; VersionHandle::DEFAULT_WARM_CAPACITY];
        expected.extend(["2", "2"]);
        assert_eq!(warm, expected);
        assert_eq!(cold, vec!["1"; rounds]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_without_a_socket_too() {
    let gateway = Gateway::new(standard_table(), AccessLog::off());
    let r = gateway
        .handle(
            Request::get("/hello")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
}

/// The C WAGI app of `examples/` (built by `scripts/build-examples.sh`,
/// which `scripts/test.sh` runs first; a missing build fails the test): the
/// request's method, path below the route, query and body reach it, and
/// its `status` header reaches the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_wagi_example_sees_the_request() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/build/wagi-hello.wasm"
    );
    let module = std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path} cannot be read ({e}): run `bash scripts/build-examples.sh` first")
    });
    within_deadline(async {
        let t = Duration::from_secs(30);
        let table = RouteTable::new(vec![route(
            "/c",
            vec![version_of(module, 1, 1, t)],
            limits(t),
        )])
        .unwrap();
        let gw = start(table).await;
        let r = send(gw.addr, post("/c/x/y?a=1&status=418", b"payload")).await;
        assert_eq!(r.status.as_u16(), 418, "{}", r.text());
        let text = r.text();
        assert!(text.starts_with("Hello from C!"), "{text}");
        assert!(
            text.contains("method=POST path=/x/y query=a=1&status=418"),
            "{text}"
        );
        assert!(text.contains("body=payload"), "{text}");
        r.request_id();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_is_logged_with_499() {
    within_deadline(async {
        let t = Duration::from_secs(2);
        let table = RouteTable::new(vec![route(
            "/loop",
            vec![version(&app_source("loop"), 1, 1, t)],
            limits(t),
        )])
        .unwrap();
        let gw = start(table).await;
        let tcp = TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let req = Request::get(format!("http://{}/loop", gw.addr))
            .body(Full::<Bytes>::default())
            .unwrap();
        let pending = tokio::spawn(async move { sender.send_request(req).await });
        until("the request to be admitted", || {
            in_flight(&gw.gateway, "loop") == 1
        })
        .await;
        pending.abort();
        conn.abort();
        let log = gw.log.clone();
        until("the access log line", || log.text().contains("status=499")).await;
        let line = gw.log.text();
        assert!(
            line.contains("app=acme/loop version=1 status=499"),
            "{line}"
        );
        assert!(line.contains("error=client_gone"), "{line}");
        until("the sandbox to stop at its deadline", || {
            in_flight(&gw.gateway, "loop") == 0
        })
        .await;
        let m = gw.gateway.metrics();
        assert_eq!(m.version("acme", "loop", 1).unwrap().errors_4xx, 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_held_elsewhere_is_forwarded_past_a_dead_peer_with_one_request_id() {
    within_deadline(async {
        let holder = start(standard_table()).await;
        let dead = dead_address().await;
        let peers = vec![dead, holder.addr.to_string()];
        let edge = start(
            RouteTable::new(vec![
                forwarding("/hello", peers.clone()),
                forwarding("/echo", peers.clone()),
            ])
            .unwrap(),
        )
        .await;
        // Whichever peer a request's key points to first, the dead one is
        // skipped: every request is answered by the holder.
        for i in 0..20 {
            let reply = send(
                edge.addr,
                Request::get("/hello")
                    .header("host", "gw.test")
                    .header("x-dwcp-key", format!("user-{i}"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            assert_eq!(reply.text(), "hello");
            let id = reply.request_id();
            assert!(
                holder.log.text().contains(&id),
                "the holder logs the same request id {id}"
            );
        }
        let edge_metrics = edge.gateway.metrics();
        assert_eq!(edge_metrics.forwarded, 20);
        assert!(edge_metrics.versions.is_empty(), "counted where it ran");
        let served = holder.gateway.metrics();
        assert_eq!(served.version("acme", "hello", 1).unwrap().requests, 20);

        // A POST's body goes along, and its limit is the route's.
        let reply = send(edge.addr, post("/echo", b"ping")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.text().contains("ping"), "{}", reply.text());

        // A request already forwarded once is not sent on again.
        let reply = send(
            edge.addr,
            Request::get("/hello")
                .header("host", "gw.test")
                .header("x-dwcp-forwarded", "1")
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.error()["code"], "not_served_here");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_peer_can_be_reached_the_answer_says_so() {
    within_deadline(async {
        let dead = dead_address().await;
        let edge =
            start(RouteTable::new(vec![forwarding("/hello", vec![dead.clone()])]).unwrap()).await;
        let reply = send(edge.addr, get("/hello")).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        let error = reply.error();
        assert_eq!(error["code"], "no_peer");
        assert!(
            error["message"].as_str().unwrap().contains(&dead),
            "{error}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_fails_hard_is_taken_out_of_the_split() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let table = RouteTable::new(vec![route(
            "/app",
            vec![
                version(&text_app("stable"), 1, 50, t),
                version(&app_source("trap"), 2, 50, t),
            ],
            limits(t),
        )])
        .unwrap();
        let gw = start(table).await;
        let ask = |i: usize| {
            Request::get("/app")
                .header("x-dwcp-key", format!("user-{i}"))
                .body(Full::default())
                .unwrap()
        };
        // Half the keys reach the trapping version until its breaker opens
        // (five failures in a row), then its share goes to the stable one.
        let mut failures = 0;
        for i in 0..40 {
            let r = send(gw.addr, ask(i)).await;
            if r.status == StatusCode::INTERNAL_SERVER_ERROR {
                failures += 1;
            } else {
                assert_eq!(r.text(), "stable");
            }
        }
        assert_eq!(failures, 5, "exactly five failures trip it");
        let m = gw.gateway.metrics();
        assert!(m.version("acme", "app", 2).unwrap().circuit_open);
        assert!(!m.version("acme", "app", 1).unwrap().circuit_open);
        // A tester can still reach it on purpose.
        let pinned = Request::get("/app")
            .header("x-dwcp-version", "2")
            .body(Full::default())
            .unwrap();
        assert_eq!(
            send(gw.addr, pinned).await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_reaches_the_guest_across_a_forwarded_hop_under_each_gateways_span() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let env = app_source("env");
        let holder = start(
            RouteTable::new(vec![route("/env", vec![version(&env, 1, 1, t)], limits(t))]).unwrap(),
        )
        .await;
        let edge = start(
            RouteTable::new(vec![forwarding("/env", vec![holder.addr.to_string()])]).unwrap(),
        )
        .await;
        let traceparent_of = |text: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix("HTTP_TRACEPARENT="))
                .unwrap_or_else(|| panic!("no HTTP_TRACEPARENT in {text}"))
                .to_string()
        };

        // Sent by the client: the trace and flags are kept, the parent the
        // guest sees is neither the client's span nor the same across hops.
        let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let reply = send(
            edge.addr,
            Request::get("/env")
                .header("traceparent", sent)
                .body(Full::default())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let seen = traceparent_of(&reply.text());
        let (trace, parent, flags) = traceparent_fields(&seen);
        assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(flags, "01");
        assert_ne!(parent, "00f067aa0ba902b7", "the holder's own span");

        // Not sent: a trace starts at the edge; the holder continues it.
        let first = traceparent_of(&send(edge.addr, get("/env")).await.text());
        let second = traceparent_of(&send(edge.addr, get("/env")).await.text());
        let (t1, p1, _) = traceparent_fields(&first);
        let (t2, p2, _) = traceparent_fields(&second);
        assert_ne!(t1, t2, "each request starts its own trace");
        assert_ne!(p1, p2);
        assert_ne!(t1, "0".repeat(32));
    })
    .await;
}

/// A `traceparent`'s trace id, parent id and flags, checked for shape.
fn traceparent_fields(value: &str) -> (String, String, String) {
    let fields: Vec<&str> = value.split('-').collect();
    assert_eq!(fields.len(), 4, "{value}");
    assert_eq!(fields[0], "00", "{value}");
    assert_eq!((fields[1].len(), fields[2].len()), (32, 16), "{value}");
    (
        fields[1].to_string(),
        fields[2].to_string(),
        fields[3].to_string(),
    )
}

/// Reads a raw HTTP/1.1 answer's head (through the blank line).
async fn read_head(stream: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before an answer: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Issue 16: a request past its app's concurrency limit is answered before
/// its body is read (a client that announces a body and never sends it
/// gets 503 at once, holding nothing), and one tenant's requests hold at
/// most the gateway's share of buffered body bytes, while another
/// tenant's requests go through; the share is given back when a request
/// ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_comes_before_the_body_and_a_tenant_s_buffered_bytes_are_bounded() {
    use tokio::io::AsyncWriteExt;
    within_deadline(async {
        let t = Duration::from_secs(30);
        let short = Duration::from_secs(2);
        let roomy = RouteLimits {
            max_request_bytes: 4096,
            max_response_bytes: 8192,
            ..limits(t)
        };
        let table = RouteTable::new(vec![
            route(
                "/loop",
                vec![version(&app_source("loop"), 1, 1, short)],
                RouteLimits {
                    max_concurrency: 1,
                    ..limits(short)
                },
            ),
            route(
                "/echo",
                vec![version(&app_source("echo"), 1, 1, t)],
                roomy.clone(),
            ),
            Route {
                app: AppKey::new(
                    Name::new("tenant", "beta").unwrap(),
                    Name::new("app", "other").unwrap(),
                ),
                ..route("/other", vec![version(&app_source("echo"), 1, 1, t)], roomy)
            },
        ])
        .unwrap();
        let gw = start(table).await;
        gw.gateway.set_tenant_buffer_bytes(1000);
        let addr = gw.addr;
        let acme = Name::new("tenant", "acme").unwrap();

        // The loop takes the app's only place.
        let first = tokio::spawn(async move { send(addr, get("/loop")).await });
        until("the first request to be admitted", || {
            in_flight(&gw.gateway, "loop") == 1
        })
        .await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"POST /loop HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 100\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut stalled).await;
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(head.contains("concurrency_limit"), "{head}");
        assert_eq!(gw.gateway.tenant_buffered_bytes(&acme), 0);
        assert_eq!(first.await.unwrap().status, StatusCode::GATEWAY_TIMEOUT);

        // A request announcing 900 bytes holds them while it sends.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /echo HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 900\r\n\r\n")
            .await
            .unwrap();
        slow.write_all(&[b'a'; 100]).await.unwrap();
        until("the slow body to be held", || {
            gw.gateway.tenant_buffered_bytes(&acme) == 900
        })
        .await;
        // The tenant's share is full: another of its requests waits no
        // memory; another tenant's request goes through.
        let refused = send(addr, post("/echo", &[b'b'; 200])).await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.error()["code"], "tenant_buffer_full");
        let other = send(addr, post("/other", &[b'c'; 200])).await;
        assert_eq!(other.status, StatusCode::OK, "{}", other.text());
        // The slow request finishes, and gives its share back.
        slow.write_all(&[b'a'; 800]).await.unwrap();
        let head = read_head(&mut slow).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        until("the share to be given back", || {
            gw.gateway.tenant_buffered_bytes(&acme) == 0
        })
        .await;
        let again = send(addr, post("/echo", &[b'b'; 200])).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    })
    .await
}

/// An example from the repository's `examples/` (binary or text).
fn example(rel: &str) -> Vec<u8> {
    let path = format!("{}/../../examples/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A version of a wasi:http component from `examples/http/`.
fn component(name: &str, number: u64, weight: u32, deadline: Duration) -> RouteVersion {
    let limits = Limits {
        memory_bytes: 1 << 20,
        table_elements: 1_000,
        deadline,
        ..Limits::default()
    };
    let template = engine()
        .prepare_http(&Artifact::new(example(&format!("http/{name}.wat"))), limits)
        .expect("prepare the component");
    RouteVersion {
        number,
        weight,
        handle: template.into(),
    }
}

fn keyed(path: &str, key: usize) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "gw.test")
        .header("x-dwcp-key", format!("user-{key}"))
        .body(Full::default())
        .unwrap()
}

/// The same app as a WAGI module (version 1) and as a wasi:http component
/// (version 2): split, rolled forward, and a failing component taken out
/// of the split by its breaker, as a failing module is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_http_component_and_a_wagi_module_of_the_same_app_behave_alike() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        let wagi = || version_of(example("wagi/hello.wat"), 1, 50, t);
        let table = RouteTable::new(vec![route(
            "/hello",
            vec![wagi(), component("hello", 2, 50, t)],
            limits(t),
        )])
        .unwrap();
        let gw = start(table).await;
        // Split half and half: both answer the same.
        for i in 0..40 {
            let r = send(gw.addr, keyed("/hello", i)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert_eq!(r.text(), "Hello from DWCP!\n");
            assert_eq!(r.headers["content-type"], "text/plain");
            r.request_id();
            if r.headers["x-dwcp-version"] == "2" {
                // Every request in a fresh instance.
                assert_eq!(r.headers["x-requests-seen"], "1");
            }
        }
        let m = gw.gateway.metrics();
        let (v1, v2) = (
            m.version("acme", "hello", 1).unwrap(),
            m.version("acme", "hello", 2).unwrap(),
        );
        assert!(v1.requests > 0 && v2.requests > 0, "{v1:?} {v2:?}");
        assert_eq!(v1.requests + v2.requests, 40);
        assert_eq!(v2.errors_5xx, 0);
        assert!(
            gw.gateway.sandbox_starts_ns().len() >= v2.requests,
            "the component's starts are recorded too"
        );
        let log = gw.log.text();
        assert!(log.contains("app=acme/hello version=2 status=200"), "{log}");

        // Rolled forward: the component takes all the traffic.
        gw.gateway.set_routes(
            RouteTable::new(vec![route(
                "/hello",
                vec![
                    version_of(example("wagi/hello.wat"), 1, 0, t),
                    component("hello", 2, 100, t),
                ],
                limits(t),
            )])
            .unwrap(),
        );
        for i in 0..10 {
            let r = send(gw.addr, keyed("/hello", i)).await;
            assert_eq!(
                (r.status, r.text().as_str()),
                (StatusCode::OK, "Hello from DWCP!\n")
            );
            assert_eq!(r.headers["x-dwcp-version"], "2");
        }

        // A trapping component beside the WAGI version: five failures
        // open its breaker and its share goes to the WAGI one.
        gw.gateway.set_routes(
            RouteTable::new(vec![route(
                "/hello",
                vec![wagi(), component("trap", 3, 50, t)],
                limits(t),
            )])
            .unwrap(),
        );
        let mut failures = 0;
        for i in 0..40 {
            let r = send(gw.addr, keyed("/hello", i)).await;
            if r.status == StatusCode::INTERNAL_SERVER_ERROR {
                assert_eq!(r.error()["code"], "trap", "{}", r.text());
                failures += 1;
            } else {
                assert_eq!(r.text(), "Hello from DWCP!\n");
            }
        }
        assert_eq!(failures, 5, "exactly five failures trip it");
        let m = gw.gateway.metrics();
        assert!(m.version("acme", "hello", 3).unwrap().circuit_open);
        assert!(!m.version("acme", "hello", 1).unwrap().circuit_open);
    })
    .await
}

/// One worker thread: the spinning component runs on it and must yield
/// for the other requests to be answered at all.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_component_is_stopped_at_its_deadline_while_its_worker_keeps_answering() {
    within_deadline(async {
        let t = Duration::from_secs(30);
        // Long enough that twenty answers on a slow machine come first.
        let spin_for = Duration::from_secs(15);
        let table = RouteTable::new(vec![
            route("/hello", vec![component("hello", 1, 1, t)], limits(t)),
            route(
                "/spin",
                vec![component("spin", 1, 1, spin_for)],
                limits(spin_for),
            ),
        ])
        .unwrap();
        let gw = start(table).await;
        let spinning = tokio::spawn(send(gw.addr, get("/spin")));
        until("the spinning guest to run", || {
            in_flight(&gw.gateway, "spin") == 1
        })
        .await;
        for _ in 0..20 {
            let ok = send(gw.addr, get("/hello")).await;
            assert_eq!(
                (ok.status, ok.text().as_str()),
                (StatusCode::OK, "Hello from DWCP!\n")
            );
        }
        assert!(
            !spinning.is_finished(),
            "the spinner must still be running while the others were answered"
        );
        // Stopped at its deadline: the sandbox's own (counted in 1 ms
        // epoch ticks, which a loaded machine stretches) or the route's
        // timeout, whichever comes first; crates/sandbox/tests/http.rs
        // shows the sandbox's own alone.
        let r = spinning.await.unwrap();
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
        let m = gw.gateway.metrics();
        assert_eq!(m.version("acme", "spin", 1).unwrap().timeouts, 1);
        assert_eq!(m.version("acme", "hello", 1).unwrap().requests, 20);
    })
    .await
}
