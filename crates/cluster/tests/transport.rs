//! A 3-node cluster whose Raft messages travel over HTTP/2 and mutual TLS
//! 1.3 on real loopback sockets (appends on pipes); a node with another
//! cluster's certificate cannot join the conversation.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::tls::{self, ClusterCa};
use cluster::transport::{self, PeerNetwork};
use openraft::impls::Vote;
use openraft::raft::VoteRequest;
use replica::{Call, Replica, ReplicaError, Timing, Transport};
use state::{Command, Revision};
use tokio::net::TcpListener;

fn timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(50),
        election: (Duration::from_millis(300), Duration::from_millis(600)),
        snapshot_every: 50,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_replicates_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::create("t").unwrap();
    let mut nodes = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    let mut servers = Vec::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let identity = ca
            .issue(&format!("node-{id}"), &["127.0.0.1".into()])
            .unwrap();
        let network = PeerNetwork::new(tls::client_config(ca.cert_pem(), &identity).unwrap());
        let replica = Replica::start(
            id,
            &dir.path().join(format!("n{id}.redb")),
            network,
            &timing(),
        )
        .await
        .unwrap();
        let server_tls = tls::server_config(ca.cert_pem(), &identity).unwrap();
        servers.push(transport::serve(listener, server_tls, replica.inbox()));
        addrs.insert(id, addr);
        nodes.insert(id, replica);
    }
    nodes[&1].initialize(addrs.clone()).await.unwrap();

    let mut written = 0;
    for attempt in 0..400 {
        let mut progressed = false;
        for replica in nodes.values() {
            match replica
                .write(Command::Put {
                    key: "k".into(),
                    value: vec![written as u8],
                })
                .await
            {
                Ok(_) => {
                    written += 1;
                    progressed = true;
                    break;
                }
                Err(ReplicaError::NotLeader { .. }) => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        if written == 30 {
            break;
        }
        if !progressed {
            assert!(attempt < 399, "no leader over TLS");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (id, replica) in &nodes {
        for attempt in 0.. {
            if replica.read_local().revision() == Revision(30) {
                break;
            }
            assert!(attempt < 600, "node {id} did not catch up over TLS");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A node of another cluster cannot even ask for a vote.
    let other = ClusterCa::create("other").unwrap();
    let stranger = other.issue("node-9", &["127.0.0.1".into()]).unwrap();
    let network = PeerNetwork::new(tls::client_config(ca.cert_pem(), &stranger).unwrap());
    let vote = VoteRequest::new(Vote::new(99, 9), None);
    let answer = network.call(1, &addrs[&1], Call::Vote(vote)).await;
    assert!(
        answer.is_err(),
        "a stranger's vote request must not get through"
    );
    let pipe = network
        .appends(1, &addrs[&1], Box::pin(futures_util::stream::empty()))
        .await;
    assert!(pipe.is_err(), "a stranger cannot open a pipe of appends");
    let term = nodes[&1].status().term;
    assert!(term < 99, "the stranger's term must not reach the cluster");

    for replica in nodes.values() {
        replica.shutdown().await;
    }
    for s in servers {
        s.abort();
    }
}
