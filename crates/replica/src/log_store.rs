//! The Raft log, vote and commit point in redb, written by one thread.
//!
//! openraft 0.10 asks two things of an append: the entries are readable the
//! moment `append` returns, and openraft hears they are durable only once
//! they are. Here `append` puts the entries in an in-memory tail (which
//! every reader consults before the file) and queues them for the writer
//! thread; the writer takes every queued job at once, writes them in one
//! redb transaction synced on commit, drops the entries it wrote from the
//! tail and then signals each job done. So the leader's own fsync runs while
//! its entries are already on their way to the followers (openraft
//! replicates what was submitted, not what was flushed), and appends that
//! queue up during one fsync share the next.
//!
//! Invariants:
//! - One queue, one writer: jobs reach the disk in the order openraft
//!   issued them, so a vote is durable before any entry of its term, and a
//!   truncation before the entries that replace it.
//! - An entry is in the tail from `append` until the transaction that wrote
//!   it committed; a reader copies the tail before it opens its read
//!   transaction, so every appended entry is in one or the other.
//! - Votes, truncations and purges wait for their job: when they return,
//!   they are on disk.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use tokio::sync::oneshot;

use super::types::{Entry, LogId, TypeConfig, Vote};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";

/// Most jobs the writer folds into one transaction: bounds how long the
/// first of them waits for the others' bytes to be written.
const MAX_JOBS_PER_WRITE: usize = 1024;

/// The Raft log of one node. Cloning shares the same file, tail and writer.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

struct Shared {
    db: Arc<Database>,
    /// Entries appended and not yet written, and what the file shows.
    view: Arc<Mutex<View>>,
    /// The last vote on disk.
    vote: Mutex<Option<Vote>>,
    /// The last entry purged (on disk, or queued to be).
    purged: Mutex<Option<LogId>>,
    /// Who writes the jobs.
    writer: Writer,
}

/// How jobs reach the file.
enum Writer {
    /// A thread of its own, fed by a queue; dropping the last store ends it.
    Thread {
        jobs: Option<mpsc::Sender<Job>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
    /// In the caller, before `append` returns: for simulations in virtual
    /// time, where waiting on another thread would let the clock jump, and
    /// storage is meant to take no virtual time.
    Inline,
}

/// Where a store's jobs go: to a writer thread, or written at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteMode {
    Thread,
    Inline,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Close the queue, then wait for the writer to finish what was
        // queued and let go of the file: a node restarted in the same
        // process can open it as soon as the old one is gone.
        if let Writer::Thread { jobs, thread } = &mut self.writer {
            *jobs = None;
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// What a reader must combine with the file.
#[derive(Default)]
struct View {
    /// Entries appended but not yet committed to the file, by index.
    tail: BTreeMap<u64, Arc<Entry>>,
    /// While a truncation is queued: entries in the file from this index on
    /// are already gone from the log.
    hidden_from: Option<u64>,
}

/// One piece of work for the writer, in openraft's order.
enum Job {
    Append {
        entries: Vec<Arc<Entry>>,
        done: IOFlushed<TypeConfig>,
    },
    Vote {
        vote: Vote,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Deletes the entries after `after` (all of them when `None`).
    Truncate {
        after: Option<u64>,
        done: oneshot::Sender<io::Result<()>>,
    },
    Purge {
        upto: LogId,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// The commit point, a hint: written without a sync of its own.
    Committed { committed: Option<LogId> },
}

impl Job {
    /// Whether the transaction carrying this job must be synced before the
    /// job is reported done.
    fn needs_sync(&self) -> bool {
        !matches!(self, Job::Committed { .. })
    }

    fn finish(self, result: &Result<(), String>) {
        let outcome = || result.clone().map_err(io::Error::other);
        match self {
            Job::Append { done, .. } => done.io_completed(outcome()),
            Job::Vote { done, .. } | Job::Truncate { done, .. } | Job::Purge { done, .. } => {
                let _ = done.send(outcome());
            }
            Job::Committed { .. } => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data, changed in single steps: a panic elsewhere leaves it
    // consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn text(e: impl ToString) -> String {
    e.to_string()
}

impl LogStore {
    pub(crate) fn open(db: Arc<Database>, mode: WriteMode) -> Result<LogStore, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.commit()?;
        // Read everything once: a damaged entry fails the open, not a
        // later read in the middle of serving.
        disk_entries(&db, (Bound::Unbounded, Bound::Unbounded), None)
            .map_err(redb::Error::Corrupted)?;
        let vote = read_meta::<Vote>(&db, VOTE).map_err(redb::Error::Corrupted)?;
        let purged = read_meta::<LogId>(&db, PURGED).map_err(redb::Error::Corrupted)?;
        let view = Arc::new(Mutex::new(View::default()));
        let writer = match mode {
            WriteMode::Inline => Writer::Inline,
            WriteMode::Thread => {
                let (jobs, queue) = mpsc::channel();
                let (writer_db, writer_view) = (db.clone(), view.clone());
                let thread = std::thread::Builder::new()
                    .name("raft-log-writer".into())
                    .spawn(move || {
                        while let Ok(first) = queue.recv() {
                            let mut jobs = vec![first];
                            while jobs.len() < MAX_JOBS_PER_WRITE
                                && let Ok(next) = queue.try_recv()
                            {
                                jobs.push(next);
                            }
                            run(&writer_db, &writer_view, jobs);
                        }
                    })
                    .map_err(|e| {
                        redb::Error::Corrupted(format!("cannot start the log writer: {e}"))
                    })?;
                Writer::Thread {
                    jobs: Some(jobs),
                    thread: Some(thread),
                }
            }
        };
        Ok(LogStore {
            shared: Arc::new(Shared {
                db,
                view,
                vote: Mutex::new(vote),
                purged: Mutex::new(purged),
                writer,
            }),
        })
    }

    fn queue(&self, job: Job) -> io::Result<()> {
        match &self.shared.writer {
            Writer::Thread { jobs, .. } => jobs
                .as_ref()
                .and_then(|jobs| jobs.send(job).ok())
                .ok_or_else(|| io::Error::other("the log writer stopped")),
            Writer::Inline => {
                run(&self.shared.db, &self.shared.view, vec![job]);
                Ok(())
            }
        }
    }

    /// Queues a job and waits until the writer has made it durable.
    async fn queue_and_wait(
        &self,
        job: impl FnOnce(oneshot::Sender<io::Result<()>>) -> Job,
    ) -> io::Result<()> {
        let (done, written) = oneshot::channel();
        self.queue(job(done))?;
        written
            .await
            .map_err(|_| io::Error::other("the log writer stopped"))?
    }

    /// The entries with indexes in `range`: the tail's over the file's.
    fn entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, String> {
        // The tail first, then the file: an entry the writer moves between
        // the two reads is then in both copies, never in neither.
        let (mut tail, hidden_from) = {
            let view = lock(&self.shared.view);
            let tail: BTreeMap<u64, Entry> = view
                .tail
                .range(range)
                .map(|(i, e)| (*i, Entry::clone(e)))
                .collect();
            (tail, view.hidden_from)
        };
        // The tail is a suffix of the log (entries leave it oldest first,
        // as the writer commits them in order): a range that starts inside
        // it needs nothing from the file. That is every read of what the
        // leader just appended, on its way to the followers.
        let start = match range.0 {
            Bound::Included(i) => Some(i),
            Bound::Excluded(i) => i.checked_add(1),
            Bound::Unbounded => None,
        };
        if let (Some(start), Some(first)) = (start, tail.keys().next())
            && start >= *first
        {
            return Ok(tail.into_values().collect());
        }
        let mut merged: BTreeMap<u64, Entry> = disk_entries(&self.shared.db, range, hidden_from)?
            .into_iter()
            .map(|e| (e.index(), e))
            .collect();
        merged.append(&mut tail);
        Ok(merged.into_values().collect())
    }

    /// How many commands each entry from index `from` on carries (0 for an
    /// entry without commands: blank or membership).
    pub(crate) fn command_counts(&self, from: u64) -> Result<Vec<usize>, String> {
        use openraft::EntryPayload;
        Ok(self
            .entries((Bound::Included(from), Bound::Unbounded))?
            .into_iter()
            .map(|entry| match entry.payload {
                EntryPayload::Normal(super::Proposal::One(_)) => 1,
                EntryPayload::Normal(super::Proposal::Batch(commands)) => commands.len(),
                EntryPayload::Blank | EntryPayload::Membership(_) => 0,
            })
            .collect())
    }

    fn last_log_id(&self) -> Result<Option<LogId>, String> {
        let (tail_last, hidden_from) = {
            let view = lock(&self.shared.view);
            (
                view.tail.last_key_value().map(|(_, e)| e.log_id()),
                view.hidden_from,
            )
        };
        if tail_last.is_some() {
            return Ok(tail_last);
        }
        let txn = self.shared.db.begin_read().map_err(text)?;
        let table = txn.open_table(LOG).map_err(text)?;
        let upper = hidden_from.map_or(Bound::Unbounded, Bound::Excluded);
        let Some(last) = table
            .range::<u64>((Bound::Unbounded, upper))
            .map_err(text)?
            .next_back()
        else {
            return Ok(None);
        };
        let (index, bytes) = last.map_err(text)?;
        Ok(Some(decode(index.value(), bytes.value())?.log_id()))
    }
}

/// The file's entries in `range`, without those from `hidden_from` on.
fn disk_entries(
    db: &Database,
    range: (Bound<u64>, Bound<u64>),
    hidden_from: Option<u64>,
) -> Result<Vec<Entry>, String> {
    let txn = db.begin_read().map_err(text)?;
    let table = txn.open_table(LOG).map_err(text)?;
    let mut out = Vec::new();
    for item in table.range::<u64>(range).map_err(text)? {
        let (index, bytes) = item.map_err(text)?;
        if hidden_from.is_some_and(|from| index.value() >= from) {
            break;
        }
        out.push(decode(index.value(), bytes.value())?);
    }
    Ok(out)
}

fn read_meta<T: serde::de::DeserializeOwned>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, String> {
    let txn = db.begin_read().map_err(text)?;
    let table = txn.open_table(META).map_err(text)?;
    let Some(bytes) = table.get(key).map_err(text)? else {
        return Ok(None);
    };
    postcard::from_bytes(bytes.value())
        .map(Some)
        .map_err(|e| format!("{key}: {e}"))
}

/// Log entries are stored as JSON: a command's serialized form is the
/// API's, whose tagged enums a compact binary format cannot carry.
fn decode(index: u64, bytes: &[u8]) -> Result<Entry, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("log entry {index}: {e}"))
}

/// Writes `jobs` in one transaction, synced when any of them needs it,
/// then reports each done in order. The writer thread runs this on every
/// job queued so far.
fn run(db: &Database, view: &Mutex<View>, jobs: Vec<Job>) {
    let result = write(db, &jobs);
    if result.is_ok() {
        settle(&mut lock(view), &jobs);
    }
    for job in jobs {
        job.finish(&result);
    }
}

fn write(db: &Database, jobs: &[Job]) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(text)?;
    if !jobs.iter().any(Job::needs_sync) {
        // Only the commit hint: the next synced transaction persists it; a
        // crash before that loses only the hint, and the node then learns
        // the commit point from the leader as if it had never been saved.
        txn.set_durability(Durability::None).map_err(text)?;
    }
    {
        let mut log = txn.open_table(LOG).map_err(text)?;
        let mut meta = txn.open_table(META).map_err(text)?;
        for job in jobs {
            match job {
                Job::Append { entries, .. } => {
                    for entry in entries {
                        let bytes = serde_json::to_vec(&**entry).map_err(text)?;
                        log.insert(entry.index(), bytes.as_slice()).map_err(text)?;
                    }
                }
                Job::Vote { vote, .. } => put_meta(&mut meta, VOTE, vote)?,
                Job::Truncate { after, .. } => {
                    let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                    log.retain_in((from, Bound::Unbounded), |_, _| false)
                        .map_err(text)?;
                }
                Job::Purge { upto, .. } => {
                    log.retain_in((Bound::Unbounded, Bound::Included(upto.index)), |_, _| {
                        false
                    })
                    .map_err(text)?;
                    put_meta(&mut meta, PURGED, upto)?;
                }
                Job::Committed { committed } => put_meta(&mut meta, COMMITTED, committed)?,
            }
        }
    }
    txn.commit().map_err(text)
}

/// After a commit: the written entries leave the tail (unless a later
/// append replaced them meanwhile) and a written truncation stops hiding
/// the file's entries.
fn settle(view: &mut View, jobs: &[Job]) {
    for job in jobs {
        match job {
            Job::Append { entries, .. } => {
                for entry in entries {
                    let index = entry.index();
                    if view.tail.get(&index).is_some_and(|e| Arc::ptr_eq(e, entry)) {
                        view.tail.remove(&index);
                    }
                }
            }
            Job::Truncate { .. } => view.hidden_from = None,
            _ => {}
        }
    }
}

fn put_meta<T: serde::Serialize>(
    meta: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), String> {
    let bytes = postcard::to_allocvec(value).map_err(text)?;
    meta.insert(key, bytes.as_slice()).map_err(text)?;
    Ok(())
}

fn clone_bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        self.entries(clone_bounds(&range)).map_err(io::Error::other)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(*lock(&self.shared.vote))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let last_purged_log_id = *lock(&self.shared.purged);
        let last = self.last_log_id().map_err(io::Error::other)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        // A vote must survive a crash: a node that forgot it voted could
        // vote twice in one term. It is readable once it is on disk.
        let vote = *vote;
        self.queue_and_wait(|done| Job::Vote { vote, done }).await?;
        *lock(&self.shared.vote) = Some(vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Queued behind the appends of the entries it names, so it is never
        // on disk before they are; not synced on its own (see `write`):
        // syncing it would add an fsync to every commit on every node.
        self.queue(Job::Committed { committed })
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        read_meta::<Option<LogId>>(&self.shared.db, COMMITTED)
            .map(Option::flatten)
            .map_err(io::Error::other)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Arc<Entry>> = entries.into_iter().map(Arc::new).collect();
        {
            let mut view = lock(&self.shared.view);
            for entry in &entries {
                view.tail.insert(entry.index(), entry.clone());
            }
        }
        self.queue(Job::Append {
            entries,
            done: callback,
        })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let after = last_log_id.map(|l| l.index);
        {
            let mut view = lock(&self.shared.view);
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let gone: Vec<u64> = view
                .tail
                .range((from, Bound::Unbounded))
                .map(|(i, _)| *i)
                .collect();
            for index in gone {
                view.tail.remove(&index);
            }
            let hide = after.map_or(0, |a| a + 1);
            view.hidden_from = Some(view.hidden_from.map_or(hide, |h| h.min(hide)));
        }
        self.queue_and_wait(|done| Job::Truncate { after, done })
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        {
            let mut view = lock(&self.shared.view);
            let kept = view.tail.split_off(&(log_id.index + 1));
            view.tail = kept;
        }
        *lock(&self.shared.purged) = Some(log_id);
        self.queue_and_wait(|done| Job::Purge { upto: log_id, done })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::storage::RaftLogStorage;

    fn entry(term: u64, index: u64) -> Entry {
        openraft::Entry {
            log_id: LogId::new(LeaderId { term, node_id: 1 }, index),
            payload: EntryPayload::Blank,
        }
    }

    fn open(path: &std::path::Path) -> LogStore {
        let db = Arc::new(Database::create(path).unwrap());
        LogStore::open(db, WriteMode::Thread).unwrap()
    }

    async fn append(
        store: &mut LogStore,
        entries: Vec<Entry>,
    ) -> oneshot::Receiver<io::Result<()>> {
        use openraft::type_config::TypeConfigExt;
        let (done, flushed) = TypeConfig::oneshot();
        store
            .append(entries, IOFlushed::signal(done))
            .await
            .unwrap();
        flushed
    }

    fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
        entries
            .iter()
            .map(|e| (e.log_id.leader_id.term, e.log_id.index))
            .collect()
    }

    #[tokio::test]
    async fn appended_entries_are_readable_at_once_and_durable_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        {
            let mut store = open(&path);
            let flushed = append(&mut store, (0..5).map(|i| entry(1, i)).collect()).await;
            // Readable before the flush is reported (it may or may not have
            // happened yet): from the tail, or from the file.
            let read = store.try_get_log_entries(0..5).await.unwrap();
            assert_eq!(ids(&read), (0..5).map(|i| (1, i)).collect::<Vec<_>>());
            flushed.await.unwrap().unwrap();
            let vote = openraft::impls::Vote::new_committed(1, 1);
            store.save_vote(&vote).await.unwrap();
            assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        }
        // Another run of the node finds everything on disk.
        let mut store = open(&path);
        let read = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(read.len(), 5);
        assert!(store.read_vote().await.unwrap().is_some());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(4));
    }

    #[tokio::test]
    async fn a_truncation_hides_the_old_entries_and_their_replacements_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let mut store = open(&path);
        let flushed = append(&mut store, (0..6).map(|i| entry(1, i)).collect()).await;
        flushed.await.unwrap().unwrap();
        // A new leader's log wins from index 3 on.
        store
            .truncate_after(Some(LogId::new(
                LeaderId {
                    term: 1,
                    node_id: 1,
                },
                2,
            )))
            .await
            .unwrap();
        let _pending = append(&mut store, vec![entry(2, 3), entry(2, 4)]).await;
        let read = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(ids(&read), [(1, 0), (1, 1), (1, 2), (2, 3), (2, 4)]);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            state.last_log_id.map(|l| (l.leader_id.term, l.index)),
            Some((2, 4))
        );

        // Purged entries leave the front; the rest stay.
        store
            .purge(LogId::new(
                LeaderId {
                    term: 1,
                    node_id: 1,
                },
                1,
            ))
            .await
            .unwrap();
        let read = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(ids(&read), [(1, 2), (2, 3), (2, 4)]);
        drop(store);
        let mut store = open(&path);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(1));
        assert_eq!(
            ids(&store.try_get_log_entries(..).await.unwrap()),
            [(1, 2), (2, 3), (2, 4)]
        );
    }
}
