//! What a region cell says about itself in the summaries: its capacity,
//! health and load, and each app's status in it — computed from the
//! cell's state, pure, so a node and the simulator report alike.

use state::{Name, State};

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

#[cfg(test)]
mod tests {
    use super::*;
    use state::{Command, Node, PlacementSpec, Quotas, Region, VersionConfig};

    fn n(kind: &'static str, s: &str) -> Name {
        Name::new(kind, s).unwrap()
    }

    fn apply(state: &mut State, command: Command) {
        let described = format!("{command:?}");
        state
            .apply(&command)
            .unwrap_or_else(|r| panic!("{described}: {r}"));
    }

    fn node(name: &str, region: &str, capacity: u32) -> Command {
        Command::PutNode {
            node: Node {
                name: n("node", name),
                region: n("region", region),
                address: format!("{name}:7071"),
                labels: Default::default(),
                capacity,
                api: None,
                gateway: None,
                peer_key: None,
            },
        }
    }

    #[test]
    fn a_cell_reports_its_slots_health_and_each_app_deployed_here() {
        let mut state = State::default();
        for r in ["here", "there"] {
            apply(
                &mut state,
                Command::PutRegion {
                    region: Region::named(n("region", r)),
                },
            );
        }
        apply(&mut state, node("a", "here", 1000));
        apply(&mut state, node("b", "here", 500));
        apply(&mut state, node("c", "there", 700));
        apply(
            &mut state,
            Command::PutTenant {
                name: n("tenant", "t"),
                quotas: Quotas::default(),
            },
        );
        for app in ["shop", "elsewhere"] {
            apply(
                &mut state,
                Command::CreateApp {
                    tenant: n("tenant", "t"),
                    name: n("app", app),
                    route: format!("/{app}"),
                    host: None,
                },
            );
            apply(
                &mut state,
                Command::AddVersion {
                    tenant: n("tenant", "t"),
                    app: n("app", app),
                    digest: "ab".repeat(32),
                    config: VersionConfig::default(),
                },
            );
        }
        apply(
            &mut state,
            Command::SetDeployment {
                tenant: n("tenant", "t"),
                app: n("app", "shop"),
                version: 1,
                regions: [(n("region", "here"), 3), (n("region", "there"), 1)].into(),
            },
        );
        apply(
            &mut state,
            Command::SetDeployment {
                tenant: n("tenant", "t"),
                app: n("app", "elsewhere"),
                version: 1,
                regions: [(n("region", "there"), 2)].into(),
            },
        );
        // Two of the three replicas here placed; one on the other region's node.
        apply(
            &mut state,
            Command::SetPlacements {
                tenant: n("tenant", "t"),
                app: n("app", "shop"),
                placements: vec![
                    PlacementSpec {
                        version: 1,
                        node: n("node", "a"),
                        count: 2,
                    },
                    PlacementSpec {
                        version: 1,
                        node: n("node", "c"),
                        count: 1,
                    },
                ],
            },
        );
        let sight = CellSight {
            voters: 3,
            voters_reached: 3,
            requests_per_sec: 42,
        };
        let (status, apps) = cell_report(&state, &n("region", "here"), sight);
        assert_eq!(status.capacity.sandbox_slots, 1500);
        assert_eq!(status.health, Health::Healthy);
        assert_eq!(status.load.requests_per_sec, 42);
        assert_eq!(apps.len(), 1, "{apps:?}");
        let (key, app) = &apps[0];
        assert_eq!(key.to_string(), "t/shop");
        assert_eq!((app.wanted, app.ready, app.serving), (3, 2, true));
        let lagging = CellSight {
            voters_reached: 2,
            ..sight
        };
        assert_eq!(
            cell_report(&state, &n("region", "here"), lagging).0.health,
            Health::Degraded
        );
    }

    #[test]
    fn a_restarted_node_counts_requests_from_zero() {
        assert_eq!(requests_since(10, 25), 15);
        assert_eq!(requests_since(25, 4), 4);
    }
}
