//! The gateway on a TCP listener: HTTP/1.1 and HTTP/2 (prior knowledge),
//! with hyper-util's auto builder.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::Gateway;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed accept (e.g. out of file descriptors) before the
/// next one, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `gateway` on `listener` until the returned task is aborted;
/// aborting it also closes the connections it accepted.
pub fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        connections.spawn(connection(tcp, gateway.clone()));
                    }
                    Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
                },
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

/// Serves one connection until the client leaves.
async fn connection(tcp: TcpStream, gateway: Arc<Gateway>) {
    let _ = tcp.set_nodelay(true);
    let service = hyper::service::service_fn(move |req| {
        let gateway = gateway.clone();
        async move { Ok::<_, Infallible>(gateway.handle(req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    // A client that breaks off mid-request is not an error of ours.
    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
}
