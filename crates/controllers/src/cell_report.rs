//! The cell's report to gossip, once a second: every node refreshes its
//! gossip member's seeds from the global tier's members
//! ([`planet::summary::seeds`]); the cell's leader reads its state and
//! reports its region and apps ([`planet::summary::cell_report`]) — what
//! other regions judge it and route by. It writes no command: its output
//! is the gossip member's summary.

use std::sync::Arc;
use std::time::Duration;

use cluster::ClusterNode;
use planet::summary;
use state::Name;

/// How often a node refreshes its seeds and the cell's leader reports.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Once a second: refresh gossip's seeds from the global tier's members;
/// on the cell's leader, report the region and its apps
/// ([`planet::summary::cell_report`]). Needs the node's planet (set
/// before this starts).
pub async fn run(cell: Arc<ClusterNode>) {
    let Some(planet) = cell.planet() else {
        return;
    };
    let Ok(region) = Name::new("region", &cell.config().region) else {
        return;
    };
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(std::time::Instant, u64)> = None;
    loop {
        tick.tick().await;
        planet
            .gossip
            .set_seeds(summary::seeds(&planet.global.replica().read_local()));
        let status = cell.replica().status();
        if status.leader != Some(cell.id()) {
            last = None;
            continue;
        }
        let head = status.last_log_index.unwrap_or(0);
        let reached = status
            .voters
            .iter()
            .filter(|&&v| {
                v == cell.id()
                    || status
                        .matched
                        .as_ref()
                        .and_then(|m| m.get(&v).copied().flatten())
                        .is_some_and(|i| head.saturating_sub(i) <= LAGGING)
            })
            .count();
        let (region_status, apps) = {
            let state = cell.replica().read_local();
            let served = summary::requests_served(&state);
            let now = std::time::Instant::now();
            let requests_per_sec = match last {
                Some((then, before)) => {
                    let secs = now.duration_since(then).as_secs_f64().max(0.001);
                    (summary::requests_since(before, served) as f64 / secs).round() as u64
                }
                None => 0,
            };
            last = Some((now, served));
            let sight = summary::CellSight {
                voters: status.voters.len(),
                voters_reached: reached,
                requests_per_sec,
            };
            summary::cell_report(&state, &region, sight)
        };
        planet.gossip.report_region(region_status);
        for (app, status) in apps {
            planet.gossip.report_app(app, status);
        }
    }
}

/// A voter whose log is this many entries behind the leader's counts as
/// not reached (the cell is degraded).
const LAGGING: u64 = 100;
