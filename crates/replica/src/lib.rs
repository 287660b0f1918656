//! Replication of the state machine with openraft, stored in redb: the
//! small [`Replica`] API (write a command, read the state linearizably or
//! locally, watch, change membership) over one Raft group.
//!
//! [`LogStore`] keeps the Raft log, vote and commit point in one redb file,
//! every append and vote synced before it is acknowledged (the commit point
//! is a hint, persisted by the next synced append). [`Replica::write`]
//! groups concurrent writes into one entry ([`Proposal`]). [`StateMachine`] applies
//! committed [`Command`](state::Command)s to the [`State`](state::State)
//! and keeps snapshots in the same file, so a restarted node resumes from its
//! last snapshot and replays the log after it. The network between nodes is
//! a trait ([`openraft::RaftNetworkFactory`]); the in-process one in
//! `tests/` and the TLS transport (`cluster::transport`) plug in there.
//!
//! Invariants:
//! - Every replica applies the same committed commands in the same order
//!   with the pure [`State::apply`](state::State::apply); nothing else
//!   changes the state, so replicas that applied the same log agree.
//! - An append or a vote is on disk (synced) before it is acknowledged;
//!   a store that fails its integrity check is refused, never trusted.
//!
//! It depends on `state` only among DWCP crates, and knows nothing of
//! sockets, TLS, HTTP or the node around it (`cluster` brings those): the
//! network is whatever [`openraft::RaftNetworkFactory`] it is given.

mod log_store;
mod node;
mod state_machine;
mod types;

pub use log_store::LogStore;
pub use node::{Replica, ReplicaError, Status, Timing};
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
/// and state machine.
pub fn open(path: &Path) -> Result<(LogStore, StateMachine), StoreError> {
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
    let log = LogStore::open(db.clone()).map_err(|e| unusable(e.to_string()))?;
    let sm = StateMachine::open(db).map_err(|e| unusable(e.to_string()))?;
    Ok((log, sm))
}
