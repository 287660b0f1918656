//! [`admit`]: whether a want may be accepted at all, before it is placed:
//! the tenant's quota, the regions it is pinned to, and whether the
//! eligible nodes of each region have room for it.
//!
//! Admission is a promise check, not a reservation: it looks at free slots
//! now, so two wants admitted one after the other may still compete for
//! the same slots, and [`place`](crate::place) reports what then does not
//! fit as a [`Rejection`].

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use serde::{Deserialize, Serialize};
use state::{Name, Quotas};

use crate::input::{NodeView, Placement, Want, placement_key};
use crate::rejection::Rejection;

/// What a tenant already uses, apart from the want being admitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Replicas wanted by the tenant's other wants (other apps, and other
    /// versions of the same app: during a rollout both versions run).
    pub replicas: u64,
}

impl Usage {
    /// The usage of `tenant` over `wants`, leaving out the want with key
    /// `(tenant, app, version)` (the one being admitted, when it replaces
    /// an earlier form of itself).
    pub fn of(tenant: &Name, wants: &[Want], except: (&Name, u64)) -> Usage {
        let replicas = wants
            .iter()
            .filter(|w| &w.tenant == tenant && (&w.app, w.version) != except)
            .map(Want::replicas)
            .sum();
        Usage { replicas }
    }
}

/// Admits `request` for a tenant with `quotas` that already uses `usage`,
/// given the nodes and current placements. Checks, in this order: the
/// replica quota; then each region in name order: that it is allowed by
/// the pinning, that some healthy node there meets the constraints, and
/// that those nodes have free slots (plus the replicas the request already
/// holds there) for what it wants. The first failure is returned.
pub fn admit(
    quotas: &Quotas,
    usage: &Usage,
    request: &Want,
    nodes: &[NodeView],
    current: &[Placement],
) -> Result<(), Rejection> {
    let wanted = usage.replicas.saturating_add(request.replicas());
    if wanted > u64::from(quotas.max_replicas) {
        return Err(Rejection::Quota {
            tenant: request.tenant.clone(),
            limit: quotas.max_replicas,
            wanted,
        });
    }
    let c = &request.constraints;
    for (region, &replicas) in &request.regions {
        if replicas > 0 && !c.allows_region(region) {
            return Err(Rejection::RegionNotAllowed {
                want: request.key(),
                region: region.clone(),
                pinned: c.pinned_regions.clone(),
            });
        }
    }
    if request.regions.values().all(|&r| r == 0) {
        return Ok(());
    }

    // Slots used on each node, and the request's own replicas per node.
    let mut used: HashMap<&str, (u64, u64), BuildHasherDefault<DefaultHasher>> = HashMap::default();
    let key = request.key_ref();
    for p in current {
        let e = used.entry(p.node.as_str()).or_insert((0, 0));
        e.0 += u64::from(p.count);
        if placement_key(p) == key {
            e.1 += u64::from(p.count);
        }
    }
    for (region, &replicas) in &request.regions {
        if replicas == 0 {
            continue;
        }
        let mut eligible = 0u32;
        let mut available = 0u64;
        for node in nodes.iter().filter(|n| c.admits(n, region)) {
            eligible += 1;
            let (all, own) = used.get(node.name.as_str()).copied().unwrap_or((0, 0));
            available += u64::from(node.offered()).saturating_sub(all) + own;
        }
        if eligible == 0 {
            return Err(Rejection::NoEligibleNode {
                want: request.key(),
                region: region.clone(),
                constraints: c.to_string(),
            });
        }
        if available < u64::from(replicas) {
            return Err(Rejection::InsufficientCapacity {
                want: request.key(),
                region: region.clone(),
                wanted: replicas,
                // Less than `replicas`, a u32.
                available: available as u32,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Constraints, LabelSelector};

    fn name(s: &str) -> Name {
        Name::new("test", s).expect("test names are valid")
    }

    fn node(n: &str, region: &str, capacity: u32, labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: name(n),
            region: name(region),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            capacity,
            reserved: 0,
            healthy: true,
        }
    }

    fn want(app: &str, regions: &[(&str, u32)]) -> Want {
        Want {
            tenant: name("acme"),
            app: name(app),
            version: 1,
            regions: regions.iter().map(|&(r, n)| (name(r), n)).collect(),
            constraints: Constraints::default(),
        }
    }

    fn placement(app: &str, node: &str, count: u32) -> Placement {
        Placement {
            tenant: name("acme"),
            app: name(app),
            version: 1,
            node: name(node),
            count,
        }
    }

    fn quotas(max_replicas: u32) -> Quotas {
        Quotas {
            max_apps: 10,
            max_replicas,
            ..Quotas::default()
        }
    }

    #[test]
    fn admits_what_fits() {
        let nodes = [node("a", "eu", 4, &[]), node("b", "eu", 4, &[])];
        let w = want("web", &[("eu", 8)]);
        assert_eq!(
            admit(&quotas(10), &Usage::default(), &w, &nodes, &[]),
            Ok(())
        );
    }

    #[test]
    fn quota_names_tenant_limit_and_excess() {
        let wants = [want("api", &[("eu", 6)]), want("web", &[("eu", 2)])];
        let request = want("web", &[("eu", 5)]);
        let usage = Usage::of(&name("acme"), &wants, (&name("web"), 1));
        assert_eq!(usage.replicas, 6);
        let err = admit(&quotas(10), &usage, &request, &[], &[]).unwrap_err();
        assert_eq!(
            err,
            Rejection::Quota {
                tenant: name("acme"),
                limit: 10,
                wanted: 11
            }
        );
        assert!(
            err.to_string().contains("over its quota of 10 by 1"),
            "{err}"
        );
    }

    #[test]
    fn pinned_regions_refuse_others() {
        let mut w = want("web", &[("eu", 1), ("us", 1)]);
        w.constraints.pinned_regions = vec![name("eu")];
        let nodes = [node("a", "eu", 4, &[]), node("b", "us", 4, &[])];
        let err = admit(&quotas(10), &Usage::default(), &w, &nodes, &[]).unwrap_err();
        assert!(
            matches!(&err, Rejection::RegionNotAllowed { region, .. } if region.as_str() == "us"),
            "{err:?}"
        );
    }

    #[test]
    fn no_eligible_node_names_region_and_constraints() {
        let mut w = want("web", &[("eu", 1)]);
        w.constraints.affinity = vec![LabelSelector::new("disk", "ssd")];
        let mut sick = node("c", "eu", 4, &[("disk", "ssd")]);
        sick.healthy = false;
        let nodes = [
            node("a", "eu", 4, &[("disk", "hdd")]),
            node("b", "us", 4, &[("disk", "ssd")]),
            sick,
        ];
        let err = admit(&quotas(10), &Usage::default(), &w, &nodes, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "acme/web@1: no healthy node in region `eu` has affinity [disk=ssd]"
        );
    }

    #[test]
    fn capacity_counts_used_slots_but_not_the_requests_own() {
        let nodes = [node("a", "eu", 4, &[]), node("b", "eu", 4, &[])];
        let current = [placement("api", "a", 3), placement("web", "b", 2)];
        // Free: a 1, b 2, plus web's own 2 on b = 5.
        let w = want("web", &[("eu", 5)]);
        assert_eq!(
            admit(&quotas(100), &Usage::default(), &w, &nodes, &current),
            Ok(())
        );
        let w = want("web", &[("eu", 6)]);
        let err = admit(&quotas(100), &Usage::default(), &w, &nodes, &current).unwrap_err();
        assert_eq!(
            err,
            Rejection::InsufficientCapacity {
                want: w.key(),
                region: name("eu"),
                wanted: 6,
                available: 5
            }
        );
        assert!(err.to_string().contains("(1 short)"), "{err}");
    }

    #[test]
    fn reserved_slots_are_not_offered() {
        let mut a = node("a", "eu", 4, &[]);
        a.reserved = 3;
        let w = want("web", &[("eu", 2)]);
        let err = admit(&quotas(100), &Usage::default(), &w, &[a], &[]).unwrap_err();
        assert!(
            matches!(err, Rejection::InsufficientCapacity { available: 1, .. }),
            "{err:?}"
        );
    }
}
