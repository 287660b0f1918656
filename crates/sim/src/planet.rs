//! The planet scenario: a global tier of DWCP replicas spread over the
//! regions that minimise its quorum round trip, one Raft group of three
//! replicas per region, writes from independent clients at random times,
//! and the scheduler placing 12,000,000 sandboxes over the regions' nodes.
//!
//! Each region's group commits over the intra-region round trip; the
//! global tier over the modelled round trips between its voters' regions.
//! What the scenario takes as input (regions, the round-trip model, the
//! voters) comes from the caller, so the scenario runs on any topology.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use std::num::NonZeroU32;

use control::Name;
use control::replica::{NodeId, Timing};
use control::summary::{Driver, GossipConfig, Link, RegionStatus};
use control::topology::guard::{FailoverGuard, Verdict};
use scheduler::{Constraints, NodeView, Policy, Want};

use crate::group::{Group, GroupError};
use crate::net::Links;
use crate::rng::Rng;

/// What the scenario runs on.
pub struct Planet {
    /// Region names, in a fixed order (indices below refer to it).
    pub regions: Vec<String>,
    /// Modelled round trip between two regions, ms (0 within one).
    pub rtt_ms: Arc<dyn Fn(usize, usize) -> f64 + Send + Sync>,
    /// Round trip between two nodes of one region, ms.
    pub intra_ms: f64,
    /// The global tier's voters, as region indices; the first leads.
    pub voters: Vec<usize>,
    /// Nodes per region.
    pub nodes_per_region: usize,
    /// Sandboxes the scheduler places ([`SANDBOXES`] in the scenario).
    pub sandboxes: u64,
    /// Where a failed region's load goes: `(failed, healthy regions, their
    /// spare slots)` to target regions and their shares (summing to 1), e.g.
    /// `control::topology::routing::failover_targets`.
    pub failover: Arc<FailoverFn>,
    /// Automatic failovers allowed in any hour; past that, each waits for
    /// an operator (`control::topology::guard`).
    pub failovers_per_hour: u32,
    pub seed: u64,
}

/// A failover policy (see [`Planet::failover`]): `(failed, healthy,
/// spare)`, `spare[r]` being region `r`'s free slots.
pub type FailoverFn = dyn Fn(usize, &[usize], &[f64]) -> Vec<(usize, f64)> + Send + Sync;

/// One region's loss and what followed, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    pub region: usize,
    /// From the kill to a gossip member in the global leader's region
    /// holding every node of the region as down (virtual).
    pub detect: Duration,
    /// The global tier committing the failover (virtual).
    pub decide: Duration,
    /// `scheduler::place` moving the region's deployments to its targets,
    /// over every placement (wall time of this machine).
    pub replace: Duration,
    /// The guardrail held it for an operator's approval (the scenario
    /// approves at once: the operator's delay is not in the figures).
    pub awaited_approval: bool,
}

impl Failover {
    /// Loss to traffic re-routed and deployments re-placed.
    pub fn total(&self) -> Duration {
        self.detect + self.decide + self.replace
    }
}

/// What the scenario measured, in virtual time (the scheduler's placement
/// in wall time: it is computation, not communication).
pub struct Figures {
    pub global_commits: Vec<Duration>,
    pub region_commits: Vec<Duration>,
    /// Per update and member: how long after the write the member held it
    /// (the gossip driver's virtual time).
    pub crdt_convergence: Vec<Duration>,
    /// Per update: how long until every member held it.
    pub crdt_all: Vec<Duration>,
    /// Regions lost one after another, and how each was failed over.
    pub failovers: Vec<Failover>,
    /// How long `scheduler::place` took for [`Planet::sandboxes`].
    pub placements: Duration,
    pub placed: u64,
    /// Nodes the placements went to.
    pub nodes: usize,
}

/// Writes through the global tier's leader.
pub const GLOBAL_WRITES: usize = 200;
/// Writes through each region's leader.
pub const REGION_WRITES: usize = 5;
/// Clients write independently: the gaps between writes are exponential
/// with this mean (so some land while the line to a follower is busy).
pub const MEAN_GAP_MS: f64 = 1_000.0;

/// Timing of the global tier: election timeouts far above the largest
/// round trip, so that a slow link is not taken for a dead leader.
pub fn global_timing() -> Timing {
    Timing {
        heartbeat: Duration::from_millis(500),
        election: (Duration::from_secs(3), Duration::from_secs(6)),
        snapshot_every: 10_000,
    }
}

/// Node ids: region `r`'s node `k` is `1 + r * 16 + k`; global voter `v`
/// is `1_000_000 + v`.
fn region_node(r: usize, k: usize) -> NodeId {
    1 + (r as NodeId) * 16 + k as NodeId
}

const GLOBAL_BASE: NodeId = 1_000_000;

impl Planet {
    /// Runs the scenario on a runtime with a paused clock (see the crate's
    /// docs); `progress` hears what it is doing.
    pub async fn run(&self, progress: &dyn Fn(&str)) -> Result<Figures, GroupError> {
        let this = PlanetLinks {
            rtt: self.rtt_ms.clone(),
            intra: self.intra_ms,
            voters: self.voters.clone(),
        };
        let links = Links::new(Box::new(move |a, b| this.rtt(a, b)), 0.05, self.seed);
        let started = tokio::time::Instant::now();
        let mut gaps = Rng::new(self.seed ^ 0x9e37);

        progress(&format!(
            "global tier: {} voters in {}",
            self.voters.len(),
            self.voters
                .iter()
                .map(|&r| self.regions[r].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let ids: Vec<NodeId> = (0..self.voters.len())
            .map(|v| GLOBAL_BASE + v as NodeId)
            .collect();
        let global = Group::start(&ids, &links, &global_timing()).await?;
        let global_commits = writes(&global, GLOBAL_WRITES, &mut gaps).await?;

        progress(&format!(
            "{} regions of {} replicas each",
            self.regions.len(),
            self.nodes_per_region
        ));
        let mut region_commits = Vec::with_capacity(self.regions.len() * REGION_WRITES);
        for r in 0..self.regions.len() {
            let ids: Vec<NodeId> = (0..self.nodes_per_region)
                .map(|k| region_node(r, k))
                .collect();
            let group = Group::start(&ids, &links, &Timing::default()).await?;
            region_commits.extend(writes(&group, REGION_WRITES, &mut gaps).await?);
            group.shutdown().await;
        }

        progress(&format!(
            "gossip: {} members (SWIM and CRDT anti-entropy), {} updates",
            self.regions.len() * self.nodes_per_region,
            CRDT_UPDATES
        ));
        let (mut driver, crdt_convergence) = self.crdt_convergence()?;

        progress(&format!("placing {} sandboxes", self.sandboxes));
        let mut fleet = Fleet::new(&self.regions, self.nodes_per_region, self.sandboxes);
        let (placements, placed) = fleet.place_all();
        let nodes = fleet.nodes.len();

        progress(&format!("losing {FAILOVERS} regions, one after another"));
        let mut failovers = Vec::with_capacity(FAILOVERS);
        let mut lost = Vec::new();
        let mut pick = Rng::new(self.seed ^ 0xfa11);
        let mut guard = FailoverGuard::new(self.failovers_per_hour);
        for trial in 0..FAILOVERS {
            let candidates: Vec<usize> = (0..self.regions.len())
                .filter(|r| !self.voters.contains(r) && !lost.contains(r))
                .collect();
            let Some(&region) =
                candidates.get((pick.next_u64() % candidates.len().max(1) as u64) as usize)
            else {
                break;
            };
            let detect = self.detect_loss(&mut driver, region)?;
            let now_ms = tokio::time::Instant::now()
                .duration_since(started)
                .as_millis() as u64;
            let awaited_approval = match guard.judge(now_ms) {
                Verdict::Proceed => false,
                Verdict::AwaitApproval { .. } => {
                    guard.approved(now_ms);
                    true
                }
            };
            let decide = global.commit(0, &format!("failover-{trial}")).await?;
            lost.push(region);
            let healthy: Vec<usize> = (0..self.regions.len())
                .filter(|r| !lost.contains(r))
                .collect();
            let targets = (self.failover)(region, &healthy, &fleet.spare());
            let replace = fleet.fail_over(region, &targets)?;
            failovers.push(Failover {
                region,
                detect,
                decide,
                replace,
                awaited_approval,
            });
        }
        global.shutdown().await;
        Ok(Figures {
            global_commits,
            region_commits,
            crdt_convergence: crdt_convergence.0,
            crdt_all: crdt_convergence.1,
            failovers,
            placements,
            placed,
            nodes,
        })
    }
}

/// `count` writes through `group`'s leader, each after an exponential gap
/// (independent clients); how long each took to commit.
async fn writes(group: &Group, count: usize, gaps: &mut Rng) -> Result<Vec<Duration>, GroupError> {
    let mut took = Vec::with_capacity(count);
    for i in 0..count {
        let gap = gaps.exponential(MEAN_GAP_MS) / 1000.0;
        tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        took.push(group.commit(0, &format!("write-{i}")).await?);
    }
    Ok(took)
}

/// Region summaries written, each at a different member, whose spread is
/// measured.
pub const CRDT_UPDATES: usize = 20;

impl Planet {
    /// DWCP's gossip members (`control::summary`: foca's SWIM and the CRDT
    /// summaries' anti-entropy), one per node, over links with the modelled
    /// delays, driven in virtual time by the summary's own driver. After
    /// they discover each other, [`CRDT_UPDATES`] members each report
    /// their region's status; per update, when each member first holds it.
    #[allow(clippy::type_complexity)]
    fn crdt_convergence(&self) -> Result<(Driver, (Vec<Duration>, Vec<Duration>)), GroupError> {
        let names: Vec<Name> = self
            .regions
            .iter()
            .map(|r| Name::new("region", r))
            .collect::<Result<_, _>>()
            .map_err(|e| GroupError::Gossip(e.to_string()))?;
        let n = self.regions.len() * self.nodes_per_region;
        let size =
            NonZeroU32::new(n as u32).ok_or_else(|| GroupError::Gossip("no members".into()))?;
        let mut driver = Driver::new(
            n,
            &names,
            GossipConfig::wan(size),
            Link::delay(Duration::ZERO),
            self.seed,
        )
        .map_err(|e| GroupError::Gossip(e.to_string()))?;
        let region_of = |i: usize| i % self.regions.len();
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                let (ra, rb) = (region_of(a), region_of(b));
                let rtt = if ra == rb {
                    self.intra_ms
                } else {
                    (self.rtt_ms)(ra, rb)
                };
                let one_way = Duration::from_secs_f64(rtt / 2000.0);
                driver.set_link(
                    a,
                    b,
                    Link {
                        delay: one_way,
                        jitter: one_way / 20,
                        loss: 0.0,
                    },
                );
            }
        }
        driver
            .run_until_discovered(Duration::from_secs(600))
            .ok_or_else(|| {
                GroupError::Gossip(
                    "the members did not discover each other in 10 virtual minutes".into(),
                )
            })?;
        let mut rng = Rng::new(self.seed ^ 0xc4d7);
        let (mut times, mut all) = (Vec::new(), Vec::new());
        for _ in 0..CRDT_UPDATES {
            driver.run_until(driver.now() + Duration::from_secs(2));
            let writer = (rng.next_u64() % n as u64) as usize;
            let region = names[region_of(writer)].clone();
            let stamp = driver.with_member(writer, |g, now| {
                g.report_region(RegionStatus::default(), now);
                g.summary().region(&g.identity().region).map(|(_, s)| s)
            });
            let Some(stamp) = stamp else {
                return Err(GroupError::Gossip("a member's own write is missing".into()));
            };
            let deadline = driver.now() + Duration::from_secs(60);
            let spread = driver.spread(deadline, |g| {
                g.summary().region(&region).is_some_and(|(_, s)| s >= stamp)
            });
            times.extend(spread.per_member.iter().flatten().copied());
            all.push(spread.all.ok_or_else(|| {
                GroupError::Gossip(
                    "an update did not reach every member in 60 virtual seconds".into(),
                )
            })?);
        }
        Ok((driver, (times, all)))
    }

    /// Kills every gossip member of `region` and runs the driver until the
    /// first member in the global leader's region has declared them all
    /// down; how long that took.
    fn detect_loss(&self, driver: &mut Driver, region: usize) -> Result<Duration, GroupError> {
        let r = self.regions.len();
        let n = r * self.nodes_per_region;
        let victims: Vec<usize> = (0..n).filter(|i| i % r == region).collect();
        let observer = (0..n)
            .find(|i| i % r == self.voters[0])
            .ok_or_else(|| GroupError::Gossip("no member in the leader's region".into()))?;
        for &v in &victims {
            driver.kill(v);
        }
        let start = driver.now();
        let deadline = start + Duration::from_secs(60);
        loop {
            let all_down = victims
                .iter()
                .all(|&v| driver.declared_down(observer, v as u64).is_some());
            if all_down {
                return Ok(driver.now() - start);
            }
            if driver.now() > deadline || !driver.step() {
                return Err(GroupError::Gossip(format!(
                    "region {} was not declared down within 60 virtual seconds",
                    self.regions[region]
                )));
            }
        }
    }
}

/// Regions lost in the failover trials, one after another (the load of
/// each stays where it went, so more losses in a small planet run out of
/// room, as they would for real).
pub const FAILOVERS: usize = 3;

/// The round trip between two simulated nodes.
struct PlanetLinks {
    rtt: Arc<dyn Fn(usize, usize) -> f64 + Send + Sync>,
    intra: f64,
    voters: Vec<usize>,
}

impl PlanetLinks {
    fn region(&self, id: NodeId) -> usize {
        if id >= GLOBAL_BASE {
            self.voters[(id - GLOBAL_BASE) as usize]
        } else {
            ((id - 1) / 16) as usize
        }
    }

    fn rtt(&self, a: NodeId, b: NodeId) -> f64 {
        if a == b {
            return 0.0;
        }
        let (ra, rb) = (self.region(a), self.region(b));
        if ra == rb {
            self.intra
        } else {
            (self.rtt)(ra, rb)
        }
    }
}

/// Sandboxes the scenario places.
pub const SANDBOXES: u64 = 12_000_000;
/// Replicas per deployment (120,000 deployments of 100 for 12,000,000).
const REPLICAS: u32 = 100;

/// The scheduler's view of the planet: nodes with room for the
/// sandboxes and half as much again (so that a region's load fits on its
/// neighbours), deployments of 100 replicas each in one region (round
/// robin, spread), and the placements once placed.
struct Fleet {
    names: Vec<Name>,
    nodes: Vec<NodeView>,
    wants: Vec<Want>,
    placements: Vec<scheduler::Placement>,
}

impl Fleet {
    fn new(regions: &[String], nodes_per_region: usize, sandboxes: u64) -> Fleet {
        let names: Vec<Name> = regions
            .iter()
            .map(|r| {
                Name::new("region", r)
                    .unwrap_or_else(|_| Name::new("region", "region").expect("a valid name"))
            })
            .collect();
        let per_node = (sandboxes * 3 / 2 / (regions.len() * nodes_per_region) as u64
            + u64::from(REPLICAS)) as u32;
        let mut nodes = Vec::new();
        for (r, region) in names.iter().enumerate() {
            for k in 0..nodes_per_region {
                nodes.push(NodeView {
                    name: Name::new("node", &format!("n{r:03}-{k}")).expect("a valid name"),
                    region: region.clone(),
                    labels: BTreeMap::new(),
                    capacity: per_node,
                    reserved: 0,
                    healthy: true,
                });
            }
        }
        let deployments = sandboxes / u64::from(REPLICAS);
        let tenant = Name::new("tenant", "planet").expect("a valid name");
        let wants: Vec<Want> = (0..deployments)
            .map(|d| Want {
                tenant: tenant.clone(),
                app: Name::new("app", &format!("a{d:06}")).expect("a valid name"),
                version: 1,
                regions: BTreeMap::from([(names[d as usize % names.len()].clone(), REPLICAS)]),
                constraints: Constraints {
                    policy: Policy::Spread,
                    ..Constraints::default()
                },
            })
            .collect();
        Fleet {
            names,
            nodes,
            wants,
            placements: Vec::new(),
        }
    }

    /// Each region's free slots on healthy nodes.
    fn spare(&self) -> Vec<f64> {
        let mut used: BTreeMap<&Name, u64> = BTreeMap::new();
        for p in &self.placements {
            *used.entry(&p.node).or_default() += u64::from(p.count);
        }
        let mut spare = vec![0.0; self.names.len()];
        for node in self.nodes.iter().filter(|n| n.healthy) {
            if let Some(r) = self.names.iter().position(|name| *name == node.region) {
                let free = u64::from(node.capacity)
                    .saturating_sub(used.get(&node.name).copied().unwrap_or(0));
                spare[r] += free as f64;
            }
        }
        spare
    }

    /// Places every want from empty; the wall time and sandboxes placed.
    fn place_all(&mut self) -> (Duration, u64) {
        let started = WallInstant::now();
        let plan = scheduler::place(&self.nodes, &self.wants, &[]);
        let took = started.elapsed();
        match plan {
            Ok(plan) => {
                let placed = plan.added();
                self.placements = plan.placements;
                (took, placed)
            }
            Err(_) => (took, 0),
        }
    }

    /// Marks `region`'s nodes unhealthy, moves its wants to `targets` by
    /// share, and re-plans over every current placement; the wall time.
    fn fail_over(
        &mut self,
        region: usize,
        targets: &[(usize, f64)],
    ) -> Result<Duration, GroupError> {
        let failed = self.names[region].clone();
        for node in &mut self.nodes {
            if node.region == failed {
                node.healthy = false;
            }
        }
        // Replicas go to the targets in proportion to their shares over
        // all the moved wants (each target within one replica of its share
        // of the total), not rounded want by want.
        let mut moved = 0.0;
        let mut given = vec![0u64; targets.len()];
        for want in &mut self.wants {
            let Some(replicas) = want.regions.remove(&failed) else {
                continue;
            };
            moved += f64::from(replicas);
            let mut left = u64::from(replicas);
            for (i, (target, share)) in targets.iter().enumerate() {
                let n = if i + 1 == targets.len() {
                    left
                } else {
                    ((moved * share).floor() as u64)
                        .saturating_sub(given[i])
                        .min(left)
                };
                left -= n;
                given[i] += n;
                if n > 0 {
                    *want.regions.entry(self.names[*target].clone()).or_default() += n as u32;
                }
            }
        }
        let started = WallInstant::now();
        let plan = scheduler::place(&self.nodes, &self.wants, &self.placements)
            .map_err(|e| GroupError::Gossip(format!("re-placing: {e}")))?;
        let took = started.elapsed();
        if !plan.rejections.is_empty() {
            return Err(GroupError::Gossip(format!(
                "re-placing region {failed}: {} wants not met, first {:?}",
                plan.rejections.len(),
                plan.rejections[0]
            )));
        }
        self.placements = plan.placements;
        Ok(took)
    }
}
