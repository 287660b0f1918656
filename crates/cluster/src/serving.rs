//! Listening sockets and plain-HTTP serving, shared by every server DWCP
//! runs: the peer port binds with [`listen`]; the HTTP API (`ops`) and the
//! gateway (`node`) serve with [`serve_plain`].
//!
//! Every server holds against a client that opens connections and then
//! says nothing, says it slowly, or never leaves ([`ConnLimits`]): the
//! number of connections is capped (past it, new ones are closed at
//! once), a connection that sends no byte within the handshake timeout
//! or sits idle (no request in flight, no byte either way) past the idle
//! timeout is closed, a request's head must be whole within the header
//! timeout of its first byte, and HTTP/2 streams per connection are
//! bounded. The header timeout is ours ([`Activity`]), not hyper's:
//! hyper's starts as soon as a keep-alive connection waits for its next
//! request, so it would close idle clients long before the idle timeout. An accept that
//! fails (out of file descriptors, `EMFILE`) never ends the loop: it
//! backs off and accepts again. The gateway's server also parks quiet
//! HTTP/1.1 connections on their bare sockets ([`serve_plain_parking`],
//! `park.rs`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

pub use crate::park::{PARK_AFTER, parked_total, serve_plain_parking};

/// Pause after a failed accept (e.g. out of file descriptors) before the
/// next one, so the loop does not spin while descriptors are short.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How a server bounds its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; past it a new one is closed at once.
    pub max_connections: usize,
    /// How long a new connection may take to send its first bytes (and,
    /// on TLS ports, to finish its handshake).
    pub handshake_timeout: Duration,
    /// How long a client may take to send a request's head (HTTP/1.1),
    /// from its first byte; waiting for a next request is idle, not this.
    pub header_timeout: Duration,
    /// A connection with no request in flight and no byte either way for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams: u32,
}

impl ConnLimits {
    /// The defaults of the API (and of [`serve_plain`]): at most a
    /// quarter of the process's file descriptors (so the peer port, the
    /// store and outgoing connections keep theirs), 10 s to start, 30 s
    /// for headers, 2 minutes idle, 128 streams.
    pub fn http() -> ConnLimits {
        ConnLimits {
            max_connections: fd_share(),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_streams: 128,
        }
    }

    /// The gateway's: its clients are the many idle keep-alive
    /// connections a node is meant to hold, so it may take every
    /// descriptor but [`FD_RESERVE`] (the store, the other listeners, the
    /// peer port's connections); idle ones are closed after 5 minutes.
    /// The rest as [`ConnLimits::http`].
    pub fn gateway() -> ConnLimits {
        let files = usize::try_from(fd_limit()).unwrap_or(usize::MAX);
        ConnLimits {
            max_connections: files.saturating_sub(FD_RESERVE).max(64),
            idle_timeout: Duration::from_secs(300),
            ..ConnLimits::http()
        }
    }
}

/// Descriptors the gateway leaves to everything else in the process.
pub const FD_RESERVE: usize = 256;

/// This process's soft limit on open files (1,024 when it cannot be read).
fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok { limit.rlim_cur } else { 1024 }
}

/// A quarter of this process's open-file limit, between 64 and 16,384.
pub fn fd_share() -> usize {
    usize::try_from(fd_limit() / 4)
        .unwrap_or(16_384)
        .clamp(64, 16_384)
}

/// Listens on `addr` with `SO_REUSEADDR`, so that a restarted server comes
/// back on the port its clients know even while old connections linger.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The address of the client a request came from, in the request's
/// extensions (for rate limits and audit records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `listener` under
/// [`ConnLimits::http`], answering every request with `handler`, until
/// the returned task is aborted; aborting it also closes the connections
/// it accepted.
///
/// The body type is the handler's: [`http_body_util::Full`] for whole
/// answers, or a streaming body (the API's server-sent events).
pub fn serve_plain<H, F, B>(listener: TcpListener, handler: H) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_plain_with(listener, ConnLimits::http(), handler)
}

/// A server's TLS settings (the API's, `dwcp up --api-tls`; see
/// [`crate::tls::api_server_config`]).
pub type ServerTls = Arc<rustls::ServerConfig>;

/// [`serve_plain`] under `limits`.
pub fn serve_plain_with<H, F, B>(
    listener: TcpListener,
    limits: ConnLimits,
    handler: H,
) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(listener, None, limits, handler)
}

/// Serves HTTP/1.1 and HTTP/2 (by ALPN) over TLS 1.3 on `listener`, under
/// [`ConnLimits::http`]: the handshake must end within the handshake
/// timeout, and everything else is as [`serve_plain`].
pub fn serve_tls<H, F, B>(listener: TcpListener, tls: ServerTls, handler: H) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(listener, Some(tls), ConnLimits::http(), handler)
}

fn serve_with<H, F, B>(
    listener: TcpListener,
    tls: Option<ServerTls>,
    limits: ConnLimits,
    handler: H,
) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    accept_loop(listener, limits.max_connections, move |tcp| {
        connection(tcp, tls.clone(), limits, handler.clone())
    })
}

/// Accepts connections on `listener` and serves each with `serve` in a
/// task of its own, at most `max_connections` at once.
pub(crate) fn accept_loop<C, Fut>(
    listener: TcpListener,
    max_connections: usize,
    serve: C,
) -> JoinHandle<()>
where
    C: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        // Past the cap the connection is closed at once
                        // (dropped), which frees its descriptor.
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            continue;
                        };
                        let served = serve(tcp);
                        connections.spawn(async move {
                            served.await;
                            drop(slot);
                        });
                    }
                    Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
                },
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

/// Serves one connection until the client leaves or it times out.
async fn connection<H, F, B>(tcp: TcpStream, tls: Option<ServerTls>, limits: ConnLimits, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok().map(PeerAddr);
    let (io, activity) = Watched::new(tcp);
    // Boxed, each arm at its own size: inline, every connection's task
    // took the largest arm's layout (the TLS handshake and hyper over a
    // TLS stream, about 9 KiB in a release build, heap-profiled), a plain
    // port's idle keep-alive clients included.
    match tls {
        None => Box::pin(serve_io(io, activity, peer, limits, handler)).await,
        Some(tls) => {
            Box::pin(async move {
                let accept = tokio_rustls::TlsAcceptor::from(tls).accept(io);
                if let Ok(Ok(io)) = tokio::time::timeout(limits.handshake_timeout, accept).await {
                    serve_io(io, activity, peer, limits, handler).await;
                }
            })
            .await;
        }
    }
}

/// Serves HTTP on an open (plain or TLS) connection.
pub(crate) async fn serve_io<I, H, F, B>(
    io: I,
    activity: Arc<Activity>,
    peer: Option<PeerAddr>,
    limits: ConnLimits,
    handler: H,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    activity.time_heads();
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (busy, answer) = begin(req, peer, &in_flight, &handler);
        async move {
            let answer = answer.await;
            drop(busy);
            Ok::<_, Infallible>(answer)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(hyper_header_timeout(limits));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(64 << 10)
        .max_pending_accept_reset_streams(Some(32))
        .max_local_error_reset_streams(Some(256));
    let served = builder.serve_connection(TokioIo::new(io), service);
    // A client that breaks off mid-request is not an error of ours; one
    // that idles is closed by dropping the connection.
    let _ = activity.until_idle(served, limits).await;
}

/// hyper's own header-read timeout, a backstop only. hyper starts it as
/// soon as an HTTP/1.1 connection waits for a request's head, which on a
/// keep-alive connection is right after the last answer: at the header
/// timeout it would close every idle client long before the idle timeout.
/// The header timeout proper is [`Activity::expired`]'s, counted from the
/// head's first byte; past the idle timeout, hyper's only bounds a head
/// whose bytes all came while an earlier request was in flight.
pub(crate) fn hyper_header_timeout(limits: ConnLimits) -> Duration {
    limits.idle_timeout.saturating_add(limits.header_timeout)
}

/// Starts answering `req` with `handler`: the client's address goes in
/// its extensions and the request is in flight until the [`Busy`] drops.
pub(crate) fn begin<H, F>(
    mut req: Request<Incoming>,
    peer: Option<PeerAddr>,
    activity: &Arc<Activity>,
    handler: &H,
) -> (Busy, F)
where
    H: Fn(Request<Incoming>) -> F,
{
    if let Some(peer) = peer {
        req.extensions_mut().insert(peer);
    }
    if req.version() == hyper::Version::HTTP_2 {
        activity.heads_timed.store(false, Ordering::Relaxed);
    }
    let busy = activity.busy();
    (busy, handler(req))
}

/// What a [`Watched`] connection did: when it last moved a byte, whether
/// it moved any, and how many requests are in flight on it.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    bytes: AtomicU64,
    /// Bytes read from the client (of `bytes`).
    read_bytes: AtomicU64,
    /// `read_bytes` when the last answer was done: equal to it when
    /// every byte read belonged to an answered request.
    read_at_rest: AtomicU64,
    /// Whether the last write found the socket full (hyper then holds
    /// bytes it has not written yet).
    write_blocked: AtomicBool,
    in_flight: AtomicUsize,
    /// When (ms after `start`) the client began a request's head: the
    /// first byte read with no request in flight, until a request begins
    /// ([`NO_HEAD`] while none is begun). Only while `heads_timed`.
    head_from_ms: AtomicU64,
    /// Whether request heads are timed: on from [`serve_io`] and the
    /// parking server (HTTP/1.1 or not yet known), off once a stream
    /// begins with HTTP/2 ([`begin`]: frames between its streams are no
    /// request head) and on the peer port (HTTP/2 only).
    heads_timed: AtomicBool,
}

/// [`Activity::head_from_ms`] while no request head is begun.
const NO_HEAD: u64 = u64::MAX;

/// Marks a request in flight until dropped.
pub struct Busy(Arc<Activity>);

impl Busy {
    /// The connection's activity.
    pub(crate) fn activity(&self) -> &Activity {
        &self.0
    }
}

/// How often a connection's timeouts are checked: a quarter of the
/// shortest one, at least 50 ms.
pub(crate) fn check_interval(limits: ConnLimits) -> Duration {
    let shortest = limits
        .handshake_timeout
        .min(limits.idle_timeout)
        .min(limits.header_timeout);
    (shortest / 4).max(Duration::from_millis(50))
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// Milliseconds since the connection was accepted.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn touch(&self, n: usize) {
        if n > 0 {
            self.last_ms.store(self.now_ms(), Ordering::Relaxed);
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Notes bytes read: with no request in flight on an HTTP/1.1
    /// connection they begin a request's head, unless one is begun.
    fn read_some(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.heads_timed.load(Ordering::Relaxed) {
            let _ = self.head_from_ms.compare_exchange(
                NO_HEAD,
                self.now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Times request heads from now on (the header timeout; HTTP/1.1).
    pub(crate) fn time_heads(&self) {
        self.heads_timed.store(true, Ordering::Relaxed);
    }

    /// Marks a request in flight (not idle, however long it takes); its
    /// head is whole.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_from_ms.store(NO_HEAD, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Marks the end of an answer: every byte read so far belonged to
    /// answered requests, unless more arrive.
    pub(crate) fn at_rest(&self) {
        let read = self.read_bytes.load(Ordering::Relaxed);
        self.read_at_rest.store(read, Ordering::Relaxed);
    }

    /// Whether an HTTP/1.1 connection may be taken back from hyper and
    /// parked: no request or answer in flight, no byte read since the last
    /// answer was done (hyper has no request begun), no write waiting for
    /// the socket (hyper has nothing unwritten), and no byte either way
    /// for `quiet`.
    pub(crate) fn parkable(&self, quiet: Duration) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0
            || self.write_blocked.load(Ordering::Relaxed)
            || self.read_bytes.load(Ordering::Relaxed) != self.read_at_rest.load(Ordering::Relaxed)
        {
            return false;
        }
        let now_ms = self.start.elapsed().as_millis();
        let last = u128::from(self.last_ms.load(Ordering::Relaxed));
        now_ms.saturating_sub(last) >= quiet.as_millis()
    }

    /// When the connection expires if nothing moves before: the end of
    /// the handshake timeout while no byte has moved, else the idle
    /// timeout after the last byte, or the header timeout after a begun
    /// head's first byte if that is sooner.
    pub(crate) fn expiry(&self, limits: ConnLimits) -> Instant {
        if self.bytes.load(Ordering::Relaxed) == 0 {
            return self.start + limits.handshake_timeout;
        }
        let idle = self.start
            + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
            + limits.idle_timeout;
        match self.head_from_ms.load(Ordering::Relaxed) {
            NO_HEAD => idle,
            head => idle.min(self.start + Duration::from_millis(head) + limits.header_timeout),
        }
    }

    /// Whether the connection should be closed now: no byte within the
    /// handshake timeout, a request's head begun and not whole within the
    /// header timeout, or idle past the idle timeout.
    pub(crate) fn expired(&self, limits: ConnLimits) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return false;
        }
        let now_ms = self.start.elapsed().as_millis();
        if self.bytes.load(Ordering::Relaxed) == 0 {
            return now_ms > limits.handshake_timeout.as_millis();
        }
        let head = self.head_from_ms.load(Ordering::Relaxed);
        if head != NO_HEAD
            && now_ms.saturating_sub(u128::from(head)) > limits.header_timeout.as_millis()
        {
            return true;
        }
        let last = u128::from(self.last_ms.load(Ordering::Relaxed));
        now_ms.saturating_sub(last) > limits.idle_timeout.as_millis()
    }

    /// Runs `served` until it ends, or until the connection is
    /// [`expired`](Self::expired) (then `None`: the connection is dropped).
    pub async fn until_idle<T>(
        &self,
        served: impl Future<Output = T>,
        limits: ConnLimits,
    ) -> Option<T> {
        let check = check_interval(limits);
        tokio::pin!(served);
        loop {
            tokio::select! {
                done = &mut served => return Some(done),
                () = tokio::time::sleep(check) => {
                    if self.expired(limits) {
                        return None;
                    }
                }
            }
        }
    }
}

/// A stream that records its [`Activity`].
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub fn new(inner: T) -> (Watched<T>, Arc<Activity>) {
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            read_at_rest: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            head_from_ms: AtomicU64::new(NO_HEAD),
            heads_timed: AtomicBool::new(false),
        });
        (
            Watched {
                inner,
                activity: activity.clone(),
            },
            activity,
        )
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len() - before;
            self.activity.touch(n);
            self.activity
                .read_bytes
                .fetch_add(n as u64, Ordering::Relaxed);
            if n > 0 {
                self.activity.read_some();
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity
            .write_blocked
            .store(polled.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.touch(n);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a connection's task holds while its client idles.
    const SMALL_TASK_BYTES: usize = 1024;

    /// A connection's future is its task's state for as long as the
    /// client stays: it must hold boxes of hyper's connection, not their
    /// layout (an idle keep-alive client cost about 9 KiB more for it).
    #[tokio::test]
    async fn a_connection_task_holds_no_server_inline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = |_req: Request<Incoming>| async {
            Response::new(http_body_util::Full::new(Bytes::new()))
        };
        let plain = connection(
            TcpStream::connect(addr).await.unwrap(),
            None,
            ConnLimits::http(),
            handler,
        );
        let parking = crate::park::connection(
            TcpStream::connect(addr).await.unwrap(),
            ConnLimits::gateway(),
            handler,
        );
        for (server, bytes) in [
            ("plain", std::mem::size_of_val(&plain)),
            ("parking", std::mem::size_of_val(&parking)),
        ] {
            assert!(
                bytes <= SMALL_TASK_BYTES,
                "a {server} connection's task holds {bytes} bytes"
            );
        }
    }
}
