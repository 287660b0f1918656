//! Applying committed commands to the state, and snapshots of it.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StorageIOError, StoredMembership,
};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::types::{NodeId, Proposal, Response, TypeConfig};
use state::{Command, Outcome, Revision, State};

const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const CURRENT: &str = "current";

type Result<T> = std::result::Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, BasicNode>;

/// The applied state, shared with readers; watchers learn of each new
/// revision through a channel.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<RwLock<Applied>>,
    revision: watch::Sender<Revision>,
}

struct Applied {
    state: State,
    last_applied: Option<LogId<NodeId>>,
    membership: Membership,
}

impl SharedState {
    /// Reads the state as of the last applied entry. A poisoned lock (a
    /// panic elsewhere while applying) still holds a consistent state,
    /// because commands are applied whole.
    pub fn read(&self) -> StateGuard<'_> {
        StateGuard(self.inner.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A receiver that changes whenever a new revision is applied.
    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }
}

/// A read view of the applied state.
pub struct StateGuard<'a>(RwLockReadGuard<'a, Applied>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0.state
    }
}

/// What a snapshot holds.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    meta: SnapshotMeta<NodeId, BasicNode>,
    state: State,
}

/// The state machine of one node.
pub struct StateMachine {
    shared: SharedState,
    db: Arc<Database>,
}

fn io(e: impl std::fmt::Display) -> StoreIo {
    StoreIo(e.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StoreIo(String);

impl StateMachine {
    pub(crate) fn open(db: Arc<Database>) -> std::result::Result<StateMachine, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOT)?;
        txn.commit()?;
        let stored = load_snapshot(&db).map_err(|e| redb::Error::Corrupted(e.0))?;
        let applied = match &stored {
            Some(bytes) => {
                let data: SnapshotData = postcard::from_bytes(bytes)
                    .map_err(|e| redb::Error::Corrupted(format!("snapshot: {e}")))?;
                Applied {
                    state: data.state,
                    last_applied: data.meta.last_log_id,
                    membership: data.meta.last_membership,
                }
            }
            None => Applied {
                state: State::default(),
                last_applied: None,
                membership: Membership::default(),
            },
        };
        let (revision, _) = watch::channel(applied.state.revision());
        Ok(StateMachine {
            shared: SharedState {
                inner: Arc::new(RwLock::new(applied)),
                revision,
            },
            db,
        })
    }

    /// The applied state, for readers.
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.shared.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `bytes` as the current snapshot, in one synced transaction.
fn store_snapshot(db: &Database, bytes: &[u8]) -> std::result::Result<(), StoreIo> {
    let txn = db.begin_write().map_err(io)?;
    txn.open_table(SNAPSHOT)
        .map_err(io)?
        .insert(CURRENT, bytes)
        .map_err(io)?;
    txn.commit().map_err(io)
}

/// The current snapshot's bytes, if one was stored.
fn load_snapshot(db: &Database) -> std::result::Result<Option<Vec<u8>>, StoreIo> {
    let txn = db.begin_read().map_err(io)?;
    let table = txn.open_table(SNAPSHOT).map_err(io)?;
    Ok(table.get(CURRENT).map_err(io)?.map(|b| b.value().to_vec()))
}

/// Builds a snapshot of the state as it is now.
pub struct Builder {
    data: Vec<u8>,
    meta: SnapshotMeta<NodeId, BasicNode>,
    db: Arc<Database>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        store_snapshot(&self.db, &self.data)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(self.data.clone())),
        })
    }
}

/// The response to an entry that carries no command.
fn unchanged(state: &State) -> Response {
    Response {
        revision: state.revision(),
        result: Ok(Outcome::Applied),
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership)> {
        let applied = self.shared.read();
        Ok((applied.0.last_applied, applied.0.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Response>>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        let revision = {
            let mut applied = self.write();
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let state = &mut applied.state;
                let mut run = |command: &Command| {
                    let result = state.apply(command);
                    Response {
                        revision: state.revision(),
                        result,
                    }
                };
                let entry_responses = match entry.payload {
                    EntryPayload::Normal(Proposal::One(command)) => vec![run(&command)],
                    EntryPayload::Normal(Proposal::Batch(commands)) => {
                        commands.iter().map(run).collect()
                    }
                    EntryPayload::Blank => vec![unchanged(state)],
                    EntryPayload::Membership(m) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), m);
                        vec![unchanged(&applied.state)]
                    }
                };
                responses.push(entry_responses);
            }
            applied.state.revision()
        };
        self.shared.revision.send_replace(revision);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        let applied = self.shared.read();
        let meta = SnapshotMeta {
            last_log_id: applied.0.last_applied,
            last_membership: applied.0.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                applied.0.last_applied.map_or(0, |l| l.index),
                applied.0.state.revision().0
            ),
        };
        // Serializing a `State` cannot fail: it is plain maps and strings.
        let data = postcard::to_allocvec(&SnapshotData {
            meta: meta.clone(),
            state: applied.0.state.clone(),
        })
        .unwrap_or_default();
        Builder {
            data,
            meta,
            db: self.db.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = postcard::from_bytes(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &io(e)))?;
        store_snapshot(&self.db, &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let revision = data.state.revision();
        {
            let mut applied = self.write();
            applied.state = data.state;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
        }
        self.shared.revision.send_replace(revision);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let Some(bytes) =
            load_snapshot(&self.db).map_err(|e| StorageIOError::read_snapshot(None, &e))?
        else {
            return Ok(None);
        };
        let data: SnapshotData = postcard::from_bytes(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(None, &io(e)))?;
        Ok(Some(Snapshot {
            meta: data.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
