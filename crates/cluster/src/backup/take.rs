//! Taking a backup: a consistent point of a running node's group, and a
//! backup file written whole or not at all.

use std::collections::BTreeSet;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::file::{ArtifactEntry, BackupPoint, BackupWriter, Header, Tier};
use super::{BackupError, BackupKey};
use crate::{ClusterError, ClusterNode};
use state::State;

/// The artifacts `state`'s versions name, sorted, each once.
pub fn artifacts_of(state: &State) -> BTreeSet<String> {
    state
        .apps()
        .flat_map(|app| state.versions(&app.tenant, &app.name))
        .map(|v| v.digest.clone())
        .collect()
}

impl ClusterNode {
    /// A consistent point of this node's group: the state as one
    /// linearizable read saw it (its revision, and the log index the read
    /// was made at) and the sizes of the artifacts it names, which must be
    /// stored on this node. `tier` says what this group is.
    pub async fn backup_point(&self, tier: Tier) -> Result<BackupPoint, ClusterError> {
        let (log_index, (revision, state, digests)) = self
            .read_indexed(|s| {
                (
                    s.revision().0,
                    state::snapshot::to_bytes(s),
                    artifacts_of(s),
                )
            })
            .await?;
        let mut artifacts = Vec::with_capacity(digests.len());
        for digest in digests {
            let size_bytes = self.blobs().size(&digest).map_err(|e| {
                ClusterError::Unavailable(format!(
                    "artifact {digest} is named by a version but not stored on this node yet ({e}); try again once it is copied here"
                ))
            })?;
            artifacts.push(ArtifactEntry { digest, size_bytes });
        }
        Ok(BackupPoint {
            cluster: self.config().cluster.clone(),
            tier,
            region: self.config().region.clone(),
            revision,
            log_index,
            taken_unix_ms: crate::unix_now_ms(),
            state,
            artifacts,
        })
    }
}

/// A backup file being written: under a temporary name beside its final
/// one until [`PendingFile::commit`] syncs and renames it; dropped
/// uncommitted, it is removed.
pub struct PendingFile {
    writer: Option<BackupWriter<BufWriter<std::fs::File>>>,
    temporary: PathBuf,
    path: PathBuf,
}

impl PendingFile {
    /// Starts the backup of `point` at `path` (which must not exist yet).
    pub fn create(
        path: &Path,
        key: &BackupKey,
        point: &BackupPoint,
    ) -> Result<(PendingFile, Header), BackupError> {
        use std::os::unix::fs::OpenOptionsExt;
        if path.exists() {
            return Err(BackupError::io(
                format!("{}", path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists already; a backup never overwrites a file",
                ),
            ));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|e| BackupError::io(format!("creating {}", temporary.display()), e))?;
        let mut pending = PendingFile {
            writer: None,
            temporary,
            path: path.to_path_buf(),
        };
        let (writer, header) =
            BackupWriter::create(BufWriter::with_capacity(1 << 20, file), key, point)?;
        pending.writer = Some(writer);
        Ok((pending, header))
    }

    /// The artifact to write next, if any.
    pub fn next_artifact(&self) -> Option<&ArtifactEntry> {
        self.writer.as_ref().and_then(BackupWriter::next_artifact)
    }

    /// Writes the next artifact's bytes.
    pub fn artifact(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        match &mut self.writer {
            Some(w) => w.artifact(bytes),
            None => Err(BackupError::Seal("the file is finished".into())),
        }
    }

    /// Seals the end, syncs the file and renames it into place.
    pub fn commit(mut self) -> Result<PathBuf, BackupError> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| BackupError::Seal("the file is finished".into()))?;
        let buffered = writer.finish()?;
        let file = buffered
            .into_inner()
            .map_err(|e| BackupError::io("writing the backup", e.into_error()))?;
        file.sync_all()
            .map_err(|e| BackupError::io("syncing the backup", e))?;
        std::fs::rename(&self.temporary, &self.path)
            .map_err(|e| BackupError::io(format!("renaming to {}", self.path.display()), e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| BackupError::io(format!("syncing {}", dir.display()), e))?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Writes a backup of `point` to `path`, reading the artifacts from
/// `node`'s blob store (blocking file I/O: run it off the async workers).
pub fn save(
    node: &ClusterNode,
    path: &Path,
    key: &BackupKey,
    point: &BackupPoint,
) -> Result<Header, BackupError> {
    let (mut pending, header) = PendingFile::create(path, key, point)?;
    while let Some(next) = pending.next_artifact() {
        let bytes = node
            .blobs()
            .get(&next.digest)
            .map_err(|e| BackupError::from(ClusterError::from(e)))?;
        pending.artifact(&bytes)?;
    }
    pending.commit()?;
    Ok(header)
}
