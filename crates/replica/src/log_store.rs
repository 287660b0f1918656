//! The Raft log, vote and commit point in redb.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::types::{NodeId, TypeConfig};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// The Raft log of one node. Cloning shares the same file.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    pub(crate) fn open(db: Arc<Database>) -> std::result::Result<LogStore, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.commit()?;
        let store = LogStore { db };
        // Read everything once: a damaged entry fails the open, not a
        // later read in the middle of serving.
        store
            .entries(..)
            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
        Ok(store)
    }

    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> std::result::Result<Option<T>, StoreIo> {
        let read = || -> std::result::Result<Option<T>, String> {
            let txn = self.db.begin_read().map_err(|e| e.to_string())?;
            let table = txn.open_table(META).map_err(|e| e.to_string())?;
            let Some(bytes) = table.get(key).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            postcard::from_bytes(bytes.value())
                .map(Some)
                .map_err(|e| format!("{key}: {e}"))
        };
        read().map_err(StoreIo)
    }

    /// Writes one meta value; synced on commit when `durability` is
    /// `Immediate`.
    fn put_meta<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> std::result::Result<(), StoreIo> {
        let write = || -> std::result::Result<(), String> {
            let bytes = postcard::to_allocvec(value).map_err(|e| e.to_string())?;
            let mut txn = self.db.begin_write().map_err(|e| e.to_string())?;
            txn.set_durability(durability).map_err(|e| e.to_string())?;
            txn.open_table(META)
                .map_err(|e| e.to_string())?
                .insert(key, bytes.as_slice())
                .map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())
        };
        write().map_err(StoreIo)
    }

    fn entries<RB: RangeBounds<u64>>(
        &self,
        range: RB,
    ) -> std::result::Result<Vec<Entry<TypeConfig>>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(LOG).map_err(|e| e.to_string())?;
        let range = (
            clone_bound(range.start_bound()),
            clone_bound(range.end_bound()),
        );
        let mut out = Vec::new();
        for item in table.range::<u64>(range).map_err(|e| e.to_string())? {
            let (index, bytes) = item.map_err(|e| e.to_string())?;
            out.push(decode(index.value(), bytes.value())?);
        }
        Ok(out)
    }

    fn last_entry_id(&self) -> std::result::Result<Option<LogId<NodeId>>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(LOG).map_err(|e| e.to_string())?;
        let Some((index, bytes)) = table.last().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        Ok(Some(decode(index.value(), bytes.value())?.log_id))
    }

    /// Deletes the entries in `range`, then records `purged` if given.
    fn delete(
        &self,
        range: (Bound<u64>, Bound<u64>),
        purged: Option<LogId<NodeId>>,
    ) -> std::result::Result<(), StoreIo> {
        let write = || -> std::result::Result<(), String> {
            let txn = self.db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = txn.open_table(LOG).map_err(|e| e.to_string())?;
                table
                    .retain_in(range, |_, _| false)
                    .map_err(|e| e.to_string())?;
                if let Some(id) = purged {
                    let bytes = postcard::to_allocvec(&id).map_err(|e| e.to_string())?;
                    txn.open_table(META)
                        .map_err(|e| e.to_string())?
                        .insert(PURGED, bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
            }
            txn.commit().map_err(|e| e.to_string())
        };
        write().map_err(StoreIo)
    }
}

/// Log entries are stored as JSON: a command's serialized form is the
/// API's, whose tagged enums a compact binary format cannot carry.
fn decode(index: u64, bytes: &[u8]) -> std::result::Result<Entry<TypeConfig>, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("log entry {index}: {e}"))
}

fn clone_bound(b: Bound<&u64>) -> Bound<u64> {
    match b {
        Bound::Included(&x) => Bound::Included(x),
        Bound::Excluded(&x) => Bound::Excluded(x),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A storage failure as an error value openraft can carry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StoreIo(String);

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        self.entries(range)
            .map_err(|e| StorageIOError::read_logs(&StoreIo(e)).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id = self
            .meta::<LogId<NodeId>>(PURGED)
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last = self
            .last_entry_id()
            .map_err(|e| StorageIOError::read_logs(&StoreIo(e)))?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        // A vote must survive a crash: a node that forgot it voted could
        // vote twice in one term.
        self.put_meta(VOTE, vote, Durability::Immediate)
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.meta(VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        // Not synced: the commit point is a hint that lets a restarted node
        // apply its log without waiting to hear from a leader (openraft
        // treats it as optional). It is written after the entries it names
        // were synced, and the next synced commit (any append) persists it;
        // a crash before that loses only the hint, and the node then learns
        // the commit point from the leader as if it had never been saved.
        // Syncing it would add an fsync to every commit on every node.
        self.put_meta(COMMITTED, &committed, Durability::None)
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        self.meta::<Option<LogId<NodeId>>>(COMMITTED)
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let write = || -> std::result::Result<(), String> {
            // One transaction, synced on commit (redb's default durability):
            // the entries are on disk before openraft hears they are.
            let txn = self.db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = txn.open_table(LOG).map_err(|e| e.to_string())?;
                for entry in entries {
                    let bytes = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
                    table
                        .insert(entry.log_id.index, bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                }
            }
            txn.commit().map_err(|e| e.to_string())
        };
        match write() {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.clone())));
                Err(StorageIOError::write_logs(&StoreIo(e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.delete((Bound::Included(log_id.index), Bound::Unbounded), None)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.delete(
            (Bound::Unbounded, Bound::Included(log_id.index)),
            Some(log_id),
        )
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
