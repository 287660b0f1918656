//! The gateway: HTTP ingress that routes each request to a version of an
//! app and runs it in a sandbox, WAGI style.
//!
//! A request goes ([`Gateway::handle`]): it gets a request id; the current
//! [`RouteTable`] finds its route by host and path prefix (404 when none);
//! a version is [`pick`]ed by weight from the hash of its `x-dwcp-key`
//! header, or of its request id when it has none (a tester's
//! `x-dwcp-version: N` header or `dwcp-version=N` cookie names one
//! instead); its body is read up to
//! the route's limit (413); it is admitted under the app's concurrency limit
//! (503 at once when full); the version runs it, on the worker polling the
//! request, on a never-used instance of its cold pool, or a kept-alive one
//! of its warm pool when the route says so, as a WASI command with the
//! request in CGI variables and stdin; its stdout becomes the response. No answer within the route's timeout is a 504, a failing app a
//! 500 (see `reply.rs` for every code). Every response carries
//! `x-request-id`; every request is one [`AccessLog`] line and is counted in
//! [`Metrics`]. What the guest wrote to stderr, its stdout when that was
//! not a CGI response, and why a request failed (a trap's details, which
//! the 500 answer leaves out) become lines of the app's log
//! ([`Gateway::set_app_log`], `cluster::logs`).
//! Every request goes on to its guest or a forwarded hop with a W3C
//! `traceparent` whose parent is this gateway's span ([`TraceContext`]).
//!
//! A route whose app this node does not hold (the scheduler placed it on
//! other nodes of the region) lists those nodes' gateways instead of
//! versions: the request is forwarded to one of them (`forward.rs`).
//!
//! [`serve`] runs it on a TCP listener, HTTP/1.1 and HTTP/2 (prior
//! knowledge) on the same port.

mod access_log;
mod app;
mod breaker;
mod exposition;
mod forward;
mod guard;
mod handle;
mod metrics;
mod microvm;
mod reply;
mod request_id;
mod routes;
mod serve;
mod trace_context;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub use access_log::{AccessEntry, AccessLog};
pub use app::VersionHandle;
pub use forward::{CONNECT_TIMEOUT, FORWARDED_HEADER, HttpPeers, PeerError, Peers};
pub use metrics::{
    HistogramSnapshot, LATENCY_BUCKETS_US, LatencySnapshot, Metrics, MetricsSnapshot,
    START_BUCKETS_NS, VersionSnapshot,
};
pub use microvm::{MicroVmVersion, PreparedVersion};
pub use routes::{
    AppKey, Match, Route, RouteError, RouteLimits, RouteTable, RouteVersion, key_hash, pick,
};
pub use serve::{serve, serve_with};
pub use trace_context::{TRACEPARENT, TraceContext};

use request_id::RequestIds;
pub(crate) use request_id::random_u64;

/// The header whose value chooses the version of a weighted route; the
/// same value always reaches the same version of the same table.
pub const KEY_HEADER: &str = "x-dwcp-key";
/// A header that sends a request to one version of its app, whatever the
/// weights (for testers: the version must be one the route serves, with
/// any weight, 0 included).
pub const VERSION_HEADER: &str = "x-dwcp-version";
/// The cookie doing what [`VERSION_HEADER`] does, for browsers.
pub const VERSION_COOKIE: &str = "dwcp-version";
/// The header carrying each response's request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The header carrying the code of the gateway's own error answers (the
/// body's `error.code`), so that a forwarding node logs it too.
pub const ERROR_HEADER: &str = "x-dwcp-error";

/// A gateway: the current route table, the per-app admission counters,
/// metrics and the access log. Share it in an `Arc`.
pub struct Gateway {
    routes: RwLock<Arc<RouteTable>>,
    /// Requests admitted per app and not finished yet; kept across table
    /// swaps so that a swap never lets an app past its limit.
    admitted: RwLock<HashMap<AppKey, Arc<AtomicUsize>>>,
    metrics: Arc<Metrics>,
    log: AccessLog,
    ids: RequestIds,
    forwarder: forward::Forwarder,
    /// Where the guests' stderr (and non-HTTP stdout) goes, once set.
    app_log: std::sync::OnceLock<Arc<cluster::logs::LogRing>>,
    /// A delay held before every request runs, in µs: 0 unless a test
    /// injects a slowdown (`agent::TestFaults`).
    injected_delay_us: std::sync::atomic::AtomicU64,
    /// Bytes of request bodies held per tenant (read, or announced by
    /// `Content-Length` and being read), across all its apps.
    buffered: RwLock<HashMap<state::Name, Arc<AtomicUsize>>>,
    /// The most bytes of request bodies one tenant may hold at once.
    tenant_buffer_bytes: AtomicUsize,
}

/// The default of [`Gateway::set_tenant_buffer_bytes`]: 256 MiB of request
/// bodies per tenant on one gateway (four of the largest bodies a version
/// may accept), so one tenant's uploads cannot take a node's memory.
pub const TENANT_BUFFER_BYTES: usize = 256 << 20;

impl Gateway {
    /// A gateway serving `table`, logging to `log`.
    pub fn new(table: RouteTable, log: AccessLog) -> Arc<Gateway> {
        Arc::new(Gateway {
            routes: RwLock::new(Arc::new(table)),
            admitted: RwLock::new(HashMap::new()),
            metrics: Arc::new(Metrics::default()),
            log,
            ids: RequestIds::new(),
            forwarder: forward::Forwarder::new(),
            app_log: std::sync::OnceLock::new(),
            injected_delay_us: std::sync::atomic::AtomicU64::new(0),
            buffered: RwLock::new(HashMap::new()),
            tenant_buffer_bytes: AtomicUsize::new(TENANT_BUFFER_BYTES),
        })
    }

    /// Sets the most bytes of request bodies one tenant's requests may
    /// hold at once on this gateway (default [`TENANT_BUFFER_BYTES`]);
    /// past it a request is answered 503 `tenant_buffer_full`.
    pub fn set_tenant_buffer_bytes(&self, bytes: usize) {
        self.tenant_buffer_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of request bodies `tenant`'s requests hold on this gateway now.
    pub fn tenant_buffered_bytes(&self, tenant: &state::Name) -> usize {
        self.buffered(tenant).load(Ordering::Acquire)
    }

    /// The counter of request-body bytes held for `tenant`.
    fn buffered(&self, tenant: &state::Name) -> Arc<AtomicUsize> {
        counter(&self.buffered, tenant)
    }

    /// Keeps what guests write to stderr (and to stdout, when it is not an
    /// HTTP response) and why requests failed in `ring`, one line each with
    /// the request id, app, version and node. Set once; without it the
    /// output is dropped.
    pub fn set_app_log(&self, ring: Arc<cluster::logs::LogRing>) {
        let _ = self.app_log.set(ring);
    }

    /// Holds every request `delay` before running it (tests only: a node
    /// that slows down; see `agent::TestFaults`).
    pub fn set_injected_delay(&self, delay: std::time::Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.injected_delay_us
            .store(us, std::sync::atomic::Ordering::Relaxed);
    }

    fn injected_delay(&self) -> std::time::Duration {
        std::time::Duration::from_micros(
            self.injected_delay_us
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// The table requests are routed by now.
    pub fn routes(&self) -> Arc<RouteTable> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the route table; requests that arrive from now on use
    /// `table`, requests already routed finish under the old one.
    pub fn set_routes(&self, table: RouteTable) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
    }

    /// Sends requests for apps that other nodes hold through `peers`
    /// (by default plain HTTP to the addresses routes name).
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        self.forwarder.set_peers(peers);
    }

    /// The metrics now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Each version's request latency histogram (for `/metrics`).
    pub fn latency_histograms(&self) -> Vec<((String, String, u64), HistogramSnapshot)> {
        self.metrics.latency_histograms()
    }

    /// How long fresh sandboxes took to start (cold routes), in
    /// [`START_BUCKETS_NS`].
    pub fn sandbox_start_histogram(&self) -> HistogramSnapshot {
        self.metrics.sandbox_start_histogram()
    }

    /// Every fresh sandbox start so far, in ns (two significant digits).
    pub fn sandbox_starts_ns(&self) -> hdrhistogram::Histogram<u64> {
        self.metrics.sandbox_starts_ns()
    }

    /// Each version's latencies since the process started, in the
    /// report's mergeable histogram.
    pub fn log_histograms(&self) -> Vec<((String, String, u64), state::LogHistogram)> {
        self.metrics.log_histograms()
    }

    /// Each version's sample of latencies since the last call (µs), for
    /// the node's report.
    pub fn take_recent_latencies(&self) -> Vec<((String, String, u64), Vec<u32>)> {
        self.metrics.take_recent_latencies()
    }

    /// The admission counter of `app`.
    fn admitted(&self, app: &AppKey) -> Arc<AtomicUsize> {
        counter(&self.admitted, app)
    }
}

/// The counter of `key` in `counters`, made at 0 the first time.
fn counter<K: Clone + Eq + std::hash::Hash>(
    counters: &RwLock<HashMap<K, Arc<AtomicUsize>>>,
    key: &K,
) -> Arc<AtomicUsize> {
    if let Some(c) = counters.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return c.clone();
    }
    counters
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_default()
        .clone()
}
