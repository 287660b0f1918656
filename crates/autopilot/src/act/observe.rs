//! The cluster as the guardrails read it, built from the store: which
//! nodes serve, the regions, the apps' replicas and versions, the warm
//! pools, what the replicas cost. Pure: liveness and the store's voters
//! are the caller's (they live in the replica, not in the state).

use std::collections::BTreeMap;

use state::act::book::Schedule;
use state::act::view::{
    AppView, ClusterView, NodeView, PoolView, RegionView, TenantView, VersionView,
};
use state::{Name, State};

/// What one replica costs an hour when the cluster has no prices: one
/// unit, so that the cost guardrail still counts replicas.
pub const UNIT_REPLICA_COST_PER_HOUR: f64 = 1.0;

/// The view of `state`, with nodes alive as `healthy` says and `voters`
/// the store's voters.
pub fn cluster_view(
    state: &State,
    healthy: impl Fn(&Name) -> bool,
    voters: &[String],
) -> ClusterView {
    let book = state.acts();
    let mut sandboxes: BTreeMap<&str, u32> = BTreeMap::new();
    for p in state.placements() {
        *sandboxes.entry(p.node.as_str()).or_default() += p.count;
    }
    let nodes: Vec<NodeView> = state
        .nodes()
        .map(|n| {
            let schedule = book.schedules.get(n.name.as_str()).copied();
            NodeView {
                name: n.name.to_string(),
                region: n.region.to_string(),
                serving: healthy(&n.name) && schedule.is_none(),
                cordoned: schedule.is_some(),
                voter: voters.iter().any(|v| v == n.name.as_str()),
                sandboxes: sandboxes.get(n.name.as_str()).copied().unwrap_or(0),
            }
        })
        .collect();
    let failed: BTreeMap<&str, Option<String>> = state
        .failovers()
        .filter(|f| f.recovered_ms.is_none())
        .map(|f| {
            (
                f.region.as_str(),
                f.targets.first().map(|(r, _)| r.to_string()),
            )
        })
        .collect();
    let regions = state
        .regions()
        .map(|r| {
            let failed_over_to = failed.get(r.name.as_str()).cloned().flatten();
            RegionView {
                name: r.name.to_string(),
                serving: !failed.contains_key(r.name.as_str())
                    && nodes
                        .iter()
                        .any(|n| n.region == r.name.as_str() && n.serving),
                failed_over_to,
            }
        })
        .collect();
    // A sandbox-hour at the cluster's price, when it has one.
    let replica_cost_per_hour = state
        .prices()
        .map(|p| p.per_sandbox_second * 3600.0)
        .filter(|c| *c > 0.0)
        .unwrap_or(UNIT_REPLICA_COST_PER_HOUR);
    let mut cost_per_hour = 0.0;
    let apps = state
        .deployments()
        .map(|d| {
            let replicas = u32::try_from(d.replicas()).unwrap_or(u32::MAX);
            cost_per_hour += f64::from(replicas) * replica_cost_per_hour;
            let max_replicas = state
                .tenant(&d.tenant)
                .map_or(u32::MAX, |t| t.quotas.max_replicas);
            let rollout = state.active_rollout(&d.tenant, &d.app);
            let mut numbers: Vec<u64> = state
                .versions(&d.tenant, &d.app)
                .filter(|v| v.baseline_of.is_none())
                .map(|v| v.number)
                .collect();
            numbers.sort_unstable();
            let versions = numbers
                .iter()
                .enumerate()
                .map(|(i, &v)| VersionView {
                    version: v,
                    // Deployed and not in a rollout: it passed one (or
                    // was deployed whole).
                    passed_rollout: v <= d.version && rollout.is_none_or(|r| r.to != v),
                    previous: match rollout {
                        Some(r) if r.to == v => Some(r.from),
                        _ => i.checked_sub(1).map(|j| numbers[j]),
                    },
                })
                .collect();
            AppView {
                tenant: d.tenant.to_string(),
                app: d.app.to_string(),
                replicas,
                max_replicas,
                replica_cost_per_hour,
                versions,
            }
        })
        .collect();
    let pools = state
        .placements()
        .map(|p| PoolView {
            tenant: p.tenant.to_string(),
            app: p.app.to_string(),
            version: p.version,
            node: p.node.to_string(),
            sandboxes: p.count,
        })
        .collect();
    let _ = Schedule::Cordoned;
    ClusterView {
        nodes,
        regions,
        apps,
        pools,
        tenants: tenants(state),
        cost_per_hour,
    }
}

/// Each tenant's concurrency: its quota, and what one of its apps may
/// have in flight now — the quota, or less when every deployed version
/// asks for less (`config.max_concurrency`; the gateway applies the
/// smaller of the two).
fn tenants(state: &State) -> Vec<TenantView> {
    state
        .tenants()
        .map(|t| {
            let quota = t.quotas.max_concurrency;
            let asked = state
                .deployments()
                .filter(|d| d.tenant == t.name)
                .filter_map(|d| {
                    state
                        .versions(&d.tenant, &d.app)
                        .find(|v| v.number == d.version)
                        .map(|v| v.config.max_concurrency)
                })
                .max();
            TenantView {
                tenant: t.name.to_string(),
                concurrency: asked.map_or(quota, |a| a.min(quota)),
                quota,
            }
        })
        .collect()
}
