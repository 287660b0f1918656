//! The same experiments in the simulator (`crates/sim`), where it models
//! the fault: DWCP's real replicas on the simulated network in virtual
//! time, a node (or two, or a region's) taken off the network for the
//! hold while a client writes every 50 ms through whoever leads. What it measures is
//! the store's side only — how long writes stopped — for groups larger and
//! farther apart than a machine's processes.

use std::time::Duration;

use ::sim::group::Group;
use ::sim::net::Links;
use anyhow::{Context, Result, bail};
use replica::{NodeId, Timing};
use serde::Serialize;
use tokio::time::Instant;

use super::catalog::{Experiment, Role, SimFault};

/// The simulated group: `nodes` replicas over `regions` regions (round
/// robin), `rtt_ms` between regions and 0.5 ms within one.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Shape {
    pub nodes: usize,
    pub regions: usize,
    pub rtt_ms: f64,
}

/// How often the client writes, virtual time.
const WRITE_EVERY: Duration = Duration::from_millis(50);
/// A write that takes longer is a failure.
const WRITE_DEADLINE: Duration = Duration::from_secs(1);
/// Before the fault and after it, virtual time (the fault is held as
/// `--hold` says).
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(3);

/// One simulated run.
#[derive(Clone, Debug, Serialize)]
pub struct SimRun {
    pub experiment: String,
    pub seed: u64,
    pub shape: Shape,
    /// The nodes taken off the network.
    pub down: Vec<NodeId>,
    /// Injection to the first write that committed after it (virtual ms);
    /// `None`: none did while the fault was in force.
    pub unavailable_ms: Option<u64>,
    pub writes: u64,
    pub failed: u64,
}

/// Runs `experiment` in the simulator, or says why it cannot.
pub fn run(experiment: &Experiment, seed: u64, shape: Shape, hold: Duration) -> Result<SimRun> {
    let Some(fault) = experiment.sim else {
        bail!(
            "`{}` is not modelled by the simulator (it models a node, two nodes or a region off the network); run it on processes",
            experiment.name
        );
    };
    if shape.nodes < 3 || shape.regions == 0 || shape.regions > shape.nodes {
        bail!(
            "--nodes {} --regions {}: at least 3 nodes, and 1 to that many regions",
            shape.nodes,
            shape.regions
        );
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .context("starting the simulator's runtime")?
        .block_on(simulate(experiment.name, fault, seed, shape, hold))
}

async fn simulate(
    name: &str,
    fault: SimFault,
    seed: u64,
    shape: Shape,
    hold: Duration,
) -> Result<SimRun> {
    let ids: Vec<NodeId> = (1..=shape.nodes as NodeId).collect();
    let region = move |id: NodeId| (id as usize - 1) % shape.regions;
    let rtt = move |a: NodeId, b: NodeId| {
        if region(a) == region(b) {
            0.5
        } else {
            shape.rtt_ms
        }
    };
    let links = Links::new(Box::new(rtt), 0.1, seed);
    let widest = Duration::from_secs_f64(shape.rtt_ms.max(0.5) / 1000.0);
    let timing = Timing::default().spanning(widest);
    let group = Group::start(&ids, &links, &timing)
        .await
        .map_err(|e| anyhow::anyhow!("starting the simulated group: {e}"))?;
    let mut pick = rng::SplitMix64::new(seed);
    let mut writes = 0u64;
    let mut failed = 0u64;
    let mut down: Vec<NodeId> = Vec::new();
    let mut injected_at = None;
    let mut unavailable_ms = None;
    let start = Instant::now();
    let mut key = 0u64;
    while start.elapsed() < BEFORE + hold + AFTER {
        let now = start.elapsed();
        if injected_at.is_none() && now >= BEFORE {
            let leader = leader_of(&group, &down).context("no leader before the fault")?;
            let followers: Vec<NodeId> = ids.iter().copied().filter(|&i| i != leader).collect();
            down = match fault {
                SimFault::Node(Role::Leader) => vec![leader],
                SimFault::Node(Role::Follower) => vec![followers[pick.below(followers.len())]],
                SimFault::TwoFollowers => {
                    let mut f = followers.clone();
                    pick.shuffle(&mut f);
                    f.truncate(2);
                    f
                }
                SimFault::Region => {
                    let r = pick.below(shape.regions);
                    ids.iter().copied().filter(|&i| region(i) == r).collect()
                }
            };
            for &d in &down {
                links.set_down(d, true);
            }
            injected_at = Some(Instant::now());
        }
        if injected_at.is_some() && now >= BEFORE + hold {
            for &d in &down {
                links.set_down(d, false);
            }
        }
        let sent = Instant::now();
        let ok = match leader_of(&group, &down) {
            Some(leader) => {
                let index = ids.iter().position(|&i| i == leader).unwrap_or(0);
                key += 1;
                matches!(
                    tokio::time::timeout(
                        WRITE_DEADLINE,
                        group.commit(index, &format!("k{}", key % 64))
                    )
                    .await,
                    Ok(Ok(_))
                )
            }
            None => false,
        };
        writes += 1;
        if !ok {
            failed += 1;
        }
        if let Some(at) = injected_at
            && ok
            && unavailable_ms.is_none()
            && sent >= at
            && now < BEFORE + hold
        {
            unavailable_ms = Some(sent.duration_since(at).as_millis() as u64);
        }
        tokio::time::sleep_until(sent + WRITE_EVERY).await;
    }
    group.shutdown().await;
    Ok(SimRun {
        experiment: name.to_string(),
        seed,
        shape,
        down,
        unavailable_ms,
        writes,
        failed,
    })
}

/// The leader the reachable replicas agree on (a downed one still believes
/// in itself; it is not asked).
fn leader_of(group: &Group, down: &[NodeId]) -> Option<NodeId> {
    let mut votes: Vec<NodeId> = group
        .replicas
        .iter()
        .map(|r| r.status())
        .filter(|s| !down.contains(&s.id))
        .filter_map(|s| s.leader)
        .filter(|l| !down.contains(l))
        .collect();
    votes.sort_unstable();
    // The most common view.
    let mut best = None;
    let mut best_count = 0;
    for chunk in votes.chunk_by(|a, b| a == b) {
        if chunk.len() > best_count {
            best_count = chunk.len();
            best = Some(chunk[0]);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::catalog;

    #[test]
    fn a_killed_leader_stops_writes_until_an_election_and_a_follower_not_at_all() {
        let shape = Shape {
            nodes: 3,
            regions: 1,
            rtt_ms: 0.5,
        };
        let pick = |n: &str| catalog::select(&[n.into()]).unwrap().remove(0);
        let hold = Duration::from_secs(3);
        let leader = run(&pick("kill-leader"), 1, shape, hold).unwrap();
        let gap = leader.unavailable_ms.expect("writes came back");
        assert!(gap > 0, "a leader's loss costs an election: {leader:?}");
        let follower = run(&pick("kill-follower"), 1, shape, hold).unwrap();
        assert_eq!(follower.down.len(), 1);
        assert!(
            follower.unavailable_ms.unwrap() < gap,
            "{follower:?} vs {leader:?}"
        );
        assert!(run(&pick("disk-fill"), 1, shape, hold).is_err());
    }
}
