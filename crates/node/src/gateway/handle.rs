//! One request, from arrival to answer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use cluster::logs::{LogRing, Origin, Stream};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use sandbox::SandboxError;
use sandbox::wagi::WagiRequest;

use super::access_log::AccessEntry;
use super::forward::{FORWARDED_HEADER, forwarded_id};
use super::metrics::{InFlight, VersionMetrics};
use super::microvm::PreparedVersion;
use super::reply::{self, Failure};
use super::routes::{AppKey, key_hash};
use super::trace_context::{TRACEPARENT, TraceContext};
use super::{ERROR_HEADER, Gateway, KEY_HEADER, REQUEST_ID_HEADER, VERSION_COOKIE, VERSION_HEADER};

/// What the access log and the metrics learn about a request as it goes.
#[derive(Default)]
struct Trace {
    app: Option<AppKey>,
    version: Option<u64>,
    metrics: Option<Arc<VersionMetrics>>,
    error: Option<&'static str>,
}

/// A request admitted under its app's concurrency limit; dropping it (when
/// the sandbox is done, which may be after a 504 answer) frees the place.
struct Admission {
    app: Arc<AtomicUsize>,
    _in_flight: InFlight,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.app.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Status logged for a request whose client left before the answer (as
/// nginx does); it is counted as a 4xx and never sent.
pub(crate) const CLIENT_GONE: u16 = 499;

/// A request being answered. Dropping it writes its access-log line and
/// records its metrics — also when the client leaves and hyper drops the
/// request's future, which is then logged with status 499.
struct Done<'a> {
    gateway: &'a Gateway,
    start: Instant,
    id: String,
    parts: Parts,
    trace: Trace,
    /// The status answered, once there is an answer.
    status: Option<u16>,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let status = self.status.unwrap_or_else(|| {
            self.trace.error = Some("client_gone");
            CLIENT_GONE
        });
        if let Some(metrics) = &self.trace.metrics {
            metrics.record(status, elapsed);
        }
        self.gateway.log.write(&AccessEntry {
            request_id: &self.id,
            method: self.parts.method.as_str(),
            path: self.parts.uri.path(),
            app: self.trace.app.as_ref(),
            version: self.trace.version,
            status,
            duration: elapsed,
            error: self.trace.error,
        });
    }
}

impl Gateway {
    /// Answers one request. Never fails: every error is a response, and
    /// every response carries `x-request-id`. Usable without a socket (for
    /// benchmarks and tests); [`super::serve`] calls it per request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = request.into_parts();
        // Before anything reads the headers: no guest (nor a peer it is
        // forwarded to) sees DWCP's credentials.
        super::guard::strip_credentials(&mut parts.headers);
        let id = forwarded_id(&parts).unwrap_or_else(|| self.ids.next());
        // The guest and a forwarded hop see this gateway's span as the
        // parent (`trace_context.rs`); a second `traceparent` is dropped.
        let incoming = parts.headers.get(TRACEPARENT).and_then(|v| v.to_str().ok());
        let context = TraceContext::continue_or_start(incoming, || self.ids.next_u64());
        if let Ok(value) = HeaderValue::from_str(&context.header()) {
            parts.headers.insert(TRACEPARENT, value);
        }
        let mut done = Done {
            gateway: self,
            start: Instant::now(),
            id,
            parts,
            trace: Trace::default(),
            status: None,
        };
        let d = &mut done;
        let mut response = match self.respond(&d.id, &d.parts, body, &mut d.trace).await {
            Ok(response) => response,
            Err(failure) => {
                d.trace.error = Some(failure.code);
                failure.into_response(&d.id)
            }
        };
        if let Ok(value) = HeaderValue::from_str(&d.id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        if d.trace.version.is_none() {
            // A forwarded answer: the serving node said which version
            // answered and, for its own error answers, why.
            let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
            d.trace.version = header(VERSION_HEADER).and_then(|v| v.parse().ok());
            if d.trace.error.is_none() {
                d.trace.error = header(ERROR_HEADER).and_then(reply::known_code);
            }
        }
        // Which version answered (a forwarded answer carries the serving
        // node's).
        if let Some(version) = d.trace.version {
            response
                .headers_mut()
                .insert(VERSION_HEADER, HeaderValue::from(version));
        }
        d.status = Some(response.status().as_u16());
        // `done` logs and counts the request as it drops.
        response
    }

    async fn respond<B>(
        &self,
        id: &str,
        parts: &Parts,
        body: B,
        trace: &mut Trace,
    ) -> Result<Response<Full<Bytes>>, Failure>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let table = self.routes();
        let host = parts
            .uri
            .host()
            .or_else(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()));
        let path = parts.uri.path();
        let Some(found) = table.find(host, path) else {
            self.metrics.count_unrouted();
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                "no_route",
                format!(
                    "no app is served at {}{}",
                    host.unwrap_or("").chars().take(100).collect::<String>(),
                    path.chars().take(200).collect::<String>()
                ),
            ));
        };
        let route = found.route;
        trace.app = Some(route.app.clone());
        let key = match parts.headers.get(KEY_HEADER) {
            Some(value) => key_hash(value.as_bytes()),
            None => key_hash(id.as_bytes()),
        };
        if route.versions.is_empty() && !route.forward.is_empty() {
            return self.forward(id, parts, body, route, key).await;
        }
        let pinned = pinned_version(&parts.headers).and_then(|n| route.version(n));
        let picked = match pinned {
            Some(v) => Some(v),
            None => route
                .pick(key)
                .map(|v| self.past_open_breakers(route, v, Instant::now())),
        };
        let Some(version) = picked else {
            self.metrics.count_no_version();
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_version",
                format!("app {} has no version taking traffic", route.app),
            ));
        };
        trace.version = Some(version.number);
        let metrics = self.metrics.version(&route.app, version.number);
        trace.metrics = Some(metrics.clone());
        let what = format!("app {} version {}", route.app, version.number);

        let limits = &route.limits;
        // Admitted before the body is read: a request past the app's
        // concurrency limit costs no buffering, and the body is read into
        // the tenant's bounded share of buffered bytes.
        let admission = self.admit(&route.app, limits.max_concurrency, &metrics)?;
        let mut held = self.hold_for(&route.app);
        let body = read_body(parts, body, limits.max_request_bytes, &what, &mut held).await?;
        // A slowdown injected for tests (`dwcp up --test-faults`); zero
        // otherwise.
        let delay = self.injected_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }

        let handle = &version.handle;
        let gateway_metrics = &self.metrics;
        let started = |took| gateway_metrics.record_sandbox_start(took);
        if let PreparedVersion::Http(component) = handle {
            // A wasi:http component: the request goes in as HTTP, with
            // its whole path (the route's prefix included).
            let request = http_request(parts, host, body)?;
            let max_body = limits.max_response_bytes;
            let running = async move {
                let _admission = admission;
                component.handle(request, max_body, started).await
            };
            let answer = self
                .run_guest(
                    running,
                    limits.timeout,
                    &route.app,
                    version.number,
                    id,
                    &what,
                )
                .await?;
            let (stdout, stderr) = (answer.stdout.clone(), answer.stderr.clone());
            let reply = reply::from_http(answer, max_body, &what);
            self.log_app(&route.app, version.number, id, |log, origin, at| {
                log.record(origin, Stream::Stdout, &stdout, at);
                log.record(origin, Stream::Stderr, &stderr, at);
                if let Err(failure) = &reply {
                    let line = format!("request failed ({}): {}", failure.code, failure.message);
                    log.record(origin, Stream::Dwcp, line.as_bytes(), at);
                }
            });
            return reply;
        }

        let request = WagiRequest {
            method: parts.method.as_str().to_string(),
            path: found.path_info.to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            route: found.script_name.to_string(),
            host: host.unwrap_or("").to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (n.as_str().to_string(), value)
                })
                .collect(),
            body: body.to_vec(),
        };
        // The guest runs right here, on this worker: a short one is done in
        // the first poll; a long one yields at every epoch tick, so the
        // worker keeps serving other requests. At the timeout the future is
        // dropped, which stops the guest and frees its admission.
        let running = async move {
            let _admission = admission;
            handle.run(&request, limits.warm, started).await
        };
        let output = self
            .run_guest(
                running,
                limits.timeout,
                &route.app,
                version.number,
                id,
                &what,
            )
            .await?;
        let cap = version.handle.limits().output_bytes;
        let answer = reply::from_cgi(&output, cap, limits.max_response_bytes, &what);
        self.log_app(&route.app, version.number, id, |log, origin, at| {
            log.record(origin, Stream::Stderr, &output.stderr, at);
            if let Err(failure) = &answer {
                // Not an HTTP response: what it printed is its log.
                if failure.code == "bad_cgi" {
                    log.record(origin, Stream::Stdout, &output.stdout, at);
                }
                let line = format!("request failed ({}): {}", failure.code, failure.message);
                log.record(origin, Stream::Dwcp, line.as_bytes(), at);
            }
        });
        answer
    }

    /// Runs a guest's future on this worker under the route's `timeout`
    /// (504 past it: the future is dropped, which stops the guest), turning
    /// a panic into a 500 and a sandbox error into its answer, with the
    /// error's details in the app's log.
    async fn run_guest<T>(
        &self,
        running: impl Future<Output = Result<T, SandboxError>>,
        timeout: std::time::Duration,
        app: &AppKey,
        version: u64,
        id: &str,
        what: &str,
    ) -> Result<T, Failure> {
        let running = CatchUnwind(std::pin::pin!(running));
        match tokio::time::timeout(timeout, running).await {
            Err(_) => Err(Failure::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "{what} did not answer within its timeout of {} ms",
                    timeout.as_millis()
                ),
            )),
            Ok(Err(Panicked)) => Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the gateway failed while running {what}; the request id identifies it"),
            )),
            Ok(Ok(Err(error))) => {
                let failure = Failure::from_sandbox(&error, what);
                self.log_app(app, version, id, |log, origin, at| {
                    let line = format!("request failed ({}): {error}", failure.code);
                    log.record(origin, Stream::Dwcp, line.as_bytes(), at);
                });
                Err(failure)
            }
            Ok(Ok(Ok(output))) => Ok(output),
        }
    }

    /// Runs `write` with the app log and the origin of this request's
    /// lines, when there is an app log.
    fn log_app(
        &self,
        app: &AppKey,
        version: u64,
        request_id: &str,
        write: impl FnOnce(&LogRing, &Origin<'_>, u64),
    ) {
        if let Some(log) = self.app_log.get() {
            let origin = Origin {
                tenant: app.tenant.as_str(),
                app: app.app.as_str(),
                version,
                request_id,
            };
            write(log, &origin, cluster::unix_now_ms());
        }
    }

    /// `picked`, unless its circuit breaker is open and another version
    /// with traffic (the heaviest whose breaker lets it) can take the
    /// request; with no such version, `picked` all the same.
    fn past_open_breakers<'r>(
        &self,
        route: &'r super::Route,
        picked: &'r super::RouteVersion,
        now: Instant,
    ) -> &'r super::RouteVersion {
        if route.versions.len() < 2 || self.metrics.version(&route.app, picked.number).allows(now) {
            return picked;
        }
        let mut others: Vec<&super::RouteVersion> = route
            .versions
            .iter()
            .filter(|v| v.number != picked.number && v.weight > 0)
            .collect();
        others.sort_by_key(|v| std::cmp::Reverse(v.weight));
        others
            .into_iter()
            .find(|v| self.metrics.version(&route.app, v.number).allows(now))
            .unwrap_or(picked)
    }

    /// Sends the request to a gateway that holds the route's app.
    async fn forward<B>(
        &self,
        id: &str,
        parts: &Parts,
        body: B,
        route: &super::Route,
        key: u64,
    ) -> Result<Response<Full<Bytes>>, Failure>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let what = format!("app {}", route.app);
        if parts.headers.contains_key(FORWARDED_HEADER) {
            // Placements moved while the request was on its way: do not
            // bounce it around.
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_served_here",
                format!("{what} is not served on this node (it moved); retry"),
            ));
        }
        let limits = &route.limits;
        let mut held = self.hold_for(&route.app);
        let body = read_body(parts, body, limits.max_request_bytes, &what, &mut held).await?;
        self.metrics.count_forwarded();
        self.forwarder.forward(id, parts, body, route, key).await
    }

    /// An empty hold on `app`'s tenant's share of buffered request bytes.
    fn hold_for(&self, app: &AppKey) -> Held {
        Held {
            tenant: app.tenant.to_string(),
            counter: self.buffered(&app.tenant),
            cap: self.tenant_buffer_bytes.load(Ordering::Relaxed),
            bytes: 0,
        }
    }

    /// Admits a request of `app` if fewer than `limit` are running.
    fn admit(
        &self,
        app: &AppKey,
        limit: usize,
        metrics: &Arc<VersionMetrics>,
    ) -> Result<Admission, Failure> {
        let counter = self.admitted(app);
        let admitted = counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "concurrency_limit",
                format!("app {app} is serving its limit of {limit} requests at once; retry later"),
            ));
        }
        Ok(Admission {
            app: counter,
            _in_flight: metrics.enter(),
        })
    }
}

/// The request a wasi:http component sees: the client's method, path and
/// query, headers and (already read) body, with `host` as its authority.
fn http_request(
    parts: &Parts,
    host: Option<&str>,
    body: Bytes,
) -> Result<hyper::http::Request<Bytes>, Failure> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let host = host.filter(|h| !h.is_empty()).unwrap_or("localhost");
    let mut request = hyper::http::Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{host}{path}"))
        .body(body)
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the request's host or path cannot be passed to the app: {e}"),
            )
        })?;
    *request.headers_mut() = parts.headers.clone();
    Ok(request)
}

/// The version a tester asked for: `x-dwcp-version: N`, else a cookie
/// `dwcp-version=N`.
fn pinned_version(headers: &hyper::HeaderMap) -> Option<u64> {
    if let Some(v) = headers.get(VERSION_HEADER) {
        return v.to_str().ok()?.trim().parse().ok();
    }
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == VERSION_COOKIE).then(|| value.trim().parse().ok())?
        })
}

/// Bytes of one request's body held against its tenant's share; dropping
/// it (when the request is done) gives them back.
struct Held {
    tenant: String,
    counter: Arc<AtomicUsize>,
    cap: usize,
    bytes: usize,
}

impl Held {
    /// Holds `total` bytes in all (more than now), if the tenant's share
    /// has room; else 503.
    fn grow_to(&mut self, total: usize) -> Result<(), Failure> {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        let cap = self.cap;
        let room = self
            .counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|&after| after <= cap)
            })
            .is_ok();
        if !room {
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "tenant_buffer_full",
                format!(
                    "tenant {}'s requests hold their share of {cap} bytes of request bodies on this node; retry later",
                    self.tenant
                ),
            ));
        }
        self.bytes = total;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Reads the whole body, refusing with 413 once it passes `limit` bytes (at
/// once when `Content-Length` already says so), held in `held` (the whole
/// `Content-Length` at once, else as it arrives): 503 when the tenant's
/// share of buffered bytes is full.
async fn read_body<B>(
    parts: &Parts,
    body: B,
    limit: usize,
    what: &str,
    held: &mut Held,
) -> Result<Bytes, Failure>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is larger than the {limit} bytes {what} accepts"),
        )
    };
    if let Some(length) = parts.headers.get(CONTENT_LENGTH)
        && let Some(length) = length.to_str().ok().and_then(|l| l.parse::<u64>().ok())
    {
        if length > limit as u64 {
            return Err(too_large());
        }
        // At most `limit`, so it fits a usize.
        held.grow_to(length as usize)?;
    }
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut read = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    held.grow_to(read.len() + data.len())?;
                    read.extend_from_slice(&data);
                }
            }
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
            Err(e) => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request_body",
                    format!("the request body could not be read: {e}"),
                ));
            }
        }
    }
    Ok(read.freeze())
}

/// A panic while a guest's future was polled (a bug on the host side: a
/// guest's own faults are errors, not panics).
struct Panicked;

/// Runs a future, turning a panic inside it into [`Panicked`] so that it
/// ends one request with a 500 instead of the connection's task.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = Pin::new(&mut self.0);
        // After a panic the future is dropped, never polled again, so its
        // possibly broken state is not observed.
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Panicked)),
        }
    }
}
