//! A running node of a cluster: its data directory, joining with a token,
//! the peer port (Raft, joins, forwarded writes and reads, blob copies) and
//! the handle the API uses ([`ClusterNode`]).
//!
//! Invariants:
//! - The peer port serves nothing but the join routes to a caller without
//!   a certificate from the cluster's CA; a join needs a join token whose
//!   sha256 is a `Join` credential in the replicated state.
//! - A write is retried on another node only when it surely was not
//!   applied (refused as "not the leader", or never sent); when its fate is
//!   unknown the caller is told so, never answered twice.

mod blob_copy;
mod data_dir;
mod gossip;
mod join;
mod node;
mod peer;
mod planet;
mod status;
pub mod token;

pub use data_dir::{DataDir, NodeConfig, NodeFiles};
pub use gossip::{GossipMember, GossipView, RegionSight};
pub use node::{ArtifactCheck, ClusterNode, StartOptions, Started, node_name};
pub use planet::{Planet, Route};
pub use status::{ClusterStatus, MemberStatus};
pub use token::JoinToken;

use crate::blobs::BlobError;
use crate::replica::ReplicaError;
use crate::tls::TlsError;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
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
