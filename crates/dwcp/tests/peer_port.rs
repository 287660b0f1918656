//! The peer port as an attacker meets it, on real `dwcp up` processes:
//! a removed node's certificate refused at once on every route (it can
//! no longer commit a command, such as minting an admin token); a
//! stranger holding hundreds of idle connections while members still
//! reconnect and commit; and every port accepting again after a storm of
//! connections ran the node out of file descriptors (`EMFILE`).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::sealed::KeyRing;
use cluster::transport::Channel;
use cluster::{DataDir, tls};
use common::{Cluster, DEADLINE, members};
use hyper::{Method, StatusCode};
use serde_json::json;
use state::{Command, Name, Role};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A leader op as the peer port's `/cluster/leader` takes it.
fn write_op(command: &Command) -> Bytes {
    let op = json!({ "op": "write", "command": serde_json::to_value(command).unwrap() });
    Bytes::from(op.to_string())
}

/// A TCP connection to `addr` that says nothing, or `None` when the
/// connect fails (the node is out of descriptors or its backlog is full).
fn idle_connection(addr: &str) -> Option<TcpStream> {
    let addr: SocketAddr = addr.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()
}

#[test]
fn a_removed_nodes_certificate_is_refused_at_once_and_cannot_mint_a_token() {
    let mut c = Cluster::with_voters(61, 3);
    // Node 3 should not lead: it is the one removed.
    while c.leader() == 3 {
        c.kill(3);
        c.wait_for(
            |s| s["leader"].as_u64().is_some_and(|l| l != 3),
            "another leader",
        );
        c.restart(3);
    }
    let leader = c.leader();
    let leader_peer = c.nodes[&leader].peer.clone();
    // The removed node's own files: its certificate and (sealed) key.
    let dir = &c.nodes[&3].dir;
    let keys = KeyRing::open(&dir.with_extension("key")).unwrap();
    let files = DataDir::sealed(dir, keys).load().unwrap().unwrap();
    let client_tls = tls::client_config(&files.ca_pem, &files.identity).unwrap();
    let rt = runtime();
    let channel = Channel::new(leader_peer.clone(), client_tls.clone());
    let send = |channel: &Channel, path: &str, body: Bytes| {
        rt.block_on(channel.request(Method::POST, path, body))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    };

    // While node 3 is a member, its certificate commits through the
    // leader (what its API does for every write).
    let probe = Command::Put {
        key: "probe".into(),
        value: b"from node 3".to_vec(),
    };
    let (status, body) = send(&channel, "/cluster/leader", write_op(&probe));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    let (status, v) = c.call(1, "DELETE", "/api/v1/cluster/nodes/3", None);
    assert_eq!(status, 204, "{v}");
    c.wait_for(|s| !members(s).contains(&3), "node 3 removed");
    assert!(c.nodes[&3].running(), "node 3's process runs on");

    // On the same HTTP/2 connection and on a new one, everything but the
    // join routes is refused now: a command, a Raft vote, a blob.
    let admin_hash = state::digest_of(b"dwcp-admin.minted-by-a-removed-node");
    let mint = Command::PutCredential {
        name: Name::new("name", "minted").unwrap(),
        role: Role::Admin,
        sha256: admin_hash.clone(),
    };
    let fresh = Channel::new(leader_peer.clone(), client_tls);
    for channel in [&channel, &fresh] {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (status, body) = send(channel, "/cluster/leader", write_op(&mint));
            if status == StatusCode::FORBIDDEN {
                break;
            }
            // Only a leader that has not applied the removal yet may still
            // answer; it must not have committed the credential.
            assert!(
                Instant::now() < deadline,
                "the removed node's write was answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let vote = json!({"Vote": {"vote": {"leader_id": {"term": 999, "node_id": 3}, "committed": false}, "last_log_id": null}});
        let (status, _) = send(channel, "/raft/call", Bytes::from(vote.to_string()));
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = send(
            channel,
            "/cluster/leader",
            Bytes::from(r#"{"op":"status"}"#),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // No credential with that hash was ever stored.
    let (status, tokens) = c.call(1, "GET", "/api/v1/tokens", None);
    assert_eq!(status, 200);
    assert!(
        !tokens.to_string().contains("minted"),
        "the removed node minted a token: {tokens}"
    );
    // The members still commit.
    c.put(1, "after-removal", "ok");
    assert_eq!(c.get(2, "after-removal").as_deref(), Some("ok"));
}

#[test]
fn members_reconnect_and_commit_while_a_stranger_holds_connections() {
    // 256 descriptors: the stranger's 500 connections to each node would
    // take them all without the strangers' share.
    let flags = ["--max-open-files", "256"];
    let mut c = Cluster::found_with(62, &flags);
    c.wait_api(1);
    c.join_node_with(2, &flags);
    c.join_node_with(3, &flags);
    c.wait_for(
        |s| common::voters(s).len() == 3 && s["leader"].is_u64(),
        "three voters",
    );
    let mut held = Vec::new();
    for n in 1..=3 {
        let peer = c.nodes[&n].peer.clone();
        held.extend((0..500).filter_map(|_| idle_connection(&peer)));
    }
    assert!(
        held.len() > 300,
        "the stranger got only {} connections",
        held.len()
    );

    // A member that restarts needs new connections both ways.
    let follower = (1..=3).find(|&n| n != c.leader()).unwrap();
    c.kill(follower);
    c.restart_with(follower, &flags);
    c.put(1, "while-held", "yes");
    assert_eq!(c.get(follower, "while-held").as_deref(), Some("yes"));
    c.wait_for(
        |s| common::lag(s, follower.into()) == Some(0),
        "the restarted member caught up",
    );
    drop(held);
}

#[test]
fn every_port_accepts_again_after_an_emfile_storm() {
    let mut c = Cluster::found_with(63, &["--max-open-files", "128"]);
    c.wait_api(1);
    let node = &c.nodes[&1];
    let (peer, api, gateway) = (node.peer.clone(), node.api.clone(), node.gateway.clone());
    let mut storm = Vec::new();
    for addr in [&peer, &api, &gateway] {
        storm.extend((0..300).filter_map(|_| idle_connection(addr)));
    }
    drop(storm);

    // The API answers, the gateway answers, and a stranger's TLS handshake
    // and join route on the peer port complete.
    c.wait_api(1);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let gateway_ok = common::http(&gateway, "GET", "/", None, None, "text/plain").is_ok();
        if gateway_ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never answered again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rt = runtime();
    let anonymous = Channel::new(peer, tls::fingerprint_fetch_client_config().unwrap());
    let deadline = Instant::now() + DEADLINE;
    loop {
        match rt.block_on(anonymous.request(Method::GET, "/join/ca", Bytes::new())) {
            Ok((StatusCode::OK, ca)) => {
                assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "the peer port never served again: {other:?}\n{}",
                c.logs()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    c.put(1, "after-storm", "ok");
}

/// The certificate in node `n`'s data directory.
fn node_cert(c: &Cluster, n: u8) -> String {
    std::fs::read_to_string(c.nodes[&n].dir.join("tls/node.pem")).unwrap()
}

#[test]
fn certificates_expire_and_are_renewed_before_they_do() {
    // 45 s certificates: renewed when 15 s are left.
    let flags = ["--cert-lifetime", "45s"];
    let mut c = Cluster::found_with(66, &flags);
    c.wait_api(1);
    c.join_node_with(2, &flags);
    c.wait_for(
        |s| common::voters(s).len() == 2 && s["leader"].is_u64(),
        "two voters",
    );
    let first = [node_cert(&c, 1), node_cert(&c, 2)];
    let expiry = first
        .iter()
        .map(|pem| tls::not_after(pem).unwrap())
        .max()
        .unwrap();
    let lifetime = expiry
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        lifetime <= Duration::from_secs(46),
        "the certificates live {lifetime:?}"
    );
    // Both renew: the founder signs its own, node 2 asks the founder.
    let deadline = Instant::now() + DEADLINE * 2;
    while node_cert(&c, 1) == first[0] || node_cert(&c, 2) == first[1] {
        assert!(Instant::now() < deadline, "no renewal\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
    // Once the first certificates have expired, node 2 restarts (so every
    // connection is new) and still commits and catches up.
    while std::time::SystemTime::now() < expiry + Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(250));
    }
    c.kill(2);
    c.restart_with(2, &flags);
    c.put(2, "after-expiry", "renewed");
    assert_eq!(c.get(1, "after-expiry").as_deref(), Some("renewed"));
    assert_eq!(c.get(2, "after-expiry").as_deref(), Some("renewed"));
}
