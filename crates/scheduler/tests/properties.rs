//! Properties of `place` over many random inputs, each drawn from a fixed
//! seed with DWCP's one seeded generator (`rng`): capacity is never
//! exceeded, constraints always hold, every shortfall is reported, the
//! caller's order does not matter, and a plan over its own result changes
//! nothing.

use std::collections::BTreeMap;

use rng::SplitMix64;
use scheduler::{Constraints, LabelSelector, NodeView, Placement, Policy, Rejection, Want, place};
use state::Name;

fn name(s: &str) -> Name {
    Name::new("test", s).expect("generated names are valid")
}

const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const LABELS: [(&str, [&str; 2]); 2] = [("disk", ["ssd", "hdd"]), ("zone", ["a", "b"])];

struct Input {
    nodes: Vec<NodeView>,
    wants: Vec<Want>,
    current: Vec<Placement>,
}

fn selector(rng: &mut SplitMix64) -> LabelSelector {
    let (key, values) = LABELS[rng.below_u64(2) as usize];
    LabelSelector::new(key, values[rng.below_u64(2) as usize])
}

fn input(rng: &mut SplitMix64) -> Input {
    let nodes: Vec<NodeView> = (0..1 + rng.below_u64(30))
        .map(|i| {
            let mut labels = BTreeMap::new();
            for (k, v) in LABELS {
                if rng.chance(80) {
                    labels.insert(k.to_string(), v[rng.below_u64(2) as usize].to_string());
                }
            }
            NodeView {
                name: name(&format!("n{i}")),
                region: name(REGIONS[rng.below_u64(3) as usize]),
                labels,
                capacity: rng.below_u64(12) as u32,
                reserved: if rng.chance(20) {
                    rng.below_u64(6) as u32
                } else {
                    0
                },
                healthy: rng.chance(85),
            }
        })
        .collect();
    let wants: Vec<Want> = (0..rng.below_u64(10))
        .map(|i| {
            let mut regions = BTreeMap::new();
            for r in REGIONS {
                if rng.chance(60) {
                    regions.insert(name(r), rng.below_u64(15) as u32);
                }
            }
            let mut constraints = Constraints {
                policy: if rng.chance(50) {
                    Policy::Spread
                } else {
                    Policy::BinPack
                },
                ..Constraints::default()
            };
            if rng.chance(30) {
                constraints.affinity.push(selector(rng));
            }
            if rng.chance(20) {
                constraints.anti_affinity.push(selector(rng));
            }
            if rng.chance(15) {
                constraints
                    .pinned_regions
                    .push(name(REGIONS[rng.below_u64(3) as usize]));
            }
            Want {
                tenant: name(if i % 2 == 0 { "acme" } else { "globex" }),
                app: name(&format!("app{i}")),
                version: 1 + rng.below_u64(2),
                regions,
                constraints,
            }
        })
        .collect();
    // Current placements: some valid, some on unknown nodes or for unknown
    // wants, some past a node's capacity.
    let current: Vec<Placement> = (0..rng.below_u64(25))
        .map(|_| {
            let (tenant, app, version) =
                match wants.get(rng.below_u64(wants.len() as u64 + 2) as usize) {
                    Some(w) if rng.chance(90) => (w.tenant.clone(), w.app.clone(), w.version),
                    _ => (name("acme"), name("old"), 1),
                };
            Placement {
                tenant,
                app,
                version,
                node: name(&format!("n{}", rng.below_u64(nodes.len() as u64 + 3))),
                count: 1 + rng.below_u64(5) as u32,
            }
        })
        .collect();
    Input {
        nodes,
        wants,
        current,
    }
}

#[test]
fn random_inputs_keep_every_invariant() {
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    // How often each kind of event came up, so the test shows it covers them.
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for case in 0..2000 {
        let Input {
            mut nodes,
            mut wants,
            mut current,
        } = input(&mut rng);
        let plan = place(&nodes, &wants, &current).expect("generated input has no duplicates");
        let ctx = || format!("case {case}: {plan:?}");
        for c in &plan.changes {
            *seen.entry(format!("{:?}", c.reason)).or_default() += 1;
        }
        for r in &plan.rejections {
            let kind = format!("{r:?}");
            let kind = kind.split_whitespace().next().unwrap_or_default();
            *seen.entry(kind.to_string()).or_default() += 1;
        }

        // No node past its capacity less reserved; nothing on a sick node or
        // on one the want's constraints exclude.
        let by_name: BTreeMap<&Name, &NodeView> = nodes.iter().map(|n| (&n.name, n)).collect();
        let mut used: BTreeMap<&Name, u64> = BTreeMap::new();
        let mut held: BTreeMap<(&Name, &Name, u64, &Name), u64> = BTreeMap::new();
        for p in &plan.placements {
            assert!(p.count > 0, "{}", ctx());
            let node = by_name
                .get(&p.node)
                .unwrap_or_else(|| panic!("unknown node {}", ctx()));
            let want = wants
                .iter()
                .find(|w| (&w.tenant, &w.app, w.version) == (&p.tenant, &p.app, p.version))
                .unwrap_or_else(|| panic!("unwanted placement {p:?}, {}", ctx()));
            assert!(
                want.constraints.admits(node, &node.region),
                "{p:?} {}",
                ctx()
            );
            assert!(want.constraints.allows_region(&node.region), "{}", ctx());
            *used.entry(&p.node).or_default() += u64::from(p.count);
            *held
                .entry((&p.tenant, &p.app, p.version, &node.region))
                .or_default() += u64::from(p.count);
        }
        for (n, u) in &used {
            let node = by_name[n];
            assert!(
                *u <= u64::from(node.capacity.saturating_sub(node.reserved)),
                "node {n} holds {u}: {}",
                ctx()
            );
        }

        // Every region of every want gets what it wants, or a rejection
        // says why not, and never more.
        for w in &wants {
            for (region, &wanted) in &w.regions {
                let got = held
                    .get(&(&w.tenant, &w.app, w.version, region))
                    .copied()
                    .unwrap_or(0);
                assert!(got <= u64::from(wanted), "{}", ctx());
                let rejected = plan.rejections.iter().find(|r| match r {
                    Rejection::RegionNotAllowed {
                        want, region: rr, ..
                    }
                    | Rejection::NoEligibleNode {
                        want, region: rr, ..
                    }
                    | Rejection::InsufficientCapacity {
                        want, region: rr, ..
                    } => *want == w.key() && rr == region,
                    Rejection::Quota { .. } => false,
                });
                if got < u64::from(wanted) {
                    assert!(
                        rejected.is_some(),
                        "{} short in {region}: {}",
                        w.key(),
                        ctx()
                    );
                }
                if let Some(Rejection::InsufficientCapacity { available, .. }) = rejected {
                    assert_eq!(u64::from(*available), got, "{}", ctx());
                }
            }
        }

        // Changes lead from `current` to `placements`.
        let mut counts: BTreeMap<(Name, Name, u64, Name), i64> = BTreeMap::new();
        for p in &current {
            *counts
                .entry((p.tenant.clone(), p.app.clone(), p.version, p.node.clone()))
                .or_default() += i64::from(p.count);
        }
        for c in &plan.changes {
            let e = counts
                .entry((c.tenant.clone(), c.app.clone(), c.version, c.node.clone()))
                .or_default();
            assert_eq!(*e, i64::from(c.from), "{c:?} {}", ctx());
            *e = i64::from(c.to);
        }
        counts.retain(|_, v| *v != 0);
        let planned: BTreeMap<(Name, Name, u64, Name), i64> = plan
            .placements
            .iter()
            .map(|p| {
                (
                    (p.tenant.clone(), p.app.clone(), p.version, p.node.clone()),
                    i64::from(p.count),
                )
            })
            .collect();
        assert_eq!(counts, planned, "{}", ctx());

        // Stable: a plan over its own result changes nothing.
        let again = place(&nodes, &wants, &plan.placements).expect("valid");
        assert_eq!(again.placements, plan.placements, "{}", ctx());
        assert!(again.changes.is_empty(), "{:?} {}", again.changes, ctx());
        assert_eq!(again.rejections, plan.rejections, "{}", ctx());

        // Deterministic whatever the order of the input.
        rng.shuffle(&mut nodes);
        rng.shuffle(&mut wants);
        rng.shuffle(&mut current);
        assert_eq!(
            place(&nodes, &wants, &current).expect("valid"),
            plan,
            "case {case}"
        );
    }
    for kind in [
        "Placed",
        "ScaledDown",
        "OverCapacity",
        "NodeUnhealthy",
        "NodeGone",
        "NotEligible",
        "NotWanted",
        "RegionNotAllowed",
        "NoEligibleNode",
        "InsufficientCapacity",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 10,
            "{kind} too rare: {seen:?}"
        );
    }
}
