//! The gateway on a TCP listener: HTTP/1.1 and HTTP/2 (prior knowledge),
//! served by [`cluster::serving::serve_plain_parking`] under the gateway's
//! connection limits ([`cluster::serving::ConnLimits::gateway`]): an idle
//! HTTP/1.1 keep-alive connection is parked on its bare socket, without
//! hyper's buffers, until its next request.

use std::sync::Arc;

use cluster::serving::ConnLimits;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Gateway;

/// Serves `gateway` on `listener` until the returned task is aborted;
/// aborting it also closes the connections it accepted.
///
/// Each request's future is boxed: hyper keeps a slot the size of the
/// service's future for every connection, idle ones included, and the
/// gateway's (routing, body, guest) is some kilobytes; boxed, an idle
/// keep-alive connection keeps a pointer instead.
pub fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> JoinHandle<()> {
    serve_with(listener, gateway, ConnLimits::gateway())
}

/// [`serve`] under `limits` (`dwcp up --gateway-idle-timeout` sets their
/// idle timeout).
pub fn serve_with(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    limits: ConnLimits,
) -> JoinHandle<()> {
    cluster::serving::serve_plain_parking(listener, limits, move |req| {
        let gateway = gateway.clone();
        Box::pin(async move { gateway.handle(req).await })
    })
}
