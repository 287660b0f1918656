//! Backups of a replicated group's state and artifacts, sealed under an
//! operator's key, and a new cluster founded from one.
//!
//! - [`BackupKey`] (`key.rs`): the operator's AES-256 key in a file only
//!   its owner reads.
//! - `sealed.rs`: the STREAM construction over AES-256-GCM frames, which
//!   detects any change, reordering, truncation or extension.
//! - `file.rs`: the file's layout — [`Header`] (readable without the key,
//!   authenticated by it), [`Manifest`], the state, the artifacts — with
//!   [`BackupWriter`] and [`BackupReader`].
//! - `take.rs`: a consistent [`BackupPoint`] of a running node (one
//!   linearizable read: a revision and the log index it was read at) and
//!   [`save`], which writes a backup file whole or not at all.
//! - `restore.rs`: [`restore`] — a new data directory founded from a
//!   backup (a new identity: its own CA and node; the state and artifacts
//!   the backup's).
//! - `schedule.rs`: scheduled backups' file names and retention, pure.
//!
//! Invariants: a backup holds a state at one revision and every artifact
//! that state's versions name, each checked by sha256 on the way out and
//! in; a reader refuses, naming why, a file that is not a backup, is
//! damaged or truncated, is sealed under another key, or is in a format it
//! does not read; a restore leaves nothing behind when it fails.

mod file;
mod key;
mod restore;
mod schedule;
mod sealed;
mod take;

pub use file::{
    ArtifactEntry, BackupPoint, BackupReader, BackupWriter, FORMAT, Header, Manifest, Tier,
    read_header,
};
pub use key::BackupKey;
pub use restore::{Restored, restore};
pub use schedule::{
    BackupFile, RECORD_PREFIX, ScheduledBackup, file_name, parse_file_name, to_prune, wait_ms,
};
pub use take::{PendingFile, artifacts_of, save};

/// Why a backup could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Not a DWCP backup at all.
    #[error("not a DWCP backup: {0}")]
    Foreign(String),
    /// A DWCP backup whose bytes changed, or that was cut short.
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    /// Sealed under a key other than the one given.
    #[error(
        "the backup is sealed under another key (key id {backup}); the key given has id {given}"
    )]
    WrongKey { backup: String, given: String },
    /// A backup this version of DWCP cannot read.
    #[error("the backup cannot be read by this dwcp: {0}")]
    Unsupported(String),
    /// The key file is missing, malformed or readable by others.
    #[error("{0}")]
    Key(String),
    /// Writing a backup failed (a bug or a changed artifact).
    #[error("writing the backup: {0}")]
    Seal(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The cluster could not give or take the backup's content.
    #[error(transparent)]
    Cluster(Box<crate::ClusterError>),
}

impl BackupError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> BackupError {
        BackupError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<crate::ClusterError> for BackupError {
    fn from(e: crate::ClusterError) -> Self {
        BackupError::Cluster(Box::new(e))
    }
}
