//! [`place`]: from nodes, wants and current placements to the placements
//! that should be, what changes, and what cannot be met.
//!
//! The steps, each deterministic:
//! 1. Nodes are ordered by name and wants by key; everything after refers
//!    to them by position in that order, so the caller's order never
//!    matters.
//! 2. Current placements are summed per (want, node). A placement is kept
//!    only while its want exists, its node exists and is healthy, its
//!    region is still wanted and allowed, and the node's labels still meet
//!    the want's constraints; otherwise it is removed and its replicas
//!    count as missing.
//! 3. A node holding more than it offers (its capacity shrank, or reserved
//!    slots grew) sheds replicas, wants last in key order first.
//! 4. A want holding more than it wants in a region scales down there.
//! 5. Missing replicas are placed, wants in key order, regions in name
//!    order, by the want's policy over the nodes its constraints admit.
//!    What cannot be placed becomes a [`Rejection`].
//! 6. A spread want whose replicas differ by two or more between two
//!    admitted nodes (one with a free slot) moves one at a time from the
//!    fullest to the emptiest: a node back from a failure gets its share
//!    (not in a region where some want is short of capacity).
//!
//! Kept placements otherwise stay where they are (stability): a plan over
//! its own result changes nothing.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::hash::BuildHasherDefault;

use serde::{Deserialize, Serialize};
use state::Name;

use crate::index::{Index, Own};
use crate::input::{NodeView, Placement, Policy, Want, placement_key};
use crate::rejection::{InputError, Rejection};

/// SipHash with fixed keys: lookups only (never iterated), and with no
/// random state the whole function stays free of randomness.
type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// A want's key, borrowed: tenant, app, version.
type KeyRef<'a> = (&'a Name, &'a Name, u64);

/// What the scheduler decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Every placement there should be, by want key then node name; counts
    /// are never 0.
    pub placements: Vec<Placement>,
    /// How that differs from the current placements: first removals of
    /// placements whose want or node is unknown (by want key, then node
    /// name), then per want in key order, per node in name order.
    pub changes: Vec<Change>,
    /// Wants, or regions of wants, that could not be met in full, by want
    /// key then region name.
    pub rejections: Vec<Rejection>,
}

impl Plan {
    /// Replicas added over all changes.
    pub fn added(&self) -> u64 {
        self.changes
            .iter()
            .map(|c| u64::from(c.to.saturating_sub(c.from)))
            .sum()
    }

    /// Replicas removed over all changes.
    pub fn removed(&self) -> u64 {
        self.changes
            .iter()
            .map(|c| u64::from(c.from.saturating_sub(c.to)))
            .sum()
    }
}

/// One (want, node) whose count changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub tenant: Name,
    pub app: Name,
    pub version: u64,
    pub node: Name,
    pub from: u32,
    pub to: u32,
    pub reason: Reason,
}

/// Why a placement's count changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// New replicas: a scale-up, a new want, or replicas that were lost
    /// elsewhere placed again.
    Placed,
    /// The want asks for fewer replicas in this region (or none).
    ScaledDown,
    /// The node holds more than its capacity less its reserved slots.
    OverCapacity,
    /// The node is not healthy.
    NodeUnhealthy,
    /// The node is not among the nodes given.
    NodeGone,
    /// The node held two or more replicas of a spread want than another
    /// node that could take one (it came back from a failure).
    Rebalanced,
    /// The node's labels no longer meet the want's constraints, or its
    /// region is no longer one the want is pinned to.
    NotEligible,
    /// No want has this tenant, app and version.
    NotWanted,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Placed => "placed",
            Reason::ScaledDown => "scaled down",
            Reason::OverCapacity => "node over capacity",
            Reason::NodeUnhealthy => "node unhealthy",
            Reason::NodeGone => "node gone",
            Reason::Rebalanced => "rebalanced",
            Reason::NotEligible => "node not eligible",
            Reason::NotWanted => "not wanted",
        })
    }
}

impl fmt::Display for Change {
    /// `acme/web@3 on node-2: 1 -> 0 (node unhealthy)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}@{} on {}: {} -> {} ({})",
            self.tenant, self.app, self.version, self.node, self.from, self.to, self.reason
        )
    }
}

/// Per want: where its replicas are, before and after.
struct WantState {
    /// Current replicas on known nodes, by node index (summed duplicates).
    before: Vec<(u32, u32)>,
    /// Replicas after the plan, by node index.
    after: Own,
    /// Why a node's count went down, for the first reason that applied.
    reasons: BTreeMap<u32, Reason>,
}

/// Computes the placements for `wants` on `nodes`, starting from
/// `current`. Pure and deterministic: the same nodes, wants and placements
/// in any order give the same plan.
///
/// Refuses input that names a node or a want twice.
pub fn place(
    nodes: &[NodeView],
    wants: &[Want],
    current: &[Placement],
) -> Result<Plan, InputError> {
    // 1. Order nodes and wants.
    let mut nodes: Vec<&NodeView> = nodes.iter().collect();
    nodes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = nodes.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(InputError::DuplicateNode(w[0].name.clone()));
    }
    let mut wants: Vec<&Want> = wants.iter().collect();
    wants.sort_unstable_by(|a, b| a.key_ref().cmp(&b.key_ref()));
    if let Some(w) = wants.windows(2).find(|w| w[0].key_ref() == w[1].key_ref()) {
        return Err(InputError::DuplicateWant(w[0].key()));
    }
    let mut regions: Vec<&Name> = nodes.iter().map(|n| &n.region).collect();
    regions.sort_unstable();
    regions.dedup();
    let mut region_nodes: Vec<Vec<u32>> = vec![Vec::new(); regions.len()];
    let node_region: Vec<u32> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // Every node's region is in `regions`, which was built from them.
            let r = regions.binary_search(&&n.region).unwrap_or(0);
            region_nodes[r].push(i as u32);
            r as u32
        })
        .collect();
    let region_id = |name: &Name| regions.binary_search(&name).ok().map(|r| r as u32);
    let node_at: FixedMap<&str, u32> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i as u32))
        .collect();
    let want_at: FixedMap<KeyRef, u32> = wants
        .iter()
        .enumerate()
        .map(|(i, w)| (w.key_ref(), i as u32))
        .collect();

    // 2. Sum current placements; set aside those of unknown wants or nodes.
    let mut gone: BTreeMap<(KeyRef, &Name), (u32, Reason)> = BTreeMap::new();
    let mut known: Vec<(u32, u32, u32)> = Vec::with_capacity(current.len());
    for p in current {
        let w = want_at.get(&placement_key(p));
        let n = node_at.get(p.node.as_str());
        match (w, n) {
            (Some(&w), Some(&n)) => known.push((w, n, p.count)),
            _ => {
                let reason = if w.is_none() {
                    Reason::NotWanted
                } else {
                    Reason::NodeGone
                };
                let e = gone
                    .entry((placement_key(p), &p.node))
                    .or_insert((0, reason));
                e.0 = e.0.saturating_add(p.count);
            }
        }
    }
    known.sort_unstable();
    known.dedup_by(|later, first| {
        if (later.0, later.1) == (first.0, first.1) {
            first.2 = first.2.saturating_add(later.2);
            true
        } else {
            false
        }
    });

    let mut state: Vec<WantState> = wants
        .iter()
        .map(|_| WantState {
            before: Vec::new(),
            after: Own::new(),
            reasons: BTreeMap::new(),
        })
        .collect();
    let mut kept: Vec<(u32, u32, u32)> = Vec::with_capacity(known.len());
    for &(w, n, count) in &known {
        if count == 0 {
            continue;
        }
        let (want, node) = (wants[w as usize], nodes[n as usize]);
        let st = &mut state[w as usize];
        st.before.push((n, count));
        let c = &want.constraints;
        let drop = if !node.healthy {
            Some(Reason::NodeUnhealthy)
        } else if !c.allows_region(&node.region) {
            Some(Reason::NotEligible)
        } else if want.regions.get(&node.region).copied().unwrap_or(0) == 0 {
            Some(Reason::ScaledDown)
        } else if !c.admits_labels(&node.labels) {
            Some(Reason::NotEligible)
        } else {
            None
        };
        match drop {
            Some(reason) => {
                st.reasons.insert(n, reason);
            }
            None => kept.push((w, n, count)),
        }
    }

    // 3. Shed what nodes hold past what they offer: the last wants first.
    let mut used = vec![0u64; nodes.len()];
    for &(_, n, c) in &kept {
        used[n as usize] += u64::from(c);
    }
    let mut excess: Vec<u64> = used
        .iter()
        .zip(&nodes)
        .map(|(&u, node)| u.saturating_sub(u64::from(node.offered())))
        .collect();
    if excess.iter().any(|&e| e > 0) {
        for (w, n, c) in kept.iter_mut().rev() {
            let e = &mut excess[*n as usize];
            if *e > 0 {
                // `shed` ≤ `c`, a u32.
                let shed = (*e).min(u64::from(*c)) as u32;
                *c -= shed;
                *e -= u64::from(shed);
                state[*w as usize]
                    .reasons
                    .entry(*n)
                    .or_insert(Reason::OverCapacity);
            }
        }
    }
    let mut free: Vec<u32> = nodes.iter().map(|n| n.offered()).collect();
    for &(w, n, c) in &kept {
        if c > 0 {
            state[w as usize].after.insert(n, c);
            // Shedding left every node within what it offers.
            free[n as usize] -= c;
        }
    }

    // 4. Scale down where a want holds more than it wants.
    for (w, want) in wants.iter().enumerate() {
        let st = &mut state[w];
        for (region, &wanted) in &want.regions {
            let Some(r) = region_id(region) else { continue };
            let held: u64 = st
                .after
                .iter()
                .filter(|&(&n, _)| node_region[n as usize] == r)
                .map(|(_, &c)| u64::from(c))
                .sum();
            if held > u64::from(wanted) {
                scale_down(
                    st,
                    &mut free,
                    &node_region,
                    r,
                    held - u64::from(wanted),
                    want,
                );
            }
        }
    }

    // 5. Place what is missing.
    let mut index = Index::new(&nodes, free, &region_nodes);
    let mut rejections = Vec::new();
    for (w, want) in wants.iter().enumerate() {
        let c = &want.constraints;
        for (region, &wanted) in &want.regions {
            if wanted == 0 {
                continue;
            }
            if !c.allows_region(region) {
                rejections.push(Rejection::RegionNotAllowed {
                    want: want.key(),
                    region: region.clone(),
                    pinned: c.pinned_regions.clone(),
                });
                continue;
            }
            let no_node = || Rejection::NoEligibleNode {
                want: want.key(),
                region: region.clone(),
                constraints: c.to_string(),
            };
            let Some(r) = region_id(region) else {
                rejections.push(no_node());
                continue;
            };
            let after = &mut state[w].after;
            let held: u64 = after
                .iter()
                .filter(|&(&n, _)| node_region[n as usize] == r)
                .map(|(_, &c)| u64::from(c))
                .sum();
            // Step 4 brought `held` down to at most `wanted`, a u32.
            let held = held.min(u64::from(wanted)) as u32;
            let need = wanted - held;
            if need == 0 {
                continue;
            }
            let class = index.class(r, c);
            if index.eligible(class) == 0 {
                rejections.push(no_node());
                continue;
            }
            let placed = match c.policy {
                Policy::Spread => index.spread(class, need, after),
                Policy::BinPack => index.bin_pack(class, need, after),
            };
            if placed < need {
                rejections.push(Rejection::InsufficientCapacity {
                    want: want.key(),
                    region: region.clone(),
                    wanted,
                    available: held + placed,
                });
            }
        }
    }

    // 6. Even out spread wants once what was missing is placed: a node
    // back from a failure gets its share again instead of the replicas
    // staying piled where they went.
    let mut free: Vec<u32> = nodes.iter().map(|n| n.offered()).collect();
    for st in &state {
        for (&n, &c) in &st.after {
            free[n as usize] = free[n as usize].saturating_sub(c);
        }
    }
    // A region where some want is short of capacity is left as it is: a
    // slot a move frees would go to that want in the next plan, which
    // would then differ from this one.
    let short: Vec<u32> = rejections_short(&rejections)
        .filter_map(&region_id)
        .collect();
    // Until no want moves: a slot one want's move frees may let an earlier
    // want move (each move lowers a want's sum of squared counts, so this
    // ends).
    loop {
        let mut moved = false;
        for (w, want) in wants.iter().enumerate() {
            if want.constraints.policy == Policy::Spread {
                moved |= rebalance(
                    &mut state[w],
                    &mut free,
                    want,
                    &nodes,
                    &region_nodes,
                    |name| region_id(name).filter(|r| !short.contains(r)),
                );
            }
        }
        if !moved {
            break;
        }
    }

    // 7. Write out placements and changes.
    let mut plan = Plan {
        rejections,
        ..Plan::default()
    };
    for ((key, node), (count, reason)) in gone {
        plan.changes.push(Change {
            tenant: key.0.clone(),
            app: key.1.clone(),
            version: key.2,
            node: node.clone(),
            from: count,
            to: 0,
            reason,
        });
    }
    let total: usize = state.iter().map(|s| s.after.len()).sum();
    plan.placements.reserve(total);
    for (want, st) in wants.iter().zip(&state) {
        for (&n, &count) in &st.after {
            plan.placements.push(Placement {
                tenant: want.tenant.clone(),
                app: want.app.clone(),
                version: want.version,
                node: nodes[n as usize].name.clone(),
                count,
            });
        }
        diff(want, st, &nodes, &mut plan.changes);
    }
    Ok(plan)
}

/// The regions some want could not get enough capacity in.
fn rejections_short(rejections: &[Rejection]) -> impl Iterator<Item = &Name> {
    rejections.iter().filter_map(|r| match r {
        Rejection::InsufficientCapacity { region, .. } => Some(region),
        _ => None,
    })
}

/// Moves replicas of a spread `want`, one at a time, from the admitted
/// node holding the most of them to the admitted node with a free slot
/// holding the fewest, while the two differ by two or more (ties: the
/// first name gives, the first name takes). Kept placements otherwise
/// stay where they are: once no two nodes differ by two, nothing moves,
/// so a plan over its own result changes nothing. Whether any moved.
fn rebalance(
    st: &mut WantState,
    free: &mut [u32],
    want: &Want,
    nodes: &[&NodeView],
    region_nodes: &[Vec<u32>],
    region_id: impl Fn(&Name) -> Option<u32>,
) -> bool {
    let mut moved = false;
    let c = &want.constraints;
    for region in want.regions.keys() {
        let Some(r) = region_id(region) else { continue };
        if !c.allows_region(region) {
            continue;
        }
        let admitted: Vec<u32> = region_nodes[r as usize]
            .iter()
            .copied()
            .filter(|&n| c.admits(nodes[n as usize], region))
            .collect();
        loop {
            let count = |n: u32| st.after.get(&n).copied().unwrap_or(0);
            let most = admitted
                .iter()
                .copied()
                .max_by_key(|&n| (count(n), std::cmp::Reverse(n)));
            let least = admitted
                .iter()
                .copied()
                .filter(|&n| free[n as usize] > 0)
                .min_by_key(|&n| (count(n), n));
            let (Some(most), Some(least)) = (most, least) else {
                break;
            };
            if count(most) < count(least) + 2 {
                break;
            }
            // `most` holds at least two, so the entry exists.
            if let Some(held) = st.after.get_mut(&most) {
                *held -= 1;
                if *held == 0 {
                    st.after.remove(&most);
                }
            }
            *st.after.entry(least).or_insert(0) += 1;
            free[most as usize] += 1;
            free[least as usize] -= 1;
            st.reasons.entry(most).or_insert(Reason::Rebalanced);
            moved = true;
        }
    }
    moved
}

/// Removes `excess` replicas of `want` from region `r`. Spread takes from
/// the nodes holding the most replicas of the want first (ties: the fewest
/// free slots, then the first name), keeping it spread; bin-pack empties
/// the nodes holding the fewest first (ties: the first name), keeping it
/// packed.
fn scale_down(
    st: &mut WantState,
    free: &mut [u32],
    node_region: &[u32],
    r: u32,
    excess: u64,
    want: &Want,
) {
    let held: Vec<(u32, u32)> = st
        .after
        .iter()
        .filter(|&(&n, _)| node_region[n as usize] == r)
        .map(|(&n, &c)| (n, c))
        .collect();
    let mut left = excess;
    let take = |st: &mut WantState, free: &mut [u32], n: u32, k: u32| {
        st.reasons.entry(n).or_insert(Reason::ScaledDown);
        free[n as usize] += k;
        let e = st.after.entry(n).or_insert(0);
        *e -= k;
        if *e == 0 {
            st.after.remove(&n);
        }
    };
    match want.constraints.policy {
        Policy::Spread => {
            let mut heap: BinaryHeap<(u32, std::cmp::Reverse<u32>, std::cmp::Reverse<u32>)> = held
                .iter()
                .map(|&(n, c)| (c, std::cmp::Reverse(free[n as usize]), std::cmp::Reverse(n)))
                .collect();
            while left > 0 {
                let Some((c, std::cmp::Reverse(f), std::cmp::Reverse(n))) = heap.pop() else {
                    break;
                };
                take(st, free, n, 1);
                left -= 1;
                if c > 1 {
                    heap.push((c - 1, std::cmp::Reverse(f + 1), std::cmp::Reverse(n)));
                }
            }
        }
        Policy::BinPack => {
            let mut held = held;
            held.sort_unstable_by_key(|&(n, c)| (c, n));
            for (n, c) in held {
                if left == 0 {
                    break;
                }
                // `k` ≤ `c`, a u32.
                let k = left.min(u64::from(c)) as u32;
                take(st, free, n, k);
                left -= u64::from(k);
            }
        }
    }
}

/// Appends the changes of one want, by node name (= node index).
fn diff(want: &Want, st: &WantState, nodes: &[&NodeView], out: &mut Vec<Change>) {
    let change = |n: u32, from: u32, to: u32| Change {
        tenant: want.tenant.clone(),
        app: want.app.clone(),
        version: want.version,
        node: nodes[n as usize].name.clone(),
        from,
        to,
        reason: if to > from {
            Reason::Placed
        } else {
            // Every count that went down has its reason recorded.
            st.reasons.get(&n).copied().unwrap_or(Reason::ScaledDown)
        },
    };
    let mut before = st.before.iter().copied().peekable();
    let mut after = st.after.iter().map(|(&n, &c)| (n, c)).peekable();
    loop {
        let (n, from, to) = match (before.peek().copied(), after.peek().copied()) {
            (None, None) => break,
            (Some((n, b)), None) => {
                before.next();
                (n, b, 0)
            }
            (None, Some((n, a))) => {
                after.next();
                (n, 0, a)
            }
            (Some((nb, b)), Some((na, a))) => {
                if nb < na {
                    before.next();
                    (nb, b, 0)
                } else if na < nb {
                    after.next();
                    (na, 0, a)
                } else {
                    before.next();
                    after.next();
                    (nb, b, a)
                }
            }
        };
        if from != to {
            out.push(change(n, from, to));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Constraints, LabelSelector};

    fn name(s: &str) -> Name {
        Name::new("test", s).expect("test names are valid")
    }

    fn node(n: &str, region: &str, capacity: u32) -> NodeView {
        NodeView {
            name: name(n),
            region: name(region),
            labels: BTreeMap::new(),
            capacity,
            reserved: 0,
            healthy: true,
        }
    }

    fn labelled(mut n: NodeView, labels: &[(&str, &str)]) -> NodeView {
        n.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        n
    }

    fn want(app: &str, regions: &[(&str, u32)], policy: Policy) -> Want {
        Want {
            tenant: name("acme"),
            app: name(app),
            version: 1,
            regions: regions.iter().map(|&(r, n)| (name(r), n)).collect(),
            constraints: Constraints {
                policy,
                ..Constraints::default()
            },
        }
    }

    fn placement(app: &str, node: &str, count: u32) -> Placement {
        Placement {
            tenant: name("acme"),
            app: name(app),
            version: 1,
            node: name(node),
            count,
        }
    }

    /// `(app, node, count)` of every placement.
    fn layout(plan: &Plan) -> Vec<(String, String, u32)> {
        plan.placements
            .iter()
            .map(|p| (p.app.to_string(), p.node.to_string(), p.count))
            .collect()
    }

    fn l(v: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
        v.iter()
            .map(|&(a, n, c)| (a.to_string(), n.to_string(), c))
            .collect()
    }

    fn ok(nodes: &[NodeView], wants: &[Want], current: &[Placement]) -> Plan {
        place(nodes, wants, current).expect("valid input")
    }

    #[test]
    fn spread_puts_one_replica_per_node_before_a_second() {
        // `a` has far more room, yet spread still uses every node once.
        let nodes = [
            node("a", "eu", 100),
            node("b", "eu", 10),
            node("c", "eu", 10),
        ];
        let plan = ok(&nodes, &[want("web", &[("eu", 3)], Policy::Spread)], &[]);
        assert_eq!(
            layout(&plan),
            l(&[("web", "a", 1), ("web", "b", 1), ("web", "c", 1)])
        );
        let plan = ok(&nodes, &[want("web", &[("eu", 7)], Policy::Spread)], &[]);
        assert_eq!(
            layout(&plan),
            l(&[("web", "a", 3), ("web", "b", 2), ("web", "c", 2)])
        );
        assert!(plan.rejections.is_empty());
        assert_eq!(plan.added(), 7);
    }

    #[test]
    fn spread_prefers_the_least_loaded_node_ties_by_name() {
        let mut b = node("b", "eu", 10);
        b.reserved = 5;
        let nodes = [node("c", "eu", 10), b, node("a", "eu", 10)];
        // Free: a 10, b 5, c 10: the first goes to a (tie with c, by name).
        let plan = ok(&nodes, &[want("web", &[("eu", 1)], Policy::Spread)], &[]);
        assert_eq!(layout(&plan), l(&[("web", "a", 1)]));
        // Other wants' replicas count as load too.
        let plan = ok(
            &nodes,
            &[
                want("api", &[("eu", 1)], Policy::Spread),
                want("web", &[("eu", 2)], Policy::Spread),
            ],
            &[],
        );
        assert_eq!(
            layout(&plan),
            l(&[("api", "a", 1), ("web", "a", 1), ("web", "c", 1)])
        );
    }

    #[test]
    fn bin_pack_fills_the_fullest_node_that_fits() {
        let mut b = node("b", "eu", 10);
        b.reserved = 8;
        let mut c = node("c", "eu", 10);
        c.reserved = 8;
        let nodes = [node("a", "eu", 10), b, c, node("d", "eu", 10)];
        // b and c have 2 free (tie: b first), then a and d have 10 (a first).
        let plan = ok(
            &nodes,
            &[want("batch", &[("eu", 15)], Policy::BinPack)],
            &[],
        );
        assert_eq!(
            layout(&plan),
            l(&[
                ("batch", "a", 10),
                ("batch", "b", 2),
                ("batch", "c", 2),
                ("batch", "d", 1)
            ])
        );
    }

    #[test]
    fn affinity_and_anti_affinity_pick_nodes_by_label() {
        let nodes = [
            labelled(node("a", "eu", 10), &[("disk", "ssd"), ("zone", "1")]),
            labelled(node("b", "eu", 10), &[("disk", "hdd"), ("zone", "1")]),
            labelled(node("c", "eu", 10), &[("disk", "ssd"), ("zone", "2")]),
        ];
        let mut ssd = want("db", &[("eu", 4)], Policy::Spread);
        ssd.constraints.affinity = vec![LabelSelector::new("disk", "ssd")];
        let mut not_zone1 = want("web", &[("eu", 2)], Policy::Spread);
        not_zone1.constraints.anti_affinity = vec![LabelSelector::new("zone", "1")];
        let plan = ok(&nodes, &[ssd, not_zone1], &[]);
        assert_eq!(
            layout(&plan),
            l(&[("db", "a", 2), ("db", "c", 2), ("web", "c", 2)])
        );
    }

    #[test]
    fn region_pinning_rejects_other_regions_and_removes_their_replicas() {
        let nodes = [node("a", "eu", 10), node("b", "us", 10)];
        let mut w = want("web", &[("eu", 1), ("us", 1)], Policy::Spread);
        w.constraints.pinned_regions = vec![name("eu")];
        let plan = ok(&nodes, &[w], &[placement("web", "b", 1)]);
        assert_eq!(layout(&plan), l(&[("web", "a", 1)]));
        assert!(matches!(
            &plan.rejections[..],
            [Rejection::RegionNotAllowed { region, pinned, .. }]
                if region.as_str() == "us" && pinned == &[name("eu")]
        ));
        let removed = plan.changes.iter().find(|c| c.node.as_str() == "b");
        assert_eq!(
            removed.map(|c| (c.from, c.to, c.reason)),
            Some((1, 0, Reason::NotEligible))
        );
    }

    #[test]
    fn no_eligible_node_is_rejected_with_region_and_constraints() {
        let nodes = [labelled(node("a", "eu", 10), &[("disk", "hdd")])];
        let mut w = want("db", &[("eu", 1), ("ap", 2)], Policy::Spread);
        w.constraints.affinity = vec![LabelSelector::new("disk", "ssd")];
        let plan = ok(&nodes, &[w], &[]);
        assert!(plan.placements.is_empty());
        let msgs: Vec<String> = plan.rejections.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "acme/db@1: no healthy node in region `ap` has affinity [disk=ssd]",
                "acme/db@1: no healthy node in region `eu` has affinity [disk=ssd]",
            ]
        );
    }

    #[test]
    fn short_capacity_places_what_fits_and_says_how_much_is_missing() {
        let nodes = [node("a", "eu", 2), node("b", "eu", 4)];
        for policy in [Policy::Spread, Policy::BinPack] {
            let plan = ok(&nodes, &[want("web", &[("eu", 10)], policy)], &[]);
            assert_eq!(plan.added(), 6, "{policy:?}");
            assert_eq!(
                plan.rejections,
                [Rejection::InsufficientCapacity {
                    want: want("web", &[], policy).key(),
                    region: name("eu"),
                    wanted: 10,
                    available: 6
                }]
            );
        }
    }

    #[test]
    fn wants_earlier_in_key_order_get_scarce_capacity_first() {
        let nodes = [node("a", "eu", 3)];
        let wants = [
            want("web", &[("eu", 2)], Policy::Spread),
            want("api", &[("eu", 2)], Policy::Spread),
        ];
        let plan = ok(&nodes, &wants, &[]);
        assert_eq!(layout(&plan), l(&[("api", "a", 2), ("web", "a", 1)]));
        assert!(matches!(
            &plan.rejections[..],
            [Rejection::InsufficientCapacity { want, available: 1, .. }] if want.app.as_str() == "web"
        ));
    }

    #[test]
    fn same_input_in_any_order_gives_the_same_plan() {
        let mut nodes: Vec<NodeView> = (0..20)
            .map(|i| {
                labelled(
                    node(
                        &format!("n{i:02}"),
                        if i % 2 == 0 { "eu" } else { "us" },
                        3 + i % 4,
                    ),
                    &[("disk", if i % 3 == 0 { "ssd" } else { "hdd" })],
                )
            })
            .collect();
        let mut wants: Vec<Want> = (0..8)
            .map(|i| {
                let mut w = want(
                    &format!("app{i}"),
                    &[("eu", 3 + i), ("us", 2 * i)],
                    if i % 2 == 0 {
                        Policy::Spread
                    } else {
                        Policy::BinPack
                    },
                );
                if i % 3 == 0 {
                    w.constraints.affinity = vec![LabelSelector::new("disk", "ssd")];
                }
                w
            })
            .collect();
        let mut current = vec![
            placement("app1", "n03", 2),
            placement("app2", "n04", 1),
            placement("gone", "n05", 1),
            placement("app2", "n04", 1),
        ];
        let first = ok(&nodes, &wants, &current);
        assert_eq!(first, ok(&nodes, &wants, &current));
        nodes.reverse();
        wants.reverse();
        current.reverse();
        nodes.swap(3, 11);
        assert_eq!(first, ok(&nodes, &wants, &current));
    }

    #[test]
    fn an_unhealthy_node_loses_its_replicas_to_the_others() {
        let mut nodes = vec![node("a", "eu", 4), node("b", "eu", 4), node("c", "eu", 4)];
        let wants = [
            want("web", &[("eu", 3)], Policy::Spread),
            want("api", &[("eu", 2)], Policy::Spread),
        ];
        let first = ok(&nodes, &wants, &[]);
        assert_eq!(
            layout(&first),
            l(&[
                ("api", "a", 1),
                ("api", "b", 1),
                ("web", "a", 1),
                ("web", "b", 1),
                ("web", "c", 1)
            ])
        );
        nodes[0].healthy = false;
        let second = ok(&nodes, &wants, &first.placements);
        // Replicas on b and c stay; a's are placed again: api on c (the
        // node without one), then web on b (b and c both hold one web and
        // have 2 free slots; b by name).
        assert_eq!(
            layout(&second),
            l(&[
                ("api", "b", 1),
                ("api", "c", 1),
                ("web", "b", 2),
                ("web", "c", 1)
            ])
        );
        let lost: Vec<_> = second
            .changes
            .iter()
            .filter(|c| c.reason == Reason::NodeUnhealthy)
            .map(|c| (c.app.to_string(), c.node.to_string(), c.from, c.to))
            .collect();
        assert_eq!(
            lost,
            [
                ("api".to_string(), "a".to_string(), 1, 0),
                ("web".to_string(), "a".to_string(), 1, 0)
            ]
        );
        assert_eq!((second.added(), second.removed()), (2, 2));
        assert!(second.rejections.is_empty());
    }

    #[test]
    fn a_plan_over_its_own_result_changes_nothing() {
        let nodes = [node("a", "eu", 5), node("b", "eu", 5), node("c", "us", 5)];
        let wants = [
            want("web", &[("eu", 7), ("us", 2)], Policy::Spread),
            want("api", &[("eu", 4), ("us", 9)], Policy::BinPack),
        ];
        let first = ok(&nodes, &wants, &[]);
        let again = ok(&nodes, &wants, &first.placements);
        assert_eq!(again.placements, first.placements);
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.rejections, first.rejections);
    }

    #[test]
    fn scale_up_keeps_existing_replicas_where_they_are() {
        let nodes = [
            node("a", "eu", 10),
            node("b", "eu", 10),
            node("c", "eu", 10),
        ];
        let current = [placement("web", "c", 2)];
        let plan = ok(
            &nodes,
            &[want("web", &[("eu", 4)], Policy::Spread)],
            &current,
        );
        assert_eq!(
            layout(&plan),
            l(&[("web", "a", 1), ("web", "b", 1), ("web", "c", 2)])
        );
        assert!(plan.changes.iter().all(|c| c.reason == Reason::Placed));
    }

    #[test]
    fn spread_scales_down_from_the_nodes_holding_most() {
        let nodes = [
            node("a", "eu", 10),
            node("b", "eu", 10),
            node("c", "eu", 10),
        ];
        let current = [
            placement("web", "a", 3),
            placement("web", "b", 1),
            placement("web", "c", 2),
        ];
        let plan = ok(
            &nodes,
            &[want("web", &[("eu", 3)], Policy::Spread)],
            &current,
        );
        assert_eq!(
            layout(&plan),
            l(&[("web", "a", 1), ("web", "b", 1), ("web", "c", 1)])
        );
        assert!(plan.changes.iter().all(|c| c.reason == Reason::ScaledDown));
    }

    #[test]
    fn bin_pack_scales_down_by_emptying_the_smallest_holdings() {
        let nodes = [
            node("a", "eu", 10),
            node("b", "eu", 10),
            node("c", "eu", 10),
        ];
        let current = [
            placement("job", "a", 5),
            placement("job", "b", 1),
            placement("job", "c", 2),
        ];
        let plan = ok(
            &nodes,
            &[want("job", &[("eu", 5)], Policy::BinPack)],
            &current,
        );
        assert_eq!(layout(&plan), l(&[("job", "a", 5)]));
    }

    #[test]
    fn a_node_over_capacity_sheds_the_last_wants_first() {
        let nodes = [node("a", "eu", 3), node("b", "eu", 10)];
        let wants = [
            want("api", &[("eu", 2)], Policy::BinPack),
            want("web", &[("eu", 2)], Policy::BinPack),
        ];
        // `a` shrank to 3 slots while holding 4.
        let current = [placement("api", "a", 2), placement("web", "a", 2)];
        let plan = ok(&nodes, &wants, &current);
        assert_eq!(
            layout(&plan),
            l(&[("api", "a", 2), ("web", "a", 1), ("web", "b", 1)])
        );
        let shed = plan
            .changes
            .iter()
            .find(|c| c.reason == Reason::OverCapacity);
        assert_eq!(
            shed.map(|c| (c.app.as_str(), c.from, c.to)),
            Some(("web", 2, 1))
        );
    }

    #[test]
    fn unknown_wants_and_nodes_are_removed() {
        let nodes = [node("a", "eu", 10)];
        let current = [
            placement("old", "a", 2),
            placement("web", "zz", 3),
            placement("web", "zz", 1),
        ];
        let plan = ok(
            &nodes,
            &[want("web", &[("eu", 4)], Policy::Spread)],
            &current,
        );
        let got: Vec<_> = plan
            .changes
            .iter()
            .map(|c| (c.app.as_str(), c.node.as_str(), c.from, c.to, c.reason))
            .collect();
        assert_eq!(
            got,
            [
                ("old", "a", 2, 0, Reason::NotWanted),
                ("web", "zz", 4, 0, Reason::NodeGone),
                ("web", "a", 0, 4, Reason::Placed),
            ]
        );
    }

    #[test]
    fn labels_that_change_move_replicas() {
        let nodes = [
            labelled(node("a", "eu", 10), &[("disk", "hdd")]),
            labelled(node("b", "eu", 10), &[("disk", "ssd")]),
        ];
        let mut w = want("db", &[("eu", 2)], Policy::Spread);
        w.constraints.affinity = vec![LabelSelector::new("disk", "ssd")];
        let plan = ok(&nodes, &[w], &[placement("db", "a", 2)]);
        assert_eq!(layout(&plan), l(&[("db", "b", 2)]));
        assert_eq!(plan.changes[0].reason, Reason::NotEligible);
    }

    #[test]
    fn duplicates_are_refused() {
        let nodes = [node("a", "eu", 1), node("a", "us", 1)];
        assert_eq!(
            place(&nodes, &[], &[]),
            Err(InputError::DuplicateNode(name("a")))
        );
        let w = want("web", &[("eu", 1)], Policy::Spread);
        assert_eq!(
            place(&nodes[..1], &[w.clone(), w.clone()], &[]),
            Err(InputError::DuplicateWant(w.key()))
        );
    }

    #[test]
    fn a_node_back_from_a_failure_gets_its_share_of_a_spread_want() {
        // Three kills in turn left all three replicas on one node (the
        // chaos suite saw this); with every node healthy again they spread.
        let mut nodes = [node("a", "eu", 4), node("b", "eu", 4), node("c", "eu", 4)];
        let wants = [want("web", &[("eu", 3)], Policy::Spread)];
        let piled = [placement("web", "b", 3)];
        let plan = ok(&nodes, &wants, &piled);
        assert_eq!(
            layout(&plan),
            l(&[("web", "a", 1), ("web", "b", 1), ("web", "c", 1)])
        );
        assert!(
            plan.changes
                .iter()
                .any(|c| c.node.as_str() == "b" && c.reason == Reason::Rebalanced),
            "{:?}",
            plan.changes
        );
        assert!(plan.rejections.is_empty());
        // Stable: nothing moves again.
        assert!(ok(&nodes, &wants, &plan.placements).changes.is_empty());
        // A node with no free slot (cordoned: all reserved) gets none, and
        // one replica more or less is not worth a move.
        nodes[0].reserved = 4;
        let plan = ok(&nodes, &wants, &piled);
        assert_eq!(layout(&plan), l(&[("web", "b", 2), ("web", "c", 1)]));
        nodes[0].reserved = 0;
        let two = [want("web", &[("eu", 2)], Policy::Spread)];
        let plan = ok(
            &nodes,
            &two,
            &[placement("web", "b", 1), placement("web", "c", 1)],
        );
        assert!(plan.changes.is_empty());
        // Bin-pack wants stay packed.
        let packed = [want("web", &[("eu", 3)], Policy::BinPack)];
        assert!(ok(&nodes, &packed, &piled).changes.is_empty());
    }

    #[test]
    fn a_change_says_what_moved_and_why() {
        let change = Change {
            tenant: name("acme"),
            app: name("web"),
            version: 3,
            node: name("node-2"),
            from: 1,
            to: 0,
            reason: Reason::NodeUnhealthy,
        };
        assert_eq!(
            change.to_string(),
            "acme/web@3 on node-2: 1 -> 0 (node unhealthy)"
        );
    }
}
