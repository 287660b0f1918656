//! Artifacts stored content-addressed by sha256 digest on one node's disk.
//!
//! A blob's file name is its digest, and every read checks the bytes against
//! it, so a damaged file is reported, never served. Writes go to a
//! temporary file that is synced and then renamed into place, so a crash
//! leaves either the whole blob or none of it. Copies to the other members
//! are `blob_copy.rs`'s.

use std::path::{Path, PathBuf};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("digest `{0}` is not 64 lowercase hex digits")]
    BadDigest(String),
    #[error("blob {digest} is not stored here")]
    Missing { digest: String },
    #[error("blob {digest} is damaged on disk: its bytes hash to {actual}")]
    Damaged { digest: String, actual: String },
    #[error("blob store at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

use state::{digest_of, is_sha256_hex};

fn check_digest(digest: &str) -> Result<(), BlobError> {
    if is_sha256_hex(digest) {
        Ok(())
    } else {
        Err(BlobError::BadDigest(digest.chars().take(80).collect()))
    }
}

/// A directory of blobs named by digest.
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        std::fs::create_dir_all(dir).map_err(|source| BlobError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(digest)
    }

    fn io(&self, source: std::io::Error) -> BlobError {
        BlobError::Io {
            path: self.dir.display().to_string(),
            source,
        }
    }

    /// Stores `bytes` and returns their digest. Storing what is already
    /// there is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let digest = digest_of(bytes);
        let path = self.path(&digest);
        if self.get(&digest).is_ok() {
            return Ok(digest);
        }
        crate::durable::write_atomically(&path, bytes, 0o644).map_err(|e| self.io(e))?;
        Ok(digest)
    }

    /// The blob with `digest`, checked against it.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, BlobError> {
        check_digest(digest)?;
        let bytes = match std::fs::read(self.path(digest)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing {
                    digest: digest.into(),
                });
            }
            Err(e) => return Err(self.io(e)),
        };
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(BlobError::Damaged {
                digest: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The size of the stored blob with `digest` (without checking its
    /// bytes).
    pub fn size(&self, digest: &str) -> Result<u64, BlobError> {
        check_digest(digest)?;
        match std::fs::metadata(self.path(digest)) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::Missing {
                digest: digest.into(),
            }),
            Err(e) => Err(self.io(e)),
        }
    }

    /// The size and modification time of the stored blob's file, `None`
    /// when it is not stored (or `digest` is not one).
    pub fn stamp(&self, digest: &str) -> Option<(u64, Option<std::time::SystemTime>)> {
        check_digest(digest).ok()?;
        let meta = std::fs::metadata(self.path(digest)).ok()?;
        meta.is_file().then(|| (meta.len(), meta.modified().ok()))
    }

    /// Whether a blob with `digest` is stored (without checking its bytes).
    pub fn contains(&self, digest: &str) -> bool {
        check_digest(digest).is_ok() && self.path(digest).is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_digest_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = store.put(b"hello wasm").unwrap();
        assert_eq!(digest, digest_of(b"hello wasm"));
        assert_eq!(store.put(b"hello wasm").unwrap(), digest, "idempotent");
        assert_eq!(store.get(&digest).unwrap(), b"hello wasm");
        assert!(store.contains(&digest));

        std::fs::write(dir.path().join(&digest), b"hello wasn").unwrap();
        assert!(matches!(store.get(&digest), Err(BlobError::Damaged { .. })));
        // Putting the right bytes again repairs it.
        store.put(b"hello wasm").unwrap();
        assert_eq!(store.get(&digest).unwrap(), b"hello wasm");

        assert!(matches!(
            store.get("../etc/passwd"),
            Err(BlobError::BadDigest(_))
        ));
        let absent = digest_of(b"never stored");
        assert!(matches!(store.get(&absent), Err(BlobError::Missing { .. })));
        assert!(!store.contains("nope"));
    }
}
