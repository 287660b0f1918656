//! The gateway on a TCP listener: HTTP/1.1 and HTTP/2 (prior knowledge),
//! served by [`cluster::serving::serve_plain_with`] under the gateway's
//! connection limits ([`cluster::serving::ConnLimits::gateway`]).

use std::sync::Arc;

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
    let limits = cluster::serving::ConnLimits::gateway();
    cluster::serving::serve_plain_with(listener, limits, move |req| {
        let gateway = gateway.clone();
        Box::pin(async move { gateway.handle(req).await })
    })
}
