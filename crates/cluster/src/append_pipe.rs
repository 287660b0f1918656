//! Pipes of Raft appends over HTTP/2: one request whose body streams the
//! leader's appends and whose response streams the follower's answers, in
//! order (`POST /raft/appends`).
//!
//! Each message is a frame: a 4-byte big-endian length, then that many
//! bytes of JSON. The leader writes appends as the engine produces them and
//! never waits for an answer before the next, so several are in flight at
//! once (HTTP/2 flow control is the only limit); the follower hands them to
//! its [`Inbox`] in order and writes each answer back as it comes. Pipes run
//! on a connection of their own per peer ([`PipeChannel`]), apart from the
//! peer port's other traffic (forwarded app requests, blob copies), so that
//! a large body there never holds up replication. Closing the request body
//! ends the pipe.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::transport::within;
use replica::{Append, AppendAnswer, AppendAnswers, Appends, Inbox, LinkError};

/// The route of append pipes on the peer port.
pub const PATH: &str = "/raft/appends";

/// Largest frame accepted: far above any append (a batch of commands).
const MAX_FRAME: usize = 64 << 20;

/// Frames buffered on either side before the sender waits.
const FRAMES_IN_FLIGHT: usize = 64;

/// HTTP/2 windows for pipe connections: room for many appends in flight
/// before flow control makes the leader wait for the follower to read.
pub(crate) const STREAM_WINDOW: u32 = 8 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 32 << 20;

/// Every response body the peer port sends: whole, or a pipe's answers.
pub type PeerBody = BoxBody<Bytes, Infallible>;

/// A body fed frame by frame from a channel; it ends when the sender is
/// dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn frame<T: Serialize>(message: &T) -> Result<Bytes, String> {
    let json = serde_json::to_vec(message).map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out.freeze())
}

/// Frames read off a body, in order; ends with the body, or with an error
/// for a body cut mid-frame or a frame that does not decode.
fn frames<T: DeserializeOwned + Send + 'static>(
    body: Incoming,
) -> impl Stream<Item = Result<T, String>> + Send + 'static {
    futures_util::stream::unfold(Some((body, BytesMut::new())), |state| async move {
        let (mut body, mut buffer) = state?;
        loop {
            if buffer.len() >= 4 {
                let len = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
                if len > MAX_FRAME {
                    return Some((Err(format!("a frame of {len} bytes is too large")), None));
                }
                if buffer.len() >= 4 + len {
                    buffer.advance(4);
                    let bytes = buffer.split_to(len);
                    let decoded =
                        serde_json::from_slice(&bytes).map_err(|e| format!("bad frame: {e}"));
                    let go_on = decoded.is_ok();
                    return Some((decoded, go_on.then_some((body, buffer))));
                }
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Some((Err(e.to_string()), None)),
                None if buffer.is_empty() => return None,
                None => return Some((Err("the pipe ended mid-frame".into()), None)),
            }
        }
    })
}

/// The follower's side: the appends in the request body go to `inbox` in
/// order; each answer is a frame of the response body,
/// `Result<AppendAnswer, String>` (an error when the replica stopped).
pub fn serve(inbox: Inbox, body: Incoming) -> Response<PeerBody> {
    let appends = frames::<Append>(body)
        .take_while(|decoded| std::future::ready(decoded.is_ok()))
        .filter_map(|decoded| std::future::ready(decoded.ok()));
    let mut answers = Box::pin(inbox.appends(appends));
    let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
    tokio::spawn(async move {
        while let Some(answer) = answers.next().await {
            let answer: Result<AppendAnswer, String> = answer.map_err(|e| e.to_string());
            let Ok(bytes) = frame(&answer) else { break };
            if tx.send(bytes).await.is_err() {
                break;
            }
        }
    });
    Response::new(ChannelBody(rx).boxed())
}

/// A connection to one peer for append pipes, opened on first use and again
/// after a failure.
pub struct PipeChannel {
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    sender: tokio::sync::Mutex<Option<SendRequest<ChannelBody>>>,
}

impl PipeChannel {
    pub fn new(addr: String, tls: Arc<rustls::ClientConfig>) -> PipeChannel {
        PipeChannel {
            addr,
            tls,
            sender: tokio::sync::Mutex::new(None),
        }
    }

    fn down(&self, reason: impl std::fmt::Display) -> LinkError {
        LinkError::Unreachable(format!("peer {}: {reason}", self.addr))
    }

    async fn connect(&self) -> Result<SendRequest<ChannelBody>, LinkError> {
        let tls = crate::transport::dial(&self.addr, &self.tls)
            .await
            .map_err(|e| self.down(e))?;
        let handshake = crate::transport::http2_client()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(TokioIo::new(tls));
        let (sender, conn) = within("the HTTP/2 handshake", handshake)
            .await
            .map_err(|e| self.down(e))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn sender(&self) -> Result<SendRequest<ChannelBody>, LinkError> {
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

    /// Opens a pipe: `appends` go out as they come; the answers come back
    /// in order.
    pub async fn open(&self, appends: Appends) -> Result<AppendAnswers, LinkError> {
        if dropped(&self.addr) {
            return Err(self.down("dropped by the test's fault injection"));
        }
        let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
        let request = Request::builder()
            .method(hyper::Method::POST)
            .uri(PATH)
            .body(ChannelBody(rx))
            .map_err(|e| LinkError::Failed(e.to_string()))?;
        // Every wait on the peer is bounded, and a connection that fails
        // one is dropped: a peer that holds the connection open but
        // answers nothing (a stopped process) must not hold the leader's
        // replication to it, nor be asked again on the same connection.
        let mut sender = self.sender().await?;
        let started = async {
            within("waiting for room on the connection", sender.ready()).await?;
            within(
                "waiting for the pipe's answer",
                sender.send_request(request),
            )
            .await
        };
        let response = match started.await {
            Ok(r) => r,
            Err(e) => {
                *self.sender.lock().await = None;
                return Err(self.down(e));
            }
        };
        if response.status() != StatusCode::OK {
            let status = response.status();
            let text = response
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(self.down(format!("{status}: {text}")));
        }
        let addr = self.addr.clone();
        tokio::spawn(send_appends(appends, tx, addr.clone()));
        let answers =
            frames::<Result<AppendAnswer, String>>(response.into_body()).map(move |answer| {
                if dropped(&addr) {
                    return Err(LinkError::Unreachable(format!(
                        "peer {addr}: dropped by the test's fault injection"
                    )));
                }
                match answer {
                    Ok(Ok(answer)) => Ok(answer),
                    Ok(Err(stopped)) => Err(LinkError::Unreachable(stopped)),
                    Err(broken) => Err(LinkError::Unreachable(format!("peer {addr}: {broken}"))),
                }
            });
        Ok(Box::pin(answers))
    }
}

/// Writes each append as a frame of the request body until the engine
/// closes the pipe (or the peer stops reading, or a partition starts).
async fn send_appends(mut appends: Appends, tx: mpsc::Sender<Bytes>, addr: String) {
    while let Some(append) = appends.next().await {
        if dropped(&addr) {
            break;
        }
        let Ok(bytes) = frame(&append) else { break };
        if tx.send(bytes).await.is_err() {
            break;
        }
    }
}

/// Whether the test's fault injection drops messages to `addr` now.
fn dropped(addr: &str) -> bool {
    #[cfg(feature = "fault-injection")]
    if crate::fault::drops(addr) {
        return true;
    }
    let _ = addr;
    false
}
