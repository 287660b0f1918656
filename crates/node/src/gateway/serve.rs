//! The gateway on a TCP listener: HTTP/1.1 and HTTP/2 (prior knowledge),
//! served by [`cluster::serving::serve_plain`].

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Gateway;

/// Serves `gateway` on `listener` until the returned task is aborted;
/// aborting it also closes the connections it accepted.
pub fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> JoinHandle<()> {
    cluster::serving::serve_plain(listener, move |req| {
        let gateway = gateway.clone();
        async move { gateway.handle(req).await }
    })
}
