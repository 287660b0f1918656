//! One Raft group of DWCP replicas on the simulated network: started,
//! led by a chosen node, written to, and stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use replica::{NodeId, Replica, ReplicaError, Timing};
use state::Command;
use tokio::time::Instant;

use crate::net::{Links, SimNetwork};

/// Why a group could not do what the scenario asked.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("replica {id}: {source}")]
    Replica {
        id: NodeId,
        #[source]
        source: ReplicaError,
    },
    #[error("no leader within {0:?} of virtual time")]
    NoLeader(Duration),
    #[error("gossip: {0}")]
    Gossip(String),
    /// A gossip member could not be restarted.
    #[error("gossip restart: {0}")]
    Restart(#[from] planet::summary::RestartError),
    /// The scheduler refused its input as a whole.
    #[error("placement: {0}")]
    Placement(#[from] scheduler::InputError),
    /// The state machine refused a command the scenario committed.
    #[error("the state refused a command: {0}")]
    Refused(String),
    #[error("creating the group's directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Replicas of one group, in the order given.
pub struct Group {
    pub replicas: Vec<Replica>,
    /// The redb files live here until the group is dropped.
    _dir: tempfile::TempDir,
}

impl Group {
    /// Starts replicas `ids` on `links` and makes `ids[0]` the leader: only
    /// it is initialized, so only it can win the first election.
    pub async fn start(
        ids: &[NodeId],
        links: &Arc<Links>,
        timing: &Timing,
    ) -> Result<Group, GroupError> {
        let dir = tempfile::tempdir()?;
        // The replicas' own draws (election timeouts, tick phases) follow
        // the scenario's seed too: the simulation runs on this thread.
        replica::seed_this_thread(links.seed() ^ ids.first().copied().unwrap_or(0));
        let mut replicas = Vec::with_capacity(ids.len());
        for &id in ids {
            let network = SimNetwork {
                id,
                links: links.clone(),
            };
            let path = dir.path().join(format!("{id}.redb"));
            let replica = Replica::start_simulated(id, &path, network, timing)
                .await
                .map_err(|source| GroupError::Replica { id, source })?;
            links.attach(id, replica.inbox());
            replicas.push(replica);
        }
        let members: BTreeMap<NodeId, String> =
            ids.iter().map(|&id| (id, format!("sim-{id}"))).collect();
        let first = &replicas[0];
        first
            .initialize(members)
            .await
            .map_err(|source| GroupError::Replica { id: ids[0], source })?;
        let wait = timing.election.1 * 20;
        match first.wait_for_leader(wait).await {
            Some((leader, _)) if leader == ids[0] => {}
            _ => return Err(GroupError::NoLeader(wait)),
        }
        Ok(Group {
            replicas,
            _dir: dir,
        })
    }

    /// Commits one write through replica `index` (the leader) and returns
    /// how long it took in virtual time.
    pub async fn commit(&self, index: usize, key: &str) -> Result<Duration, GroupError> {
        let put = Command::Put {
            key: key.to_string(),
            value: b"v".to_vec(),
        };
        self.commit_command(index, put).await
    }

    /// Commits `command` through replica `index` (the leader) and returns
    /// how long it took in virtual time; a command the state machine
    /// refused is an error naming why.
    pub async fn commit_command(
        &self,
        index: usize,
        command: Command,
    ) -> Result<Duration, GroupError> {
        let replica = &self.replicas[index];
        let started = Instant::now();
        let response = replica
            .write(command)
            .await
            .map_err(|source| GroupError::Replica {
                id: replica.status().id,
                source,
            })?;
        response
            .result
            .map_err(|rejection| GroupError::Refused(rejection.to_string()))?;
        Ok(started.elapsed())
    }

    /// Stops every replica's Raft.
    pub async fn shutdown(self) {
        for replica in &self.replicas {
            replica.shutdown().await;
        }
    }
}
