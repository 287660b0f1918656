//! A running node of a cluster: its data directory, joining with a token,
//! the cluster's PKI and TLS, the peer port (Raft, joins, forwarded writes
//! and reads, blob copies) with its shared accept loop, the content-addressed
//! blob store, the gossip member on a UDP socket, test-only fault injection,
//! and the handle the API, the agent and the controllers use
//! ([`ClusterNode`]: write a command, read the state, watch, lead or not).
//!
//! Modules, one job each: [`ClusterNode`] (`node.rs`) and its peer routes
//! (`peer.rs`), joining (`join.rs`, [`token`]), the data directory
//! (`data_dir.rs`), [`tls`], [`transport`] (Raft messages over mutual TLS,
//! appends on ordered pipes: `append_pipe.rs`),
//! [`serving`] (listening sockets and plain-HTTP serving for every server),
//! [`blobs`] and their copies to peers (`blob_copy.rs`), [`backup`] (sealed
//! backups of a group's state and artifacts, and restoring one), the gossip member
//! (`gossip.rs`), a node's place in a planet (`planet.rs`), the apps' log
//! lines a node keeps and reads from its peers ([`logs`], `app_logs.rs`),
//! and the node's own log lines, as text or JSON ([`node_log`], [`say!`]).
//!
//! Invariants:
//! - The peer port serves nothing but the join routes to a caller without
//!   a certificate from the cluster's CA; a join needs a join token whose
//!   sha256 is a `Join` credential in the replicated state.
//! - A write is retried on another node only when it surely was not
//!   applied (refused as "not the leader", or never sent); when its fate is
//!   unknown the caller is told so, never answered twice.
//! - It holds no decision logic of its own: what to write is decided by the
//!   pure crates (`state` checks and applies, `planet` plans) and by the
//!   controllers; this crate carries commands and bytes.
//!
//! It depends on `state`, `replica` and `planet` among DWCP crates, and
//! never on `sandbox`, `node`, `ops` or the controllers, which build on it.

mod app_logs;
mod append_pipe;
pub mod backup;
mod blob_copy;
pub mod blobs;
mod clock;
pub mod credentials;
mod data_dir;
mod durable;
pub mod exposition;
#[cfg(feature = "fault-injection")]
pub mod fault;
/// Whether this build has the network drop rules (`fault.rs`); a build
/// without them ignores `DWCP_FAULTS_FILE`.
pub const FAULT_INJECTION: bool = cfg!(feature = "fault-injection");
mod gossip;
pub mod gossip_frame;
pub mod join;
pub mod logs;
mod node;
pub mod node_log;
mod park;
mod peer;
mod planet;
mod renew;
pub mod rfc3339;
pub mod sealed;
pub mod serving;
mod status;
pub mod tls;
pub mod token;
pub mod transport;

pub use self::planet::{Planet, Route};
pub use clock::unix_now_ms;
pub use data_dir::{DataDir, NodeConfig, NodeFiles};
pub use gossip::{GossipMember, GossipView, RegionSight};
pub use join::parse_join_request;
pub use node::{ArtifactCheck, ClusterNode, StartOptions, Started, node_name};
pub use status::{ClusterStatus, MemberStatus};
pub use token::JoinToken;

use crate::blobs::BlobError;
use crate::tls::TlsError;
use replica::ReplicaError;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Sealed(#[from] sealed::SealError),
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Joining the cluster failed; nothing was saved.
    #[error("cannot join through {address}: {reason}")]
    Join { address: String, reason: String },
    /// No leader or no quorum could be reached in time: retry later.
    #[error("the cluster is unavailable: {0}")]
    Unavailable(String),
    /// The request reached the leader but its answer was lost: it may or
    /// may not have been applied.
    #[error(
        "the outcome is unknown (the leader's answer was lost: {0}); read the state to find out"
    )]
    Indeterminate(String),
    /// An uploaded artifact failed the node's check; nothing was stored.
    #[error("the artifact is not accepted: {0}")]
    InvalidArtifact(String),
    /// The request cannot be done as asked.
    #[error("{0}")]
    Refused(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
}
