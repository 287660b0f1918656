//! A node's data directory: who it is, its keys and certificates, its
//! store and its blobs.
//!
//! ```text
//! dwcp-data/            (mode 0700)
//!   node.json           id, region, addresses; written last at creation
//!   tls/ca.pem          the cluster's CA certificate
//!   tls/ca-key.pem      the CA's key (0600): lets this node admit joins
//!   tls/node.pem        this node's certificate
//!   tls/node-key.pem    this node's key (0600)
//!   store.redb          the Raft log, snapshots and state
//!   blobs/              artifacts by sha256
//! ```
//!
//! `node.json` is written last, through a synced temporary file and a
//! rename, so a directory either describes a whole node or is treated as
//! not yet created.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::durable::write_atomically;
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
    pub ca: ClusterCa,
    pub identity: NodeIdentity,
}

/// A node's data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
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
        let ca = ClusterCa::load(&config.cluster, &read("ca.pem")?, &read("ca-key.pem")?)?;
        let identity = NodeIdentity {
            cert_pem: read("node.pem")?,
            key_pem: read("node-key.pem")?,
        };
        Ok(Some(NodeFiles {
            config,
            ca,
            identity,
        }))
    }

    /// Saves a new node: keys and certificates first, `node.json` last.
    pub fn create(&self, files: &NodeFiles) -> Result<(), ClusterError> {
        let io = |what: &str, e: std::io::Error| self.error(format!("{what}: {e}"));
        std::fs::create_dir_all(self.root.join("tls")).map_err(|e| io("creating", e))?;
        restrict(&self.root, 0o700).map_err(|e| io("setting permissions", e))?;
        write_atomically(&self.tls("ca.pem"), files.ca.cert_pem().as_bytes(), 0o644)
            .map_err(|e| io("writing tls/ca.pem", e))?;
        write_atomically(
            &self.tls("ca-key.pem"),
            files.ca.key_pem().as_bytes(),
            0o600,
        )
        .map_err(|e| io("writing tls/ca-key.pem", e))?;
        write_atomically(
            &self.tls("node.pem"),
            files.identity.cert_pem.as_bytes(),
            0o644,
        )
        .map_err(|e| io("writing tls/node.pem", e))?;
        write_atomically(
            &self.tls("node-key.pem"),
            files.identity.key_pem.as_bytes(),
            0o600,
        )
        .map_err(|e| io("writing tls/node-key.pem", e))?;
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

    #[test]
    fn a_created_node_loads_back_and_keys_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("data"));
        assert!(dir.load().unwrap().is_none());
        let ca = ClusterCa::create("test").unwrap();
        let identity = ca.issue("node-1", &["127.0.0.1".into()]).unwrap();
        let config = NodeConfig {
            id: 1,
            cluster: "test".into(),
            region: "local".into(),
            peer_address: "127.0.0.1:7071".into(),
            api_address: "127.0.0.1:7070".into(),
            founder: true,
        };
        dir.create(&NodeFiles {
            config: config.clone(),
            ca,
            identity,
        })
        .unwrap();
        let loaded = dir.load().unwrap().unwrap();
        assert_eq!(loaded.config, config);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.tls("ca-key.pem")), 0o600);
        assert_eq!(mode(dir.tls("node-key.pem")), 0o600);
        assert_eq!(mode(dir.root().to_path_buf()), 0o700);
    }

    #[test]
    fn a_store_without_node_json_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        std::fs::write(dir.store(), b"x").unwrap();
        let e = dir.load().err().unwrap().to_string();
        assert!(e.contains("cut short"), "{e}");
    }
}
