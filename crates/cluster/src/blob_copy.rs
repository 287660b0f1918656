//! Artifacts on every node of the region: pushed to all members when
//! uploaded, and fetched by any node that finds a version whose artifact
//! it lacks (it was down during the upload, or joined later). So an
//! artifact outlives the node it was uploaded to.

use std::collections::{BTreeSet, HashMap};
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::ClusterError;
use super::blobs::BlobStore;
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
/// state names that this node does not hold whole: missing, or damaged on
/// disk (its bytes no longer hash to its digest).
pub(super) async fn keep_copies(node: Weak<ClusterNode>) {
    let mut checked = Checked::new();
    loop {
        let Some(strong) = node.upgrade() else { return };
        let (seen, named): (_, BTreeSet<String>) = {
            let state = strong.replica().read_local();
            let named = state
                .apps()
                .flat_map(|a| state.versions(&a.tenant, &a.name))
                .map(|v| v.digest.clone())
                .collect();
            (state.revision(), named)
        };
        let blobs = strong.blobs();
        let missing: Vec<String> = named
            .into_iter()
            .filter(|d| !checked.whole(blobs, d))
            .collect();
        for digest in missing {
            fetch(&strong, &digest).await;
        }
        let _ = strong.replica().watch(seen, SCAN_EVERY).await;
    }
}

/// The blobs whose bytes were hashed and found whole, with the size and
/// modification time their files had then: a file is hashed again only
/// once those change (a scan every few seconds must not re-read every
/// artifact).
pub(super) struct Checked {
    whole: HashMap<String, (u64, Option<SystemTime>)>,
}

impl Checked {
    pub(super) fn new() -> Checked {
        Checked {
            whole: HashMap::new(),
        }
    }

    /// Whether `blobs` holds `digest` whole.
    pub(super) fn whole(&mut self, blobs: &BlobStore, digest: &str) -> bool {
        let Some(stamp) = blobs.stamp(digest) else {
            self.whole.remove(digest);
            return false;
        };
        if self.whole.get(digest) == Some(&stamp) {
            return true;
        }
        match blobs.get(digest) {
            Ok(_) => {
                self.whole.insert(digest.to_string(), stamp);
                true
            }
            Err(e) => {
                crate::say!(warn, "blobs", "{e}: fetching a good copy from a peer");
                self.whole.remove(digest);
                false
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_blob_is_not_whole_and_a_repaired_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let digest = blobs.put(b"the artifact").unwrap();
        let mut checked = Checked::new();
        assert!(checked.whole(&blobs, &digest));
        // Damaged in place, same length (as `dwcp chaos run corrupt-artifact` does).
        let path = dir.path().join(&digest);
        let damaged: Vec<u8> = b"the artifact".iter().map(|b| b ^ 0x5a).collect();
        std::fs::write(&path, &damaged).unwrap();
        // A file system with coarse times may keep the modification time:
        // a new one makes the change visible as it would be a second later.
        let later = std::time::SystemTime::now() + Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!checked.whole(&blobs, &digest), "damage must be seen");
        // The copy fetched from a peer replaces it.
        blobs.put(b"the artifact").unwrap();
        assert!(checked.whole(&blobs, &digest));
        let absent = state::digest_of(b"never stored");
        assert!(!checked.whole(&blobs, &absent));
    }
}
