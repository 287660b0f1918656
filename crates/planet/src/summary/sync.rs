//! Anti-entropy over [`Summary`]: a compact [`Digest`] of what a replica
//! holds, and the [`Delta`] another replica computes from it.
//!
//! The digest carries, per key, the register's [`Stamp`] (a version: a
//! higher stamp always dominates) and, per counter, a 64-bit hash of its
//! state (counters have one entry per node, so a version per counter would
//! be a vector; the hash is smaller and a mismatch just sends the counter,
//! whose merge is idempotent). Plus a fingerprint of the whole summary, so
//! replicas that already agree exchange nothing but the digest.
//!
//! A delta is a summary fragment: the registers newer than the digest's
//! stamps (or missing from it) and the counters whose hash differs.
//! Applying it is a merge, so deltas too may arrive late, twice or out of
//! order. Push-pull: A sends its digest, B answers with the delta A lacks
//! and its own digest, A answers with the delta B lacks; after one exchange
//! both hold the join of the two.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::clock::Stamp;
use super::crdt::Summary;
use state::Name;

/// What a replica holds, compactly: enough for a peer to compute the
/// [`Delta`] it lacks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Fingerprint of the whole summary ([`Summary::fingerprint`]).
    pub root: u64,
    regions: BTreeMap<Name, Stamp>,
    apps: BTreeMap<super::crdt::AppKey, BTreeMap<Name, Stamp>>,
    requests: BTreeMap<Name, u64>,
    sandboxes: BTreeMap<Name, u64>,
}

/// The part of a summary a peer lacks; apply it with [`Summary::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta(Summary);

impl Delta {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys the delta carries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The fragment as a summary of its own.
    pub fn as_summary(&self) -> &Summary {
        &self.0
    }
}

impl Summary {
    /// A 64-bit fingerprint of the whole state: equal summaries have equal
    /// fingerprints on every platform (postcard bytes of ordered maps,
    /// hashed with SHA-256).
    pub fn fingerprint(&self) -> u64 {
        hash64(self)
    }

    /// This replica's digest.
    pub fn digest(&self) -> Digest {
        Digest {
            root: self.fingerprint(),
            regions: self
                .regions
                .iter()
                .map(|(k, r)| (k.clone(), r.marker))
                .collect(),
            apps: self
                .apps
                .iter()
                .map(|(app, regions)| {
                    let stamps = regions.iter().map(|(k, r)| (k.clone(), r.marker));
                    (app.clone(), stamps.collect())
                })
                .collect(),
            requests: self
                .requests
                .iter()
                .map(|(k, c)| (k.clone(), hash64(c)))
                .collect(),
            sandboxes: self
                .sandboxes
                .iter()
                .map(|(k, c)| (k.clone(), hash64(c)))
                .collect(),
        }
    }

    /// What the replica that sent `digest` lacks from this one. Empty when
    /// the two already agree, or when the peer is ahead on every key.
    pub fn delta_since(&self, digest: &Digest) -> Delta {
        let mut delta = Summary::default();
        if digest.root == self.fingerprint() {
            return Delta(delta);
        }
        for (region, reg) in &self.regions {
            if digest.regions.get(region).is_none_or(|s| *s < reg.marker) {
                delta.regions.insert(region.clone(), reg.clone());
            }
        }
        for (app, regions) in &self.apps {
            let theirs = digest.apps.get(app);
            for (region, reg) in regions {
                let stamp = theirs.and_then(|t| t.get(region));
                if stamp.is_none_or(|s| *s < reg.marker) {
                    let entry = delta.apps.entry(app.clone()).or_default();
                    entry.insert(region.clone(), reg.clone());
                }
            }
        }
        for (region, counter) in &self.requests {
            if digest.requests.get(region) != Some(&hash64(counter)) {
                delta.requests.insert(region.clone(), counter.clone());
            }
        }
        for (region, counter) in &self.sandboxes {
            if digest.sandboxes.get(region) != Some(&hash64(counter)) {
                delta.sandboxes.insert(region.clone(), counter.clone());
            }
        }
        Delta(delta)
    }

    /// Applies a delta from a peer: a merge.
    pub fn apply(&mut self, delta: &Delta) {
        self.merge(&delta.0);
    }
}

/// SHA-256 of the postcard encoding, first 8 bytes.
fn hash64<T: Serialize>(value: &T) -> u64 {
    // Encoding to a growable vector cannot fail for these types (maps,
    // integers, strings); were it to, every value would hash alike and the
    // only cost would be resending a counter.
    let bytes = postcard::to_allocvec(value).unwrap_or_default();
    let hash = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}
