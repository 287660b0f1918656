//! A new cluster founded from a backup.
//!
//! The restored cluster has a new identity — its own CA, cluster name,
//! node certificate and join token, like any new cluster — and the
//! backup's state and artifacts (`state::Command::Restore` says what is
//! kept from the new cluster: its node, join credential and
//! `cluster/` registers; TOTP enrolments are cleared). The backed-up
//! cluster's API tokens and users' passwords work on it; its nodes cannot
//! join it (they trust another CA), and the new join token admits new
//! ones.
//!
//! The backup is read once, front to back: the artifacts go into the new
//! data directory's blob store as they come, and only once the whole file
//! has proved intact is the cluster founded and the state written. Any
//! failure removes the data directory: nothing half-made is left.

use std::io::Read;
use std::path::Path;

use super::BackupError;
use super::file::{BackupReader, Header, Manifest};
use crate::blobs::BlobStore;
use crate::{ClusterError, ClusterNode, DataDir, JoinToken, StartOptions, Started};

/// What a restore made.
#[derive(Debug)]
pub struct Restored {
    pub header: Header,
    pub manifest: Manifest,
    /// The new cluster's name.
    pub cluster: String,
    /// The restored state's revision in the new cluster (after the
    /// backup's and the founding's).
    pub revision: u64,
    /// Artifacts written into the blob store.
    pub artifacts: usize,
    /// A join token for the new cluster's next nodes.
    pub join_token: JoinToken,
}

/// Founds a new cluster in `dir` from the backup `reader` reads, with
/// `options` (its addresses and region), and stops it: `dwcp up
/// --data-dir DIR` then runs it. `dir` must not exist or be empty. `by`
/// names who restored, for the audit log.
pub async fn restore<R: Read>(
    dir: &DataDir,
    reader: BackupReader<R>,
    options: StartOptions,
    by: &str,
) -> Result<Restored, BackupError> {
    let root = dir.root().to_path_buf();
    if !is_empty_or_missing(&root)? {
        return Err(BackupError::Cluster(Box::new(ClusterError::DataDir {
            path: root.display().to_string(),
            reason: "it exists and is not empty: a restore founds a new node in a new directory"
                .into(),
        })));
    }
    let made = found(dir, reader, options, by).await;
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&root);
    }
    made
}

async fn found<R: Read>(
    dir: &DataDir,
    mut reader: BackupReader<R>,
    options: StartOptions,
    by: &str,
) -> Result<Restored, BackupError> {
    let backup = reader.state()?;
    let blobs = BlobStore::open(&dir.blobs()).map_err(ClusterError::from)?;
    let mut artifacts = 0;
    while let Some((entry, bytes)) = reader.next_artifact()? {
        let stored = blobs.put(&bytes).map_err(ClusterError::from)?;
        debug_assert_eq!(stored, entry.digest, "the reader checked the digest");
        artifacts += 1;
    }
    let header = reader.header().clone();
    let manifest = reader.manifest().clone();
    reader.finish()?;

    let (node, started) = ClusterNode::start(dir, options).await?;
    let outcome = async {
        let Started::Founded { join_token, .. } = started else {
            return Err(BackupError::Cluster(Box::new(ClusterError::Refused(
                "the data directory already held a node".into(),
            ))));
        };
        let response = node
            .write(state::Command::Restore {
                backup: Box::new(backup),
                by: by.to_string(),
                now_unix_ms: crate::unix_now_ms(),
            })
            .await?;
        response
            .result
            .map_err(|r| ClusterError::Refused(format!("restoring the state: {r}")))?;
        Ok(Restored {
            cluster: node.config().cluster.clone(),
            revision: response.revision.0,
            header,
            manifest,
            artifacts,
            join_token,
        })
    }
    .await;
    node.shutdown().await;
    outcome
}

fn is_empty_or_missing(path: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(BackupError::io(format!("{}", path.display()), e)),
    }
}
