//! Artifacts on every node of the region: pushed to all members when
//! uploaded, and fetched by any node that finds a version whose artifact
//! it lacks (it was down during the upload, or joined later). So an
//! artifact outlives the node it was uploaded to.

use std::collections::BTreeSet;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::ClusterError;
use super::node::ClusterNode;

/// How long one copy to or from a peer may take.
const COPY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a node looks for missing artifacts when nothing changes.
const SCAN_EVERY: Duration = Duration::from_secs(5);

/// Stores `bytes` here and on every other member; succeeds once a majority
/// of the voters hold them.
pub(super) async fn put_everywhere(
    node: &ClusterNode,
    bytes: Bytes,
) -> Result<(String, usize), ClusterError> {
    let digest = node.blobs().put(&bytes)?;
    let status = node.replica().status();
    let path = format!("/cluster/blobs/{digest}");
    let mut pushes = tokio::task::JoinSet::new();
    for (&id, address) in &status.members {
        if id == node.id() {
            continue;
        }
        let channel = node.channel(address);
        let (path, bytes) = (path.clone(), bytes.clone());
        pushes.spawn(async move {
            let sent =
                tokio::time::timeout(COPY_TIMEOUT, channel.request(Method::PUT, &path, bytes))
                    .await;
            matches!(sent, Ok(Ok((StatusCode::OK, _)))).then_some(id)
        });
    }
    let mut holders = BTreeSet::from([node.id()]);
    while let Some(pushed) = pushes.join_next().await {
        holders.extend(pushed.ok().flatten());
    }
    let voters_holding = status.voters.intersection(&holders).count();
    if voters_holding * 2 <= status.voters.len() {
        return Err(ClusterError::Unavailable(format!(
            "the artifact reached only {voters_holding} of {} voters; a majority must hold it",
            status.voters.len()
        )));
    }
    Ok((digest, holders.len()))
}

/// Fetches, for as long as the node lives, every artifact a version in the
/// state names that this node does not hold.
pub(super) async fn keep_copies(node: Weak<ClusterNode>) {
    loop {
        let Some(strong) = node.upgrade() else { return };
        let (seen, missing): (_, BTreeSet<String>) = {
            let state = strong.replica().read_local();
            let missing = state
                .apps()
                .flat_map(|a| state.versions(&a.tenant, &a.name))
                .map(|v| v.digest.clone())
                .filter(|d| !strong.blobs().contains(d))
                .collect();
            (state.revision(), missing)
        };
        for digest in missing {
            fetch(&strong, &digest).await;
        }
        let _ = strong.replica().watch(seen, SCAN_EVERY).await;
    }
}

/// Tries each member in turn for `digest`; stores the first good copy.
async fn fetch(node: &ClusterNode, digest: &str) {
    let members = node.replica().status().members;
    let path = format!("/cluster/blobs/{digest}");
    for (id, address) in members {
        if id == node.id() {
            continue;
        }
        let got = tokio::time::timeout(
            COPY_TIMEOUT,
            node.channel(&address)
                .request(Method::GET, &path, Bytes::new()),
        )
        .await;
        if let Ok(Ok((StatusCode::OK, bytes))) = got
            && node.store_blob_copy(digest, &bytes).is_ok()
        {
            return;
        }
    }
}
