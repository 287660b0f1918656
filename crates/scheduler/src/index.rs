//! Free slots of nodes, ordered per eligibility class, so that picking the
//! next node for a replica costs a few B-tree steps instead of a scan of
//! every node.
//!
//! An eligibility class is one region, one policy and one set of label
//! constraints: every want with the same three sees the same candidate
//! nodes, in the same order. A class is built the first time a want needs
//! it (one scan of its region) and keeps a `BTreeSet` of its nodes that
//! have a free slot, keyed so that iteration order *is* the policy's
//! preference. When a node's free slots change, every class it belongs to
//! is updated; a node with no free slot leaves the sets (free slots only
//! go down while placing, so it never has to come back).

use std::collections::{BTreeMap, BTreeSet};

use crate::input::{Constraints, LabelSelector, NodeView, Policy};

/// Region id, policy, affinity and anti-affinity (sorted, deduplicated).
type ClassKey<'a> = (u32, Policy, Vec<&'a LabelSelector>, Vec<&'a LabelSelector>);

/// Node index (into the name-sorted nodes) → replicas of one want there.
pub(crate) type Own = BTreeMap<u32, u32>;

struct Class {
    policy: Policy,
    /// Healthy nodes of the region whose labels the constraints admit,
    /// whether or not they have a free slot.
    eligible: u32,
    /// `(sort key, node index)` of eligible nodes with a free slot.
    set: BTreeSet<(u32, u32)>,
}

impl Class {
    /// Spread iterates from the most free slots down (ties: lowest index,
    /// i.e. first name); bin-pack from the fewest free slots up.
    fn key(&self, free: u32, node: u32) -> (u32, u32) {
        match self.policy {
            Policy::Spread => (u32::MAX - free, node),
            Policy::BinPack => (free, node),
        }
    }
}

pub(crate) struct Index<'a> {
    nodes: &'a [&'a NodeView],
    free: Vec<u32>,
    region_nodes: &'a [Vec<u32>],
    classes: Vec<Class>,
    by_key: BTreeMap<ClassKey<'a>, usize>,
    /// Node index → the classes it belongs to.
    member_of: Vec<Vec<u32>>,
    /// Scratch for the nodes picked in one pass, reused between calls.
    chosen: Vec<(u32, u32)>,
}

impl<'a> Index<'a> {
    /// `nodes` sorted by name, `free` slots of each, and the node indices
    /// of each region.
    pub(crate) fn new(
        nodes: &'a [&'a NodeView],
        free: Vec<u32>,
        region_nodes: &'a [Vec<u32>],
    ) -> Index<'a> {
        Index {
            nodes,
            member_of: vec![Vec::new(); nodes.len()],
            free,
            region_nodes,
            classes: Vec::new(),
            by_key: BTreeMap::new(),
            chosen: Vec::new(),
        }
    }

    /// The class of `region` under `constraints`, built on first use.
    pub(crate) fn class(&mut self, region: u32, constraints: &'a Constraints) -> usize {
        let sorted = |v: &'a [LabelSelector]| {
            let mut v: Vec<&LabelSelector> = v.iter().collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let key = (
            region,
            constraints.policy,
            sorted(&constraints.affinity),
            sorted(&constraints.anti_affinity),
        );
        if let Some(&id) = self.by_key.get(&key) {
            return id;
        }
        let id = self.classes.len();
        let mut class = Class {
            policy: constraints.policy,
            eligible: 0,
            set: BTreeSet::new(),
        };
        for &n in &self.region_nodes[region as usize] {
            let node = self.nodes[n as usize];
            if node.healthy && constraints.admits_labels(&node.labels) {
                class.eligible += 1;
                // Class ids fit in u32: there are at most as many classes
                // as (want, region) pairs, far fewer than 2^32.
                self.member_of[n as usize].push(id as u32);
                let free = self.free[n as usize];
                if free > 0 {
                    class.set.insert(class.key(free, n));
                }
            }
        }
        self.classes.push(class);
        self.by_key.insert(key, id);
        id
    }

    /// Healthy nodes that the class admits, full or not.
    pub(crate) fn eligible(&self, class: usize) -> u32 {
        self.classes[class].eligible
    }

    /// Places up to `need` replicas of one want in `class` by
    /// [`Policy::Spread`]; `own` holds the want's replicas per node and is
    /// updated. Returns how many were placed.
    ///
    /// Works in passes by level: a pass walks the class from the most free
    /// slots down and gives one replica to each node holding at most
    /// `level` replicas of this want, so no node gets a second replica
    /// while an eligible node with a free slot has none. A pass stops as
    /// soon as `need` is met, so placing `k` replicas on a fresh want costs
    /// `k` steps of iteration, not a walk of the class.
    pub(crate) fn spread(&mut self, class: usize, need: u32, own: &mut Own) -> u32 {
        let mut left = need;
        let mut level = 0u32;
        let mut chosen = std::mem::take(&mut self.chosen);
        while left > 0 {
            chosen.clear();
            // The lowest count above `level` seen, where the next pass
            // starts if this one finds nobody.
            let mut next: Option<u32> = None;
            for &(_, n) in &self.classes[class].set {
                let o = own.get(&n).copied().unwrap_or(0);
                if o <= level {
                    chosen.push((n, 1));
                    if chosen.len() == left as usize {
                        break;
                    }
                } else {
                    next = Some(next.map_or(o, |x| x.min(o)));
                }
            }
            if chosen.is_empty() {
                match next {
                    Some(l) => {
                        level = l;
                        continue;
                    }
                    None => break,
                }
            }
            for &(n, k) in &chosen {
                self.take(n, k);
                *own.entry(n).or_insert(0) += k;
            }
            // At most `left` were chosen, so this cannot underflow.
            left -= chosen.len() as u32;
            level += 1;
        }
        self.chosen = chosen;
        need - left
    }

    /// Places up to `need` replicas by [`Policy::BinPack`]: the node with
    /// the fewest free slots first, as many as fit there. Returns how many
    /// were placed.
    pub(crate) fn bin_pack(&mut self, class: usize, need: u32, own: &mut Own) -> u32 {
        let mut left = need;
        let mut chosen = std::mem::take(&mut self.chosen);
        chosen.clear();
        for &(free, n) in &self.classes[class].set {
            let k = free.min(left);
            chosen.push((n, k));
            left -= k;
            if left == 0 {
                break;
            }
        }
        for &(n, k) in &chosen {
            self.take(n, k);
            *own.entry(n).or_insert(0) += k;
        }
        self.chosen = chosen;
        need - left
    }

    /// Takes `k` (≤ its free slots) slots of node `n`, in every class.
    fn take(&mut self, n: u32, k: u32) {
        let old = self.free[n as usize];
        debug_assert!(k <= old, "taking {k} of {old} free slots");
        let new = old.saturating_sub(k);
        for &c in &self.member_of[n as usize] {
            let class = &mut self.classes[c as usize];
            let old_key = class.key(old, n);
            class.set.remove(&old_key);
            if new > 0 {
                let new_key = class.key(new, n);
                class.set.insert(new_key);
            }
        }
        self.free[n as usize] = new;
    }
}
