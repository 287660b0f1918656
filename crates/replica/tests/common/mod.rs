//! An in-process network for cluster tests: every node's Raft handle in one
//! map, RPCs as direct calls, and nodes that can be cut off; and a
//! linearizability checker for the histories such tests record.

#![allow(dead_code)] // each test binary uses part of this

pub mod linearizable;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use replica::{NodeId, TypeConfig};

/// Starts node `id` with its store in `dir`, on `router`'s network.
pub async fn start_replica(
    router: &Router,
    id: NodeId,
    dir: &std::path::Path,
    timing: &replica::Timing,
) -> replica::Replica {
    // A node restarted in the same process must wait until its previous
    // incarnation's tasks have let go of the file.
    let mut attempts = 0;
    let replica = loop {
        let started = replica::Replica::start(
            id,
            &dir.join(format!("node-{id}.redb")),
            Factory {
                router: router.clone(),
                from: id,
            },
            timing,
        )
        .await;
        match started {
            Ok(r) => break r,
            Err(e) if e.to_string().contains("already open") && attempts < 200 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("start replica {id}: {e}"),
        }
    };
    router.add(id, replica.raft().clone());
    replica
}

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
    down: Arc<Mutex<BTreeSet<NodeId>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable")]
struct Down(NodeId);

impl Router {
    pub fn add(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.nodes.lock().unwrap().insert(id, raft);
        self.down.lock().unwrap().remove(&id);
    }

    /// Takes a node off the network (its RPCs in and out fail).
    pub fn cut(&self, id: NodeId) {
        self.down.lock().unwrap().insert(id);
    }

    /// Puts every node back on the network.
    pub fn heal(&self) {
        self.down.lock().unwrap().clear();
    }

    fn target(&self, from: NodeId, to: NodeId) -> Result<Raft<TypeConfig>, Unreachable> {
        let down = self.down.lock().unwrap();
        if down.contains(&from) || down.contains(&to) {
            return Err(Unreachable::new(&Down(to)));
        }
        self.nodes
            .lock()
            .unwrap()
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&Down(to)))
    }
}

pub struct Factory {
    pub router: Router,
    pub from: NodeId,
}

pub struct Connection {
    router: Router,
    from: NodeId,
    to: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Factory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let raft = self.router.target(self.from, self.to)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RemoteError::new(self.to, e).into())
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let raft = self.router.target(self.from, self.to)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RemoteError::new(self.to, e).into())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let raft = self.router.target(self.from, self.to)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RemoteError::new(self.to, e).into())
    }
}
