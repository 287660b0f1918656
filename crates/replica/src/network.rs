//! How replicas reach each other: a [`Transport`] of our own, between the
//! Raft engine and whatever carries its messages (HTTP/2 over TLS in
//! `cluster`, modelled links in `sim`, direct calls in tests).
//!
//! A transport carries two things: single messages ([`Call`] → [`Reply`]:
//! votes, snapshots, leadership hand-offs) and ordered pipes of appends
//! ([`Appends`] → [`AppendAnswers`]). The pipe is what lets a leader keep
//! several appends in flight to one follower: requests go out as the
//! engine produces them, without waiting for the previous answer, and the
//! answers come back in the same order (the follower's [`Inbox`] handles
//! them in order too). Heartbeats travel on pipes of their own, so a
//! heartbeat never waits behind appends and an append never behind a
//! heartbeat.
//!
//! The receiving side is the [`Inbox`]: whatever arrives for a replica goes
//! into [`Inbox::call`] or [`Inbox::appends`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendError,
    StreamAppendResult, TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes, Raft};
use serde::{Deserialize, Serialize};

use super::state_machine::{Snapshot, StateMachine};
use super::types::{NodeId, TypeConfig, Vote};

/// One append, as the leader sends it.
pub type Append = AppendEntriesRequest<TypeConfig>;

/// What a follower answers one append: the last entry it now holds durably
/// from it, or why it refused.
pub type AppendAnswer = StreamAppendResult<TypeConfig>;

/// Appends going out on one pipe, in order.
pub type Appends = Pin<Box<dyn Stream<Item = Append> + Send>>;

/// The answers of one pipe, in the order of its appends; it ends after an
/// error.
pub type AppendAnswers = Pin<Box<dyn Stream<Item = Result<AppendAnswer, LinkError>> + Send>>;

/// A single message from one replica to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Call {
    Vote(VoteRequest<TypeConfig>),
    /// Would the target vote for this candidate? (Nothing is stored.)
    PreVote(VoteRequest<TypeConfig>),
    /// The leader's whole state, for a follower too far behind its log.
    Snapshot {
        vote: Vote,
        snapshot: SnapshotMessage,
    },
    /// The leader hands leadership to `to` (sent to every member).
    TransferLeader(TransferLeaderRequest<TypeConfig>),
}

/// A snapshot on the wire: its meta and its bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotMessage {
    pub meta: openraft::alias::SnapshotMetaOf<TypeConfig>,
    pub data: Vec<u8>,
}

/// The answer to a [`Call`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
}

/// Why a message got no answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer could not be reached, or is not running: the engine backs
    /// off before it tries again.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The message could not be sent or its answer not read: the engine
    /// may try again at once.
    #[error("{0}")]
    Failed(String),
}

/// What carries messages between replicas. One per replica; `address` is
/// the peer's as recorded in the membership.
pub trait Transport: Send + Sync + 'static {
    /// Sends one message to node `to` and returns its answer, which the
    /// peer got from its [`Inbox::call`].
    fn call(
        &self,
        to: NodeId,
        address: &str,
        call: Call,
    ) -> impl Future<Output = Result<Reply, LinkError>> + Send;

    /// Opens a pipe of appends to node `to`: each append is handed to the
    /// peer's [`Inbox::appends`] in order, without waiting for earlier
    /// answers, and the answers come back in order, one per append. Closing
    /// `appends` closes the pipe.
    fn appends(
        &self,
        to: NodeId,
        address: &str,
        appends: Appends,
    ) -> impl Future<Output = Result<AppendAnswers, LinkError>> + Send;
}

/// Why an inbox could not answer: its replica has stopped.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the replica has stopped: {0}")]
pub struct Stopped(pub String);

/// Where a replica's peers deliver what they send it. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    raft: Raft<TypeConfig, StateMachine>,
}

impl Inbox {
    pub(crate) fn new(raft: Raft<TypeConfig, StateMachine>) -> Inbox {
        Inbox { raft }
    }

    /// Handles one message.
    pub async fn call(&self, call: Call) -> Result<Reply, Stopped> {
        let stopped = |e: openraft::error::Fatal<TypeConfig>| Stopped(e.to_string());
        let raft_stopped = |e: openraft::error::RaftError<TypeConfig>| Stopped(e.to_string());
        Ok(match call {
            Call::Vote(rpc) => Reply::Vote(self.raft.vote(rpc).await.map_err(raft_stopped)?),
            Call::PreVote(rpc) => Reply::Vote(self.raft.pre_vote(rpc).await.map_err(raft_stopped)?),
            Call::Snapshot { vote, snapshot } => {
                let snapshot = Snapshot {
                    meta: snapshot.meta,
                    snapshot: snapshot.data,
                };
                Reply::Snapshot(
                    self.raft
                        .install_full_snapshot(vote, snapshot)
                        .await
                        .map_err(stopped)?,
                )
            }
            Call::TransferLeader(rpc) => Reply::TransferLeader(
                self.raft
                    .handle_transfer_leader(rpc)
                    .await
                    .map_err(stopped)?,
            ),
        })
    }

    /// Handles a pipe of appends in order; the answers come out in the
    /// same order. The stream ends after a refusal or when the replica
    /// stops.
    pub fn appends(
        &self,
        appends: impl Stream<Item = Append> + Send + 'static,
    ) -> impl Stream<Item = Result<AppendAnswer, Stopped>> + Send + 'static {
        self.raft
            .stream_append(appends)
            .map(|answer| answer.map_err(|e| Stopped(e.to_string())))
    }
}

/// The engine's side of a [`Transport`]: openraft's network traits over it.
pub(crate) struct Network<T> {
    from: NodeId,
    transport: Arc<T>,
    /// How long an append may wait for its answer before the pipe is given
    /// up (and opened again by the engine).
    answer_within: Duration,
}

impl<T: Transport> Network<T> {
    pub(crate) fn new(from: NodeId, transport: T, answer_within: Duration) -> Network<T> {
        Network {
            from,
            transport: Arc::new(transport),
            answer_within,
        }
    }
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for Network<T> {
    type Network = Link<T>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Link<T> {
        Link {
            transport: self.transport.clone(),
            from: self.from,
            to: target,
            address: node.addr.clone(),
            answer_within: self.answer_within,
        }
    }
}

/// Messages to one peer.
pub(crate) struct Link<T> {
    transport: Arc<T>,
    from: NodeId,
    to: NodeId,
    address: String,
    answer_within: Duration,
}

fn rpc_error(e: LinkError) -> RPCError<TypeConfig> {
    match e {
        LinkError::Unreachable(why) => Unreachable::from_string(why).into(),
        LinkError::Failed(why) => NetworkError::from_string(why).into(),
    }
}

fn unexpected(reply: &Reply) -> RPCError<TypeConfig> {
    NetworkError::from_string(format!("unexpected answer: {reply:?}")).into()
}

impl<T: Transport> Link<T> {
    async fn call(&self, call: Call, option: &RPCOption) -> Result<Reply, RPCError<TypeConfig>> {
        let kind = match &call {
            Call::Vote(_) | Call::PreVote(_) => RPCTypes::Vote,
            Call::Snapshot { .. } => RPCTypes::InstallSnapshot,
            Call::TransferLeader(_) => RPCTypes::TransferLeader,
        };
        let ttl = option.soft_ttl();
        match tokio::time::timeout(ttl, self.transport.call(self.to, &self.address, call)).await {
            Ok(reply) => reply.map_err(rpc_error),
            Err(_) => Err(Timeout {
                action: kind,
                id: self.from,
                target: self.to,
                timeout: ttl,
            }
            .into()),
        }
    }
}

impl<T: Transport> RaftNetworkV2<TypeConfig> for Link<T> {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: Append,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // The engine sends appends through pipes; a lone one is a pipe of
        // one.
        use openraft::entry::RaftEntry;
        let last = rpc.entries.last().map(|e| e.log_id()).or(rpc.prev_log_id);
        let mut answers = self
            .stream_append(Box::pin(futures_util::stream::once(async { rpc })), option)
            .await?;
        match answers.next().await {
            Some(Ok(Ok(matched))) if matched == last => Ok(AppendEntriesResponse::Success),
            Some(Ok(Ok(matched))) => Ok(AppendEntriesResponse::PartialSuccess(matched)),
            Some(Ok(Err(StreamAppendError::Conflict(_)))) => Ok(AppendEntriesResponse::Conflict),
            Some(Ok(Err(StreamAppendError::HigherVote(v)))) => {
                Ok(AppendEntriesResponse::HigherVote(v))
            }
            Some(Err(e)) => Err(e),
            None => Err(NetworkError::from_string("the pipe closed without an answer").into()),
        }
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> openraft::base::BoxFuture<
        's,
        Result<
            openraft::base::BoxStream<'s, Result<AppendAnswer, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: Stream<Item = Append> + Send + Unpin + 'static,
    {
        Box::pin(async move {
            // Open the pipe only once there is an append to send: the
            // engine sleeps out its back-off while producing the first one,
            // so a peer that refuses at once is not asked again at once.
            let mut input = input;
            let Some(first) = input.next().await else {
                return Ok(
                    Box::pin(futures_util::stream::empty()) as openraft::base::BoxStream<'s, _>
                );
            };
            let sent = Arc::new(Counter::default());
            let counted = {
                let sent = sent.clone();
                futures_util::stream::once(std::future::ready(first))
                    .chain(input)
                    .inspect(move |_| sent.add())
            };
            let answers = self
                .transport
                .appends(self.to, &self.address, Box::pin(counted))
                .await
                .map_err(rpc_error)?;
            let late = Timeout {
                action: RPCTypes::AppendEntries,
                id: self.from,
                target: self.to,
                timeout: self.answer_within,
            };
            let watched = watch_answers(answers, sent, late);
            Ok(Box::pin(watched) as openraft::base::BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Call::Vote(rpc), &option).await? {
            Reply::Vote(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Call::PreVote(rpc), &option).await? {
            Reply::Vote(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let call = Call::Snapshot {
            vote,
            snapshot: SnapshotMessage {
                meta: snapshot.meta,
                data: snapshot.snapshot,
            },
        };
        // A snapshot may take long to carry: it has no deadline but the
        // engine's cancelling it.
        // Biased (no random draw): a simulation's runs repeat exactly.
        tokio::select! {
            biased;
            closed = cancel => Err(closed.into()),
            reply = self.transport.call(self.to, &self.address, call) => match reply {
                Ok(Reply::Snapshot(answer)) => Ok(answer),
                Ok(other) => Err(NetworkError::from_string(format!("unexpected answer: {other:?}")).into()),
                Err(LinkError::Unreachable(why)) => Err(Unreachable::from_string(why).into()),
                Err(LinkError::Failed(why)) => Err(NetworkError::from_string(why).into()),
            },
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Call::TransferLeader(rpc), &option).await? {
            Reply::TransferLeader(answer) => Ok(answer),
            other => Err(unexpected(&other)),
        }
    }
}

/// Appends sent on a pipe so far, and a wake-up for whoever waits for
/// their answers.
#[derive(Default)]
struct Counter {
    count: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Counter {
    fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// The answers of a pipe, given up with `late` when an append waited
/// `late.timeout` for its answer (a peer that stopped answering without closing
/// the connection): the engine then opens a new pipe. A pipe with no append
/// waiting may stay quiet for as long as the leader has nothing to send.
fn watch_answers(
    answers: AppendAnswers,
    sent: Arc<Counter>,
    late: Timeout<TypeConfig>,
) -> impl Stream<Item = Result<AppendAnswer, RPCError<TypeConfig>>> + Send {
    futures_util::stream::unfold(Some((answers, sent, 0u64)), move |state| {
        let late = late.clone();
        async move {
            let (mut answers, sent, mut answered) = state?;
            let next = loop {
                let woken = sent.changed.notified();
                if sent.count.load(Ordering::SeqCst) > answered {
                    break match tokio::time::timeout(late.timeout, answers.next()).await {
                        Ok(next) => next,
                        Err(_) => return Some((Err(late.into()), None)),
                    };
                }
                tokio::select! {
                    biased;
                    next = answers.next() => break next,
                    () = woken => {}
                }
            };
            match next? {
                Ok(answer) => {
                    answered += 1;
                    let go_on = answer.is_ok();
                    Some((Ok(answer), go_on.then_some((answers, sent, answered))))
                }
                Err(e) => Some((Err(rpc_error(e)), None)),
            }
        }
    })
}
