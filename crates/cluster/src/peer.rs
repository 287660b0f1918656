//! The peer port's routes beyond Raft, and the messages they carry.
//!
//! ```text
//! GET  /join/ca              anyone: the CA certificate (checked by fingerprint)
//! POST /join                 anyone with a join token: a node id and certificate
//! POST /cluster/leader       members: a LeaderOp run on the leader
//! POST /cluster/sign         members, on a CA key holder: sign a joiner's certificate
//! POST /cluster/renew        members, on a CA key holder: renew the caller's certificate
//! PUT  /cluster/blobs/{d}    members: store a blob
//! GET  /cluster/blobs/{d}    members: fetch a blob
//! POST /cluster/logs         members: this node's lines of an app's log
//! POST /raft/...             members: Raft RPCs
//! ```

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::node::ClusterNode;
use super::status::ClusterStatus;
use crate::transport::{PeerCert, PeerRequest, PeerService, RaftService};
use replica::{NodeId, Response};
use state::Command;

/// Work only the leader can do, sent to it by any member.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LeaderOp {
    Write { command: Command },
    ReadIndex,
    Status,
    AddLearner { id: NodeId, address: String },
    Promote { id: NodeId },
    Remove { id: NodeId },
}

/// The leader's answer to a [`LeaderOp`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderReply {
    Written(Response),
    ReadIndex(u64),
    Status(ClusterStatus),
    Done,
    /// The receiver is not the leader (nothing was done); try `address`.
    NotLeader {
        address: Option<String>,
    },
    /// The leader refused the request as asked (nothing was done).
    Refused {
        message: String,
    },
    /// The leader tried and failed; nothing more to try elsewhere.
    Failed {
        message: String,
    },
}

/// A joining node's request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The join token's secret.
    pub secret: String,
    pub peer_address: String,
    pub api_address: String,
    pub region: String,
    /// A certificate signing request (PEM) for the key the joining node
    /// made and keeps.
    pub csr_pem: String,
}

/// What a joining node gets: its id, the CA's certificate, its own
/// certificate (for the key it sent a request for) and the cluster secret
/// — never the CA's key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinGrant {
    pub id: NodeId,
    pub cluster: String,
    pub ca_pem: String,
    pub cert_pem: String,
    /// The cluster secret, hex.
    pub secret: String,
}

/// A member's request to a node that holds the CA key: sign the
/// certificate of node `id` at `hosts` (its peer and API IPs; a node a
/// join is admitting) for the key of `csr_pem`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub id: NodeId,
    pub hosts: Vec<String>,
    pub csr_pem: String,
}

/// Whether member `caller` may ask the leader for `op` over the peer port
/// (the leader's own ops are not checked): reads and status; promoting
/// itself (never another node); adding as a learner only a node a join
/// recorded at that address and that is not a member yet; removing a
/// node and writing changes, which members forward from their API and
/// agent — but no change to another existing node's address or pinned
/// key, and no removal of a node record (the leader removes it with the
/// member). What is refused names the rule.
pub fn peer_may(
    op: &LeaderOp,
    caller: NodeId,
    state: &state::State,
    members: &std::collections::BTreeMap<NodeId, String>,
) -> Result<(), String> {
    match op {
        LeaderOp::ReadIndex | LeaderOp::Status | LeaderOp::Remove { .. } => Ok(()),
        LeaderOp::Promote { id } if *id == caller => Ok(()),
        LeaderOp::Promote { id } => Err(format!(
            "node {caller} may promote only itself, not node {id}"
        )),
        LeaderOp::AddLearner { id, address } => {
            let recorded = state
                .node(&super::node_name(*id))
                .is_some_and(|n| n.address == *address);
            if !recorded || members.contains_key(id) {
                return Err(format!(
                    "node {id} at {address} is not a node a join recorded and that is not yet a member"
                ));
            }
            Ok(())
        }
        LeaderOp::Write { command } => {
            let inner = match command {
                Command::Audited { command, .. } => command.as_ref(),
                other => other,
            };
            match inner {
                Command::PutNode { node } => {
                    let own = node.name == super::node_name(caller);
                    match state.node(&node.name) {
                        Some(old)
                            if !own
                                && (old.address != node.address
                                    || node
                                        .peer_key
                                        .as_ref()
                                        .is_some_and(|k| old.peer_key.as_ref() != Some(k))) =>
                        {
                            Err(format!(
                                "node {caller} may not change the address or key of {}",
                                node.name
                            ))
                        }
                        _ => Ok(()),
                    }
                }
                Command::RemoveNode { name } => Err(format!(
                    "node {caller} may not remove the record of {name}: ask the leader to remove the member"
                )),
                _ => Ok(()),
            }
        }
    }
}

/// The peer port of a running node.
pub struct PeerRoutes {
    pub node: Arc<ClusterNode>,
    pub raft: RaftService,
}

fn text(status: StatusCode, message: impl Into<String>) -> (StatusCode, Bytes) {
    (status, Bytes::from(message.into()))
}

fn json<T: Serialize>(value: &T) -> (StatusCode, Bytes) {
    match serde_json::to_vec(value) {
        Ok(v) => (StatusCode::OK, Bytes::from(v)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

impl PeerService for PeerRoutes {
    fn ingress(&self) -> Option<Arc<dyn crate::transport::Ingress>> {
        self.node.ingress()
    }

    fn admits(&self, caller: &PeerCert) -> bool {
        self.node.admits_peer(caller)
    }

    fn inbox(&self) -> Option<replica::Inbox> {
        self.raft.inbox()
    }

    async fn handle(&self, request: PeerRequest) -> (StatusCode, Bytes) {
        let path = request.path.as_str();
        match (&request.method, path) {
            (&Method::GET, "/join/ca") => {
                return (StatusCode::OK, Bytes::from(self.node.ca_pem().to_string()));
            }
            (&Method::POST, "/join") => {
                let join = match crate::join::parse_join_request(&request.body) {
                    Ok(join) => join,
                    Err((status, message)) => return text(status, message),
                };
                return match self.node.admit(join).await {
                    Ok(grant) => json(&grant),
                    Err((status, message)) => text(status, message),
                };
            }
            _ => {}
        }
        if !request.authenticated {
            return text(
                StatusCode::FORBIDDEN,
                "a certificate from the cluster's CA is required",
            );
        }
        if path.starts_with("/raft/") {
            return self.raft.handle(request).await;
        }
        if path == "/cluster/leader" && request.method == Method::POST {
            let Ok(op) = serde_json::from_slice::<LeaderOp>(&request.body) else {
                return text(StatusCode::BAD_REQUEST, "the leader op is not valid JSON");
            };
            let caller = request.caller.as_ref().and_then(|c| c.node);
            let allowed = {
                let state = self.node.replica().read_local();
                let members = self.node.replica().status().members;
                caller
                    .ok_or_else(|| "the certificate names no node".to_string())
                    .and_then(|caller| peer_may(&op, caller, &state, &members))
            };
            if let Err(why) = allowed {
                return text(StatusCode::FORBIDDEN, why);
            }
            return json(&self.node.run_on_this_leader(op).await);
        }
        if path == crate::app_logs::PEER_LOGS_PATH && request.method == Method::POST {
            let Ok(query) = serde_json::from_slice::<crate::logs::LogQuery>(&request.body) else {
                return text(StatusCode::BAD_REQUEST, "the log query is not valid JSON");
            };
            return json(&self.node.app_log().page(&query));
        }
        if path == "/cluster/renew" && request.method == Method::POST {
            let Some(caller) = &request.caller else {
                return text(StatusCode::FORBIDDEN, "members only");
            };
            return match crate::renew::renew_for_member(&self.node, caller, &request.body) {
                Ok(cert_pem) => json(&cert_pem),
                Err((status, message)) => text(status, message),
            };
        }
        if path == "/cluster/sign" && request.method == Method::POST {
            return match crate::join::sign_for_member(&self.node, &request.body).await {
                Ok(cert_pem) => json(&cert_pem),
                Err((status, message)) => text(status, message),
            };
        }
        if let Some(digest) = path.strip_prefix("/cluster/blobs/") {
            return match request.method {
                Method::PUT => match self.node.store_blob_copy(digest, &request.body) {
                    Ok(()) => (StatusCode::OK, Bytes::new()),
                    Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
                },
                Method::GET => match self.node.blobs().get(digest) {
                    Ok(bytes) => (StatusCode::OK, Bytes::from(bytes)),
                    Err(e) => text(StatusCode::NOT_FOUND, e.to_string()),
                },
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or PUT"),
            };
        }
        text(StatusCode::NOT_FOUND, "no such route")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{Name, Node, Region, State};

    fn node(id: u64, address: &str, key: Option<&str>) -> Node {
        Node {
            name: super::super::node_name(id),
            region: Name::new("region", "local").unwrap(),
            address: address.into(),
            labels: Default::default(),
            capacity: 1000,
            api: None,
            gateway: None,
            peer_key: key.map(str::to_string),
        }
    }

    fn state() -> State {
        let mut s = State::default();
        s.apply(&Command::PutRegion {
            region: Region::named(Name::new("region", "local").unwrap()),
        })
        .unwrap();
        for (id, addr) in [
            (1, "10.0.0.1:7071"),
            (2, "10.0.0.2:7071"),
            (3, "10.0.0.3:7071"),
        ] {
            s.apply(&Command::PutNode {
                node: node(id, addr, Some(&"a".repeat(64))),
            })
            .unwrap();
        }
        s
    }

    #[test]
    fn a_member_may_ask_only_what_members_need() {
        let s = state();
        let members = [
            (1, "10.0.0.1:7071".to_string()),
            (2, "10.0.0.2:7071".to_string()),
        ]
        .into();
        let may = |op: LeaderOp| peer_may(&op, 2, &s, &members);
        assert!(may(LeaderOp::ReadIndex).is_ok());
        assert!(may(LeaderOp::Status).is_ok());
        assert!(may(LeaderOp::Promote { id: 2 }).is_ok());
        assert!(
            may(LeaderOp::Promote { id: 1 })
                .unwrap_err()
                .contains("only itself")
        );
        // Node 3 is recorded and not a member yet: a join admitted it.
        let learner = |id, address: &str| LeaderOp::AddLearner {
            id,
            address: address.into(),
        };
        assert!(may(learner(3, "10.0.0.3:7071")).is_ok());
        assert!(may(learner(3, "10.9.9.9:7071")).is_err(), "another address");
        assert!(may(learner(4, "10.0.0.4:7071")).is_err(), "no record");
        assert!(
            may(learner(1, "10.0.0.1:7071")).is_err(),
            "a member already"
        );
        let write = |command| LeaderOp::Write { command };
        assert!(
            may(write(Command::Put {
                key: "k".into(),
                value: vec![1]
            }))
            .is_ok()
        );
        // Its own record may change (API and gateway addresses)...
        let mut own = node(2, "10.0.0.2:7071", None);
        own.api = Some("10.0.0.2:7070".into());
        assert!(may(write(Command::PutNode { node: own })).is_ok());
        // ...another's address or key may not, and no record is removed.
        let moved = node(1, "10.6.6.6:7071", None);
        assert!(may(write(Command::PutNode { node: moved })).is_err());
        let rekeyed = node(1, "10.0.0.1:7071", Some(&"b".repeat(64)));
        assert!(may(write(Command::PutNode { node: rekeyed })).is_err());
        let labels = node(1, "10.0.0.1:7071", None);
        assert!(
            may(write(Command::PutNode { node: labels })).is_ok(),
            "labels, capacity"
        );
        let remove = Command::RemoveNode {
            name: super::super::node_name(1),
        };
        assert!(may(write(remove)).is_err());
    }
}
