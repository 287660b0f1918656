//! [`Replica`]: one node's share of the replicated state, behind a small
//! API of our own so that the rest of DWCP never touches openraft directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{
    ChangeMembershipError, ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError,
};
use openraft::impls::OneshotResponder;
use openraft::{
    BasicNode, ChangeMembers, Config, Raft, ReadPolicy, ServerState, SnapshotPolicy, StepDownPolicy,
};

use super::WriteMode;
use super::network::{Inbox, Network, Transport};
use super::state_machine::{StateGuard, StateMachine};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{LogStore, NodeId, Proposal, Response, SharedState, StoreError, TypeConfig};
use state::{Command, Compacted, Event, Revision};

/// The engine, with our state machine.
type Engine = Raft<TypeConfig, StateMachine>;

/// How fast a cluster notices a dead leader, and how often it snapshots.
#[derive(Clone, Debug)]
pub struct Timing {
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range
    /// starts an election.
    pub election: (Duration, Duration),
    /// Snapshot (and compact the log) after this many entries.
    pub snapshot_every: u64,
}

impl Timing {
    /// This timing for a group whose members are up to `widest_rtt` apart:
    /// heartbeats no more often than that round trip, and elections that
    /// wait ten of them (never sooner than this timing's), so a slow link
    /// is not taken for a dead leader.
    pub fn spanning(&self, widest_rtt: Duration) -> Timing {
        let heartbeat = self.heartbeat.max(widest_rtt);
        let election = self.election.0.max(heartbeat * 10);
        Timing {
            heartbeat,
            election: (election, election * 2),
            ..self.clone()
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        // etcd's defaults are 100 ms and 1 s. openraft makes a follower
        // wait out the old leader's lease (the election timeout's maximum)
        // and then its own timeout, so failover takes at least max + min:
        // 200-400 ms keeps it under a second within a region, and `dwcp up
        // --election-timeout` raises it for slower networks.
        Timing {
            heartbeat: Duration::from_millis(50),
            election: (Duration::from_millis(200), Duration::from_millis(400)),
            snapshot_every: 10_000,
        }
    }
}

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writes and linearizable reads go to the leader; this is where it is
    /// (when known).
    #[error("this node is not the leader; the leader is {}", leader_text(.leader, .address))]
    NotLeader {
        leader: Option<NodeId>,
        address: Option<String>,
    },
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    #[error("consensus failed: {0}")]
    Raft(String),
}

impl ReplicaError {
    /// The same error again, for each write of a batch that failed.
    fn duplicate(&self) -> ReplicaError {
        match self {
            ReplicaError::NotLeader { leader, address } => ReplicaError::NotLeader {
                leader: *leader,
                address: address.clone(),
            },
            ReplicaError::Config(e) => ReplicaError::Config(e.clone()),
            ReplicaError::Raft(e) => ReplicaError::Raft(e.clone()),
            ReplicaError::Store(e) => ReplicaError::Raft(e.to_string()),
        }
    }
}

fn leader_text(leader: &Option<NodeId>, address: &Option<String>) -> String {
    match (leader, address) {
        (Some(id), Some(addr)) => format!("node {id} at {addr}"),
        (Some(id), None) => format!("node {id}"),
        _ => "not known yet (an election may be under way)".into(),
    }
}

/// A node's role and view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: &'static str,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub voters: BTreeSet<NodeId>,
    pub members: BTreeMap<NodeId, String>,
    /// On the leader: the last log index each member is known to hold.
    pub matched: Option<BTreeMap<NodeId, Option<u64>>>,
}

/// One node of the replicated store.
pub struct Replica {
    id: NodeId,
    raft: Engine,
    state: SharedState,
    /// To the task that groups concurrent writes into log entries.
    writes: mpsc::Sender<Pending>,
    /// How long a write waits for a new leader's first quorum (the
    /// election timeout's maximum).
    lease_wait: Duration,
    /// This node's log, for [`Replica::batch_sizes`].
    log: LogStore,
}

/// A write waiting to be proposed, and where its answer goes.
struct Pending {
    command: Command,
    answer: oneshot::Sender<Result<Response, ReplicaError>>,
}

/// Most commands in one log entry.
const MAX_BATCH: usize = 256;

/// Most entries proposed and not yet committed at once. Writes that arrive
/// while this many are in flight wait, and go together into the next entry.
/// The engine appends, replicates and syncs entries in a pipeline, so a
/// few in flight keep every stage busy; more only make batches smaller.
const MAX_IN_FLIGHT: usize = 4;

/// Longest a membership change waits for an earlier one to commit before
/// it is refused: a change commits within a round trip or two, so this
/// covers an election on the way.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);

/// Proposes the writes sent to `writes` to `raft`, grouping the ones that
/// queue up while earlier entries commit (group commit): under load, one
/// log entry, one fsync per node and one replication round carry many
/// writes; a lone writer still gets its own entry at once. Entries are
/// proposed in the order the writes arrived.
async fn propose(raft: Engine, mut writes: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = writes.recv().await {
        // Wait for a slot before gathering: writes that arrive meanwhile
        // join this entry.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(next) = writes.try_recv()
        {
            batch.push(next);
        }
        let (commands, answers): (Vec<Command>, Vec<_>) =
            batch.into_iter().map(|p| (p.command, p.answer)).unzip();
        let proposal = match <[Command; 1]>::try_from(commands) {
            Ok([one]) => Proposal::One(one),
            Err(many) => Proposal::Batch(many),
        };
        let (responder, receiver) = OneshotResponder::new_pair();
        let submitted = raft.client_write_ff(proposal, Some(responder)).await;
        tokio::spawn(async move {
            let result = match submitted {
                Ok(()) => match receiver.await {
                    Ok(Ok(written)) => Ok(written.data),
                    Ok(Err(e)) => Err(write_error(RaftError::APIError(e))),
                    Err(_) => Err(ReplicaError::Raft("the Raft node stopped".into())),
                },
                Err(fatal) => Err(ReplicaError::Raft(fatal.to_string())),
            };
            drop(slot);
            match result {
                Ok(responses) => {
                    for (answer, response) in answers.into_iter().zip(responses) {
                        let _ = answer.send(Ok(response));
                    }
                }
                Err(e) => {
                    for answer in answers {
                        let _ = answer.send(Err(e.duplicate()));
                    }
                }
            }
        });
    }
}

impl Replica {
    /// Opens the node's store at `path` and starts its Raft, reaching peers
    /// through `transport`.
    pub async fn start<T: Transport>(
        id: NodeId,
        path: &Path,
        transport: T,
        timing: &Timing,
    ) -> Result<Replica, ReplicaError> {
        Replica::start_with(id, path, transport, timing, WriteMode::Thread).await
    }

    /// [`Replica::start`] for a simulation in virtual time (a paused tokio
    /// clock): log writes happen inline, taking no virtual time, instead of
    /// on a writer thread whose fsync the paused clock would skip past.
    pub async fn start_simulated<T: Transport>(
        id: NodeId,
        path: &Path,
        transport: T,
        timing: &Timing,
    ) -> Result<Replica, ReplicaError> {
        Replica::start_with(id, path, transport, timing, WriteMode::Inline).await
    }

    async fn start_with<T: Transport>(
        id: NodeId,
        path: &Path,
        transport: T,
        timing: &Timing,
        mode: WriteMode,
    ) -> Result<Replica, ReplicaError> {
        let (log, sm) = super::open_with(path, mode)?;
        let log_view = log.clone();
        let state = sm.shared();
        let ms = |d: Duration| d.as_millis() as u64;
        let config = Config {
            cluster_name: "dwcp".into(),
            heartbeat_interval: ms(timing.heartbeat),
            election_timeout_min: ms(timing.election.0),
            election_timeout_max: ms(timing.election.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_every),
            max_in_snapshot_log_to_keep: 100.min(timing.snapshot_every),
            // A leader removed from the membership hands leadership to the
            // most up-to-date voter once the removal is committed (after a
            // heartbeat's time, so the followers hear of the commit first).
            removed_leader_step_down: StepDownPolicy::After(ms(timing.heartbeat)),
            // A follower that has not heard the leader (it was restarted,
            // stopped, or cut off) first asks whether it could win, and
            // bumps its term only if a quorum would vote for it. Without
            // this, a restarted follower times out before the leader's
            // replication to it resumes (the leader backs off from a dead
            // peer for up to a second), raises its term, and its answer to
            // the leader's next append deposes the leader: every restart
            // cost an election, and under load the elections never ended
            // (a follower's term climbed from 36 to 146 without catching up).
            enable_pre_vote: Some(true),
            ..Config::default()
        }
        .validate()
        .map_err(|e| ReplicaError::Config(e.to_string()))?;
        // An append whose answer takes longer than an election timeout: the
        // peer is gone without closing the connection; reopen the pipe.
        let network = Network::new(id, transport, timing.election.1);
        let raft = Raft::new(id, Arc::new(config), network, log, sm)
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))?;
        let (writes, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(propose(raft.clone(), queue));
        Ok(Replica {
            id,
            raft,
            state,
            writes,
            lease_wait: timing.election.1,
            log: log_view,
        })
    }

    /// Where this replica's peers deliver their messages: for the
    /// transport's receiving side.
    pub fn inbox(&self) -> Inbox {
        Inbox::new(self.raft.clone())
    }

    /// Makes this node's cluster: `members` (id to address) as the voters.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), ReplicaError> {
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        self.raft
            .initialize(members)
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))
    }

    /// Whether this node has ever been part of a cluster (has a log or a
    /// vote on disk).
    pub async fn is_initialized(&self) -> Result<bool, ReplicaError> {
        self.raft
            .is_initialized()
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))
    }

    /// Commits `command` on a majority and returns what applying it gave.
    /// Concurrent writes may share one log entry (see [`Proposal`]).
    ///
    /// A leader takes writes only while a quorum has confirmed it within its
    /// lease: just elected, it has not yet heard from one. Such a refusal
    /// (nothing was appended) is retried here while this node still leads,
    /// for an election timeout at most; a node that does not lead answers
    /// [`ReplicaError::NotLeader`] at once.
    pub async fn write(&self, command: Command) -> Result<Response, ReplicaError> {
        let deadline = tokio::time::Instant::now() + self.lease_wait;
        loop {
            let result = self.propose_once(command.clone()).await;
            let unconfirmed = matches!(
                &result,
                Err(ReplicaError::NotLeader { leader, .. }) if leader.is_none_or(|l| l == self.id)
            );
            if !unconfirmed
                || self.status().role != "leader"
                || tokio::time::Instant::now() >= deadline
            {
                return result;
            }
            self.wait_for_change(deadline - tokio::time::Instant::now())
                .await;
        }
    }

    async fn propose_once(&self, command: Command) -> Result<Response, ReplicaError> {
        let stopped = || ReplicaError::Raft("the Raft node stopped".into());
        let (answer, response) = oneshot::channel();
        self.writes
            .send(Pending { command, answer })
            .await
            .map_err(|_| stopped())?;
        response.await.map_err(|_| stopped())?
    }

    /// How many commands each entry of this node's log from index `from`
    /// on carries: the sizes of the group commit's batches (0 for entries
    /// without commands). Entries compacted into a snapshot are gone.
    pub fn batch_sizes(&self, from: u64) -> Result<Vec<usize>, ReplicaError> {
        self.log.command_counts(from).map_err(ReplicaError::Raft)
    }

    /// The state as of now, linearizably: the leader confirms it still
    /// leads and this node has applied everything committed before the read.
    pub async fn read(&self) -> Result<StateGuard<'_>, ReplicaError> {
        self.raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(leader_check_error)?;
        Ok(self.state.read())
    }

    /// The first half of a linearizable read served by any node (Raft's
    /// ReadIndex): the leader confirms it still leads and returns the log
    /// index a reader must have applied. Only the leader can answer.
    pub async fn read_index(&self) -> Result<u64, ReplicaError> {
        let (read, _) = self
            .raft
            .get_read_log_id(ReadPolicy::ReadIndex)
            .await
            .map_err(leader_check_error)?;
        Ok(read.index())
    }

    /// Waits until this node has applied log index `index`, for `wait` at
    /// most: the second half of a ReadIndex read.
    pub async fn wait_applied(&self, index: u64, wait: Duration) -> Result<(), ReplicaError> {
        self.raft
            .wait(Some(wait))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(drop)
            .map_err(|e| ReplicaError::Raft(format!("waiting to apply index {index}: {e}")))
    }

    /// Waits until some node is known as leader, for `wait` at most, and
    /// returns its id and address.
    pub async fn wait_for_leader(&self, wait: Duration) -> Option<(NodeId, String)> {
        let m = self
            .raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .ok()?;
        let leader = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())?;
        Some((leader, addr))
    }

    /// Waits until this node's view of the cluster changes (a new term,
    /// leader, log entry…), for `wait` at most.
    pub async fn wait_for_change(&self, wait: Duration) {
        let mut metrics = self.raft.metrics();
        // A receiver cloned from Raft's own has seen nothing, so `changed`
        // would return at once: mark what is there now as seen first.
        drop(metrics.borrow_and_update());
        let _ = tokio::time::timeout(wait, metrics.changed()).await;
    }

    /// The state this node has applied, without asking the leader: may lag.
    pub fn read_local(&self) -> StateGuard<'_> {
        self.state.read()
    }

    /// Waits until this node has applied a revision after `since`, or for
    /// `wait` at most, then returns the events after `since`.
    pub async fn watch(&self, since: Revision, wait: Duration) -> Result<Vec<Event>, Compacted> {
        let mut revisions = self.state.subscribe();
        let _ = tokio::time::timeout(wait, revisions.wait_for(|r| *r > since)).await;
        self.state.read().events_since(since)
    }

    /// Adds a node as a non-voting learner; with `wait`, returns once it
    /// has the log (which needs the node running), otherwise at once.
    pub async fn add_learner(
        &self,
        id: NodeId,
        address: String,
        wait: bool,
    ) -> Result<(), ReplicaError> {
        let node = BasicNode::new(address);
        self.one_change_at_a_time(|| self.raft.add_learner(id, node.clone(), wait))
            .await
    }

    /// Makes learners `ids` voters.
    pub async fn promote(&self, ids: BTreeSet<NodeId>) -> Result<(), ReplicaError> {
        self.change(ChangeMembers::AddVoterIds(ids)).await
    }

    /// Removes nodes `ids` from the cluster entirely, in one membership
    /// change (voters removed without being kept as learners).
    ///
    /// The leader may remove itself: once the change is committed it hands
    /// leadership to the most up-to-date remaining voter and stops leading
    /// (openraft's `removed_leader_step_down`), so the cluster is led again
    /// within an election's round trip, without waiting out a timeout.
    pub async fn remove(&self, ids: BTreeSet<NodeId>) -> Result<(), ReplicaError> {
        self.change(ChangeMembers::RemoveVoters(ids)).await
    }

    /// Hands leadership to the voter whose log is the most up to date (the
    /// highest index it is known to hold) and waits, for `wait` at most,
    /// until another node leads. Returns the new leader, or `None` when
    /// this node does not lead or has no other voter to hand to.
    ///
    /// While the hand-off runs the leader takes no new writes (they are
    /// refused as [`ReplicaError::NotLeader`], naming the node it hands to,
    /// and change nothing); the writes it already took commit or are
    /// answered as usual.
    pub async fn hand_off(&self, wait: Duration) -> Result<Option<NodeId>, ReplicaError> {
        let status = self.status();
        if status.leader != Some(self.id) {
            return Ok(None);
        }
        let Some(to) = most_up_to_date(&status) else {
            return Ok(None);
        };
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| ReplicaError::Raft(e.to_string()))?;
        let me = self.id;
        let led = self
            .raft
            .wait(Some(wait))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "another node leads",
            )
            .await
            .map_err(|e| ReplicaError::Raft(format!("handing leadership to node {to}: {e}")))?;
        Ok(led.current_leader)
    }

    async fn change(&self, change: ChangeMembers<NodeId, BasicNode>) -> Result<(), ReplicaError> {
        // `retain: false`: a voter removed is dropped, not kept as learner.
        self.one_change_at_a_time(|| self.raft.change_membership(change.clone(), false))
            .await
    }

    /// Runs the membership change `attempt` makes, retrying it for
    /// [`MEMBERSHIP_WAIT`] at most while an earlier change is still being
    /// committed. Raft allows one change in flight; two nodes joining at once
    /// (a planet's cells join its global tier together) would otherwise see
    /// the second refused. The refusal comes before anything is appended, so
    /// the retry cannot apply a change twice.
    async fn one_change_at_a_time<F, R>(&self, attempt: impl Fn() -> F) -> Result<(), ReplicaError>
    where
        F: std::future::Future<
                Output = Result<R, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
            >,
    {
        let deadline = tokio::time::Instant::now() + MEMBERSHIP_WAIT;
        loop {
            let mut metrics = self.raft.metrics();
            drop(metrics.borrow_and_update());
            match attempt().await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if tokio::time::Instant::now() < deadline => {
                    // Wait for the log to move (the earlier change commits),
                    // then try again.
                    let _ = tokio::time::timeout_at(deadline, metrics.changed()).await;
                }
                Err(e) => return Err(write_error(e)),
            }
        }
    }

    /// This node's role and view of the cluster.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow_watched().clone();
        let config = m.membership_config.membership();
        Status {
            id: self.id,
            role: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            matched: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect()),
            voters: config.voter_ids().collect(),
            members: config
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
        }
    }

    /// Stops the node; its store stays on disk for a restart.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

/// The voter other than the leader with the highest index it is known to
/// hold (the lowest id among equals): the one that can lead soonest.
fn most_up_to_date(status: &Status) -> Option<NodeId> {
    let matched = status.matched.as_ref()?;
    status
        .voters
        .iter()
        .filter(|id| **id != status.id)
        .max_by_key(|id| (matched.get(id).copied().flatten(), std::cmp::Reverse(**id)))
        .copied()
}

fn not_leader(f: ForwardToLeader<TypeConfig>) -> ReplicaError {
    ReplicaError::NotLeader {
        leader: f.leader_id,
        address: f.leader_node.map(|n| n.addr),
    }
}

fn leader_check_error(e: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>) -> ReplicaError {
    match e {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => not_leader(f),
        other => ReplicaError::Raft(other.to_string()),
    }
}

fn write_error(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> ReplicaError {
    match e {
        // Refused before its entry was appended: nothing was done.
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(f),
        // `LogEntryDiscarded` (the entry may still commit elsewhere) and
        // the rest: the outcome is unknown to the writer.
        other => ReplicaError::Raft(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_spanning_a_wide_round_trip_beats_and_elects_slower() {
        let cell = Timing::default();
        let near = cell.spanning(Duration::from_millis(1));
        assert_eq!(near.heartbeat, cell.heartbeat);
        assert_eq!(
            near.election.0,
            Duration::from_millis(500),
            "ten heartbeats"
        );
        let far = cell.spanning(Duration::from_millis(120));
        assert_eq!(far.heartbeat, Duration::from_millis(120));
        assert_eq!(
            far.election,
            (Duration::from_millis(1_200), Duration::from_millis(2_400))
        );
        assert_eq!(far.snapshot_every, cell.snapshot_every);
    }
}
