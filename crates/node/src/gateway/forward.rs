//! Forwarding: a request for an app that this node does not hold goes to
//! a node of the same region that does (the scheduler placed the app
//! there), and that node's gateway's answer comes back unchanged. How it
//! travels is a [`Peers`]: in a cluster, over the peer port's mutual TLS
//! 1.3 (`agent::ClusterPeers`); for a gateway on its own, plain HTTP to
//! another gateway ([`HttpPeers`]).
//!
//! Peers are tried in an order that starts at the request key's hash (so a
//! key keeps reaching the same peer while the peers stay the same); a peer
//! that refuses the connection or cannot be reached in time (2 s on the
//! peer port, [`CONNECT_TIMEOUT`] for [`HttpPeers`]) is skipped for the
//! next, since the request surely did not reach it; so is one whose connection broke under a GET, HEAD or
//! OPTIONS request, which may be repeated. Any other request is never sent
//! twice: a failure once it was sent is a 502, a peer that does not answer
//! in time a 504. A
//! forwarded request carries [`FORWARDED_HEADER`] and its request id, which
//! the peer adopts, so one id names the request in both access logs; a
//! forwarded request is never forwarded again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::REQUEST_ID_HEADER;
use super::reply::Failure;
use super::routes::Route;

/// Marks a request one gateway forwarded to another.
pub const FORWARDED_HEADER: &str = "x-dwcp-forwarded";

/// How long a peer gateway may take to accept [`HttpPeers`]' connection
/// before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Time the peer's answer may take beyond the route's timeout (the peer
/// enforces the timeout itself and answers 504; this covers the hop).
const HOP_MARGIN: Duration = Duration::from_secs(1);

/// Headers of one connection, not of the request: never passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Where forwarded requests go. `dwcp up` sends them to the peer port of
/// the node that holds the app, over the cluster's mutual TLS
/// (`agent::ClusterPeers`); a gateway run on its own sends them over
/// plain HTTP to another gateway's address ([`HttpPeers`]).
pub trait Peers: Send + Sync {
    /// Sends `request` (its URI the path and query) to `peer` and returns
    /// the whole answer.
    fn send<'a>(
        &'a self,
        peer: &'a str,
        request: Request<Full<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, PeerError>> + Send + 'a>>;
}

/// Why a forwarded request got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// It surely did not reach the peer (no connection): try the next.
    #[error("{0}")]
    NotSent(String),
    /// It was sent and the answer broke off: the peer may have run it.
    #[error("{0}")]
    Broken(String),
}

/// Plain HTTP/1.1 to another gateway's address, pooled: for a gateway run
/// on its own. Between the nodes of a cluster, requests go over mutual TLS
/// instead.
pub struct HttpPeers {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpPeers {
    pub fn new() -> HttpPeers {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpPeers { client }
    }
}

impl Default for HttpPeers {
    fn default() -> Self {
        HttpPeers::new()
    }
}

impl Peers for HttpPeers {
    fn send<'a>(
        &'a self,
        peer: &'a str,
        mut request: Request<Full<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, PeerError>> + Send + 'a>> {
        Box::pin(async move {
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            *request.uri_mut() = format!("http://{peer}{path}")
                .parse()
                .map_err(|e| PeerError::NotSent(format!("not an address: {e}")))?;
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    PeerError::NotSent(e.to_string())
                } else {
                    PeerError::Broken(e.to_string())
                }
            })?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| PeerError::Broken(e.to_string()))?
                .to_bytes();
            Ok(Response::from_parts(head, body))
        })
    }
}

/// Largest answer read from a peer gateway (which holds its app's own,
/// smaller, response limit).
const MAX_ANSWER: usize = 64 << 20;

/// Sends requests for apps other nodes hold to one of them.
pub(crate) struct Forwarder {
    peers: RwLock<Arc<dyn Peers>>,
}

impl Forwarder {
    pub(crate) fn new() -> Forwarder {
        Forwarder {
            peers: RwLock::new(Arc::new(HttpPeers::new())),
        }
    }

    pub(crate) fn set_peers(&self, peers: Arc<dyn Peers>) {
        *self.peers.write().unwrap_or_else(|p| p.into_inner()) = peers;
    }

    /// Sends the request to the first of the route's `forward` peers (in
    /// the order `key` gives) that takes it, and returns its answer.
    pub(crate) async fn forward(
        &self,
        id: &str,
        parts: &Parts,
        body: Bytes,
        route: &Route,
        key: u64,
    ) -> Result<Response<Full<Bytes>>, Failure> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner()).clone();
        let (limits, what) = (&route.limits, format!("app {}", route.app));
        let mut unreachable = Vec::new();
        for peer in ordered(&route.forward, key) {
            let request = match build(id, parts, body.clone()) {
                Ok(r) => r,
                Err(e) => {
                    unreachable.push(format!("{peer} ({e})"));
                    continue;
                }
            };
            let sent =
                tokio::time::timeout(limits.timeout + HOP_MARGIN, peers.send(peer, request)).await;
            match sent {
                Err(_elapsed) => {
                    return Err(Failure::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "timeout",
                        format!(
                            "{what}: the node at {peer} did not answer within {} ms",
                            (limits.timeout + HOP_MARGIN).as_millis()
                        ),
                    ));
                }
                Ok(Err(PeerError::NotSent(e))) => unreachable.push(format!("{peer} ({e})")),
                Ok(Err(PeerError::Broken(e))) if idempotent(&parts.method) => {
                    unreachable.push(format!("{peer} ({e})"));
                }
                Ok(Err(PeerError::Broken(e))) => {
                    return Err(bad_gateway(format!(
                        "{what}: the request to the node at {peer} failed: {e}"
                    )));
                }
                Ok(Ok(response)) if response.body().len() > limits.max_response_bytes => {
                    return Err(Failure::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "response_too_large",
                        format!(
                            "{what} sent a response larger than the {} bytes this route allows",
                            limits.max_response_bytes
                        ),
                    ));
                }
                Ok(Ok(response)) => {
                    let (mut head, body) = response.into_parts();
                    strip_hop_by_hop(&mut head.headers);
                    head.headers.remove(hyper::header::CONTENT_LENGTH);
                    return Ok(Response::from_parts(head, Full::new(body)));
                }
            }
        }
        Err(Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_peer",
            format!(
                "{what} is served by other nodes of this region, and none could be reached: {}",
                unreachable.join("; ")
            ),
        ))
    }
}

/// Methods a client may repeat: their request goes to the next peer when
/// the connection to one broke, even if it may have reached it.
fn idempotent(method: &hyper::Method) -> bool {
    use hyper::Method;
    [Method::GET, Method::HEAD, Method::OPTIONS].contains(method)
}

fn bad_gateway(message: String) -> Failure {
    Failure::new(StatusCode::BAD_GATEWAY, "upstream_failed", message)
}

/// `peers` rotated to start where `key` points.
fn ordered(peers: &[String], key: u64) -> impl Iterator<Item = &String> {
    let n = peers.len();
    // Multiply-shift: a uniform hash onto 0..n without modulo bias.
    let start = ((u128::from(key) * n as u128) >> 64) as usize;
    (0..n).map(move |i| &peers[(start + i) % n])
}

/// The request to send on: same method, path, query and headers (less
/// hop-by-hop ones), marked as forwarded with its id.
fn build(id: &str, parts: &Parts, body: Bytes) -> Result<Request<Full<Bytes>>, String> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = path.parse().map_err(|e| format!("not a path: {e}"))?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        headers.append(name, value.clone());
    }
    strip_hop_by_hop(headers);
    // An HTTP/2 request names its host in the URI only.
    if !headers.contains_key(HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(HOST, host);
    }
    headers.insert(
        HeaderName::from_static(FORWARDED_HEADER),
        HeaderValue::from_static("1"),
    );
    let id = HeaderValue::from_str(id).map_err(|e| format!("request id: {e}"))?;
    headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), id);
    Ok(request)
}

fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    // A `Connection` header may name more headers of the connection.
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// The request id a forwarded request carries, if it is one this gateway
/// would make (16 lowercase hex digits): adopted so one id names the
/// request on both nodes.
pub(crate) fn forwarded_id(parts: &Parts) -> Option<String> {
    parts.headers.get(FORWARDED_HEADER)?;
    let id = parts.headers.get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let valid = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_rotate_from_the_keys_point_and_each_comes_once() {
        let peers: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let all = |key| ordered(&peers, key).cloned().collect::<Vec<_>>();
        assert_eq!(all(0), ["a", "b", "c"]);
        assert_eq!(all(u64::MAX), ["c", "a", "b"]);
        assert_eq!(all(u64::MAX / 2), ["b", "c", "a"]);
    }

    #[test]
    fn a_request_goes_on_without_its_connection_headers() {
        let request = Request::builder()
            .uri("/shop/cart?x=1")
            .header("host", "shop.example")
            .header("connection", "keep-alive, x-secret-hop")
            .header("x-secret-hop", "1")
            .header("accept", "text/plain")
            .header(FORWARDED_HEADER, "spoofed")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let out = build("00000000000000ab", &parts, Bytes::new()).unwrap();
        assert_eq!(out.uri(), "/shop/cart?x=1");
        let h = out.headers();
        assert_eq!(h["host"], "shop.example");
        assert_eq!(h["accept"], "text/plain");
        assert_eq!(h[FORWARDED_HEADER], "1");
        assert_eq!(h[REQUEST_ID_HEADER], "00000000000000ab");
        assert!(!h.contains_key("connection") && !h.contains_key("x-secret-hop"));

        let (forwarded, ()) = out.map(|_| ()).into_parts();
        assert_eq!(
            forwarded_id(&forwarded).as_deref(),
            Some("00000000000000ab")
        );
        let (plain, ()) = Request::builder()
            .header(REQUEST_ID_HEADER, "00000000000000ab")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(forwarded_id(&plain), None, "only forwarded ids are adopted");
    }
}
