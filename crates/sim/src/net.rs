//! The simulated network: an openraft `RaftNetworkFactory` whose RPCs go
//! straight to the target replica's `Raft` handle after a modelled delay
//! each way, and fail as unreachable when either end is down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use replica::{NodeId, TypeConfig};

use crate::rng::Rng;

/// The round trip between two nodes, in ms, before jitter.
pub type RttFn = dyn Fn(NodeId, NodeId) -> f64 + Send + Sync;

/// Every link of a simulation: who is reachable, and how far.
pub struct Links {
    rtt: Box<RttFn>,
    /// Jitter added to each one-way delay: exponential with this mean, as a
    /// fraction of the one-way delay.
    jitter: f64,
    rng: Mutex<Rng>,
    replicas: Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>,
    down: Mutex<BTreeSet<NodeId>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why an RPC did not arrive.
#[derive(Debug, thiserror::Error)]
#[error("node {0} is down or unreachable in the simulation")]
pub struct Down(NodeId);

impl Links {
    /// Links whose round trips come from `rtt` (ms), each one-way delay
    /// plus exponential jitter of mean `jitter` × the delay, drawn from
    /// `seed`.
    pub fn new(rtt: Box<RttFn>, jitter: f64, seed: u64) -> Arc<Links> {
        Arc::new(Links {
            rtt,
            jitter,
            rng: Mutex::new(Rng::new(seed)),
            replicas: Mutex::new(BTreeMap::new()),
            down: Mutex::new(BTreeSet::new()),
        })
    }

    /// Makes `raft` reachable as node `id`.
    pub fn attach(&self, id: NodeId, raft: Raft<TypeConfig>) {
        lock(&self.replicas).insert(id, raft);
    }

    /// Takes node `id` off the network (it neither sends nor receives).
    pub fn set_down(&self, id: NodeId, down: bool) {
        let mut set = lock(&self.down);
        if down {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// One message's delay from `from` to `to`.
    pub fn one_way(&self, from: NodeId, to: NodeId) -> Duration {
        let base = (self.rtt)(from, to) / 2.0;
        let jitter = lock(&self.rng).exponential(base * self.jitter);
        Duration::from_secs_f64((base + jitter).max(0.0) / 1000.0)
    }

    fn target(&self, from: NodeId, to: NodeId) -> Result<Raft<TypeConfig>, Down> {
        let down = lock(&self.down);
        if down.contains(&from) || down.contains(&to) {
            return Err(Down(to));
        }
        lock(&self.replicas).get(&to).cloned().ok_or(Down(to))
    }

    /// Carries one RPC: the request's delay, `call` on the target, the
    /// answer's delay. A node that goes down meanwhile loses the answer.
    async fn carry<A, E, F, Fut>(
        &self,
        from: NodeId,
        to: NodeId,
        call: F,
    ) -> Result<A, RPCError<NodeId, BasicNode, E>>
    where
        E: std::error::Error,
        F: FnOnce(Raft<TypeConfig>) -> Fut,
        Fut: std::future::Future<Output = Result<A, E>>,
    {
        let unreachable = |e: Down| RPCError::Unreachable(Unreachable::new(&e));
        tokio::time::sleep(self.one_way(from, to)).await;
        let raft = self.target(from, to).map_err(unreachable)?;
        let answer = call(raft).await;
        tokio::time::sleep(self.one_way(to, from)).await;
        self.target(from, to).map_err(unreachable)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(to, e)))
    }
}

/// One node's side of the simulated network.
pub struct SimNetwork {
    pub id: NodeId,
    pub links: Arc<Links>,
}

impl RaftNetworkFactory<TypeConfig> for SimNetwork {
    type Network = SimClient;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> SimClient {
        SimClient {
            from: self.id,
            target,
            links: self.links.clone(),
        }
    }
}

/// RPCs from one node to another.
pub struct SimClient {
    from: NodeId,
    target: NodeId,
    links: Arc<Links>,
}

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl RaftNetwork<TypeConfig> for SimClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        self.links
            .carry(self.from, self.target, |raft| async move {
                raft.append_entries(rpc).await
            })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.links
            .carry(self.from, self.target, |raft| async move {
                raft.install_snapshot(rpc).await
            })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        self.links
            .carry(self.from, self.target, |raft| async move {
                raft.vote(rpc).await
            })
            .await
    }
}
