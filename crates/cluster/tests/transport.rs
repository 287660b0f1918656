//! A 3-node cluster whose Raft RPCs travel over HTTP/2 and mutual TLS 1.3
//! on real loopback sockets; a node with another cluster's certificate
//! cannot join the conversation.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::tls::{self, ClusterCa};
use cluster::transport::{self, PeerNetwork};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::{BasicNode, Vote};
use replica::{Replica, ReplicaError, Timing};
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
        servers.push(transport::serve(
            listener,
            server_tls,
            replica.raft().clone(),
        ));
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
    let mut factory = PeerNetwork::new(tls::client_config(ca.cert_pem(), &stranger).unwrap());
    let mut client = factory
        .new_client(1, &BasicNode::new(addrs[&1].clone()))
        .await;
    let vote = VoteRequest::new(Vote::new(99, 9), None);
    let answer = client
        .vote(vote, RPCOption::new(Duration::from_secs(2)))
        .await;
    assert!(
        answer.is_err(),
        "a stranger's vote request must not get through"
    );
    let term = nodes[&1].status().term;
    assert!(term < 99, "the stranger's term must not reach the cluster");

    for replica in nodes.values() {
        replica.shutdown().await;
    }
    for s in servers {
        s.abort();
    }
}
