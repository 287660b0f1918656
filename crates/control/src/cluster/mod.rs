//! A running node of a cluster: its data directory, joining with a token,
//! the peer port (Raft, joins, forwarded writes, blob copies) and the
//! handle the API uses.

mod status;

pub use status::{ClusterStatus, MemberStatus};
