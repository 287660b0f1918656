//! Raft messages between nodes: HTTP/2 over mutual TLS 1.3.
//!
//! Each node serves `POST /raft/call` (one message, JSON both ways: votes,
//! snapshots, leadership hand-offs) and `POST /raft/appends` (a pipe of
//! appends, see [`crate::append_pipe`]) on its peer address ([`serve`]);
//! [`PeerNetwork`] is the sending side, the replica's [`Transport`]. A peer
//! that cannot be reached, or that is not a member of the cluster's PKI, is
//! reported as unreachable: the engine backs off and retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::append_pipe::{self, PeerBody, PipeChannel};
use replica::{AppendAnswers, Appends, Call, Inbox, LinkError, NodeId, Reply, Transport};

/// Largest body a peer with a certificate may send (snapshots travel in
/// chunks below this).
const MAX_BODY: usize = 64 << 20;
/// Largest body a caller without a certificate may send: a join request.
pub const MAX_STRANGER_BODY: usize = 64 << 10;
/// Longest wait for each step of reaching a peer: the TCP connect, the TLS
/// and HTTP/2 handshakes, a connection's room for one more request, and
/// (on append pipes) the start of the answer.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a connection with requests open pings its peer, and how long
/// it waits for the pong before it closes: a peer gone without a reset (a
/// stopped process, a host that drops packets) would otherwise hold its
/// requests, and the cached connection, forever.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP/2 client side of every connection to a peer: pings while
/// requests are open (not while idle, so an idle connection still closes
/// after the peer port's idle time).
pub(crate) fn http2_client() -> hyper::client::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(PING_EVERY)
        .keep_alive_timeout(PING_TIMEOUT)
        .keep_alive_while_idle(false);
    builder
}

/// `step` within [`CONNECT_TIMEOUT`]; the error is the reason, naming `what`
/// timed out.
pub(crate) async fn within<T, E: std::fmt::Display>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, step).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{what}: no progress within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// How the peer port bounds its connections. Callers without a
/// certificate (strangers: joining nodes, or anyone) share
/// `max_strangers` connections, and when they are all taken the oldest
/// stranger's connection is closed for the new one, so a stranger who
/// holds connections open cannot keep a member's new connection from its
/// handshake. Connections that present a certificate of the cluster's CA
/// leave the strangers' share after the handshake and count against
/// `max_members` instead: the share reserved for members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    pub max_members: usize,
    pub max_strangers: usize,
    /// Time from the TCP accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    pub member_idle: Duration,
    pub stranger_idle: Duration,
    pub member_streams: u32,
    pub stranger_streams: u32,
}

impl Default for PeerLimits {
    /// A quarter of the process's file descriptors for members, a
    /// sixteenth for strangers; a stranger idle for 10 s is closed, a
    /// member for 5 minutes (its channel reconnects on demand).
    fn default() -> PeerLimits {
        let share = crate::serving::fd_share();
        PeerLimits {
            max_members: share,
            max_strangers: (share / 4).max(16),
            handshake_timeout: Duration::from_secs(10),
            member_idle: Duration::from_secs(300),
            stranger_idle: Duration::from_secs(10),
            member_streams: 256,
            stranger_streams: 4,
        }
    }
}

/// What a peer's certificate says: the node it was issued to (its common
/// name `node-<id>`) and the sha256 of its public key (what the state pins
/// for that node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    pub node: Option<NodeId>,
    pub key_sha256: String,
}

impl PeerCert {
    /// Reads the node id and key of a DER certificate; `None` when it does
    /// not parse (it passed the TLS verifier, so that does not happen for
    /// certificates this cluster issued).
    pub fn of(der: &[u8]) -> Option<PeerCert> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let node = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .and_then(|cn| cn.strip_prefix("node-"))
            .and_then(|id| id.parse().ok());
        Some(PeerCert {
            node,
            key_sha256: state::digest_of(cert.public_key().raw),
        })
    }
}

/// One request to a node's peer port.
pub struct PeerRequest {
    pub method: hyper::Method,
    pub path: String,
    pub body: Bytes,
    /// The caller presented a certificate from the cluster's CA. Only the
    /// join routes may be served without one.
    pub authenticated: bool,
    /// What that certificate says, when there is one.
    pub caller: Option<PeerCert>,
}

/// What a node's peer port serves: Raft RPCs, and whatever else the
/// cluster layer adds (joins, forwarded writes, blob copies).
pub trait PeerService: Send + Sync + 'static {
    fn handle(
        &self,
        request: PeerRequest,
    ) -> impl std::future::Future<Output = (StatusCode, Bytes)> + Send;

    /// What serves app requests that other nodes' gateways forward here
    /// (`/ingress/...`, whole, headers and all); `None`: none are served.
    fn ingress(&self) -> Option<Arc<dyn Ingress>> {
        None
    }

    /// Whether the holder of this certificate (already verified against
    /// the cluster's CA) is a member now, checked on every request. The
    /// default takes any certificate of the CA.
    fn admits(&self, caller: &PeerCert) -> bool {
        let _ = caller;
        true
    }

    /// The replica that takes pipes of appends (`/raft/appends`); `None`:
    /// none are served.
    fn inbox(&self) -> Option<Inbox> {
        None
    }
}

/// The path prefix under which the peer port takes forwarded app requests.
pub const INGRESS_PREFIX: &str = "/ingress";

/// Carries a forwarded request's `Host` over HTTP/2, where the connection's
/// authority is the peer's address.
const FORWARDED_HOST: &str = "x-dwcp-host";

/// Serves app requests forwarded from another node (a gateway).
pub trait Ingress: Send + Sync + 'static {
    /// Answers `request`, whose URI is its path and query and whose `Host`
    /// header is the one the client sent.
    fn serve(
        &self,
        request: Request<Full<Bytes>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Full<Bytes>>> + Send + '_>>;
}

/// The path of single Raft messages.
const CALL_PATH: &str = "/raft/call";

/// The Raft messages alone: `POST /raft/call` and `POST /raft/appends`.
pub struct RaftService {
    pub inbox: Inbox,
}

impl PeerService for RaftService {
    async fn handle(&self, request: PeerRequest) -> (StatusCode, Bytes) {
        if !request.authenticated {
            return (
                StatusCode::FORBIDDEN,
                Bytes::from_static(b"a certificate from the cluster's CA is required"),
            );
        }
        if request.path != CALL_PATH {
            return (StatusCode::NOT_FOUND, Bytes::from_static(b"no such RPC"));
        }
        let call: Call = match serde_json::from_slice(&request.body) {
            Ok(call) => call,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("bad RPC body: {e}").into()),
        };
        let answer: Result<Reply, String> = self.inbox.call(call).await.map_err(|e| e.to_string());
        match serde_json::to_vec(&answer) {
            Ok(json) => (StatusCode::OK, json.into()),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string().into()),
        }
    }

    fn inbox(&self) -> Option<Inbox> {
        Some(self.inbox.clone())
    }
}

/// Serves Raft messages for the replica behind `inbox` on `listener` until
/// the task is dropped.
pub fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    inbox: Inbox,
) -> tokio::task::JoinHandle<()> {
    serve_service(listener, tls, Arc::new(RaftService { inbox }))
}

/// Serves `service` on `listener` over TLS until the task is dropped,
/// under the default [`PeerLimits`].
pub fn serve_service<S: PeerService>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: Arc<S>,
) -> tokio::task::JoinHandle<()> {
    serve_service_with(listener, tls, service, PeerLimits::default())
}

/// [`serve_service`] under `limits`. An accept that fails (out of file
/// descriptors) is retried after a pause; the loop never ends by itself.
pub fn serve_service_with<S: PeerService>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: Arc<S>,
    limits: PeerLimits,
) -> tokio::task::JoinHandle<()> {
    let acceptor = TlsAcceptor::from(tls);
    let strangers = Arc::new(StrangerSlots::new(limits.max_strangers));
    let members = Arc::new(tokio::sync::Semaphore::new(limits.max_members));
    tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    tokio::time::sleep(crate::serving::ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let slot = strangers.take();
            let (acceptor, service, members) = (acceptor.clone(), service.clone(), members.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = slot.evicted() => {}
                    () = peer_connection(tcp, acceptor, service, members, limits, &slot) => {}
                }
            });
        }
    })
}

/// One connection to the peer port: the TLS handshake within its
/// timeout, then HTTP/2 under the caller's limits.
async fn peer_connection<S: PeerService>(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    service: Arc<S>,
    members: Arc<tokio::sync::Semaphore>,
    limits: PeerLimits,
    slot: &StrangerSlot,
) {
    let (io, activity) = crate::serving::Watched::new(tcp);
    // A handshake with a certificate not from the cluster's CA fails
    // here: nothing is served to it.
    let Ok(Ok(tls)) = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(io)).await
    else {
        return;
    };
    let caller = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|der| {
            PeerCert::of(der).unwrap_or(PeerCert {
                node: None,
                key_sha256: String::new(),
            })
        });
    let authenticated = caller.is_some();
    // A member leaves the strangers' share for its own.
    let _member = if authenticated {
        let Ok(permit) = members.try_acquire_owned() else {
            return;
        };
        slot.release();
        Some(permit)
    } else {
        None
    };
    let (streams, idle) = if authenticated {
        (limits.member_streams, limits.member_idle)
    } else {
        (limits.stranger_streams, limits.stranger_idle)
    };
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |req| {
        let service = service.clone();
        let caller = caller.clone();
        let busy = in_flight.busy();
        async move {
            let answer = handle(&*service, req, caller).await;
            drop(busy);
            answer
        }
    });
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(streams)
        .max_header_list_size(64 << 10)
        .max_pending_accept_reset_streams(Some(32))
        .max_local_error_reset_streams(Some(256))
        .initial_stream_window_size(append_pipe::STREAM_WINDOW)
        .initial_connection_window_size(append_pipe::CONNECTION_WINDOW)
        .serve_connection(TokioIo::new(tls), service);
    let conn_limits = crate::serving::ConnLimits {
        max_connections: limits.max_members,
        handshake_timeout: limits.handshake_timeout,
        header_timeout: limits.handshake_timeout,
        idle_timeout: idle,
        max_streams: streams,
    };
    let _ = activity.until_idle(served, conn_limits).await;
}

/// The strangers' share of the peer port: at most `max` connections
/// without a certificate; taking one more closes the oldest.
struct StrangerSlots {
    max: usize,
    held: std::sync::Mutex<Held>,
}

/// The strangers' connections, oldest first, each with the signal that
/// closes it.
#[derive(Default)]
struct Held {
    last_id: u64,
    oldest_first: std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>,
}

/// One connection's place in the strangers' share (until it is released
/// by a handshake with a certificate, or dropped).
struct StrangerSlot {
    slots: Arc<StrangerSlots>,
    id: u64,
    evict: Arc<tokio::sync::Notify>,
}

impl StrangerSlots {
    fn new(max: usize) -> StrangerSlots {
        StrangerSlots {
            max: max.max(1),
            held: std::sync::Mutex::new(Held::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(self: &Arc<Self>) -> StrangerSlot {
        let mut held = self.lock();
        while held.oldest_first.len() >= self.max {
            if let Some((_, oldest)) = held.oldest_first.pop_front() {
                // Stored as a permit: the connection ends at its next poll.
                oldest.notify_one();
            }
        }
        held.last_id += 1;
        let id = held.last_id;
        let evict = Arc::new(tokio::sync::Notify::new());
        held.oldest_first.push_back((id, evict.clone()));
        StrangerSlot {
            slots: self.clone(),
            id,
            evict,
        }
    }
}

impl StrangerSlot {
    /// Completes when a newer stranger took this connection's place.
    async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Leaves the strangers' share (the caller showed a certificate).
    fn release(&self) {
        self.slots
            .lock()
            .oldest_first
            .retain(|(id, _)| *id != self.id);
    }
}

impl Drop for StrangerSlot {
    fn drop(&mut self) {
        self.release();
    }
}

async fn handle<S: PeerService>(
    service: &S,
    req: Request<Incoming>,
    caller: Option<PeerCert>,
) -> Result<Response<PeerBody>, hyper::Error> {
    // Membership is checked per request, not only when the connection
    // was made: a node removed since is a stranger from its next request.
    let caller = caller.filter(|c| service.admits(c));
    let authenticated = caller.is_some();
    if let Some(rest) = req.uri().path().strip_prefix(INGRESS_PREFIX)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return Ok(ingress(service, req, authenticated)
            .await
            .map(BodyExt::boxed));
    }
    if req.uri().path() == append_pipe::PATH && req.method() == hyper::Method::POST {
        return Ok(match (authenticated, service.inbox()) {
            (false, _) => reply(StatusCode::FORBIDDEN, "members only".into()),
            (true, None) => reply(StatusCode::NOT_FOUND, "this node takes no appends".into()),
            (true, Some(inbox)) => append_pipe::serve(inbox, req.into_body()),
        });
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // A stranger's body is bounded small before anything else is read.
    let limit = if authenticated {
        MAX_BODY
    } else {
        MAX_STRANGER_BODY
    };
    let body = match http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, e.to_string().into())),
    };
    let (status, body) = service
        .handle(PeerRequest {
            method,
            path,
            body,
            authenticated,
            caller,
        })
        .await;
    Ok(reply(status, body))
}

/// A forwarded app request: only from a member, and only when this node
/// serves apps.
async fn ingress<S: PeerService>(
    service: &S,
    req: Request<Incoming>,
    authenticated: bool,
) -> Response<Full<Bytes>> {
    if !authenticated {
        return whole(StatusCode::FORBIDDEN, "members only".into());
    }
    let Some(ingress) = service.ingress() else {
        return whole(StatusCode::NOT_FOUND, "this node serves no apps".into());
    };
    let (mut parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return whole(StatusCode::PAYLOAD_TOO_LARGE, e.to_string().into()),
    };
    let path = parts.uri.path().strip_prefix(INGRESS_PREFIX).unwrap_or("/");
    let path_and_query = match (path, parts.uri.query()) {
        ("", None) => "/".to_string(),
        ("", Some(q)) => format!("/?{q}"),
        (p, None) => p.to_string(),
        (p, Some(q)) => format!("{p}?{q}"),
    };
    parts.uri = match path_and_query.parse() {
        Ok(uri) => uri,
        Err(e) => return whole(StatusCode::BAD_REQUEST, e.to_string().into()),
    };
    if let Some(host) = parts.headers.remove(FORWARDED_HOST) {
        parts.headers.insert(hyper::header::HOST, host);
    }
    ingress
        .serve(Request::from_parts(parts, Full::new(body)))
        .await
}

fn whole(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

fn reply(status: StatusCode, body: Bytes) -> Response<PeerBody> {
    whole(status, body).map(BodyExt::boxed)
}

/// The sending side of the peer network: the replica's [`Transport`].
/// One HTTP/2 connection per peer for single messages and one for pipes of
/// appends, each opened on first use.
pub struct PeerNetwork {
    tls: Arc<rustls::ClientConfig>,
    calls: Mutex<HashMap<String, Arc<Channel>>>,
    pipes: Mutex<HashMap<String, Arc<PipeChannel>>>,
}

impl PeerNetwork {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> PeerNetwork {
        PeerNetwork {
            tls,
            calls: Mutex::default(),
            pipes: Mutex::default(),
        }
    }

    fn channel<C>(
        &self,
        map: &Mutex<HashMap<String, Arc<C>>>,
        address: &str,
        make: impl FnOnce(String, Arc<rustls::ClientConfig>) -> C,
    ) -> Arc<C> {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(address.to_string())
            .or_insert_with(|| Arc::new(make(address.to_string(), self.tls.clone())))
            .clone()
    }
}

impl Transport for PeerNetwork {
    async fn call(&self, _to: NodeId, address: &str, call: Call) -> Result<Reply, LinkError> {
        let channel = self.channel(&self.calls, address, Channel::new);
        match channel
            .call::<_, Result<Reply, String>>(CALL_PATH, &call)
            .await
        {
            Ok(Ok(reply)) => Ok(reply),
            // The peer's replica has stopped: as good as unreachable.
            Ok(Err(stopped)) => Err(LinkError::Unreachable(stopped)),
            Err(e @ CallError::Request(_)) => Err(LinkError::Failed(e.to_string())),
            Err(e) => Err(LinkError::Unreachable(e.to_string())),
        }
    }

    async fn appends(
        &self,
        _to: NodeId,
        address: &str,
        appends: Appends,
    ) -> Result<AppendAnswers, LinkError> {
        self.channel(&self.pipes, address, PipeChannel::new)
            .open(appends)
            .await
    }
}

/// Why a request to a peer did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer could not be reached or answered badly: retry later.
    #[error("peer {addr}: {reason}")]
    Down { addr: String, reason: String },
    /// The request was sent but no answer came back: the peer may or may
    /// not have acted on it.
    #[error("peer {addr}: the answer was lost: {reason}")]
    Lost { addr: String, reason: String },
    /// The request could not be built here.
    #[error("cannot build the request: {0}")]
    Request(String),
}

/// An HTTP/2 connection over TLS to one peer address, opened on first use
/// and again after a failure; requests share it.
pub struct Channel {
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

/// A TCP connection to a peer's `ip:port` with TLS on top, each step bounded
/// by `CONNECT_TIMEOUT`; the error is the reason, for the caller's own error
/// type. Shared by the call channel and the append pipes.
pub(crate) async fn dial(
    addr: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| "the address is not ip:port".to_string())?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(tls.clone()).connect(name, tcp),
    )
    .await
    .map_err(|_| "TLS handshake timed out".to_string())?
    .map_err(|e| format!("TLS: {e}"))
}

impl Channel {
    pub fn new(addr: String, tls: Arc<rustls::ClientConfig>) -> Channel {
        Channel {
            addr,
            tls,
            sender: tokio::sync::Mutex::new(None),
        }
    }

    fn down(&self, reason: impl ToString) -> CallError {
        CallError::Down {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let tls = dial(&self.addr, &self.tls)
            .await
            .map_err(|e| self.down(e))?;
        let (sender, conn) = within(
            "the HTTP/2 handshake",
            http2_client().handshake(TokioIo::new(tls)),
        )
        .await
        .map_err(|e| self.down(e))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// A sender ready for one more request: a connection that has no room
    /// within [`CONNECT_TIMEOUT`] (a peer that stopped reading) is dropped,
    /// so the next request opens a new one.
    async fn ready_sender(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let mut sender = self.sender().await?;
        if let Err(e) = within("waiting for room on the connection", sender.ready()).await {
            *self.sender.lock().await = None;
            return Err(self.down(e));
        }
        Ok(sender)
    }

    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let mut slot = self.sender.lock().await;
        if let Some(s) = slot.as_ref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        let fresh = self.connect().await?;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Sends `body` to `path` with `method`; returns the status and body.
    pub async fn request(
        &self,
        method: hyper::Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), CallError> {
        #[cfg(feature = "fault-injection")]
        if crate::fault::drops(&self.addr) {
            return Err(self.down("dropped by the test's fault injection"));
        }
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(body))
            .map_err(|e| CallError::Request(e.to_string()))?;
        let mut sender = self.ready_sender().await?;
        let outcome = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        }
        .await;
        match outcome {
            Ok(x) => Ok(x),
            Err(e) => {
                *self.sender.lock().await = None;
                Err(CallError::Lost {
                    addr: self.addr.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Forwards an app request (its URI the path and query) to the peer's
    /// ingress and returns the peer's answer. `Down` means it was surely
    /// not sent; `Lost`, that it may have been.
    pub async fn forward(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Bytes>, CallError> {
        #[cfg(feature = "fault-injection")]
        if crate::fault::drops(&self.addr) {
            return Err(self.down("dropped by the test's fault injection"));
        }
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = format!("https://{}{INGRESS_PREFIX}{path}", self.addr)
            .parse()
            .map_err(|e| CallError::Request(format!("{e}")))?;
        if let Some(host) = parts.headers.remove(hyper::header::HOST) {
            parts.headers.insert(FORWARDED_HOST, host);
        }
        let mut sender = self.ready_sender().await?;
        let outcome = async {
            let response = sender
                .send_request(Request::from_parts(parts, body))
                .await?;
            let (head, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Response::from_parts(head, bytes))
        }
        .await;
        match outcome {
            Ok(response) => Ok(response),
            Err(e) => {
                *self.sender.lock().await = None;
                Err(CallError::Lost {
                    addr: self.addr.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// POSTs `rpc` as JSON to `path` and decodes a 200 answer as JSON;
    /// any other status is the peer being down or refusing.
    pub async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        rpc: &Q,
    ) -> Result<A, CallError> {
        let body = serde_json::to_vec(rpc).map_err(|e| CallError::Request(e.to_string()))?;
        let (status, bytes) = self
            .request(hyper::Method::POST, path, Bytes::from(body))
            .await?;
        if status != StatusCode::OK {
            return Err(self.down(format!("{status}: {}", String::from_utf8_lossy(&bytes))));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.down(format!("bad answer: {e}")))
    }
}
