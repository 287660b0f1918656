//! The Raft type configuration: what the log carries and what applying it
//! returns.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::{Command, Outcome, Rejection, Revision};

/// Node identifiers within a cluster.
pub type NodeId = u64;

/// What applying one log entry produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The state's revision after the entry.
    pub revision: Revision,
    /// The command's outcome, or why it was refused (`Ok(Applied)` for
    /// entries that carry no command).
    pub result: Result<Outcome, Rejection>,
}

openraft::declare_raft_types!(
    /// DWCP's Raft: commands in, responses out, nodes known by address.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);
