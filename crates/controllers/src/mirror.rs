//! The global tier's mirror, on each region cell's leader: a cell holds
//! copies of the global records (tenants, app definitions, regions,
//! failovers), and once a second its leader reads them as the global tier
//! holds them, asks the pure [`planet::tier::mirror`] what differs, and
//! writes those commands into the cell. Only the leader acts; a round that
//! cannot reach the global tier changes nothing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cluster::ClusterNode;
use planet::tier::{self, GlobalRecords};

/// How often the cell's leader compares its copies with the global tier.
const MIRROR_EVERY: Duration = Duration::from_secs(1);

/// On the cell's leader, once a second: the global records as the global
/// tier holds them now (a linearizable read), against the cell's copies
/// taken just before, and the commands that close the gap. A round that
/// cannot reach the global tier changes nothing: the cell keeps serving
/// what it has.
pub async fn run(cell: Arc<ClusterNode>, global: Arc<ClusterNode>) {
    let mut tick = tokio::time::interval(MIRROR_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem = String::new();
    loop {
        tick.tick().await;
        if cell.replica().status().leader != Some(cell.id()) {
            continue;
        }
        let problem = match round(&cell, &global).await {
            Ok(()) => String::new(),
            Err(e) => format!("{e:#}"),
        };
        if problem != last_problem {
            if problem.is_empty() {
                cluster::say!("", "the mirror of the global tier caught up");
            } else {
                cluster::say!("", "the mirror of the global tier: {problem}");
            }
            last_problem = problem;
        }
    }
}

async fn round(cell: &ClusterNode, global: &ClusterNode) -> Result<()> {
    // The cell first, then the global tier: see `tier::mirror`.
    let here = GlobalRecords::of(&cell.replica().read_local());
    let there = global
        .read(GlobalRecords::of)
        .await
        .context("reading the global tier")?;
    for command in tier::mirror(&there, &here) {
        let what = format!("{command:?}");
        let response = cell
            .write_in_cell(command)
            .await
            .with_context(|| format!("copying {what}"))?;
        if let Err(rejection) = response.result {
            anyhow::bail!("copying {what}: refused: {rejection}");
        }
    }
    Ok(())
}
