//! Keys at rest: the node's secret files (its TLS key, the CA key on the
//! nodes that hold it, the cluster secret) sealed with AES-256-GCM under a
//! 256-bit key kept in a key file outside the data directory.
//!
//! ```text
//! key file     64 hex digits (0600), given with --key-file / DWCP_KEY_FILE,
//!              by default DATA-DIR.key beside the data directory
//! sealed file  "DWCPSEAL1" ‖ key id (8 bytes) ‖ nonce (12 bytes) ‖ AES-256-GCM(bytes)
//!              the associated data is the file's name, so a sealed file
//!              moved onto another name does not open
//! ```
//!
//! The key id is the first 8 bytes of the key's sha256: a file says which
//! key sealed it, so a rotation cut short ([`KeyRing::rotate`] keeps the
//! old key in `KEY-FILE.old` until every file is sealed anew) is finished
//! at the next start with whichever key each file needs.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::Digest;

use crate::data_dir::{hex, unhex32};
use crate::durable::write_atomically;

const MAGIC: &[u8] = b"DWCPSEAL1";
const KEY_ID_BYTES: usize = 8;
const NONCE_BYTES: usize = 12;

/// Why a key file or a sealed file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "{file} is sealed under key {key_id}, which is not the key file given ({path}); start with --key-file (or DWCP_KEY_FILE) naming the key this data directory was sealed with"
    )]
    WrongKey {
        file: String,
        key_id: String,
        path: String,
    },
    #[error("{file} is not a sealed file or is damaged: {reason}")]
    Damaged { file: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SealError {
    let what = what.into();
    move |source| SealError::Io { what, source }
}

/// One 256-bit key.
#[derive(Clone)]
struct Key {
    bytes: [u8; 32],
}

impl Key {
    fn id(&self) -> [u8; KEY_ID_BYTES] {
        let digest = sha2::Sha256::digest(self.bytes);
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.bytes).into())
    }
}

fn read_key(path: &Path) -> Result<Key, SealError> {
    let error = |reason: String| SealError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let bytes = unhex32(&text)
        .ok_or_else(|| error("it does not hold 64 hex digits (a 256-bit key)".into()))?;
    Ok(Key { bytes })
}

fn write_key(path: &Path, key: &Key) -> Result<(), SealError> {
    write_atomically(path, format!("{}\n", hex(&key.bytes)).as_bytes(), 0o600)
        .map_err(io(format!("writing the key file {}", path.display())))
}

fn new_key() -> Result<Key, SealError> {
    let bytes = crate::token::random_bytes().map_err(|e| SealError::KeyFile {
        path: String::new(),
        reason: e.to_string(),
    })?;
    Ok(Key { bytes })
}

/// The key that seals a data directory's secret files, and the one it
/// replaces while a rotation is under way.
#[derive(Clone)]
pub struct KeyRing {
    path: PathBuf,
    current: Key,
    previous: Option<Key>,
}

impl KeyRing {
    /// The key in `path`, and the one in `path.old` if a rotation was cut
    /// short; a clear error when the file is missing or not a key.
    pub fn open(path: &Path) -> Result<KeyRing, SealError> {
        let current = read_key(path)?;
        let old = old_path(path);
        let previous = if old.exists() {
            Some(read_key(&old)?)
        } else {
            None
        };
        Ok(KeyRing {
            path: path.to_path_buf(),
            current,
            previous,
        })
    }

    /// A new random key written to `path` (0600); refused if the file
    /// exists.
    pub fn create(path: &Path) -> Result<KeyRing, SealError> {
        if path.exists() {
            return Err(SealError::KeyFile {
                path: path.display().to_string(),
                reason: "it exists already".into(),
            });
        }
        let current = new_key()?;
        write_key(path, &current)?;
        Ok(KeyRing {
            path: path.to_path_buf(),
            current,
            previous: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals `bytes` for the file `name` under the current key.
    pub fn seal(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Damaged {
            file: name.into(),
            reason: format!("no random nonce: {e}"),
        })?;
        let body = self
            .current
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: bytes,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| SealError::Damaged {
                file: name.into(),
                reason: "encryption failed".into(),
            })?;
        let mut out = MAGIC.to_vec();
        out.extend(self.current.id());
        out.extend(nonce);
        out.extend(body);
        Ok(out)
    }

    /// Opens a sealed file `name`, with the key that sealed it.
    pub fn open_sealed(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let damaged = |reason: &str| SealError::Damaged {
            file: name.into(),
            reason: reason.into(),
        };
        let rest = sealed
            .strip_prefix(MAGIC)
            .ok_or_else(|| damaged("it does not start with DWCPSEAL1"))?;
        if rest.len() < KEY_ID_BYTES + NONCE_BYTES {
            return Err(damaged("it is too short"));
        }
        let (id, rest) = rest.split_at(KEY_ID_BYTES);
        let (nonce, body) = rest.split_at(NONCE_BYTES);
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id() == id)
            .ok_or_else(|| SealError::WrongKey {
                file: name.into(),
                key_id: hex(id),
                path: self.path.display().to_string(),
            })?;
        key.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| damaged("it does not open under its key (changed or truncated)"))
    }

    /// Whether `sealed` was sealed under an older key than the current.
    pub fn is_stale(&self, sealed: &[u8]) -> bool {
        sealed
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.get(..KEY_ID_BYTES))
            .is_some_and(|id| id != self.current.id())
    }

    /// Starts a rotation: the current key is kept in `KEY-FILE.old` and a
    /// new one written to the key file. The caller then seals every file
    /// anew ([`KeyRing::seal`]) and calls [`KeyRing::finish_rotation`]; a
    /// crash in between leaves both keys, and the next start opens each
    /// file with the key that sealed it.
    pub fn rotate(&mut self) -> Result<(), SealError> {
        let old = old_path(&self.path);
        write_key(&old, &self.current)?;
        let next = new_key()?;
        write_key(&self.path, &next)?;
        self.previous = Some(std::mem::replace(&mut self.current, next));
        Ok(())
    }

    /// Forgets the old key once nothing is sealed under it.
    pub fn finish_rotation(&mut self) -> Result<(), SealError> {
        let old = old_path(&self.path);
        if old.exists() {
            std::fs::remove_file(&old).map_err(io(format!("removing {}", old.display())))?;
        }
        self.previous = None;
        Ok(())
    }
}

fn old_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".old");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_under_their_key_and_name() {
        let tmp = tempfile::tempdir().unwrap();
        let ring = KeyRing::create(&tmp.path().join("k")).unwrap();
        let sealed = ring.seal("tls/node-key.pem", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            ring.open_sealed("tls/node-key.pem", &sealed).unwrap(),
            b"secret"
        );
        // Another name: the associated data differs.
        assert!(ring.open_sealed("tls/secret", &sealed).is_err());
        // Another key: named as such.
        let other = KeyRing::create(&tmp.path().join("other")).unwrap();
        let e = other.open_sealed("tls/node-key.pem", &sealed).unwrap_err();
        assert!(e.to_string().contains("--key-file"), "{e}");
        // A flipped byte: damaged.
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            ring.open_sealed("tls/node-key.pem", &bad),
            Err(SealError::Damaged { .. })
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("k"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_rotation_cut_short_still_opens_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        let mut ring = KeyRing::create(&path).unwrap();
        let before = ring.seal("a", b"one").unwrap();
        ring.rotate().unwrap();
        let after = ring.seal("b", b"two").unwrap();
        // The process stops here: the next start has both keys.
        let reopened = KeyRing::open(&path).unwrap();
        assert!(reopened.is_stale(&before) && !reopened.is_stale(&after));
        assert_eq!(reopened.open_sealed("a", &before).unwrap(), b"one");
        assert_eq!(reopened.open_sealed("b", &after).unwrap(), b"two");
        ring.finish_rotation().unwrap();
        let done = KeyRing::open(&path).unwrap();
        assert!(done.open_sealed("a", &before).is_err());
        assert!(KeyRing::open(&tmp.path().join("missing")).is_err());
    }
}
