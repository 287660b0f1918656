//! Placing the global tier's voters.
//!
//! A write to the global tier commits when the leader has it and a majority
//! `m = V/2 + 1` of the `V` voters have acknowledged it; with the leader
//! counting itself, the commit cannot be faster than the RTT from the leader
//! to its `(m−1)`-th nearest other voter — the *quorum floor*. The
//! placement minimises, in this order:
//!
//! 1. the quorum floor (over every leader region and voter set, voters in
//!    distinct regions);
//! 2. − the number of distinct continents among the voters, then
//! 3. − the number of distinct metros (failure independence: the voters
//!    outside the quorum spread out);
//! 4. the sum of RTTs from the leader to the other voters (so a quorum that
//!    must use a farther voter is as fast as it can be).
//!
//! **Algorithm.** For each candidate leader `L` (N of them) the best floor
//! is the RTT to the `(m−1)`-th nearest other region, `f(L)`: no `m−1`
//! other regions are all nearer. The quorum is `m−1` regions within `f(L)`;
//! when several regions tie at `f(L)`, every choice among them is tried
//! (capped at [`MAX_TIED_QUORUMS`], beyond which the nearest by index is
//! taken). The other `V−m` voters are then chosen greedily: first the
//! nearest region of a continent not yet among the voters, while there is
//! one; then the nearest region of a metro not yet among them; then the
//! nearest region left. Continents partition metros and every pick adds at
//! most one of each, so this greedy maximises objectives 2 and 3 and, by an
//! exchange argument (each new continent's, then each new metro's, cheapest
//! region), minimises 4 among such sets. The best leader wins. Cost:
//! O(N² log N) for N regions without ties — 120 regions is a few hundred
//! thousand steps. The tests compare it with brute force over every leader
//! and voter set on random instances of up to 9 regions.

use serde::Serialize;

use state::Name;

use super::rtt::{RttMatrix, RttModel};
use super::tree::Topology;

/// The most quorum choices tried for one leader when RTTs tie.
pub const MAX_TIED_QUORUMS: usize = 4096;

/// Where a region is, for spreading voters: ids of its metro and continent
/// (any ids; equal ids mean the same place).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Site {
    /// The region's metro.
    pub metro: usize,
    /// The region's continent.
    pub continent: usize,
}

/// Why voters cannot be placed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlacementError {
    /// Zero voters, or more than regions.
    #[error(
        "voters: {voters} over {regions} regions; allowed 1 to {regions} (one voter per region)"
    )]
    Voters {
        /// Voters asked for.
        voters: usize,
        /// Regions available.
        regions: usize,
    },
    /// Sites and matrix disagree on the number of regions.
    #[error("sites: {sites} sites for a matrix of {matrix} regions")]
    Size {
        /// Sites given.
        sites: usize,
        /// Regions in the matrix.
        matrix: usize,
    },
}

/// A placement of the global tier.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    /// The leader's region.
    pub leader: usize,
    /// Every voter's region, the leader's included, ascending.
    pub voters: Vec<usize>,
    /// The `m−1` other voters nearest the leader, nearest first.
    pub quorum: Vec<usize>,
    /// RTT from the leader to the farthest of `quorum` (0 with one voter).
    pub quorum_ms: f64,
    /// Distinct continents among the voters.
    pub continents: usize,
    /// Distinct metros among the voters.
    pub metros: usize,
    /// Sum of RTTs from the leader to the other voters.
    pub sum_ms: f64,
}

impl Placement {
    /// The objective, smaller is better (see the module docs).
    fn key(&self) -> (f64, isize, isize, f64) {
        (
            self.quorum_ms,
            -(self.continents as isize),
            -(self.metros as isize),
            self.sum_ms,
        )
    }

    /// Whether `self` is strictly better than `other` by the objective.
    pub fn better_than(&self, other: &Placement) -> bool {
        let (a, b) = (self.key(), other.key());
        a.0.total_cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.total_cmp(&b.3))
            .is_lt()
    }

    /// Scores a given leader and voter set on a matrix (voters must be
    /// distinct and include `leader`).
    pub fn score(rtt: &RttMatrix, sites: &[Site], leader: usize, voters: &[usize]) -> Placement {
        let majority = voters.len() / 2 + 1;
        let mut others: Vec<usize> = voters.iter().copied().filter(|&v| v != leader).collect();
        others.sort_by(|&x, &y| {
            rtt.get(leader, x)
                .total_cmp(&rtt.get(leader, y))
                .then(x.cmp(&y))
        });
        let quorum: Vec<usize> = others[..majority - 1].to_vec();
        let quorum_ms = quorum.last().map_or(0.0, |&q| rtt.get(leader, q));
        let mut sorted = voters.to_vec();
        sorted.sort_unstable();
        let count = |f: fn(&Site) -> usize| {
            let mut ids: Vec<usize> = voters.iter().map(|&v| f(&sites[v])).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        Placement {
            leader,
            voters: sorted,
            quorum,
            quorum_ms,
            continents: count(|s| s.continent),
            metros: count(|s| s.metro),
            sum_ms: others.iter().map(|&o| rtt.get(leader, o)).sum(),
        }
    }
}

/// Places `voters` voters over the regions of `rtt` (see the module docs).
pub fn place_voters(
    rtt: &RttMatrix,
    sites: &[Site],
    voters: usize,
) -> Result<Placement, PlacementError> {
    let n = rtt.len();
    if sites.len() != n {
        return Err(PlacementError::Size {
            sites: sites.len(),
            matrix: n,
        });
    }
    if voters == 0 || voters > n {
        return Err(PlacementError::Voters { voters, regions: n });
    }
    let need = voters / 2; // m − 1 other voters in the quorum
    let mut best: Option<Placement> = None;
    for leader in 0..n {
        let mut others: Vec<usize> = (0..n).filter(|&r| r != leader).collect();
        others.sort_by(|&x, &y| {
            rtt.get(leader, x)
                .total_cmp(&rtt.get(leader, y))
                .then(x.cmp(&y))
        });
        let within = match need {
            0 => 0,
            _ => {
                let f = rtt.get(leader, others[need - 1]);
                others
                    .iter()
                    .take_while(|&&o| rtt.get(leader, o) <= f)
                    .count()
            }
        };
        let mut try_quorum = |quorum: &[usize]| {
            let chosen = complete(rtt, sites, leader, quorum, voters);
            let p = Placement::score(rtt, sites, leader, &chosen);
            if best.as_ref().is_none_or(|b| p.better_than(b)) {
                best = Some(p);
            }
        };
        if binomial_at_most(within, need, MAX_TIED_QUORUMS) {
            for_each_combination(&others[..within], need, &mut try_quorum);
        } else {
            try_quorum(&others[..need]);
        }
    }
    // n >= voters >= 1, so the loop ran and set `best`.
    best.ok_or(PlacementError::Voters { voters, regions: n })
}

/// The leader and quorum plus `voters − 1 − quorum.len()` more, chosen
/// greedily: new continents, then new metros, then nearest.
fn complete(
    rtt: &RttMatrix,
    sites: &[Site],
    leader: usize,
    quorum: &[usize],
    voters: usize,
) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(voters);
    chosen.push(leader);
    chosen.extend_from_slice(quorum);
    let mut rest: Vec<usize> = (0..rtt.len()).filter(|r| !chosen.contains(r)).collect();
    rest.sort_by(|&x, &y| {
        rtt.get(leader, x)
            .total_cmp(&rtt.get(leader, y))
            .then(x.cmp(&y))
    });
    while chosen.len() < voters {
        let has =
            |f: fn(&Site) -> usize, r: usize| chosen.iter().any(|&c| f(&sites[c]) == f(&sites[r]));
        let pick = rest
            .iter()
            .position(|&r| !has(|s| s.continent, r))
            .or_else(|| rest.iter().position(|&r| !has(|s| s.metro, r)))
            // Else the nearest left; `rest` is not empty while fewer than
            // `voters` <= n regions are chosen.
            .unwrap_or(0);
        chosen.push(rest.remove(pick));
    }
    chosen
}

/// Whether C(n, k) <= limit, without overflow.
fn binomial_at_most(n: usize, k: usize, limit: usize) -> bool {
    let k = k.min(n - k.min(n));
    let mut c: u128 = 1;
    for i in 0..k {
        c = c * (n - i) as u128 / (i + 1) as u128;
        if c > limit as u128 {
            return false;
        }
    }
    true
}

/// Calls `f` with every `k`-subset of `items`, in lexicographic order.
fn for_each_combination(items: &[usize], k: usize, f: &mut impl FnMut(&[usize])) {
    let n = items.len();
    let mut idx: Vec<usize> = (0..k).collect();
    let mut buf = vec![0; k];
    loop {
        for (b, &i) in buf.iter_mut().zip(&idx) {
            *b = items[i];
        }
        f(&buf);
        let Some(i) = (0..k).rev().find(|&i| idx[i] != i + n - k) else {
            return;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// The sites of a topology's regions (metros and continents by name).
pub fn sites(topology: &Topology) -> Vec<Site> {
    let metros = topology.distinct(|r| &r.metro);
    let continents = topology.distinct(|r| &r.continent);
    // Every region's metro and continent are among the distinct ones, so the
    // fallback index is never used.
    topology
        .regions
        .iter()
        .map(|r| Site {
            metro: metros.iter().position(|m| **m == r.metro).unwrap_or(0),
            continent: continents
                .iter()
                .position(|c| **c == r.continent)
                .unwrap_or(0),
        })
        .collect()
}

/// The global tier of a topology: its placement by the model and the
/// quorum round trip it implies, the `global-floor` a simulator compares
/// its global commits with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GlobalFloor {
    /// The placement, optimised on the model's base RTTs.
    pub placement: Placement,
    /// Its quorum RTT under the model (no jitter), in ms.
    pub model_ms: f64,
    /// Its quorum RTT under the physical floor (light in fibre), in ms.
    pub physical_ms: f64,
    /// The lowest quorum floor of any placement under physics alone, in ms.
    pub best_physical_ms: f64,
}

impl GlobalFloor {
    /// Places the topology's `voters` on `model` and reports the floors.
    pub fn of(topology: &Topology, model: &RttModel) -> Result<GlobalFloor, PlacementError> {
        let sites = sites(topology);
        let placement = place_voters(model.base_matrix(), &sites, topology.voters)?;
        let physical = Placement::score(
            model.floor_matrix(),
            &sites,
            placement.leader,
            &placement.voters,
        );
        let best_physical = place_voters(model.floor_matrix(), &sites, topology.voters)?;
        Ok(GlobalFloor {
            model_ms: placement.quorum_ms,
            physical_ms: physical.quorum_ms,
            best_physical_ms: best_physical.quorum_ms,
            placement,
        })
    }
}

/// The global tier as a node runs it on a topology: where its voters go
/// ([`GlobalFloor`]), which node of each voter region is the voter (the
/// region's first: every node can tell at start whether it is one), and
/// the widest modelled round trip between two voters (what the tier's
/// heartbeat must not be shorter than).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GlobalTier {
    pub floor: GlobalFloor,
    /// The voters' node names, in the placement's order.
    pub voters: Vec<Name>,
    /// The largest base RTT between two voters' regions, in ms.
    pub widest_ms: f64,
}

impl GlobalTier {
    /// Places the global tier of `topology` on `model` (no jitter).
    pub fn of(topology: &Topology, model: &RttModel) -> Result<GlobalTier, PlacementError> {
        let floor = GlobalFloor::of(topology, model)?;
        let regions = &floor.placement.voters;
        // Every region of a checked topology has at least one node.
        let voters = regions
            .iter()
            .filter_map(|&v| topology.regions[v].nodes.first().cloned())
            .collect();
        let widest_ms = regions
            .iter()
            .flat_map(|&a| regions.iter().map(move |&b| (a, b)))
            .map(|(a, b)| model.base_ms(a, b))
            .fold(0.0, f64::max);
        Ok(GlobalTier {
            floor,
            voters,
            widest_ms,
        })
    }
}
