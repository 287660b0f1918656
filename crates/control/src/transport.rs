//! Raft RPCs between nodes: HTTP/2 over mutual TLS 1.3.
//!
//! Each node serves `POST /raft/{append,vote,snapshot}` with JSON bodies on
//! its peer address ([`serve`]); [`PeerNetwork`] is the client side that
//! openraft calls. A peer that cannot be reached, or that is not a member
//! of the cluster's PKI, is reported as unreachable: openraft backs off and
//! retries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::replica::{NodeId, TypeConfig};

/// Largest RPC body accepted (snapshots travel in chunks below this).
const MAX_BODY: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves Raft RPCs for `raft` on `listener` until the task is dropped.
pub fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    raft: Raft<TypeConfig>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let raft = raft.clone();
            tokio::spawn(async move {
                // A handshake without a certificate from the cluster's CA
                // fails here: nothing is served to it.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| handle(raft.clone(), req));
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}

async fn handle(
    raft: Raft<TypeConfig>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, e.to_string().into())),
    };
    let answer = match path.as_str() {
        "/raft/append" => respond(&body, |rpc| raft.append_entries(rpc)).await,
        "/raft/vote" => respond(&body, |rpc| raft.vote(rpc)).await,
        "/raft/snapshot" => respond(&body, |rpc| raft.install_snapshot(rpc)).await,
        _ => {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                Bytes::from_static(b"no such RPC"),
            ));
        }
    };
    Ok(match answer {
        Ok(json) => reply(StatusCode::OK, json),
        Err(e) => reply(StatusCode::BAD_REQUEST, e.into()),
    })
}

/// Decodes a request, runs it, encodes openraft's `Result` as the body.
async fn respond<Q, A, E, F>(body: &[u8], run: impl FnOnce(Q) -> F) -> Result<Bytes, String>
where
    Q: DeserializeOwned,
    A: Serialize,
    E: Serialize,
    F: std::future::Future<Output = Result<A, E>>,
{
    let rpc: Q = serde_json::from_slice(body).map_err(|e| format!("bad RPC body: {e}"))?;
    let result = run(rpc).await;
    serde_json::to_vec(&result)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// The client side of the peer network.
#[derive(Clone)]
pub struct PeerNetwork {
    tls: Arc<rustls::ClientConfig>,
}

impl PeerNetwork {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> PeerNetwork {
        PeerNetwork { tls }
    }
}

/// A connection to one peer, opened on first use and again after a failure.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            tls: self.tls.clone(),
            sender: None,
        }
    }
}

/// Why an RPC did not get an answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// The peer could not be reached or answered badly: openraft backs off.
    #[error("peer {addr}: {reason}")]
    Down { addr: String, reason: String },
    /// The request could not be built here: openraft retries at once.
    #[error("cannot build the request: {0}")]
    Request(String),
}

impl PeerClient {
    fn down(&self, reason: impl ToString) -> CallError {
        CallError::Down {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let addr: SocketAddr = self
            .addr
            .parse()
            .map_err(|_| self.down("the address is not host:port"))?;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| self.down("connect timed out"))?
            .map_err(|e| self.down(e))?;
        tcp.set_nodelay(true).map_err(|e| self.down(e))?;
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| self.down(format!("TLS: {e}")))?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| self.down(e))?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn call<Q: Serialize, A: DeserializeOwned, E: DeserializeOwned + std::error::Error>(
        &mut self,
        path: &str,
        rpc: &Q,
    ) -> Result<Result<A, E>, CallError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(self.connect().await?);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(self.down("no connection"));
        };
        let body = serde_json::to_vec(rpc).map_err(|e| CallError::Request(e.to_string()))?;
        let request = Request::post(path)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Request(e.to_string()))?;
        let outcome = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        }
        .await;
        let (status, bytes) = match outcome {
            Ok(x) => x,
            Err(e) => {
                self.sender = None;
                return Err(self.down(e));
            }
        };
        if status != StatusCode::OK {
            return Err(self.down(format!("{status}: {}", String::from_utf8_lossy(&bytes))));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.down(format!("bad answer: {e}")))
    }
}

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

// The error type is openraft's, fixed by the `RaftNetwork` trait.
#[allow(clippy::result_large_err)]
fn rpc_result<A, E: std::error::Error>(
    target: NodeId,
    result: Result<Result<A, E>, CallError>,
) -> Result<A, RPCError<NodeId, BasicNode, E>> {
    match result {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(RemoteError::new(target, e).into()),
        Err(e @ CallError::Request(_)) => Err(NetworkError::new(&e).into()),
        Err(e @ CallError::Down { .. }) => Err(Unreachable::new(&e).into()),
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let result = self.call("/raft/append", &rpc).await;
        rpc_result(self.target, result)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let result = self.call("/raft/snapshot", &rpc).await;
        rpc_result(self.target, result)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let result = self.call("/raft/vote", &rpc).await;
        rpc_result(self.target, result)
    }
}
