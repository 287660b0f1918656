//! Random clusters and troubles for the act tests, from a seed.

#![allow(dead_code)] // each test file uses a part

use autopilot::act::view::{AppView, NodeView, PoolView, RegionView, TenantView, VersionView};
use autopilot::act::{
    Basis, ClusterView, Controls, FaultClass, Ledger, Limits, Place, SignalEvidence, Trouble,
};
use rng::SplitMix64;

pub const START_MS: u64 = 1_800_000_000_000;

/// A cluster of 1 to 4 regions, 2 to 12 nodes (some down, some cordoned,
/// the first 3 or 5 voters), 1 to 4 apps with 1 to 3 versions, pools on
/// the nodes, 1 to 3 tenants.
pub fn cluster(rng: &mut SplitMix64) -> ClusterView {
    let regions: Vec<String> = (0..1 + rng.below(4)).map(|r| format!("r{r}")).collect();
    let nodes_n = 2 + rng.below(11);
    let voters = if nodes_n >= 5 { 5 } else { nodes_n.min(3) };
    let nodes: Vec<NodeView> = (0..nodes_n)
        .map(|i| {
            let serving = rng.chance(85);
            let cordoned = !serving && rng.chance(30);
            NodeView {
                name: format!("n{i}"),
                region: regions[i % regions.len()].clone(),
                serving,
                cordoned,
                voter: i < voters,
                sandboxes: rng.below(120) as u32,
            }
        })
        .collect();
    let region_views = regions
        .iter()
        .map(|r| RegionView {
            name: r.clone(),
            serving: nodes.iter().any(|n| &n.region == r && n.serving) && rng.chance(90),
            failed_over_to: None,
        })
        .collect();
    let tenants: Vec<String> = (0..1 + rng.below(3)).map(|t| format!("t{t}")).collect();
    let mut apps = Vec::new();
    let mut pools = Vec::new();
    let mut cost = 0.0;
    for a in 0..1 + rng.below(4) {
        let tenant = tenants[a % tenants.len()].clone();
        let versions_n = 1 + rng.below(3) as u64;
        let versions = (1..=versions_n)
            .map(|v| VersionView {
                version: v,
                passed_rollout: v < versions_n || rng.chance(50),
                previous: (v > 1).then(|| v - 1),
            })
            .collect();
        let replicas = 1 + rng.below(8) as u32;
        let replica_cost_per_hour = 0.5 + rng.below(4) as f64;
        cost += f64::from(replicas) * replica_cost_per_hour;
        for n in &nodes {
            if rng.chance(40) {
                pools.push(PoolView {
                    tenant: tenant.clone(),
                    app: format!("a{a}"),
                    version: versions_n,
                    node: n.name.clone(),
                    sandboxes: rng.below(90) as u32,
                });
            }
        }
        apps.push(AppView {
            tenant,
            app: format!("a{a}"),
            replicas,
            max_replicas: replicas + rng.below(10) as u32,
            replica_cost_per_hour,
            versions,
        });
    }
    ClusterView {
        nodes,
        regions: region_views,
        pools,
        tenants: tenants
            .into_iter()
            .map(|tenant| TenantView {
                tenant,
                concurrency: 1 + rng.below(200) as u32,
                // As decisions stored before the quota was kept read.
                quota: 0,
            })
            .collect(),
        apps,
        cost_per_hour: cost,
    }
}

/// A trouble of a random class on a fitting place of `view`.
pub fn trouble(rng: &mut SplitMix64, view: &ClusterView, now_ms: u64) -> Trouble {
    use autopilot::act::trouble::FAULT_CLASSES;
    let class = FAULT_CLASSES[rng.below(FAULT_CLASSES.len())];
    let node = &view.nodes[rng.below(view.nodes.len())];
    let app = &view.apps[rng.below(view.apps.len())];
    let version = app.versions[rng.below(app.versions.len())].version;
    let place = match class {
        FaultClass::NodeSilent
        | FaultClass::NodeSlow
        | FaultClass::MemoryExhaustion
        | FaultClass::DiskFull => Place::Node {
            node: node.name.clone(),
        },
        FaultClass::PoolUnhealthy => Place::VersionOnNode {
            tenant: app.tenant.clone(),
            app: app.app.clone(),
            version,
            node: node.name.clone(),
        },
        FaultClass::VersionErrors | FaultClass::VersionLatency => Place::Version {
            tenant: app.tenant.clone(),
            app: app.app.clone(),
            version,
        },
        FaultClass::SlotExhaustion | FaultClass::LoadPastCapacity => Place::App {
            tenant: app.tenant.clone(),
            app: app.app.clone(),
        },
        FaultClass::TenantFlood => Place::Tenant {
            tenant: app.tenant.clone(),
        },
        FaultClass::RegionLost | FaultClass::RegionCapacity => Place::Region {
            region: view.regions[rng.below(view.regions.len())].name.clone(),
        },
    };
    let basis = if rng.chance(30) {
        Basis::Forecast
    } else {
        Basis::Observed
    };
    Trouble {
        source: format!("test {}", rng.below(1000)),
        class,
        place,
        basis,
        score: 0.3 + 0.7 * rng.next_f64(),
        seen_ms: now_ms,
        signal: SignalEvidence {
            series: format!("{class} signal"),
            observed: rng.below(1000) as f64 / 7.0,
            band_low: rng.chance(50).then_some(1.0),
            band_high: rng.chance(50).then_some(9.5),
            limit: rng.chance(50).then_some(100.0),
        },
    }
}

/// The operator's switches: paused 1 time in 10, destructive actions
/// enabled 8 times in 10.
pub fn controls(rng: &mut SplitMix64) -> Controls {
    Controls {
        paused: rng.chance(10),
        destructive_enabled: rng.chance(80),
    }
}

/// A view with `nodes` nodes in one region, all serving, none voters,
/// each with `sandboxes` sandboxes; one app `t/a` with `replicas`.
pub fn small_view(nodes: usize, sandboxes: u32, replicas: u32) -> ClusterView {
    ClusterView {
        nodes: (0..nodes)
            .map(|i| NodeView {
                name: format!("n{i}"),
                region: "r0".into(),
                serving: true,
                cordoned: false,
                voter: false,
                sandboxes,
            })
            .collect(),
        regions: (0..4)
            .map(|r| RegionView {
                name: format!("r{r}"),
                serving: true,
                failed_over_to: None,
            })
            .collect(),
        apps: vec![AppView {
            tenant: "t".into(),
            app: "a".into(),
            replicas,
            max_replicas: 100,
            replica_cost_per_hour: 1.0,
            versions: vec![
                VersionView {
                    version: 1,
                    passed_rollout: true,
                    previous: None,
                },
                VersionView {
                    version: 2,
                    passed_rollout: false,
                    previous: Some(1),
                },
            ],
        }],
        pools: vec![PoolView {
            tenant: "t".into(),
            app: "a".into(),
            version: 2,
            node: "n0".into(),
            sandboxes: 30,
        }],
        tenants: vec![TenantView {
            tenant: "t".into(),
            concurrency: 100,
            quota: 1000,
        }],
        cost_per_hour: f64::from(replicas),
    }
}

/// Default limits, an empty ledger.
pub fn fresh() -> (Ledger, Limits) {
    (Ledger::default(), Limits::default())
}
