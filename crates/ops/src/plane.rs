//! What the API needs from the control plane, as a trait: the running
//! cluster node implements it; unit tests use an in-memory fake.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use cluster::ClusterStatus;
use replica::{NodeId, Response};
use serde::{Deserialize, Serialize};
use state::{Command, Compacted, Event, Rejection, Revision, State};

/// Why the control plane could not do what the API asked.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    /// The state machine refused the command; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// No leader or no quorum right now: retry later (HTTP 503).
    #[error("the cluster cannot serve this now: {0}")]
    Unavailable(String),
    /// A request the caller got wrong, outside the state machine (HTTP 400).
    #[error("{field} `{value}` is not allowed: {allowed}")]
    Invalid {
        field: String,
        value: String,
        allowed: String,
    },
    /// A request the caller got wrong, whose reason reads better whole than
    /// in the `is not allowed` template (HTTP 400).
    #[error("{reason}")]
    Unusable { field: String, reason: String },
    /// A well-formed request this node's setup or the current state
    /// refuses (HTTP 409 naming `field`).
    #[error("{reason}")]
    Conflict { field: String, reason: String },
    /// Something named does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A fault on this node (HTTP 500).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A stored artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobReceipt {
    /// Lowercase hex sha256 of the bytes.
    pub digest: String,
    pub size: u64,
    /// How many nodes hold a copy now (this one included).
    pub copies: usize,
}

/// The control plane as the API sees it. Writes and membership changes are
/// forwarded to the leader by the implementation; reads are linearizable.
pub trait ControlPlane: Send + Sync + 'static {
    /// Commits `command` and returns what applying it gave (a refusal is
    /// `Ok(Response { result: Err(rejection), .. })`).
    fn write(&self, command: Command) -> impl Future<Output = Result<Response, PlaneError>> + Send;

    /// Runs `f` over the state as of now (linearizable).
    fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> R + Send + 'static,
    ) -> impl Future<Output = Result<R, PlaneError>> + Send;

    /// Runs `f` over the state this node has applied, without asking the
    /// leader: may lag behind the latest writes.
    fn read_local<R>(&self, f: impl FnOnce(&State) -> R) -> R;

    /// The changes after revision `since` that this node has applied,
    /// waiting up to `wait` for one when there is none yet; `Compacted`
    /// when the node no longer keeps changes that old.
    fn watch(
        &self,
        since: Revision,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Event>, Compacted>> + Send;

    /// Members, roles, leader, term, commit index and lag.
    fn status(&self) -> impl Future<Output = Result<ClusterStatus, PlaneError>> + Send;

    /// Marks each member of `status` reachable or not by asking it now
    /// (an unreachable one's role becomes `unknown`); a plane without
    /// peers leaves it as it is. Slower than [`ControlPlane::status`] by
    /// up to a second when a member is down: only `GET /cluster` asks.
    fn probe_members(&self, status: &mut ClusterStatus) -> impl Future<Output = ()> + Send {
        let _ = status;
        async {}
    }

    /// The global tier's members, roles and leader, as this node's member
    /// of it sees them; `None` outside a planet.
    fn global_status(
        &self,
    ) -> impl Future<Output = Result<Option<ClusterStatus>, PlaneError>> + Send {
        async { Ok(None) }
    }

    /// The lines of an app's log from every node of the cluster, merged
    /// (`cluster::logs`); a plane without nodes has none.
    fn app_logs(
        &self,
        query: cluster::logs::LogQuery,
    ) -> impl Future<Output = Result<cluster::logs::LogPage, PlaneError>> + Send {
        let _ = query;
        async { Ok(cluster::logs::LogPage::default()) }
    }

    /// Removes node `id` from the cluster.
    fn remove_node(&self, id: NodeId) -> impl Future<Output = Result<(), PlaneError>> + Send;

    /// Stores an artifact on this node and copies it to the other members;
    /// returns once a majority of the voters hold it.
    fn put_blob(
        &self,
        bytes: Bytes,
    ) -> impl Future<Output = Result<BlobReceipt, PlaneError>> + Send;

    /// Makes a new join token for this cluster that admits `uses` nodes
    /// (`None`: any number) until `ttl` has passed, and stores its hash as
    /// a join credential; returns the token (shown once).
    fn new_join_token(
        &self,
        ttl: Duration,
        uses: Option<u32>,
    ) -> impl Future<Output = Result<String, PlaneError>> + Send;

    /// Whether an artifact with this digest is stored on this node.
    fn has_blob(&self, digest: &str) -> bool;

    /// Whether the artifact with this digest, stored on this node, is an
    /// ELF executable (the microvm tier's kind) rather than a WebAssembly
    /// module; `None` when this plane cannot tell (it then trusts the
    /// tier a version names, and the node's agent refuses a mismatch).
    fn blob_is_elf(&self, digest: &str) -> Option<bool> {
        let _ = digest;
        None
    }

    /// This node's id, for health answers and response headers.
    fn node_id(&self) -> NodeId;

    /// The key secrets kept in the replicated state are sealed under
    /// (users' TOTP secrets; see `api/seal.rs`): the same on every node of
    /// the cluster and never in the log. `None`: this plane has none, and
    /// TOTP cannot be enrolled or checked through it.
    fn at_rest_key(&self) -> Option<[u8; 32]> {
        None
    }

    /// The cluster's identity (the sha256 of its CA certificate), which a
    /// certification report must carry to be recorded here. `None`: this
    /// plane has none, and reports are recorded unchecked.
    fn cluster_id(&self) -> Option<String> {
        None
    }

    /// A consistent point of this node's group for a backup (with
    /// `global`, of the planet's global tier): one linearizable read.
    fn backup_point(
        &self,
        global: bool,
    ) -> impl Future<Output = Result<cluster::backup::BackupPoint, PlaneError>> + Send {
        let _ = global;
        async {
            Err(PlaneError::NotFound(
                "this control plane takes no backups".into(),
            ))
        }
    }

    /// The bytes of the artifact with `digest` on this node (checked
    /// against it); `None` when it is not stored here.
    fn blob_bytes(&self, digest: &str) -> Option<Result<Vec<u8>, PlaneError>> {
        let _ = digest;
        None
    }

    /// What this node's gossip member sees of the planet; `None` when the
    /// node does not run in one.
    fn planet(&self) -> Option<cluster::GossipView> {
        None
    }

    /// The region failovers as this node's member of the global tier holds
    /// them (fresher than the cell's mirrored copy); `None` outside a
    /// planet.
    fn failovers(&self) -> Option<Vec<state::RegionFailover>> {
        None
    }

    /// Where a client at `at` should go (`cluster::Planet::route`);
    /// `None` when the node is in no planet or no region is up.
    fn route(&self, at: planet::topology::geo::LatLon) -> Option<cluster::Route> {
        let _ = at;
        None
    }
}
