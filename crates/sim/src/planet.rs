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
    pub seed: u64,
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
        global.shutdown().await;

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
        let crdt_convergence = self.crdt_convergence()?;

        progress(&format!("placing {} sandboxes", self.sandboxes));
        let (placements, placed, nodes) =
            place(&self.regions, self.nodes_per_region, self.sandboxes);
        Ok(Figures {
            global_commits,
            region_commits,
            crdt_convergence: crdt_convergence.0,
            crdt_all: crdt_convergence.1,
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
    fn crdt_convergence(&self) -> Result<(Vec<Duration>, Vec<Duration>), GroupError> {
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
        Ok((times, all))
    }
}

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

/// `scheduler::place` of `sandboxes` (deployments of 100, each in one
/// region, round robin, spread) onto `nodes_per_region` nodes per region
/// with room for all; its wall time.
fn place(regions: &[String], nodes_per_region: usize, sandboxes: u64) -> (Duration, u64, usize) {
    let names: Vec<Name> = regions
        .iter()
        .map(|r| {
            Name::new("region", r)
                .unwrap_or_else(|_| Name::new("region", "region").expect("a valid name"))
        })
        .collect();
    let per_node = (sandboxes / (regions.len() * nodes_per_region) as u64 + REPLICAS as u64) as u32;
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
    let started = WallInstant::now();
    let plan = scheduler::place(&nodes, &wants, &[]);
    let took = started.elapsed();
    let placed = plan.map_or(0, |p| p.added());
    (took, placed, nodes.len())
}
