//! The Raft type configuration: what the log carries and what applying it
//! returns.

use std::fmt;

use serde::{Deserialize, Serialize};

use state::{Command, Outcome, Rejection, Revision};

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

/// What one log entry carries.
///
/// [`Replica::write`](super::Replica::write) groups the commands that
/// clients submit while the previous entry is being committed into one
/// entry (group commit): one append, one fsync per node and one round of
/// replication for all of them. The commands of a batch are applied in
/// order, each on its own, exactly as if each had its own entry: one
/// refused command does not affect the others.
///
/// In JSON (the log's encoding) a batch is an array of commands and a
/// single command is the command itself, as logs written before batching
/// hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Proposal {
    Batch(Vec<Command>),
    One(Command),
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proposal::One(_) => write!(f, "1 command"),
            Proposal::Batch(commands) => write!(f, "{} commands", commands.len()),
        }
    }
}

impl From<Command> for Proposal {
    fn from(command: Command) -> Proposal {
        Proposal::One(command)
    }
}

/// DWCP's Raft: commands in, one response per command out, nodes known by
/// address. An entry with no command (blank or membership) has one
/// response, `Ok(Applied)`.
///
/// Written out rather than with `declare_raft_types!`, whose syntax cannot
/// name a responder: writes answer through a oneshot channel
/// ([`OneshotResponder`](openraft::impls::OneshotResponder)), which the
/// engine's membership calls need.
#[derive(Debug, Clone, Copy, Default, Eq, PartialEq, Ord, PartialOrd)]
pub struct TypeConfig {}

impl openraft::RaftTypeConfig for TypeConfig {
    type D = Proposal;
    type R = Vec<Response>;
    type NodeId = NodeId;
    type Node = openraft::BasicNode;
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = openraft::EntryPayload<Proposal, NodeId, openraft::BasicNode>;
    type Entry = openraft::Entry<Self::LeaderId, Self::Payload>;
    type AsyncRuntime = crate::runtime::Runtime;
    type Responder<T>
        = openraft::impls::OneshotResponder<Self, T>
    where
        T: openraft::OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: openraft::OptionalSend + 'static;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// A log entry of DWCP's Raft.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;

/// A log entry's id: the term and node of the leader that proposed it, and
/// its index.
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;

/// A node's vote: the leader it grants its term to, and whether a quorum
/// granted it.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_command_reads_as_logs_before_batching_wrote_it() {
        let put = Command::Put {
            key: "k".into(),
            value: vec![1, 2],
        };
        let old = serde_json::to_vec(&put).unwrap();
        let one: Proposal = serde_json::from_slice(&old).unwrap();
        assert_eq!(one, Proposal::One(put.clone()));
        assert_eq!(serde_json::to_vec(&one).unwrap(), old);

        let batch = Proposal::Batch(vec![put.clone(), put]);
        let bytes = serde_json::to_vec(&batch).unwrap();
        assert_eq!(serde_json::from_slice::<Proposal>(&bytes).unwrap(), batch);
    }
}
