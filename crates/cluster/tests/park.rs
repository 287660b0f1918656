//! Parked connections (`serving::serve_plain_parking`, the gateway's
//! server), on real loopback sockets: a quiet HTTP/1.1 keep-alive
//! connection is parked and answers its next requests on the same socket,
//! with no `connection: close`; a parked connection still closes when idle
//! past the idle timeout; an HTTP/2 prior-knowledge client is served.
//!
//! One test, in steps: `serving::parked_total` counts for the whole
//! process.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::serving::{self, ConnLimits};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(60);

/// Waits until a connection is parked after `before` parks.
async fn parked_after(before: u64) {
    let end = Instant::now() + DEADLINE;
    while serving::parked_total() <= before {
        assert!(Instant::now() < end, "no connection was parked in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `GET path` on `tcp` and reads the answer's head and body (the
/// server answers `ok:PATH` with a content length).
async fn get(tcp: &mut TcpStream, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let want = format!("ok:{path}");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = Instant::now() + DEADLINE;
    loop {
        let n = tokio::time::timeout_at(end.into(), tcp.read(&mut buf))
            .await
            .expect("an answer within 60 s")
            .unwrap();
        assert!(n > 0, "the server closed the connection: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && body.len() >= want.len()
        {
            return (head.to_ascii_lowercase(), body.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_connections_are_parked_and_keep_answering() {
    let listener = serving::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnLimits {
        idle_timeout: serving::PARK_AFTER * 3,
        ..ConnLimits::http()
    };
    let server = serving::serve_plain_parking(listener, limits, |req: Request<_>| {
        let body = format!("ok:{}", req.uri().path());
        Box::pin(async move { Response::new(Full::new(Bytes::from(body))) })
    });

    // A keep-alive connection, parked after each answer, answers on.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    for path in ["/one", "/two", "/three"] {
        let before = serving::parked_total();
        let (head, body) = get(&mut tcp, path).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(body, format!("ok:{path}"));
        parked_after(before).await;
    }

    // Parked, it is still closed once idle past the idle timeout.
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(DEADLINE, tcp.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a parked connection idle past its timeout was not closed: {closed:?}"
    );

    // HTTP/2 with prior knowledge is served as before.
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get(format!("http://{addr}/h2"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok:/h2");
    server.abort();
}
