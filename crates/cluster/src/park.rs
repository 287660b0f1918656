//! Parked connections: an HTTP/1.1 keep-alive connection that has been
//! quiet for a while is taken back from hyper and waits on its bare socket
//! for the client's next request, so that an idle client costs its task
//! and socket, not hyper's buffers.
//!
//! hyper 1 gives every HTTP/1 connection a write buffer of 8 KiB when it
//! starts and reserves a read buffer of 8 KiB before every read, so an
//! idle connection waiting for its next request holds 16 KiB (neither size
//! can be set lower). Here, once a connection has no request or answer in
//! flight, no request begun, nothing unwritten and no byte either way for
//! [`PARK_AFTER`], hyper is asked to end it without closing the socket
//! (`graceful_shutdown` on an idle connection closes hyper's side only;
//! `poll_without_shutdown` hands the socket back), its buffers are freed,
//! and the task waits for the socket to become readable; the next request
//! is served by a new hyper connection on the same socket. The client sees
//! one keep-alive connection throughout.
//!
//! Only the plain gateway parks ([`serve_plain_parking`]); a connection
//! that opens with (a prefix of) the HTTP/2 preface is served by the
//! HTTP/1.1-and-HTTP/2 server for its whole life, as
//! [`crate::serving::serve_plain_with`] serves it. The connection limits
//! are the same: the cap, the handshake and idle timeouts (measured across
//! parks), the header timeout.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::serving::{Activity, Busy, ConnLimits, PeerAddr, Watched, accept_loop, begin, serve_io};

/// How long an HTTP/1.1 connection stays quiet (no request in flight, no
/// byte either way) before it is parked. Long against a client's gap
/// between requests in a burst, so a busy connection is never parked
/// between two of them.
pub const PARK_AFTER: Duration = Duration::from_secs(2);

/// Connections parked so far in this process (every park counts).
static PARKED: AtomicU64 = AtomicU64::new(0);

/// How many times a connection was parked in this process so far.
pub fn parked_total() -> u64 {
    PARKED.load(Ordering::Relaxed)
}

/// The HTTP/2 connection preface a prior-knowledge client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// [`crate::serving::serve_plain_with`], parking quiet HTTP/1.1
/// connections (see the module's documentation). The handler must be
/// `Unpin` (a closure over `Arc`s is), so that hyper's connection can
/// hand its socket back.
pub fn serve_plain_parking<H, F, B>(
    listener: TcpListener,
    limits: ConnLimits,
    handler: H,
) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + Unpin + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    accept_loop(listener, limits.max_connections, move |tcp| {
        connection(tcp, limits, handler.clone())
    })
}

/// What a connection's next bytes are.
enum Next {
    /// The client left, or the connection expired while waiting.
    Gone,
    /// HTTP/1.1: served by hyper until quiet, then parked again.
    Http1,
    /// The HTTP/2 preface, or too few bytes to tell yet.
    Other,
}

/// Serves one connection until the client leaves or it times out, parked
/// whenever it is quiet.
pub(crate) async fn connection<H, F, B>(tcp: TcpStream, limits: ConnLimits, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + Unpin + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok().map(PeerAddr);
    let (mut io, activity) = Watched::new(tcp);
    loop {
        match next_bytes(io.get_ref(), &activity, limits).await {
            Next::Gone => return,
            Next::Other => {
                // Boxed, as below: the task's own state stays small.
                Box::pin(serve_io(io, activity, peer, limits, handler)).await;
                return;
            }
            Next::Http1 => {}
        }
        // Boxed: the task holds hyper's connection (and its buffers) only
        // while it serves, not while parked.
        let served = Box::pin(serve_until_quiet(
            io,
            activity.clone(),
            peer,
            limits,
            handler.clone(),
        ))
        .await;
        match served {
            Some(back) => io = back,
            None => return,
        }
    }
}

/// Waits, on the bare socket, for the client's next bytes (without
/// reading them), closing the connection when it expires. Parked, nothing
/// moves, so one timer until the expiry suffices (no periodic check: a
/// node holding many parked connections wakes for none of them).
async fn next_bytes(tcp: &TcpStream, activity: &Activity, limits: ConnLimits) -> Next {
    let mut head = [0u8; H2_PREFACE.len()];
    let expiry = tokio::time::Instant::from_std(activity.expiry(limits));
    tokio::select! {
        peeked = tcp.peek(&mut head) => match peeked {
            Ok(0) | Err(_) => Next::Gone,
            Ok(n) if H2_PREFACE.starts_with(&head[..n]) => Next::Other,
            Ok(_) => Next::Http1,
        },
        () = tokio::time::sleep_until(expiry) => Next::Gone,
    }
}

/// Serves HTTP/1.1 on `io` until the client leaves (`None`), the
/// connection expires (`None`), or it is quiet for [`PARK_AFTER`]: then
/// hyper is ended without closing the socket, which is handed back.
async fn serve_until_quiet<H, F, B>(
    io: Watched<TcpStream>,
    activity: Arc<Activity>,
    peer: Option<PeerAddr>,
    limits: ConnLimits,
    handler: H,
) -> Option<Watched<TcpStream>>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + Unpin + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    activity.time_heads();
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (busy, answer) = begin(req, peer, &in_flight, &handler);
        // Boxed so that the connection can hand its socket back
        // (`poll_without_shutdown` needs an `Unpin` future).
        Box::pin(async move {
            let answer = answer.await;
            // In flight until hyper has taken the whole body.
            Ok::<_, Infallible>(answer.map(|body| Tracked { body, busy }))
        })
    });
    let mut conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(crate::serving::hyper_header_timeout(limits))
        .serve_connection(TokioIo::new(io), service);
    let check = crate::serving::check_interval(limits).min(PARK_AFTER / 2);
    let mut parking = false;
    loop {
        tokio::select! {
            biased;
            done = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                if done.is_err() || !parking {
                    // The client left, broke the protocol, or timed out.
                    return None;
                }
                let parts = conn.into_parts();
                // Parked only when no byte read was left unanswered, so
                // hyper's read buffer is empty; should it not be, those
                // bytes cannot be given back to the socket: close rather
                // than lose a request.
                if !parts.read_buf.is_empty() {
                    return None;
                }
                PARKED.fetch_add(1, Ordering::Relaxed);
                return Some(parts.io.into_inner());
            }
            () = tokio::time::sleep(check), if !parking => {
                if activity.expired(limits) {
                    return None;
                }
                if activity.parkable(PARK_AFTER) {
                    // Idle: hyper closes its side of the connection only
                    // (`poll_without_shutdown` never shuts the socket).
                    Pin::new(&mut conn).graceful_shutdown();
                    parking = true;
                }
            }
        }
    }
}

/// A response body that keeps its request in flight until hyper has
/// taken all of it (and dropped it), then marks the connection at rest.
struct Tracked<B> {
    body: B,
    busy: Busy,
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.busy.activity().at_rest();
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
