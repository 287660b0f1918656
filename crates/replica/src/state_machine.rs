//! Applying committed commands to the state, and snapshots of it.

use std::io;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use futures_util::StreamExt;
use openraft::alias::{SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::types::{LogId, Proposal, Response, TypeConfig};
use state::{Command, Outcome, Revision, State};

const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const CURRENT: &str = "current";

type Result<T> = std::result::Result<T, io::Error>;
type Membership = StoredMembershipOf<TypeConfig>;
type SnapshotMeta = SnapshotMetaOf<TypeConfig>;
/// A snapshot as openraft hands it around: its meta and its bytes.
pub type Snapshot = SnapshotOf<TypeConfig, Vec<u8>>;

/// The applied state, shared with readers; watchers learn of each new
/// revision through a channel.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<RwLock<Applied>>,
    revision: watch::Sender<Revision>,
}

struct Applied {
    state: State,
    last_applied: Option<LogId>,
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
    meta: SnapshotMeta,
    state: State,
}

/// The state machine of one node.
pub struct StateMachine {
    shared: SharedState,
    db: Arc<Database>,
}

fn io(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl StateMachine {
    pub(crate) fn open(db: Arc<Database>) -> std::result::Result<StateMachine, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOT)?;
        txn.commit()?;
        let stored = load_snapshot(&db).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
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
fn store_snapshot(db: &Database, bytes: &[u8]) -> Result<()> {
    let txn = db.begin_write().map_err(io)?;
    txn.open_table(SNAPSHOT)
        .map_err(io)?
        .insert(CURRENT, bytes)
        .map_err(io)?;
    txn.commit().map_err(io)
}

/// The current snapshot's bytes, if one was stored.
fn load_snapshot(db: &Database) -> Result<Option<Vec<u8>>> {
    let txn = db.begin_read().map_err(io)?;
    let table = txn.open_table(SNAPSHOT).map_err(io)?;
    Ok(table.get(CURRENT).map_err(io)?.map(|b| b.value().to_vec()))
}

/// Builds a snapshot of the state as it is now.
pub struct Builder {
    data: Vec<u8>,
    meta: SnapshotMeta,
    db: Arc<Database>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot> {
        store_snapshot(&self.db, &self.data)?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: self.data.clone(),
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

impl StateMachine {
    /// Applies one committed entry; returns its responses (one per command).
    fn apply_one(&self, entry: crate::types::Entry) -> Vec<Response> {
        let mut applied = self.write();
        applied.last_applied = Some(entry.log_id);
        let state = &mut applied.state;
        let mut run = |command: &Command| {
            let result = state.apply(command);
            Response {
                revision: state.revision(),
                result,
            }
        };
        match entry.payload {
            EntryPayload::Normal(Proposal::One(command)) => vec![run(&command)],
            EntryPayload::Normal(Proposal::Batch(commands)) => commands.iter().map(run).collect(),
            EntryPayload::Blank => vec![unchanged(state)],
            EntryPayload::Membership(m) => {
                applied.membership = Membership::new(Some(entry.log_id), m);
                vec![unchanged(&applied.state)]
            }
        }
    }

    fn snapshot_builder(&self) -> Builder {
        let applied = self.shared.read();
        let meta = SnapshotMeta {
            last_log_id: applied.0.last_applied,
            last_membership: applied.0.membership.clone(),
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
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership)> {
        let applied = self.shared.read();
        Ok((applied.0.last_applied, applied.0.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<()>
    where
        Strm:
            futures_util::Stream<Item = Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let responses = self.apply_one(entry);
            // Watchers hear of the revision before the writer hears its
            // answer: a client that reads or watches after its write sees it.
            let revision = responses
                .last()
                .map_or_else(|| self.shared.read().revision(), |r| r.revision);
            self.shared.revision.send_replace(revision);
            if let Some(responder) = responder {
                responder.send(responses);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Builder> {
        Some(self.snapshot_builder())
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        self.snapshot_builder()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> Result<()> {
        let data: SnapshotData = postcard::from_bytes(&snapshot).map_err(io)?;
        store_snapshot(&self.db, &snapshot)?;
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

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>> {
        let Some(bytes) = load_snapshot(&self.db)? else {
            return Ok(None);
        };
        let data: SnapshotData = postcard::from_bytes(&bytes).map_err(io)?;
        Ok(Some(Snapshot {
            meta: data.meta,
            snapshot: bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::impls::leader_id_adv::LeaderId;

    fn entry(index: u64, proposal: Proposal) -> crate::types::Entry {
        openraft::Entry {
            log_id: LogId::new(
                LeaderId {
                    term: 1,
                    node_id: 1,
                },
                index,
            ),
            payload: EntryPayload::Normal(proposal),
        }
    }

    fn put(key: &str) -> Command {
        Command::Put {
            key: key.into(),
            value: vec![1],
        }
    }

    #[test]
    fn a_batch_applies_each_command_alone_with_its_own_revision_and_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("sm.redb")).unwrap());
        let sm = StateMachine::open(db).unwrap();
        let refused = Command::DeleteTenant {
            name: state::Name::new("tenant", "nobody").unwrap(),
        };
        let responses = sm.apply_one(entry(1, Proposal::Batch(vec![put("a"), refused, put("b")])));
        let outcomes: Vec<_> = responses.iter().map(|r| r.result.is_ok()).collect();
        assert_eq!(outcomes, [true, false, true]);
        assert_eq!(responses[0].revision, Revision(1));
        assert_eq!(responses[2].revision, Revision(2));
        let shared = sm.shared();
        let applied = shared.read();
        assert!(applied.register("a").is_some() && applied.register("b").is_some());
        assert_eq!(applied.0.last_applied.map(|l| l.index), Some(1));
    }
}
