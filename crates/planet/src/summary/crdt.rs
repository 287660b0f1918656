//! [`Summary`]: the cross-region state as a join-semilattice.
//!
//! Four parts, each a state-based CRDT from the `crdts` crate, keyed in
//! ordered maps so every replica serialises (and fingerprints) the same
//! state to the same bytes:
//!
//! | part | CRDT | merge |
//! | --- | --- | --- |
//! | per region: capacity, health, load | `LWWReg<RegionStatus, Stamp>` | higher [`Stamp`] wins |
//! | per app per region: wanted, ready, serving | `LWWReg<AppStatus, Stamp>` | higher [`Stamp`] wins |
//! | requests served, per region | `GCounter<NodeId>` | per node, the larger count |
//! | sandboxes running, per region | `PNCounter<NodeId>` | per node and direction, the larger count |
//!
//! A key missing on one side is taken from the other, so the maps merge as
//! unions. Nothing is ever removed: a region that is retired reports
//! [`Health::Down`](super::Health::Down); deleting regions and apps is the
//! global tier's job (Raft), not the summaries'.

use std::collections::BTreeMap;

use crdts::{CmRDT, CvRDT, GCounter, LWWReg, PNCounter};
use serde::{Deserialize, Serialize};

use super::clock::{NodeId, Stamp};
use super::status::{AppStatus, RegionStatus};
use state::Name;

/// A last-writer-wins register stamped by a hybrid logical clock.
pub type Lww<V> = LWWReg<V, Stamp>;

/// An app, by tenant and name (app names are unique within a tenant);
/// written `tenant/app`, so that it is a map key in JSON too.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppKey {
    pub tenant: Name,
    pub app: Name,
}

impl std::fmt::Display for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.app)
    }
}

impl Serialize for AppKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AppKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AppKey, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let (tenant, app) = text
            .split_once('/')
            .ok_or_else(|| D::Error::custom(format!("app `{text}` is not tenant/app")))?;
        Ok(AppKey {
            tenant: Name::new("tenant", tenant).map_err(D::Error::custom)?,
            app: Name::new("app", app).map_err(D::Error::custom)?,
        })
    }
}

/// The cross-region summary one node holds. Merging is commutative,
/// associative and idempotent, so replicas that have seen the same writes,
/// in any order and any number of times, hold equal summaries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub(super) regions: BTreeMap<Name, Lww<RegionStatus>>,
    /// app → region → status.
    pub(super) apps: BTreeMap<AppKey, BTreeMap<Name, Lww<AppStatus>>>,
    pub(super) requests: BTreeMap<Name, GCounter<NodeId>>,
    pub(super) sandboxes: BTreeMap<Name, PNCounter<NodeId>>,
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Records `region`'s own report, written at `stamp`. Loses to (and is
    /// ignored under) a report with a higher stamp.
    pub fn set_region(&mut self, region: Name, status: RegionStatus, stamp: Stamp) {
        merge_reg(
            &mut self.regions,
            region,
            Lww {
                val: status,
                marker: stamp,
            },
        );
    }

    /// Records `app`'s status in `region`, written at `stamp`.
    pub fn set_app(&mut self, app: AppKey, region: Name, status: AppStatus, stamp: Stamp) {
        merge_reg(
            self.apps.entry(app).or_default(),
            region,
            Lww {
                val: status,
                marker: stamp,
            },
        );
    }

    /// Counts `n` more requests served in `region` by `node`. Only `node`
    /// itself may count under its own id.
    pub fn add_requests(&mut self, region: Name, node: NodeId, n: u64) {
        let counter = self.requests.entry(region).or_default();
        let dot = counter.inc_many(node, n);
        counter.apply(dot);
    }

    /// Counts sandboxes started (`delta > 0`) or stopped (`delta < 0`) in
    /// `region` by `node`. Only `node` itself may count under its own id.
    pub fn add_sandboxes(&mut self, region: Name, node: NodeId, delta: i64) {
        let counter = self.sandboxes.entry(region).or_default();
        let op = if delta >= 0 {
            counter.inc_many(node, delta.unsigned_abs())
        } else {
            counter.dec_many(node, delta.unsigned_abs())
        };
        counter.apply(op);
    }

    /// Merges `other` into this summary (the CRDT join).
    pub fn merge(&mut self, other: &Summary) {
        for (region, reg) in &other.regions {
            merge_reg(&mut self.regions, region.clone(), reg.clone());
        }
        for (app, regions) in &other.apps {
            let mine = self.apps.entry(app.clone()).or_default();
            for (region, reg) in regions {
                merge_reg(mine, region.clone(), reg.clone());
            }
        }
        for (region, counter) in &other.requests {
            merge_counter(&mut self.requests, region, counter);
        }
        for (region, counter) in &other.sandboxes {
            merge_counter(&mut self.sandboxes, region, counter);
        }
    }

    /// `region`'s latest report and its stamp.
    pub fn region(&self, region: &Name) -> Option<(&RegionStatus, Stamp)> {
        self.regions.get(region).map(|r| (&r.val, r.marker))
    }

    /// Every region's latest report, by name.
    pub fn regions(&self) -> impl Iterator<Item = (&Name, &RegionStatus)> {
        self.regions.iter().map(|(name, r)| (name, &r.val))
    }

    /// `app`'s latest status in `region`.
    pub fn app(&self, app: &AppKey, region: &Name) -> Option<&AppStatus> {
        self.apps.get(app)?.get(region).map(|r| &r.val)
    }

    /// Every app reported, with its latest status per region.
    pub fn apps(
        &self,
    ) -> impl Iterator<Item = (&AppKey, impl Iterator<Item = (&Name, &AppStatus)>)> {
        self.apps
            .iter()
            .map(|(key, regions)| (key, regions.iter().map(|(name, r)| (name, &r.val))))
    }

    /// `app`'s latest status in every region that reported it.
    pub fn app_regions(&self, app: &AppKey) -> impl Iterator<Item = (&Name, &AppStatus)> {
        self.apps
            .get(app)
            .into_iter()
            .flat_map(|regions| regions.iter().map(|(name, r)| (name, &r.val)))
    }

    /// Requests served in `region`, summed over its nodes (saturating).
    pub fn requests(&self, region: &Name) -> u64 {
        self.requests
            .get(region)
            .map(|c| u64::try_from(&c.read()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Sandboxes running in `region`: started minus stopped (saturating).
    pub fn sandboxes(&self, region: &Name) -> i64 {
        self.sandboxes
            .get(region)
            .map(|c| {
                i128::try_from(&c.read())
                    .map(|n| n.clamp(i64::MIN.into(), i64::MAX.into()) as i64)
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// The highest stamp of any register: what a node's clock observes
    /// after merging, so that its next write wins over everything it saw.
    pub fn max_stamp(&self) -> Option<Stamp> {
        let regions = self.regions.values().map(|r| r.marker);
        let apps = self
            .apps
            .values()
            .flat_map(|m| m.values().map(|r| r.marker));
        regions.chain(apps).max()
    }

    /// Whether the summary holds nothing.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
            && self.apps.values().all(BTreeMap::is_empty)
            && self.requests.is_empty()
            && self.sandboxes.is_empty()
    }

    /// How many keys (registers and counters) the summary holds.
    pub fn len(&self) -> usize {
        self.regions.len()
            + self.apps.values().map(BTreeMap::len).sum::<usize>()
            + self.requests.len()
            + self.sandboxes.len()
    }
}

/// The LWW join for one key; a key missing here is taken from `reg`.
fn merge_reg<V: PartialEq>(map: &mut BTreeMap<Name, Lww<V>>, key: Name, reg: Lww<V>) {
    match map.get_mut(&key) {
        // Stamps are unique per write (the HLC never repeats one and the
        // node id is part of it), so equal markers carry equal values and
        // `LWWReg::merge` keeping the present one is the join.
        Some(mine) => mine.merge(reg),
        None => {
            map.insert(key, reg);
        }
    }
}

fn merge_counter<C: CvRDT + Clone + Default>(map: &mut BTreeMap<Name, C>, key: &Name, counter: &C) {
    map.entry(key.clone()).or_default().merge(counter.clone());
}
