//! Replication of the state machine with openraft, stored in redb: the
//! small [`Replica`] API (write a command, read the state linearizably or
//! locally, watch, change membership, hand leadership off) over one Raft
//! group.
//!
//! The engine is openraft 0.10 (pinned to `=0.10.0-alpha.37`, the newest
//! release, which builds with rustc 1.95): unlike 0.9 its leader sends
//! entries to the followers while its own fsync runs, keeps several appends
//! in flight per follower on an ordered pipe, sends heartbeats on pipes of
//! their own, and hands leadership over (`transfer_leader`, and a removed
//! leader stepping down). 0.10 has no stable release yet; the alpha is
//! pinned exactly so that an upgrade is a deliberate, measured change.
//!
//! [`LogStore`] keeps the Raft log, vote and commit point in one redb file:
//! appended entries are readable at once from an in-memory tail and made
//! durable by one writer thread, which folds every queued append into one
//! synced transaction and only then reports them flushed; votes are synced
//! before they are acknowledged (the commit point is a hint, persisted by
//! the next synced write). [`Replica::write`] groups concurrent writes into
//! one entry ([`Proposal`]). [`StateMachine`] applies committed
//! [`Command`](state::Command)s to the [`State`](state::State) and keeps
//! snapshots in the same file, so a restarted node resumes from its last
//! snapshot and replays the log after it. The network between nodes is our
//! own trait, [`Transport`] (single calls and ordered pipes of appends),
//! with the [`Inbox`] as its receiving end; the in-process one in `tests/`,
//! the simulator's and the TLS transport (`cluster::transport`) plug in
//! there.
//!
//! Invariants:
//! - Every replica applies the same committed commands in the same order
//!   with the pure [`State::apply`](state::State::apply); nothing else
//!   changes the state, so replicas that applied the same log agree.
//! - An append is acknowledged (to the leader, or counted by the leader
//!   for itself) only once it is on disk (synced); a vote is synced before
//!   it is acknowledged; a store that fails its integrity check is
//!   refused, never trusted.
//!
//! It depends on `state` only among DWCP crates, and knows nothing of
//! sockets, TLS, HTTP or the node around it (`cluster` brings those): the
//! network is whatever [`Transport`] it is given.

mod log_store;
mod network;
mod node;
mod runtime;
mod state_machine;
mod types;
mod watch;

pub use log_store::LogStore;
use log_store::WriteMode;
pub use network::{
    Append, AppendAnswer, AppendAnswers, Appends, Call, Inbox, LinkError, Reply, SnapshotMessage,
    Stopped, Transport,
};
pub use node::{Replica, ReplicaError, Status, Timing};
pub use runtime::seed_this_thread;
pub use state_machine::{SharedState, StateGuard, StateMachine};
pub use types::{NodeId, Proposal, Response, TypeConfig};

use std::path::Path;
use std::sync::Arc;

/// Why the store on disk cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is missing pieces, damaged, or not a DWCP store. The node
    /// refuses to start rather than serve wrong data.
    #[error("the store at {path} cannot be used: {reason}")]
    Unusable { path: String, reason: String },
}

/// Opens (or creates) the redb file of one node and returns its log store
/// (with its writer thread) and state machine.
pub fn open(path: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    open_with(path, WriteMode::Thread)
}

fn open_with(path: &Path, mode: WriteMode) -> Result<(LogStore, StateMachine), StoreError> {
    let unusable = |reason: String| StoreError::Unusable {
        path: path.display().to_string(),
        reason,
    };
    // Check every page's checksum on open: a file damaged outside redb is
    // refused with an error instead of being trusted (or panicking later).
    let db = redb::Builder::new()
        .set_check_integrity_on_open(true)
        .create(path)
        .map_err(|e| unusable(e.to_string()))?;
    let db = Arc::new(db);
    let log = LogStore::open(db.clone(), mode).map_err(|e| unusable(e.to_string()))?;
    let sm = StateMachine::open(db).map_err(|e| unusable(e.to_string()))?;
    Ok((log, sm))
}
