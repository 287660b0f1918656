//! What `dwcp cluster status` shows.

use serde::{Deserialize, Serialize};

use replica::NodeId;

/// The cluster as one node (preferably the leader) sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub reported_by: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    /// The last log index the reporting node knows is committed.
    pub commit_index: Option<u64>,
    /// The last log index in the reporting node's log.
    pub last_log_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    /// Where peers reach it, `host:port`.
    pub address: String,
    /// Where its HTTP API listens, when known.
    pub api: Option<String>,
    /// `leader`, `follower` or `learner`.
    pub role: String,
    pub voter: bool,
    /// The last log index the leader knows this member holds (only when
    /// the reporting node is the leader).
    pub matched_index: Option<u64>,
    /// Entries this member is behind the leader's log (only when the
    /// reporting node is the leader).
    pub lag: Option<u64>,
    /// Whether its peer port answered the node that made this status just
    /// now; `None`: not asked. An unreachable member's role is `unknown`:
    /// the role a leader last knew is not shown as if it were current.
    #[serde(default)]
    pub reachable: Option<bool>,
    /// `healthy` or `down` by the scheduler's judgement of its reports
    /// (`no_report` before its first), as the API node saw them; `None`:
    /// not judged here.
    #[serde(default)]
    pub health: Option<String>,
    /// How long its report has stood still, in ms, as the API node saw it.
    #[serde(default)]
    pub heartbeat_age_ms: Option<u64>,
}
