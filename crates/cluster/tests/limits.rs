//! The limits every port holds, on real loopback sockets: a plain server's
//! connection cap and its handshake and idle timeouts; an idle keep-alive
//! client kept for the idle timeout, not closed at the header timeout,
//! and a head sent slowly closed at it, by the plain and the parking
//! (gateway's) servers alike; the peer port's
//! strangers' share (the oldest stranger is closed for a new one, a member
//! still gets through) and the small body bound before a certificate.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::serving::{self, ConnLimits};
use cluster::tls::{self, ClusterCa};
use cluster::transport::{self, Channel, PeerLimits, PeerRequest, PeerService};
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};

const DEADLINE: Duration = Duration::from_secs(30);

/// Whether the server closed `stream` (EOF or reset) within the deadline.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; 64];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// What the server sent on `stream` until it closed it (or the deadline).
fn answer_until_closed(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + DEADLINE;
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether `stream` is still open after a short look (no EOF yet).
fn still_open(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// A keep-alive connection to `addr` that asked `GET /` once and got its
/// answer (`200`), idle from now on.
fn ask_once(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut tcp, b"GET / HTTP/1.1\r\nhost: t\r\n\r\n").unwrap();
    let mut answer = [0u8; 512];
    let n = tcp.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_server_caps_connections_and_closes_silent_and_idle_ones() {
    let listener = serving::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnLimits {
        max_connections: 3,
        // Long enough that the silent ones still hold the cap when the
        // fourth asks, even on a stalled machine.
        handshake_timeout: Duration::from_secs(5),
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(600),
        max_streams: 8,
    };
    let server = serving::serve_plain_with(listener, limits, |_req| async {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    });
    let checks = tokio::task::spawn_blocking(move || {
        // Three silent connections take the cap; a fourth is closed at
        // once, its request unanswered (without the cap it is served).
        let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let mut over = TcpStream::connect(addr).unwrap();
        // The server may have closed it already: a failed write is fine.
        let _ = std::io::Write::write_all(&mut over, b"GET / HTTP/1.1\r\nhost: t\r\n\r\n");
        let answer = answer_until_closed(&mut over);
        assert!(
            answer.is_empty(),
            "the fourth connection was served: {answer:?}"
        );
        // The silent ones are closed once the handshake timeout passes.
        for s in &mut held {
            assert!(closed_by_server(s), "a silent connection was kept");
        }
        // A client that asks once and then idles is closed after the idle
        // timeout, not before its answer.
        let mut idle = ask_once(addr);
        assert!(closed_by_server(&mut idle), "an idle connection was kept");
    });
    checks.await.unwrap();
    server.abort();
}

/// Limits for the idle tests: a 1 s header timeout, far below the idle
/// timeout, which is past [`serving::PARK_AFTER`] so that the parking
/// server parks first.
fn short_header_limits() -> ConnLimits {
    ConnLimits {
        max_connections: 16,
        handshake_timeout: Duration::from_secs(10),
        header_timeout: Duration::from_secs(1),
        idle_timeout: serving::PARK_AFTER * 3,
        max_streams: 8,
    }
}

/// Serves `ok` under `limits`, parking quiet connections when `parking`.
fn ok_server(parking: bool, limits: ConnLimits) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = serving::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = if parking {
        serving::serve_plain_parking(listener, limits, |_req| {
            Box::pin(async { Response::new(Full::new(Bytes::from_static(b"ok"))) })
        })
    } else {
        serving::serve_plain_with(listener, limits, |_req| async {
            Response::new(Full::new(Bytes::from_static(b"ok")))
        })
    };
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_client_is_kept_for_the_idle_timeout_not_the_header_timeout() {
    let limits = short_header_limits();
    for parking in [false, true] {
        let (addr, server) = ok_server(parking, limits);
        let parked_before = serving::parked_total();
        let lived = tokio::task::spawn_blocking(move || {
            let asked = Instant::now();
            let mut idle = ask_once(addr);
            assert!(closed_by_server(&mut idle), "an idle connection was kept");
            asked.elapsed()
        })
        .await
        .unwrap();
        // The last byte moved after `asked`: a close before the idle
        // timeout came from another clock (hyper's header-read timeout
        // runs while a keep-alive connection waits for its next request).
        assert!(
            lived >= limits.idle_timeout,
            "parking {parking}: closed {lived:?} after the request, before the idle timeout {:?} \
             (header timeout {:?})",
            limits.idle_timeout,
            limits.header_timeout
        );
        if parking {
            assert!(
                serving::parked_total() > parked_before,
                "the idle connection was never parked"
            );
        }
        server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_slowly_is_closed_at_the_header_timeout() {
    let limits = short_header_limits();
    for parking in [false, true] {
        let (addr, server) = ok_server(parking, limits);
        tokio::task::spawn_blocking(move || {
            let mut slow = TcpStream::connect(addr).unwrap();
            slow.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            std::io::Write::write_all(&mut slow, b"GET / HTTP/1.1\r\n").unwrap();
            // A header byte every 200 ms: never idle, never a whole head.
            let end = Instant::now() + DEADLINE;
            let mut buf = [0u8; 64];
            loop {
                assert!(
                    Instant::now() < end,
                    "parking {parking}: a head trickling for 30 s was kept"
                );
                if std::io::Write::write_all(&mut slow, b"x").is_err() {
                    break;
                }
                match slow.read(&mut buf) {
                    Ok(_) => break,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        })
        .await
        .unwrap();
        server.abort();
    }
}

/// A peer service that answers every request with the body's length.
struct Echo;

impl PeerService for Echo {
    async fn handle(&self, request: PeerRequest) -> (StatusCode, Bytes) {
        let who = if request.authenticated {
            "member"
        } else {
            "stranger"
        };
        (
            StatusCode::OK,
            Bytes::from(format!("{who} {}", request.body.len())),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_port_keeps_a_share_for_members_and_bounds_strangers() {
    let ca = ClusterCa::create("t").unwrap();
    let identity = ca.issue("node-1", &["127.0.0.1".into()]).unwrap();
    let live = tls::LiveIdentity::new(&identity).unwrap();
    let server_tls = tls::join_server_config(ca.cert_pem(), live).unwrap();
    let listener = serving::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let limits = PeerLimits {
        max_members: 8,
        max_strangers: 4,
        // Longer than DEADLINE: a stranger's connection closed within it
        // was closed for a newer one, not by a timeout.
        handshake_timeout: Duration::from_secs(120),
        member_idle: Duration::from_secs(120),
        stranger_idle: Duration::from_secs(120),
        member_streams: 8,
        stranger_streams: 2,
    };
    let server = transport::serve_service_with(listener, server_tls, Arc::new(Echo), limits);

    // A stranger holds ten silent connections: only the newest four stay.
    let mut held = tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..10)
            .map(|_| {
                let s = TcpStream::connect(addr).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                s
            })
            .collect();
        held
    })
    .await
    .unwrap();
    let (oldest, newest) = held.split_at_mut(6);
    for s in oldest.iter_mut() {
        assert!(closed_by_server(s), "an old stranger connection was kept");
    }
    for s in newest.iter_mut() {
        assert!(still_open(s), "a newer stranger connection was closed");
    }

    // A member still completes its handshake and is served as a member.
    let member = Channel::new(
        addr.to_string(),
        tls::client_config(ca.cert_pem(), &identity).unwrap(),
    );
    let (status, body) = member
        .request(Method::POST, "/x", Bytes::from(vec![0u8; 1 << 20]))
        .await
        .unwrap();
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from("member 1048576"))
    );

    // A stranger may send a join request, not a megabyte.
    let stranger = Channel::new(
        addr.to_string(),
        tls::joining_client_config(ca.cert_pem()).unwrap(),
    );
    let (status, body) = stranger
        .request(Method::POST, "/join", Bytes::from(vec![0u8; 1000]))
        .await
        .unwrap();
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from("stranger 1000"))
    );
    let (status, _) = stranger
        .request(Method::POST, "/join", Bytes::from(vec![0u8; 1 << 20]))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    drop(held);
    server.abort();
}
