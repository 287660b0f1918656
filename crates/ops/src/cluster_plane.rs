//! The real control plane behind the API: a running
//! [`ClusterNode`](cluster::ClusterNode).

use std::sync::Arc;

use bytes::Bytes;
use cluster::{ClusterError, ClusterNode, ClusterStatus};
use replica::{NodeId, Response};
use std::time::Duration;

use state::{Command, Compacted, Event, Revision, State};

use crate::plane::{BlobReceipt, ControlPlane, PlaneError};

impl From<ClusterError> for PlaneError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Unavailable(_) | ClusterError::Indeterminate(_) => {
                PlaneError::Unavailable(e.to_string())
            }
            other => PlaneError::Internal(other.to_string()),
        }
    }
}

impl ControlPlane for Arc<ClusterNode> {
    async fn write(&self, command: Command) -> Result<Response, PlaneError> {
        Ok(ClusterNode::write(self, command).await?)
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> R + Send + 'static,
    ) -> Result<R, PlaneError> {
        Ok(ClusterNode::read(self, f).await?)
    }

    fn read_local<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.replica().read_local())
    }

    async fn watch(&self, since: Revision, wait: Duration) -> Result<Vec<Event>, Compacted> {
        self.replica().watch(since, wait).await
    }

    async fn status(&self) -> Result<ClusterStatus, PlaneError> {
        Ok(ClusterNode::status(self).await?)
    }

    async fn probe_members(&self, status: &mut ClusterStatus) {
        ClusterNode::probe_members(self, status).await
    }

    async fn global_status(&self) -> Result<Option<ClusterStatus>, PlaneError> {
        match self.global() {
            Some(global) => Ok(Some(ClusterNode::status(global).await?)),
            None => Ok(None),
        }
    }

    async fn app_logs(
        &self,
        query: cluster::logs::LogQuery,
    ) -> Result<cluster::logs::LogPage, PlaneError> {
        Ok(ClusterNode::app_logs(self, &query).await)
    }

    async fn remove_node(&self, id: NodeId) -> Result<(), PlaneError> {
        // Raft cannot leave an empty membership: asked, it failed as
        // "unavailable" (a 503; schemathesis, issue 16).
        let members = ClusterNode::local_status(self).members;
        if members.len() == 1 && members.iter().all(|m| m.id == id) {
            return Err(PlaneError::Conflict {
                field: "node".into(),
                reason: format!(
                    "node {id} is the cluster's only member: a cluster cannot remove its last node"
                ),
            });
        }
        ClusterNode::remove(self, id).await.map_err(|e| match e {
            // Refusals of a well-formed removal come from the membership
            // as it is now (the last voter, a node that is no member).
            ClusterError::Refused(reason) => PlaneError::Conflict {
                field: "node".into(),
                reason,
            },
            other => other.into(),
        })
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<BlobReceipt, PlaneError> {
        let size = bytes.len() as u64;
        let (digest, copies) = ClusterNode::put_blob(self, bytes)
            .await
            .map_err(|e| match e {
                ClusterError::InvalidArtifact(why) => PlaneError::Unusable {
                    field: "body".into(),
                    reason: format!(
                        "the upload ({size} bytes) is not a WebAssembly module, or a static x86-64 Linux program for the microvm tier, that this node can run: {why}"
                    ),
                },
                other => other.into(),
            })?;
        Ok(BlobReceipt {
            digest,
            size,
            copies,
        })
    }

    async fn new_join_token(&self, ttl: Duration, uses: Option<u32>) -> Result<String, PlaneError> {
        Ok(ClusterNode::new_join_token(self, ttl, uses)
            .await?
            .to_string())
    }

    fn has_blob(&self, digest: &str) -> bool {
        self.blobs().contains(digest)
    }

    fn blob_is_elf(&self, digest: &str) -> Option<bool> {
        let bytes = self.blobs().get(digest).ok()?;
        Some(bytes.starts_with(b"\x7fELF"))
    }

    fn node_id(&self) -> NodeId {
        self.id()
    }

    fn at_rest_key(&self) -> Option<[u8; 32]> {
        Some(ClusterNode::at_rest_key(self))
    }

    fn cluster_id(&self) -> Option<String> {
        ClusterNode::cluster_id(self)
    }

    async fn backup_point(&self, global: bool) -> Result<cluster::backup::BackupPoint, PlaneError> {
        use cluster::backup::Tier;
        match (global, self.global()) {
            (true, Some(global)) => Ok(ClusterNode::backup_point(global, Tier::Global).await?),
            (true, None) => Err(PlaneError::Conflict {
                field: "tier".into(),
                reason: "tier `global` is not allowed: `cell` only: this node runs in no planet, so there is no global tier"
                    .into(),
            }),
            (false, Some(_)) => Ok(ClusterNode::backup_point(self, Tier::Cell).await?),
            (false, None) => Ok(ClusterNode::backup_point(self, Tier::Cluster).await?),
        }
    }

    fn blob_bytes(&self, digest: &str) -> Option<Result<Vec<u8>, PlaneError>> {
        let holder = [Some(self), self.global()]
            .into_iter()
            .flatten()
            .find(|node| node.blobs().contains(digest))?;
        Some(
            holder
                .blobs()
                .get(digest)
                .map_err(|e| PlaneError::Internal(e.to_string())),
        )
    }

    fn planet(&self) -> Option<cluster::GossipView> {
        self.gossip().map(|g| g.view())
    }

    fn failovers(&self) -> Option<Vec<state::RegionFailover>> {
        let global = self.global()?;
        Some(global.replica().read_local().failovers().cloned().collect())
    }

    fn route(&self, at: planet::topology::geo::LatLon) -> Option<cluster::Route> {
        ClusterNode::planet(self)?.route(at)
    }
}
