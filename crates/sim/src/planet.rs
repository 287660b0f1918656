//! The planet scenario: a global tier of DWCP replicas spread over the
//! regions that minimise its quorum round trip, one Raft group of three
//! replicas per region, writes from independent clients at random times,
//! and the scheduler placing 12,000,000 sandboxes over the regions' nodes.
//! Then regions are lost and failed over (gossip detects, the global tier
//! decides, the scheduler re-places) and brought back (gossip sees them
//! up, the global tier decides, the load moves back in steps).
//!
//! Each region's group commits over the intra-region round trip; the
//! global tier over the modelled round trips between its voters' regions.
//! What the scenario takes as input (regions, the round-trip model, the
//! voters) comes from the caller, so the scenario runs on any topology.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use std::num::NonZeroU32;

use planet::failover::{plan, thousandths};
use planet::summary::{Driver, GossipConfig, Health, Link, RegionStatus};
use planet::topology::guard::share_back;
use replica::{NodeId, Timing};
use scheduler::{Constraints, NodeView, Policy, Want};
use state::Name;

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
    /// `planet::topology::routing::failover_targets`.
    pub failover: Arc<FailoverFn>,
    /// Automatic failovers allowed in any hour; past that, each waits for
    /// an operator (`planet::topology::guard`).
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
    /// Replicas wanted but placed nowhere after the re-placement: the
    /// shortfall when the healthy regions lack room (0 when they have it).
    pub unplaced: u64,
}

impl Failover {
    /// Loss to traffic re-routed and deployments re-placed.
    pub fn total(&self) -> Duration {
        self.detect + self.decide + self.replace
    }
}

/// A lost region's return and its load moving back, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    pub region: usize,
    /// From the restart of the region's gossip members to a member in the
    /// global leader's region holding every one of them up again (virtual).
    pub detect: Duration,
    /// The global tier committing the recovery (virtual).
    pub decide: Duration,
    /// The load moving back, step by step ([`share_back`]'s schedule).
    pub steps: Vec<RecoveryStep>,
}

impl Recovery {
    /// From the region's return to its load fully back: detection, the
    /// decision and the step schedule (virtual), plus the last step's
    /// re-placement (wall time of this machine).
    pub fn total(&self) -> Duration {
        let last = self
            .steps
            .last()
            .map_or(Duration::ZERO, |s| s.at + s.replace);
        self.detect + self.decide + last
    }
}

/// One step of a recovered region taking its load back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecoveryStep {
    /// From the recovery's commit to this step's commit: the schedule's wait
    /// plus the global tier's commit of the step (virtual).
    pub at: Duration,
    /// The share of its own deployments' replicas the region is to hold
    /// after this step ([`share_back`]).
    pub share: f64,
    /// The global tier committing the step (virtual).
    pub commit: Duration,
    /// `scheduler::place` over every placement with the step's wants (wall).
    pub replace: Duration,
    /// Replicas of the region's own deployments on its nodes after the step.
    pub home: u64,
    /// Replicas wanted but placed nowhere after the step.
    pub unplaced: u64,
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
    /// The lost regions brought back, in the order they were lost.
    pub recoveries: Vec<Recovery>,
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

/// Steps in which a recovered region takes its load back, and the time
/// between them ([`share_back`]): 25, 50, 75 and 100 %, five minutes apart.
pub const RECOVERY_STEPS: u32 = 4;
/// See [`RECOVERY_STEPS`].
pub const RECOVERY_STEP: Duration = Duration::from_secs(300);

/// A moment of the scenario at which the fleet is shown to an observer
/// ([`Planet::run_observed`]), so that tests can check what the scheduler
/// did without the scenario judging itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Moment {
    /// Every sandbox placed, every region healthy.
    Placed,
    /// `region`'s failover committed and its deployments re-placed.
    FailedOver { region: usize },
    /// Step `step` (from 1) of `region`'s load moving back, to `share`.
    RecoveryStep {
        region: usize,
        step: usize,
        share: f64,
    },
}

impl Planet {
    /// Runs the scenario on a runtime with a paused clock (see the crate's
    /// docs); `progress` hears what it is doing.
    pub async fn run(&self, progress: &dyn Fn(&str)) -> Result<Figures, GroupError> {
        self.run_observed(progress, &mut |_, _| {}).await
    }

    /// Regions the scenario loses: [`FAILOVERS`], or fewer when fewer
    /// regions hold no global voter.
    pub fn losses(&self) -> usize {
        let candidates = (0..self.regions.len())
            .filter(|r| !self.voters.contains(r))
            .count();
        FAILOVERS.min(candidates)
    }

    /// [`Planet::run`], showing the fleet to `observe` at each [`Moment`].
    pub async fn run_observed(
        &self,
        progress: &dyn Fn(&str),
        observe: &mut dyn FnMut(Moment, &FleetView<'_>),
    ) -> Result<Figures, GroupError> {
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
        let mut fleet = Fleet::new(
            &self.regions,
            self.nodes_per_region,
            self.sandboxes,
            self.losses(),
        );
        let (placements, placed) = fleet.place_all()?;
        let nodes = fleet.nodes.len();
        let mut healthy: Vec<usize> = (0..self.regions.len()).collect();
        observe(Moment::Placed, &fleet.view(&healthy));

        progress(&format!("losing {FAILOVERS} regions, one after another"));
        let mut failovers = Vec::with_capacity(FAILOVERS);
        let mut lost = Vec::new();
        let mut pick = Rng::new(self.seed ^ 0xfa11);
        // The global tier's state knows every region, as a real planet's
        // does, so that it accepts their failovers.
        let names = self
            .regions
            .iter()
            .map(|r| Name::new("region", r))
            .collect::<Result<Vec<Name>, _>>()
            .map_err(|e| GroupError::Refused(e.to_string()))?;
        for name in &names {
            let region = state::Region::named(name.clone());
            global
                .commit_command(0, state::Command::PutRegion { region })
                .await?;
        }
        for _ in 0..FAILOVERS {
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
            lost.push(region);
            healthy.retain(|&r| r != region);
            let targets = (self.failover)(region, &healthy, &fleet.spare());
            let (decide, awaited_approval) = self
                .commit_plan(&global, &names, &lost, now_ms, &targets)
                .await?;
            let failed_over = global.replicas[0]
                .read_local()
                .failovers()
                .any(|f| f.region == names[region] && f.approved && f.recovered_ms.is_none());
            if !targets.is_empty() && !failed_over {
                return Err(GroupError::Refused(format!(
                    "the global tier holds no approved failover of {}",
                    names[region]
                )));
            }
            let (replace, unplaced) = fleet.fail_over(region, &targets)?;
            failovers.push(Failover {
                region,
                detect,
                decide,
                replace,
                awaited_approval,
                unplaced,
            });
            observe(Moment::FailedOver { region }, &fleet.view(&healthy));
        }

        progress(&format!(
            "bringing {} regions back, their load in {RECOVERY_STEPS} steps {} s apart",
            lost.len(),
            RECOVERY_STEP.as_secs()
        ));
        let mut recoveries = Vec::with_capacity(lost.len());
        for (trial, &region) in lost.iter().enumerate() {
            let detect = self.detect_return(&mut driver, region, &healthy)?;
            // Gossip sees the region healthy: the global tier marks its
            // failover recovered (the regions lost after it are still down).
            let now_ms = tokio::time::Instant::now()
                .duration_since(started)
                .as_millis() as u64;
            let (decide, _) = self
                .commit_plan(&global, &names, &lost[trial + 1..], now_ms, &[])
                .await?;
            healthy.push(region);
            healthy.sort_unstable();
            let decided = tokio::time::Instant::now();
            let mut steps = Vec::with_capacity(RECOVERY_STEPS as usize);
            let mut share = 0.0;
            let step_ms = RECOVERY_STEP.as_millis() as u64;
            // share_back reaches 1 at the last step, (steps - 1) × step_ms.
            for k in 0..u64::from(RECOVERY_STEPS.max(1)) {
                let elapsed = Duration::from_millis(k * step_ms);
                let next = share_back(k * step_ms, RECOVERY_STEPS, step_ms);
                if next <= share {
                    continue;
                }
                tokio::time::sleep_until(decided + elapsed).await;
                let commit = global
                    .commit(0, &format!("recovery-{trial}-step-{k}"))
                    .await?;
                let (replace, unplaced) = fleet.bring_back(region, next)?;
                share = next;
                steps.push(RecoveryStep {
                    at: tokio::time::Instant::now().duration_since(decided),
                    share,
                    commit,
                    replace,
                    home: fleet.home_replicas(region),
                    unplaced,
                });
                observe(
                    Moment::RecoveryStep {
                        region,
                        step: steps.len(),
                        share,
                    },
                    &fleet.view(&healthy),
                );
                if share >= 1.0 {
                    break;
                }
            }
            recoveries.push(Recovery {
                region,
                detect,
                decide,
                steps,
            });
        }
        global.shutdown().await;
        Ok(Figures {
            global_commits,
            region_commits,
            crdt_convergence: crdt_convergence.0,
            crdt_all: crdt_convergence.1,
            failovers,
            recoveries,
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
    /// DWCP's gossip members (`planet::summary`: foca's SWIM and the CRDT
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
    /// What the global tier's leader of a real planet commits once a
    /// second, committed here through the simulated global tier's leader:
    /// [`planet::failover::plan`] over the regions judged `down` and the
    /// failover records in its state, with `targets` (region index and
    /// share) in thousandths for a newly failed region. A failover the
    /// hourly guardrail holds is approved at once, with the command an
    /// operator's approval commits. Returns the virtual time the commits
    /// took and whether an approval was needed.
    async fn commit_plan(
        &self,
        global: &Group,
        names: &[Name],
        down: &[usize],
        now_ms: u64,
        targets: &[(usize, f64)],
    ) -> Result<(Duration, bool), GroupError> {
        let judged: BTreeMap<Name, Health> = names
            .iter()
            .enumerate()
            .map(|(r, name)| {
                let health = if down.contains(&r) {
                    Health::Down
                } else {
                    Health::Healthy
                };
                (name.clone(), health)
            })
            .collect();
        let records: Vec<state::RegionFailover> = global.replicas[0]
            .read_local()
            .failovers()
            .cloned()
            .collect();
        let shares = thousandths(
            targets
                .iter()
                .map(|&(r, share)| (names[r].clone(), share))
                .collect(),
        );
        let commands = plan(
            now_ms,
            &judged,
            &records,
            self.failovers_per_hour,
            |_, _| shares.clone(),
        );
        let mut took = Duration::ZERO;
        let mut held = Vec::new();
        for command in commands {
            if let state::Command::PutFailover { failover } = &command
                && !failover.approved
            {
                held.push(failover.region.clone());
            }
            took += global.commit_command(0, command).await?;
        }
        let awaited_approval = !held.is_empty();
        for region in held {
            took += global
                .commit_command(0, state::Command::ApproveFailover { region })
                .await?;
        }
        Ok((took, awaited_approval))
    }

    fn detect_loss(&self, driver: &mut Driver, region: usize) -> Result<Duration, GroupError> {
        let r = self.regions.len();
        let n = r * self.nodes_per_region;
        let victims: Vec<usize> = (0..n).filter(|i| i % r == region).collect();
        let observer = self.observer()?;
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

impl Planet {
    /// The gossip member that judges for the global tier: the first in the
    /// global leader's region.
    fn observer(&self) -> Result<usize, GroupError> {
        let r = self.regions.len();
        let leader = *self
            .voters
            .first()
            .ok_or_else(|| GroupError::Gossip("no global voter".into()))?;
        (0..r * self.nodes_per_region)
            .find(|i| i % r == leader)
            .ok_or_else(|| GroupError::Gossip("no member in the leader's region".into()))
    }

    /// Restarts every gossip member of the lost `region` (fresh processes,
    /// renewed identities, each announcing itself to a member of the
    /// nearest healthy region) and runs the driver until the member in the
    /// global leader's region has seen them all up; how long that took.
    fn detect_return(
        &self,
        driver: &mut Driver,
        region: usize,
        healthy: &[usize],
    ) -> Result<Duration, GroupError> {
        let r = self.regions.len();
        let n = r * self.nodes_per_region;
        let members: Vec<usize> = (0..n).filter(|i| i % r == region).collect();
        let observer = self.observer()?;
        let nearest = healthy
            .iter()
            .copied()
            .filter(|&h| h != region)
            .min_by(|&a, &b| {
                (self.rtt_ms)(region, a)
                    .total_cmp(&(self.rtt_ms)(region, b))
                    .then(a.cmp(&b))
            })
            .ok_or_else(|| GroupError::Gossip("no healthy region to rejoin through".into()))?;
        let via = (0..n)
            .find(|&i| i % r == nearest && driver.is_alive(i))
            .ok_or_else(|| GroupError::Gossip("no live member to rejoin through".into()))?;
        let start = driver.now();
        for &m in &members {
            driver.restart(m, via)?;
        }
        let deadline = start + Duration::from_secs(60);
        loop {
            let all_up = members.iter().all(|&m| {
                driver
                    .declared_up(observer, m as u64)
                    .is_some_and(|t| t >= start)
            });
            if all_up {
                return Ok(driver.now() - start);
            }
            if driver.now() > deadline || !driver.step() {
                return Err(GroupError::Gossip(format!(
                    "region {} was not seen up again within 60 virtual seconds",
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
pub const REPLICAS: u32 = 100;

/// Room on the nodes, as a multiple of the sandboxes: half as much again,
/// and in a small planet at least enough for the load of the `losses`
/// regions it loses to fit on the others (a twentieth more, for the
/// placement's granularity). Without the second term a planet of 8
/// regions, 5 of them voters, ran out of room on its third loss.
pub fn headroom(regions: usize, losses: usize) -> f64 {
    let survivors = regions.saturating_sub(losses).max(1);
    (regions as f64 / survivors as f64 * 1.05).max(1.5)
}

/// The scheduler's view of the planet: nodes with room for the sandboxes
/// and more ([`headroom`]), so that a region's load fits on its
/// neighbours), deployments of [`REPLICAS`] replicas each in one region
/// (round robin, spread), and the placements once placed.
struct Fleet {
    names: Vec<Name>,
    nodes: Vec<NodeView>,
    /// Node name → index in `nodes` (region `r`'s node `k` is
    /// `r * nodes_per_region + k`).
    node_index: BTreeMap<Name, usize>,
    nodes_per_region: usize,
    wants: Vec<Want>,
    /// Want app name → index in `wants`.
    want_index: BTreeMap<Name, usize>,
    /// Per want, the region it was first placed in (its home).
    homes: Vec<usize>,
    placements: Vec<scheduler::Placement>,
}

impl Fleet {
    fn new(regions: &[String], nodes_per_region: usize, sandboxes: u64, losses: usize) -> Fleet {
        let names: Vec<Name> = regions
            .iter()
            .map(|r| {
                Name::new("region", r)
                    .unwrap_or_else(|_| Name::new("region", "region").expect("a valid name"))
            })
            .collect();
        let slots = sandboxes as f64 * headroom(regions.len(), losses);
        let per_node = ((slots / (regions.len() * nodes_per_region).max(1) as f64).ceil() as u64
            + u64::from(REPLICAS))
        .min(u64::from(u32::MAX)) as u32;
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
        let node_index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let deployments = sandboxes / u64::from(REPLICAS);
        let tenant = Name::new("tenant", "planet").expect("a valid name");
        let homes: Vec<usize> = (0..deployments)
            .map(|d| d as usize % names.len().max(1))
            .collect();
        let wants: Vec<Want> = homes
            .iter()
            .enumerate()
            .map(|(d, &home)| Want {
                tenant: tenant.clone(),
                app: Name::new("app", &format!("a{d:06}")).expect("a valid name"),
                version: 1,
                regions: BTreeMap::from([(names[home].clone(), REPLICAS)]),
                constraints: Constraints {
                    policy: Policy::Spread,
                    ..Constraints::default()
                },
            })
            .collect();
        let want_index = wants
            .iter()
            .enumerate()
            .map(|(i, w)| (w.app.clone(), i))
            .collect();
        Fleet {
            names,
            nodes,
            node_index,
            nodes_per_region,
            wants,
            want_index,
            homes,
            placements: Vec::new(),
        }
    }

    /// Each region's free slots on healthy nodes.
    fn spare(&self) -> Vec<f64> {
        let used = self.per_node();
        let mut spare = vec![0.0; self.names.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if node.healthy {
                let free = u64::from(node.capacity).saturating_sub(used[i]);
                spare[i / self.nodes_per_region.max(1)] += free as f64;
            }
        }
        spare
    }

    /// Replicas placed per node, by index.
    fn per_node(&self) -> Vec<u64> {
        let mut used = vec![0u64; self.nodes.len()];
        for p in &self.placements {
            if let Some(&i) = self.node_index.get(&p.node) {
                used[i] += u64::from(p.count);
            }
        }
        used
    }

    /// Replicas placed per want, by index.
    fn per_want(&self) -> Vec<u32> {
        let mut placed = vec![0u32; self.wants.len()];
        for p in &self.placements {
            if let Some(&i) = self.want_index.get(&p.app) {
                placed[i] += p.count;
            }
        }
        placed
    }

    /// Replicas wanted (each deployment's [`REPLICAS`], wherever it is)
    /// but placed nowhere.
    fn shortfall(&self) -> u64 {
        self.per_want()
            .iter()
            .map(|&n| u64::from(REPLICAS.saturating_sub(n)))
            .sum()
    }

    /// Replicas of `region`'s own deployments on its nodes.
    fn home_replicas(&self, region: usize) -> u64 {
        let npr = self.nodes_per_region.max(1);
        self.placements
            .iter()
            .filter(|p| {
                self.want_index
                    .get(&p.app)
                    .is_some_and(|&w| self.homes[w] == region)
                    && self
                        .node_index
                        .get(&p.node)
                        .is_some_and(|&n| n / npr == region)
            })
            .map(|p| u64::from(p.count))
            .sum()
    }

    fn view<'a>(&'a self, healthy: &'a [usize]) -> FleetView<'a> {
        FleetView {
            fleet: self,
            healthy,
        }
    }

    /// Places every want from empty; the wall time and sandboxes placed.
    fn place_all(&mut self) -> Result<(Duration, u64), GroupError> {
        let started = WallInstant::now();
        let plan = scheduler::place(&self.nodes, &self.wants, &[])?;
        let took = started.elapsed();
        let placed = plan.added();
        self.placements = plan.placements;
        Ok((took, placed))
    }

    /// Re-plans over every current placement; the wall time and the
    /// shortfall after it.
    fn place_again(&mut self) -> Result<(Duration, u64), GroupError> {
        let started = WallInstant::now();
        let plan = scheduler::place(&self.nodes, &self.wants, &self.placements)?;
        let took = started.elapsed();
        self.placements = plan.placements;
        Ok((took, self.shortfall()))
    }

    fn set_healthy(&mut self, region: usize, healthy: bool) {
        let name = &self.names[region];
        for node in &mut self.nodes {
            if node.region == *name {
                node.healthy = healthy;
            }
        }
    }

    /// Marks `region`'s nodes unhealthy, moves its wants to `targets` by
    /// share, and re-plans over every current placement; the wall time and
    /// the replicas left unplaced (those of a failover without targets, or
    /// beyond the targets' room).
    fn fail_over(
        &mut self,
        region: usize,
        targets: &[(usize, f64)],
    ) -> Result<(Duration, u64), GroupError> {
        self.set_healthy(region, false);
        let failed = self.names[region].clone();
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
        self.place_again()
    }

    /// Marks `region`'s nodes healthy and gives each of its own deployments
    /// `share` of its [`REPLICAS`] back there (rounded down; all at share 1),
    /// taken from wherever the rest of them run now, in proportion; then
    /// re-plans. The wall time and the replicas left unplaced.
    fn bring_back(&mut self, region: usize, share: f64) -> Result<(Duration, u64), GroupError> {
        self.set_healthy(region, true);
        let home = self.names[region].clone();
        for (want, _) in self
            .wants
            .iter_mut()
            .zip(&self.homes)
            .filter(|(_, h)| **h == region)
        {
            // Of the deployment's full size, not of what it holds now: a
            // failover without room may have left some of it unplaced.
            let goal = if share >= 1.0 {
                REPLICAS
            } else {
                (f64::from(REPLICAS) * share.max(0.0)).floor() as u32
            };
            let now = want.regions.get(&home).copied().unwrap_or(0);
            if goal <= now {
                continue;
            }
            let mut away: Vec<(Name, u32)> = want
                .regions
                .iter()
                .filter(|(r, _)| **r != home)
                .map(|(r, n)| (r.clone(), *n))
                .collect();
            let kept = shrink(&away, goal - now);
            want.regions.clear();
            want.regions.insert(home.clone(), goal);
            for ((r, _), n) in away.drain(..).zip(kept) {
                if n > 0 {
                    want.regions.insert(r, n);
                }
            }
        }
        self.place_again()
    }
}

/// `counts` less `by` in all, each keeping its proportion of what is left
/// (largest remainders first, ties to the earlier entry); `by` beyond the
/// sum takes everything. Pure, so the move back is the same on every run.
fn shrink(counts: &[(Name, u32)], by: u32) -> Vec<u32> {
    let sum: u64 = counts.iter().map(|(_, n)| u64::from(*n)).sum();
    let left = sum.saturating_sub(u64::from(by));
    if sum == 0 {
        return vec![0; counts.len()];
    }
    let mut kept: Vec<u64> = counts
        .iter()
        .map(|(_, n)| u64::from(*n) * left / sum)
        .collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // The remainder of each entry's exact share, largest first.
    order.sort_by_key(|&i| std::cmp::Reverse(u64::from(counts[i].1) * left % sum));
    let mut rest = left - kept.iter().sum::<u64>();
    for i in order {
        if rest == 0 {
            break;
        }
        kept[i] += 1;
        rest -= 1;
    }
    // Each entry keeps at most what it had, so each fits in a u32.
    kept.into_iter()
        .map(|k| u32::try_from(k).unwrap_or(u32::MAX))
        .collect()
}

/// The fleet at a [`Moment`], as the scheduler placed it: what a test
/// checks the scenario against.
pub struct FleetView<'a> {
    fleet: &'a Fleet,
    healthy: &'a [usize],
}

impl FleetView<'_> {
    /// Regions the global tier holds healthy now, ascending.
    pub fn healthy(&self) -> &[usize] {
        self.healthy
    }

    /// Per deployment (in creation order), the region it was first placed
    /// in.
    pub fn homes(&self) -> &[usize] {
        &self.fleet.homes
    }

    /// Per deployment, the replicas placed over all regions.
    pub fn replicas(&self) -> Vec<u32> {
        self.fleet.per_want()
    }

    /// Per node of `region`, in node order, the replicas placed on it.
    pub fn on_nodes(&self, region: usize) -> Vec<u64> {
        let npr = self.fleet.nodes_per_region;
        let used = self.fleet.per_node();
        used.get(region * npr..(region + 1) * npr)
            .map(<[u64]>::to_vec)
            .unwrap_or_default()
    }

    /// Replicas of `region`'s own deployments on its nodes.
    pub fn home_replicas(&self, region: usize) -> u64 {
        self.fleet.home_replicas(region)
    }

    /// Replicas wanted but placed nowhere.
    pub fn unplaced(&self) -> u64 {
        self.fleet.shortfall()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ns: &[u32]) -> Vec<(Name, u32)> {
        ns.iter()
            .enumerate()
            .map(|(i, &n)| (Name::new("region", &format!("r{i}")).unwrap(), n))
            .collect()
    }

    #[test]
    fn shrink_keeps_proportions_and_the_total() {
        assert_eq!(shrink(&counts(&[50, 30, 20]), 50), [25, 15, 10]);
        assert_eq!(shrink(&counts(&[34, 33, 33]), 25), [25, 25, 25]);
        assert_eq!(shrink(&counts(&[34, 33, 33]), 24), [26, 25, 25]);
        assert_eq!(shrink(&counts(&[10, 0]), 20), [0, 0]);
        assert_eq!(shrink(&counts(&[]), 5), Vec::<u32>::new());
        let kept = shrink(&counts(&[7, 11, 13, 17]), 19);
        assert_eq!(kept.iter().sum::<u32>(), 48 - 19);
        assert!(kept.iter().zip([7, 11, 13, 17]).all(|(k, n)| *k <= n));
    }

    #[test]
    fn a_failover_without_room_reports_its_shortfall() {
        // Four regions of three nodes, 1,200 sandboxes (12 deployments of
        // 100, 3 per region), room for 1.5 times as many: 250 per node.
        let regions: Vec<String> = (0..4).map(|r| format!("r{r}")).collect();
        let mut fleet = Fleet::new(&regions, 3, 1_200, 0);
        assert_eq!(fleet.place_all().unwrap().1, 1_200);
        assert_eq!(fleet.spare(), [450.0; 4]);
        // Region 0's 300 fit on region 1 (750 slots, 300 used)...
        let (_, unplaced) = fleet.fail_over(0, &[(1, 1.0)]).unwrap();
        assert_eq!(unplaced, 0);
        assert_eq!(fleet.view(&[1, 2, 3]).on_nodes(0), [0, 0, 0]);
        // ...region 2's do not: 150 short, reported, not an error.
        let (_, unplaced) = fleet.fail_over(2, &[(1, 1.0)]).unwrap();
        assert_eq!(unplaced, 150);
        assert_eq!(fleet.view(&[1, 3]).on_nodes(1), [250, 250, 250]);
        // A failover with no target leaves all of its load unplaced.
        let (_, unplaced) = fleet.fail_over(3, &[]).unwrap();
        assert_eq!(unplaced, 150 + 300);
        // Region 3 back at 100 %: its own 300 home again.
        let (_, unplaced) = fleet.bring_back(3, 1.0).unwrap();
        assert_eq!(unplaced, 150);
        assert_eq!(fleet.home_replicas(3), 300);
    }

    #[test]
    fn headroom_lets_a_small_planet_lose_its_regions() {
        assert_eq!(headroom(120, 3), 1.5);
        assert!((headroom(8, 3) - 8.0 / 5.0 * 1.05).abs() < 1e-12);
        assert!(headroom(8, 3) * 5.0 / 8.0 > 1.0);
    }
}
