//! Region failover in `dwcp up --topology`, four times a second:
//!
//! - on the global tier's leader, [`planet::failover::plan`] from this
//!   node's gossip: a region whose members are all down (and that this
//!   member saw alive before, so a node that just started judges nobody)
//!   is failed over to its nearest healthy regions by spare capacity
//!   ([`planet::failover::targets`]), within the hourly guardrail;
//!   one seen healthy again is marked recovered. Each decision is a
//!   committed global record.
//! - on each cell's leader, [`planet::failover::extra_replicas`]: the
//!   cell adds its share of what each app wanted in the failed regions to
//!   its own deployment (an app must already be deployed here: the cell
//!   has its artifacts), and gives it back in steps after the region
//!   recovers ([`planet::failover::cell_resizes`]: the count before the
//!   failover is kept in the register `failover-base/TENANT/APP` and
//!   restored).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cluster::{ClusterNode, GossipView, unix_now_ms};
use planet::failover::{self, Failback};
use planet::summary::{AppKey, Health};
use planet::topology::{RttModel, Topology};
use state::{Command, Name, RegionFailover};

/// How a node takes part in failover.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Automatic failovers allowed in any hour; past that, an operator
    /// approves each (`dwcp failover approve REGION`).
    pub per_hour: u32,
    pub failback: Failback,
}

/// How often the rounds run: a decision waits at most this long after
/// gossip's judgement, and a target at most this long after the decision.
const ROUND: Duration = Duration::from_millis(250);

/// Regions taking a failed region's load.
const TARGETS: usize = 2;

/// Runs the failover rounds until the task is aborted. Needs the node's
/// planet (set before this starts).
pub async fn run(cell: Arc<ClusterNode>, policy: Policy) {
    let Some(planet) = cell.planet() else {
        return;
    };
    let (global, member) = (&planet.global, &planet.gossip);
    let (topology, model) = (&planet.topology, &planet.model);
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_alive: BTreeSet<Name> = BTreeSet::new();
    let mut last_problem = String::new();
    loop {
        tick.tick().await;
        let view = member.view();
        for sight in view.regions() {
            if sight.alive > 0 {
                seen_alive.insert(sight.region);
            }
        }
        let mut problems = Vec::new();
        if global.replica().status().leader == Some(global.id())
            && let Err(e) = decide(global, &view, &seen_alive, topology, model, policy).await
        {
            problems.push(format!("{e:#}"));
        }
        if cell.replica().status().leader == Some(cell.id())
            && let Err(e) = follow(&cell, global, &view, policy).await
        {
            problems.push(format!("{e:#}"));
        }
        let problem = problems.join("; ");
        if problem != last_problem {
            if !problem.is_empty() {
                cluster::say!("", "region failover: {problem}");
            }
            last_problem = problem;
        }
    }
}

/// The global tier leader's round.
async fn decide(
    global: &ClusterNode,
    view: &GossipView,
    seen_alive: &BTreeSet<Name>,
    topology: &Topology,
    model: &RttModel,
    policy: Policy,
) -> Result<()> {
    let sights = view.regions();
    let judged: BTreeMap<Name, Health> = sights
        .iter()
        .filter(|s| seen_alive.contains(&s.region))
        .map(|s| (s.region.clone(), s.judged))
        .collect();
    let spare: Vec<f64> = topology
        .regions
        .iter()
        .map(|r| {
            sights
                .iter()
                .find(|s| s.region == r.name)
                .and_then(|s| s.report)
                .map_or(1.0, |report| report.capacity.sandbox_slots as f64)
        })
        .collect();
    let choose = |failed: &Name, healthy: &[Name]| {
        failover::targets(topology, model, &spare, failed, healthy, TARGETS)
    };
    let records: Vec<RegionFailover> = global.replica().read_local().failovers().cloned().collect();
    for command in failover::plan(unix_now_ms(), &judged, &records, policy.per_hour, choose) {
        if let Command::PutFailover { failover } = &command {
            describe(failover);
        }
        let response = global.write(command).await.context("the global tier")?;
        if let Err(rejection) = response.result {
            anyhow::bail!("recording a failover: {rejection}");
        }
    }
    Ok(())
}

fn describe(f: &RegionFailover) {
    let targets: Vec<String> = f
        .targets
        .iter()
        .map(|(t, s)| format!("{t} {:.1} %", f64::from(*s) / 10.0))
        .collect();
    match (f.recovered_ms, f.approved) {
        (Some(_), _) => cluster::say!("", "region {} is back; its load returns in steps", f.region),
        (None, true) => cluster::say!(
            "",
            "region {} failed: its load goes to {}",
            f.region,
            targets.join(", ")
        ),
        (None, false) => cluster::say!(
            "",
            "region {} failed; the hourly budget of automatic failovers is spent, so it waits for an operator: dwcp failover approve {}",
            f.region,
            f.region
        ),
    }
}

/// A cell leader's round: its deployments resized for the failovers that
/// name its region.
async fn follow(
    cell: &ClusterNode,
    global: &ClusterNode,
    view: &GossipView,
    policy: Policy,
) -> Result<()> {
    let me = Name::new("region", &cell.config().region).context("this node's region")?;
    let records: Vec<RegionFailover> = global.replica().read_local().failovers().cloned().collect();
    let wanted_in = |failed: &Name| -> Vec<(AppKey, u32)> {
        view.summary
            .apps()
            .filter_map(|(key, regions)| {
                let wanted = regions
                    .into_iter()
                    .find(|(region, _)| *region == failed)
                    .map(|(_, status)| status.wanted)?;
                Some((key.clone(), wanted))
            })
            .collect()
    };
    let extra = failover::extra_replicas(unix_now_ms(), &me, &records, wanted_in, policy.failback);
    let resizes = failover::cell_resizes(&cell.replica().read_local(), &me, &extra);
    for resize in resizes {
        for command in resize.commands {
            write(cell, command).await?;
        }
        cluster::say!(
            "",
            "region failover: {} now runs {} replicas here",
            resize.app,
            resize.count
        );
    }
    Ok(())
}

async fn write(cell: &ClusterNode, command: Command) -> Result<()> {
    let what = format!("{command:?}");
    let response = cell
        .write_in_cell(command)
        .await
        .with_context(|| format!("writing {what}"))?;
    response
        .result
        .map(drop)
        .map_err(|r| anyhow::anyhow!("{what}: refused: {r}"))
}
