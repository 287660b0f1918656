//! What a region cell says about itself in the summaries: its capacity,
//! health and load, and each app's status in it — computed from the
//! cell's state, pure, so a node and the simulator report alike.

use crate::{Name, State};

use super::crdt::AppKey;
use super::status::{AppStatus, Capacity, Health, Load, RegionStatus};

/// What the cell's leader observes besides the state: how many of the
/// cell's voters it reaches, and the requests its gateways served per
/// second over the last round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellSight {
    pub voters: usize,
    pub voters_reached: usize,
    pub requests_per_sec: u64,
}

/// The cell's report about `region`: capacity is its nodes' sandbox slots;
/// it is healthy when its leader reaches every voter, degraded when only
/// a quorum; apps are those deployed in the region, `wanted` the
/// deployment's replicas there, `ready` the placed ones of the deployed
/// version, `serving` whether any are placed.
pub fn cell_report(
    state: &State,
    region: &Name,
    sight: CellSight,
) -> (RegionStatus, Vec<(AppKey, AppStatus)>) {
    let slots = state
        .nodes()
        .filter(|n| &n.region == region)
        .map(|n| u64::from(n.capacity))
        .sum();
    let health = if sight.voters_reached >= sight.voters {
        Health::Healthy
    } else {
        Health::Degraded
    };
    let status = RegionStatus {
        capacity: Capacity {
            sandbox_slots: slots,
            ..Capacity::default()
        },
        health,
        load: Load {
            requests_per_sec: sight.requests_per_sec,
            ..Load::default()
        },
    };
    let apps = state
        .deployments()
        .filter_map(|d| {
            let wanted = *d.regions.get(region)?;
            let ready: u32 = state
                .placements_of_app(&d.tenant, &d.app)
                .filter(|p| p.version == d.version)
                .filter(|p| state.node(&p.node).is_some_and(|n| &n.region == region))
                .map(|p| p.count)
                .sum();
            let key = AppKey {
                tenant: d.tenant.clone(),
                app: d.app.clone(),
            };
            Some((
                key,
                AppStatus {
                    wanted,
                    ready,
                    serving: ready > 0,
                },
            ))
        })
        .collect();
    (status, apps)
}

/// Requests served so far by the cell's nodes, summed over their reports
/// (counters that restart with a node; [`requests_since`] handles that).
pub fn requests_served(state: &State) -> u64 {
    state
        .reports()
        .flat_map(|r| &r.versions)
        .map(|v| v.requests)
        .sum()
}

/// Requests between two readings of [`requests_served`]; a reading lower
/// than the one before (a node restarted) counts from zero.
pub fn requests_since(before: u64, now: u64) -> u64 {
    if now >= before { now - before } else { now }
}
