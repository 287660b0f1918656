//! A founded node's peer port in this process: joins with a wrong token or
//! for another cluster are refused and leave nothing behind; a caller
//! without a certificate reaches only the join routes; one with a
//! certificate from another CA is not served at all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster::tls::{self, ClusterCa};
use cluster::transport::Channel;
use cluster::{ClusterError, ClusterNode, DataDir, JoinToken, StartOptions, Started};
use hyper::{Method, StatusCode};
use replica::Timing;

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn options(peer: SocketAddr, join: Option<(String, JoinToken)>) -> StartOptions {
    StartOptions {
        region: "local".into(),
        peer_address: Some(peer),
        api_address: "127.0.0.1:1".into(),
        join,
        timing: Timing {
            heartbeat: Duration::from_millis(50),
            election: (Duration::from_millis(200), Duration::from_millis(400)),
            snapshot_every: 1000,
        },
        artifact_check: None,
        voter: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_need_the_right_token_and_raft_needs_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = free_port();
    let (node, started) =
        ClusterNode::start(&DataDir::new(tmp.path().join("a")), options(peer, None))
            .await
            .unwrap();
    let Started::Founded { join_token, .. } = started else {
        panic!("a new directory founds a cluster")
    };
    let address = peer.to_string();

    // A wrong secret: refused, and the joiner saved nothing.
    let wrong = JoinToken {
        secret: "0".repeat(64),
        ..join_token.clone()
    };
    let dir_b = DataDir::new(tmp.path().join("b"));
    let e = ClusterNode::start(&dir_b, options(free_port(), Some((address.clone(), wrong))))
        .await
        .err()
        .expect("a wrong join secret is refused");
    assert!(matches!(e, ClusterError::Join { .. }), "{e}");
    assert!(e.to_string().contains("not valid"), "{e}");
    assert!(
        dir_b.load().unwrap().is_none(),
        "a refused join saved a node"
    );

    // A token for another cluster: the joiner notices before sending it.
    let other = JoinToken::generate(&"ab".repeat(32)).unwrap();
    let e = ClusterNode::start(&dir_b, options(free_port(), Some((address.clone(), other))))
        .await
        .err()
        .expect("a token for another cluster is refused");
    assert!(e.to_string().contains("not the token's cluster"), "{e}");

    // No certificate: the CA is public, Raft is not.
    let anonymous = Channel::new(
        address.clone(),
        tls::joining_client_config(node.ca_pem()).unwrap(),
    );
    let (status, ca) = anonymous
        .request(Method::GET, "/join/ca", Bytes::new())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ca, node.ca_pem().as_bytes());
    for path in [
        "/raft/call",
        "/raft/appends",
        "/cluster/leader",
        "/cluster/blobs/x",
        "/ingress/hello",
    ] {
        let (status, _) = anonymous
            .request(Method::POST, path, Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }

    // A certificate from another CA: the handshake fails.
    let stranger_ca = ClusterCa::create("stranger").unwrap();
    let stranger = stranger_ca.issue("node-9", &["127.0.0.1".into()]).unwrap();
    let client = tls::client_config(node.ca_pem(), &stranger).unwrap();
    let e = Channel::new(address.clone(), client)
        .request(Method::GET, "/join/ca", Bytes::new())
        .await
        .expect_err("a stranger's certificate is refused");
    assert!(e.to_string().contains("peer"), "{e}");

    // The right token works.
    let dir_c = DataDir::new(tmp.path().join("c"));
    let (joined, started) =
        ClusterNode::start(&dir_c, options(free_port(), Some((address, join_token))))
            .await
            .unwrap();
    assert!(matches!(started, Started::Joined { id: 2 }), "{started:?}");
    let status = node.status().await.unwrap();
    assert_eq!(
        status.members.iter().filter(|m| m.voter).count(),
        2,
        "{status:?}"
    );

    // A member forwards an app request to the founder's ingress over
    // mutual TLS: none is served until an ingress is set; then it gets the
    // request as the client sent it (path, query, Host).
    let request = || {
        hyper::Request::get("/shop/cart?x=1")
            .header("host", "shop.example")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap()
    };
    let answer = joined
        .forward_to(&peer.to_string(), request())
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    node.set_ingress(Arc::new(Echo));
    let answer = joined
        .forward_to(&peer.to_string(), request())
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.body().as_ref(), b"GET /shop/cart?x=1 shop.example");

    // A joined node holds no CA key: a node joining through it has its
    // certificate signed by the founder (`/cluster/sign`); a single-use
    // token admits one node only.
    for file in ["c/tls/ca-key.pem", "c/tls/ca-key.pem.sealed"] {
        assert!(!tmp.path().join(file).exists(), "{file}");
    }
    let single = node
        .new_join_token(Duration::from_secs(60), Some(1))
        .await
        .unwrap();
    let through_c = joined.config().peer_address.clone();
    let dir_d = DataDir::new(tmp.path().join("d"));
    let (third, started) = ClusterNode::start(
        &dir_d,
        options(free_port(), Some((through_c, single.clone()))),
    )
    .await
    .unwrap();
    assert!(matches!(started, Started::Joined { id: 3 }), "{started:?}");
    for file in ["d/tls/ca-key.pem", "d/tls/ca-key.pem.sealed"] {
        assert!(!tmp.path().join(file).exists(), "{file}");
    }
    let again = ClusterNode::start(
        &DataDir::new(tmp.path().join("e")),
        options(free_port(), Some((peer.to_string(), single))),
    )
    .await
    .err()
    .expect("a single-use token admitted a second node")
    .to_string();
    assert!(again.contains("not valid"), "{again}");

    // The CA key holder signs for a member only the certificate of a node
    // being admitted: never one for an existing member's id (the caller's
    // own, another's) nor for an id not handed out yet.
    let c_identity = dir_c.load().unwrap().unwrap().identity;
    let as_c = Channel::new(
        peer.to_string(),
        tls::client_config(node.ca_pem(), &c_identity).unwrap(),
    );
    for id in [1u64, 2, 3, 99] {
        let (_, csr_pem) = tls::new_node_key().unwrap();
        let body = serde_json::json!({"id": id, "hosts": ["127.0.0.1"], "csr_pem": csr_pem});
        let (status, answer) = as_c
            .request(
                Method::POST,
                "/cluster/sign",
                Bytes::from(serde_json::to_vec(&body).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "node {id}: {}",
            String::from_utf8_lossy(&answer)
        );
    }

    // Membership is checked per request, not only the CA's signature: a
    // certificate the CA signed for member 2's id but another key (not the
    // key pinned when node 2 was admitted) is refused, while node 2's own
    // is served.
    let status_op = || Bytes::from_static(br#"{"op":"status"}"#);
    let (status, _) = as_c
        .request(Method::POST, "/cluster/leader", status_op())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "node 2's own certificate");
    let ca = DataDir::new(tmp.path().join("a"))
        .load()
        .unwrap()
        .unwrap()
        .ca
        .expect("the founder holds the CA key");
    let forged = ca.issue("node-2", &["127.0.0.1".into()]).unwrap();
    let as_forged = Channel::new(
        peer.to_string(),
        tls::client_config(node.ca_pem(), &forged).unwrap(),
    );
    let (status, answer) = as_forged
        .request(Method::POST, "/cluster/leader", status_op())
        .await
        .unwrap();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another key for node 2: {}",
        String::from_utf8_lossy(&answer)
    );
    third.shutdown().await;
    joined.shutdown().await;
    node.shutdown().await;
}

/// Answers with what it was asked: method, URI and Host.
struct Echo;

impl cluster::transport::Ingress for Echo {
    fn serve(
        &self,
        request: hyper::Request<http_body_util::Full<Bytes>>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = hyper::Response<http_body_util::Full<Bytes>>>
                + Send
                + '_,
        >,
    > {
        let host = request
            .headers()
            .get("host")
            .map(|h| h.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = format!("{} {} {host}", request.method(), request.uri());
        Box::pin(async move { hyper::Response::new(http_body_util::Full::new(Bytes::from(text))) })
    }
}
