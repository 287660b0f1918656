//! Forwarding between the nodes of a cluster: a gateway's requests for an
//! app held elsewhere go to that node's peer port over the cluster's
//! mutual TLS 1.3 (the connection Raft uses), and arrive at its gateway
//! through the peer port's ingress.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use cluster::ClusterNode;
use cluster::transport::{CallError, Ingress};
use http_body_util::Full;
use hyper::{Request, Response};

use crate::gateway::{Gateway, PeerError, Peers};

/// Sends forwarded requests to peers' peer addresses over mutual TLS.
pub struct ClusterPeers(pub Arc<ClusterNode>);

impl Peers for ClusterPeers {
    fn send<'a>(
        &'a self,
        peer: &'a str,
        request: Request<Full<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, PeerError>> + Send + 'a>> {
        Box::pin(async move {
            self.0.forward_to(peer, request).await.map_err(|e| match e {
                CallError::Lost { .. } => PeerError::Broken(e.to_string()),
                CallError::Down { .. } | CallError::Request(_) => PeerError::NotSent(e.to_string()),
            })
        })
    }
}

/// The gateway answers what other nodes forward to this one.
pub struct GatewayIngress(pub Arc<Gateway>);

impl Ingress for GatewayIngress {
    fn serve(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send + '_>> {
        Box::pin(self.0.handle(request))
    }
}

/// Wires `gateway` to the cluster: it forwards over mutual TLS, answers
/// what other nodes forward to this one, and keeps the apps' log lines in
/// the node's ring (which peers read through the peer port).
pub fn connect(node: &Arc<ClusterNode>, gateway: &Arc<Gateway>) {
    gateway.set_peers(Arc::new(ClusterPeers(node.clone())));
    gateway.set_app_log(node.app_log().clone());
    node.set_ingress(Arc::new(GatewayIngress(gateway.clone())));
}
