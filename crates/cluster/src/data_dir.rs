//! A node's data directory: who it is, its keys and certificates, its
//! store and its blobs.
//!
//! ```text
//! dwcp-data/            (mode 0700)
//!   node.json           id, region, addresses; written last at creation
//!   tls/ca.pem          the cluster's CA certificate
//!   tls/ca-key.pem      the CA's key (0600), on the nodes that hold it
//!                       (the founder): they sign the members' certificates
//!   tls/node.pem        this node's certificate
//!   tls/node-key.pem    this node's key (0600), made on this node
//!   tls/secret          the cluster secret (0600, hex): the keys that seal
//!                       TOTP secrets and gossip are derived from it
//!   store.redb          the Raft log, snapshots and state
//!   blobs/              artifacts by sha256
//! ```
//!
//! `node.json` is written last, through a synced temporary file and a
//! rename, so a directory either describes a whole node or is treated as
//! not yet created.
//!
//! A data directory opened with a [`KeyRing`] ([`DataDir::sealed`], what
//! `dwcp up` does) keeps the three secret files sealed
//! (`tls/ca-key.pem.sealed`, `tls/node-key.pem.sealed`,
//! `tls/secret.sealed`; see [`crate::sealed`]). Plain ones found there
//! (a directory from before sealing) are sealed and removed at load; files
//! sealed under the key a rotation replaced are sealed anew.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::durable::write_atomically;
use crate::sealed::KeyRing;
use crate::tls::{ClusterCa, NodeIdentity};
use replica::NodeId;

/// Who this node is, as saved in `node.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The cluster's name (its CA's subject).
    pub cluster: String,
    pub region: String,
    /// Where peers reach this node, `ip:port`.
    pub peer_address: String,
    /// Where this node's HTTP API listens, `ip:port`.
    pub api_address: String,
    /// This node created the cluster (and bootstraps it if that was cut
    /// short).
    pub founder: bool,
}

/// Everything a node needs from disk to start.
pub struct NodeFiles {
    pub config: NodeConfig,
    /// The cluster CA's certificate, which every member trusts.
    pub ca_pem: String,
    /// The CA itself (with its key), on the nodes that hold it.
    pub ca: Option<ClusterCa>,
    pub identity: NodeIdentity,
    /// The cluster secret: 32 random bytes the founder made, handed to
    /// each member when it joins.
    pub secret: [u8; 32],
}

/// The cluster secret of a data directory made before there was one: it
/// derives from the CA key, which every node of such a cluster holds, so
/// they all derive the same.
fn legacy_secret(ca_key_pem: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"dwcp cluster secret v1\0");
    hasher.update(ca_key_pem.as_bytes());
    hasher.finalize().into()
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes written as 64 hex digits, if they are.
pub(crate) fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// The files whose bytes are secrets: sealed when the directory has keys.
const SECRET_FILES: [&str; 3] = ["ca-key.pem", "node-key.pem", "secret"];

/// A node's data directory.
#[derive(Clone)]
pub struct DataDir {
    root: PathBuf,
    keys: Option<KeyRing>,
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataDir({})", self.root.display())
    }
}

impl DataDir {
    /// A directory whose secret files are plain (0600) files: for tests
    /// and tools; `dwcp up` uses [`DataDir::sealed`].
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir {
            root: root.into(),
            keys: None,
        }
    }

    /// A directory whose secret files are sealed under `keys`.
    pub fn sealed(root: impl Into<PathBuf>, keys: KeyRing) -> DataDir {
        DataDir {
            root: root.into(),
            keys: Some(keys),
        }
    }

    /// Whether any secret file here is sealed.
    pub fn has_sealed_files(&self) -> bool {
        SECRET_FILES
            .iter()
            .any(|f| self.tls(&format!("{f}.sealed")).exists())
    }

    /// Seals every secret file anew under the key ring's current key (after
    /// [`KeyRing::rotate`]), then forgets the old key.
    pub fn reseal(&mut self) -> Result<(), ClusterError> {
        for file in SECRET_FILES {
            if let Some(bytes) = self.read_secret(file)? {
                self.write_secret(file, bytes.as_bytes())?;
            }
        }
        if let Some(keys) = self.keys.as_mut() {
            keys.finish_rotation().map_err(|e| ClusterError::DataDir {
                path: self.root.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// A secret file's text: opened when sealed (and sealed anew when a
    /// rotation left it under the old key), sealed and removed when found
    /// plain while this directory has keys; `None` when absent.
    fn read_secret(&self, file: &str) -> Result<Option<String>, ClusterError> {
        let name = format!("tls/{file}");
        let sealed_path = self.tls(&format!("{file}.sealed"));
        let plain_path = self.tls(file);
        let read = |path: &Path| match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(format!("reading {}: {e}", path.display()))),
        };
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| self.error(format!("{name} is not text")))
        };
        if let Some(sealed) = read(&sealed_path)? {
            let Some(keys) = &self.keys else {
                return Err(self.error(format!(
                    "{name} is sealed: start with --key-file (or DWCP_KEY_FILE) naming its key"
                )));
            };
            let bytes = keys
                .open_sealed(&name, &sealed)
                .map_err(|e| self.error(e.to_string()))?;
            if keys.is_stale(&sealed) {
                self.write_secret(file, &bytes)?;
            }
            return text(bytes).map(Some);
        }
        let Some(plain) = read(&plain_path)? else {
            return Ok(None);
        };
        if self.keys.is_some() {
            self.write_secret(file, &plain)?;
            std::fs::remove_file(&plain_path)
                .map_err(|e| self.error(format!("removing the plain {name}: {e}")))?;
        }
        text(plain).map(Some)
    }

    /// Writes a secret file: sealed when this directory has keys, else a
    /// plain 0600 file.
    fn write_secret(&self, file: &str, bytes: &[u8]) -> Result<(), ClusterError> {
        let name = format!("tls/{file}");
        let (path, bytes) = match &self.keys {
            Some(keys) => (
                self.tls(&format!("{file}.sealed")),
                keys.seal(&name, bytes)
                    .map_err(|e| self.error(e.to_string()))?,
            ),
            None => (self.tls(file), bytes.to_vec()),
        };
        write_atomically(&path, &bytes, 0o600)
            .map_err(|e| self.error(format!("writing {}: {e}", path.display())))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store(&self) -> PathBuf {
        self.root.join("store.redb")
    }

    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("node.json")
    }

    fn tls(&self, file: &str) -> PathBuf {
        self.root.join("tls").join(file)
    }

    fn error(&self, reason: impl ToString) -> ClusterError {
        ClusterError::DataDir {
            path: self.root.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// The node saved here, or `None` for a directory where no node was
    /// created yet. A directory with a store but no `node.json` was cut
    /// short while joining or is not DWCP's: refused.
    pub fn load(&self) -> Result<Option<NodeFiles>, ClusterError> {
        let config_path = self.config_path();
        let text = match std::fs::read_to_string(&config_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.store().exists() {
                    return Err(self.error(
                        "it holds a store but no node.json: its creation was cut short; remove the directory to start this node afresh",
                    ));
                }
                return Ok(None);
            }
            Err(e) => return Err(self.error(format!("reading node.json: {e}"))),
        };
        let config: NodeConfig = serde_json::from_str(&text)
            .map_err(|e| self.error(format!("node.json is damaged: {e}")))?;
        let read = |file: &str| {
            std::fs::read_to_string(self.tls(file))
                .map_err(|e| self.error(format!("reading tls/{file}: {e}")))
        };
        let ca_pem = read("ca.pem")?;
        let ca_key = self.read_secret("ca-key.pem")?;
        let ca = match &ca_key {
            Some(key) => Some(ClusterCa::load(&config.cluster, &ca_pem, key)?),
            None => None,
        };
        let secret = match (self.read_secret("secret")?, &ca_key) {
            (Some(text), _) => {
                unhex32(&text).ok_or_else(|| self.error("tls/secret is not 64 hex digits"))?
            }
            (None, Some(key)) => legacy_secret(key),
            (None, None) => {
                return Err(self.error(
                    "it has neither tls/secret nor tls/ca-key.pem: the cluster secret is missing; remove the directory and join afresh",
                ));
            }
        };
        let identity = NodeIdentity {
            cert_pem: read("node.pem")?,
            key_pem: self
                .read_secret("node-key.pem")?
                .ok_or_else(|| self.error("tls/node-key.pem is missing"))?,
        };
        Ok(Some(NodeFiles {
            config,
            ca_pem,
            ca,
            identity,
            secret,
        }))
    }

    /// Replaces this node's certificate (a renewal for the same key).
    pub fn replace_certificate(&self, cert_pem: &str) -> Result<(), ClusterError> {
        write_atomically(&self.tls("node.pem"), cert_pem.as_bytes(), 0o644)
            .map_err(|e| self.error(format!("writing tls/node.pem: {e}")))
    }

    /// Saves a new node: keys and certificates first, `node.json` last.
    pub fn create(&self, files: &NodeFiles) -> Result<(), ClusterError> {
        let io = |what: &str, e: std::io::Error| self.error(format!("{what}: {e}"));
        std::fs::create_dir_all(self.root.join("tls")).map_err(|e| io("creating", e))?;
        restrict(&self.root, 0o700).map_err(|e| io("setting permissions", e))?;
        write_atomically(&self.tls("ca.pem"), files.ca_pem.as_bytes(), 0o644)
            .map_err(|e| io("writing tls/ca.pem", e))?;
        if let Some(ca) = &files.ca {
            self.write_secret("ca-key.pem", ca.key_pem().as_bytes())?;
        }
        self.write_secret("secret", hex(&files.secret).as_bytes())?;
        write_atomically(
            &self.tls("node.pem"),
            files.identity.cert_pem.as_bytes(),
            0o644,
        )
        .map_err(|e| io("writing tls/node.pem", e))?;
        self.write_secret("node-key.pem", files.identity.key_pem.as_bytes())?;
        let json = serde_json::to_vec_pretty(&files.config)
            .map_err(|e| self.error(format!("encoding node.json: {e}")))?;
        write_atomically(&self.config_path(), &json, 0o644).map_err(|e| io("writing node.json", e))
    }
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A founder's files: a new CA, its certificate, secret `[9; 32]`.
    fn founder_files() -> NodeFiles {
        let ca = ClusterCa::create("test").unwrap();
        let identity = ca.issue("node-1", &["127.0.0.1".into()]).unwrap();
        NodeFiles {
            config: NodeConfig {
                id: 1,
                cluster: "test".into(),
                region: "local".into(),
                peer_address: "127.0.0.1:7071".into(),
                api_address: "127.0.0.1:7070".into(),
                founder: true,
            },
            ca_pem: ca.cert_pem().to_string(),
            ca: Some(ca),
            identity,
            secret: [9; 32],
        }
    }

    #[test]
    fn a_created_node_loads_back_and_keys_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("data"));
        assert!(dir.load().unwrap().is_none());
        let files = founder_files();
        dir.create(&files).unwrap();
        let loaded = dir.load().unwrap().unwrap();
        assert_eq!(loaded.config, files.config);
        assert_eq!(loaded.secret, [9; 32]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.tls("ca-key.pem")), 0o600);
        assert_eq!(mode(dir.tls("node-key.pem")), 0o600);
        assert_eq!(mode(dir.root().to_path_buf()), 0o700);
        assert_eq!(mode(dir.tls("secret")), 0o600);
    }

    #[test]
    fn a_store_without_node_json_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        std::fs::write(dir.store(), b"x").unwrap();
        let e = dir.load().err().unwrap().to_string();
        assert!(e.contains("cut short"), "{e}");
    }

    #[test]
    fn a_sealed_directory_keeps_no_key_in_the_clear_and_needs_its_key() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let files = founder_files();
        let key_pem = files.identity.key_pem.clone();
        // Made plain (as before sealing), then opened with a key: sealed
        // and the plain files removed.
        DataDir::new(&root).create(&files).unwrap();
        let keys = KeyRing::create(&tmp.path().join("data.key")).unwrap();
        let dir = DataDir::sealed(&root, keys);
        let loaded = dir.load().unwrap().unwrap();
        assert_eq!(loaded.identity.key_pem, key_pem);
        assert_eq!(loaded.secret, [9; 32]);
        for file in SECRET_FILES {
            assert!(!dir.tls(file).exists(), "{file} is still plain");
            let sealed = std::fs::read(dir.tls(&format!("{file}.sealed"))).unwrap();
            assert!(
                !sealed
                    .windows(20)
                    .any(|w| key_pem.as_bytes().windows(20).any(|k| k == w))
            );
        }
        // Without the key, or with another: a clear error.
        let e = DataDir::new(&root).load().err().unwrap().to_string();
        assert!(e.contains("--key-file"), "{e}");
        let other = KeyRing::create(&tmp.path().join("other.key")).unwrap();
        let e = DataDir::sealed(&root, other)
            .load()
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--key-file"), "{e}");
        // A rotation: sealed anew under the new key; the old one is gone.
        let mut keys = KeyRing::open(&tmp.path().join("data.key")).unwrap();
        keys.rotate().unwrap();
        let mut dir = DataDir::sealed(&root, keys);
        dir.reseal().unwrap();
        let reopened = KeyRing::open(&tmp.path().join("data.key")).unwrap();
        assert_eq!(
            DataDir::sealed(&root, reopened)
                .load()
                .unwrap()
                .unwrap()
                .identity
                .key_pem,
            key_pem
        );
        assert!(!tmp.path().join("data.key.old").exists());
    }
}
