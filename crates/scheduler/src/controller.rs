//! The scheduler controller's decision: from the replicated state and the
//! nodes' health, the commands that bring placements in line with the
//! deployments. The controller's loop (in the `dwcp` binary) only reads
//! the state, calls [`placement_commands`] and writes what it returns.

use std::collections::BTreeMap;

use state::act::book::Schedule;
use state::{Command, Name, PlacementSpec, State};

use crate::input::{Constraints, NodeView, Placement, Want};
use crate::plan::{Plan, place};
use crate::rejection::InputError;

/// What the controller should write, and the plan it came from (its
/// changes and rejections say why).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// One [`Command::SetPlacements`] per app whose placements change, by
    /// tenant then app.
    pub commands: Vec<Command>,
    pub plan: Plan,
}

/// Plans every deployment of `state` over its nodes (healthy as `healthy`
/// says, and as the autopilot left them: a drained node keeps no
/// placements, a cordoned one keeps its own and gets no new ones) and
/// returns the `SetPlacements` commands for the apps whose placements
/// differ from the plan. Empty when everything is in place.
pub fn placement_commands(
    state: &State,
    healthy: impl Fn(&Name) -> bool,
) -> Result<Decision, InputError> {
    let schedules = &state.acts().schedules;
    let mut placed: BTreeMap<&Name, u32> = BTreeMap::new();
    for p in state.placements() {
        *placed.entry(&p.node).or_default() += p.count;
    }
    let nodes: Vec<NodeView> = state
        .nodes()
        .map(|n| {
            let mut view = NodeView::of(n, healthy(&n.name));
            match schedules.get(n.name.as_str()) {
                Some(Schedule::Drained) => view.healthy = false,
                // Only what it holds fits: nothing new lands there.
                Some(Schedule::Cordoned) => {
                    view.reserved = view
                        .capacity
                        .saturating_sub(placed.get(&n.name).copied().unwrap_or(0));
                }
                None => {}
            }
            view
        })
        .collect();
    let wants: Vec<Want> = state
        .deployments()
        .map(|d| Want::of(d, Constraints::default()))
        .collect();
    let current: Vec<Placement> = state.placements().cloned().collect();
    let plan = place(&nodes, &wants, &current)?;

    let (before, after) = (by_app(&current), by_app(&plan.placements));
    let mut apps: Vec<(&Name, &Name)> = before.keys().chain(after.keys()).copied().collect();
    apps.sort_unstable();
    apps.dedup();
    let commands = apps
        .into_iter()
        // Placements of an app that is gone went with it.
        .filter(|(tenant, app)| state.app(tenant, app).is_some())
        .filter_map(|key| {
            let mut now: Vec<&Placement> = before.get(&key).cloned().unwrap_or_default();
            let wanted: Vec<&Placement> = after.get(&key).cloned().unwrap_or_default();
            now.sort_unstable();
            // The plan lists placements by want, then node: sorted already.
            (now != wanted).then(|| Command::SetPlacements {
                tenant: key.0.clone(),
                app: key.1.clone(),
                placements: wanted
                    .iter()
                    .map(|p| PlacementSpec {
                        version: p.version,
                        node: p.node.clone(),
                        count: p.count,
                    })
                    .collect(),
            })
        })
        .collect();
    Ok(Decision { commands, plan })
}

/// Placements grouped by app.
type ByApp<'a> = BTreeMap<(&'a Name, &'a Name), Vec<&'a Placement>>;

fn by_app(list: &[Placement]) -> ByApp<'_> {
    let mut map: ByApp = BTreeMap::new();
    for p in list {
        map.entry((&p.tenant, &p.app)).or_default().push(p);
    }
    map
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use state::{Node, Quotas, Region, VersionConfig};

    use super::*;

    fn n(s: &str) -> Name {
        Name::new("test", s).expect("a valid test name")
    }

    /// Three nodes in `local`, app `default/web` wanting `replicas`.
    fn cluster(replicas: u32) -> State {
        let mut s = State::default();
        let mut commands = vec![
            Command::PutTenant {
                name: n("default"),
                quotas: Quotas::default(),
            },
            Command::PutRegion {
                region: Region::named(n("local")),
            },
        ];
        for i in 1..=3 {
            commands.push(Command::PutNode {
                node: Node {
                    name: n(&format!("node-{i}")),
                    region: n("local"),
                    address: format!("127.0.0.{i}:7071"),
                    labels: BTreeMap::new(),
                    capacity: 100,
                    api: None,
                    gateway: None,
                    peer_key: None,
                },
            });
        }
        commands.extend([
            Command::CreateApp {
                tenant: n("default"),
                name: n("web"),
                route: "/web".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: n("default"),
                app: n("web"),
                digest: "a".repeat(64),
                config: VersionConfig::default(),
            },
            Command::SetDeployment {
                tenant: n("default"),
                app: n("web"),
                version: 1,
                regions: [(n("local"), replicas)].into(),
            },
        ]);
        for c in commands {
            s.apply(&c).expect("a valid setup");
        }
        s
    }

    fn nodes_of(s: &State) -> Vec<(String, u32)> {
        s.placements()
            .map(|p| (p.node.to_string(), p.count))
            .collect()
    }

    #[test]
    fn places_then_keeps_still_then_moves_off_a_dead_node() {
        let mut s = cluster(2);
        let decision = placement_commands(&s, |_| true).unwrap();
        assert_eq!(decision.commands.len(), 1);
        s.apply(&decision.commands[0]).unwrap();
        assert_eq!(
            nodes_of(&s),
            [("node-1".to_string(), 1), ("node-2".to_string(), 1)]
        );
        // Nothing to do once in place.
        assert!(
            placement_commands(&s, |_| true)
                .unwrap()
                .commands
                .is_empty()
        );
        // node-2 dies: its replica goes to node-3; node-1 keeps its own.
        let decision = placement_commands(&s, |n| n.as_str() != "node-2").unwrap();
        assert_eq!(decision.commands.len(), 1);
        s.apply(&decision.commands[0]).unwrap();
        assert_eq!(
            nodes_of(&s),
            [("node-1".to_string(), 1), ("node-3".to_string(), 1)]
        );
        // It comes back: placements that are still valid stay.
        assert!(
            placement_commands(&s, |_| true)
                .unwrap()
                .commands
                .is_empty()
        );
    }

    /// Sets node schedules as the autopilot's store-only actions do.
    fn act(s: &mut State, action: state::act::action::Action) {
        use state::act::book::ActCommand;
        use state::act::record::{Decision, Evidence, Outcome};
        use state::act::trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
        let decision = Decision {
            id: 0,
            evidence: Evidence {
                trouble: Trouble {
                    source: "test".into(),
                    class: FaultClass::NodeSlow,
                    place: Place::Node { node: "x".into() },
                    basis: Basis::Observed,
                    score: 1.0,
                    seen_ms: 0,
                    signal: SignalEvidence {
                        series: "test".into(),
                        observed: 0.0,
                        band_low: None,
                        band_high: None,
                        limit: None,
                    },
                },
                rule: None,
                view: Default::default(),
                ledger: Default::default(),
                controls: state::act::view::Controls {
                    paused: false,
                    destructive_enabled: true,
                },
                limits: Default::default(),
                now_ms: 0,
            },
            outcome: Outcome::Acted { action },
            considered: Vec::new(),
            counterfactual: String::new(),
            refused_at_commit: None,
        };
        s.apply(&Command::Act {
            act: ActCommand::SetControls {
                paused: None,
                destructive_enabled: Some(true),
            },
        })
        .unwrap();
        s.apply(&Command::Act {
            act: ActCommand::Record {
                decision: Box::new(decision),
            },
        })
        .unwrap();
    }

    #[test]
    fn a_cordoned_node_keeps_its_placements_and_a_drained_one_loses_them() {
        use state::act::action::Action;
        let mut s = cluster(2);
        for c in placement_commands(&s, |_| true).unwrap().commands {
            s.apply(&c).unwrap();
        }
        act(
            &mut s,
            Action::Cordon {
                node: "node-1".into(),
            },
        );
        assert!(
            placement_commands(&s, |_| true)
                .unwrap()
                .commands
                .is_empty(),
            "cordoned: what runs there stays"
        );
        // More replicas: none lands on the cordoned node.
        s.apply(&Command::SetDeployment {
            tenant: n("default"),
            app: n("web"),
            version: 1,
            regions: [(n("local"), 4)].into(),
        })
        .unwrap();
        for c in placement_commands(&s, |_| true).unwrap().commands {
            s.apply(&c).unwrap();
        }
        let on = |s: &State, node: &str| -> u32 {
            s.placements()
                .filter(|p| p.node.as_str() == node)
                .map(|p| p.count)
                .sum()
        };
        assert_eq!(on(&s, "node-1"), 1, "{:?}", nodes_of(&s));
        assert_eq!(on(&s, "node-2") + on(&s, "node-3"), 3);
        act(
            &mut s,
            Action::Drain {
                node: "node-2".into(),
                terminations: 2,
            },
        );
        for c in placement_commands(&s, |_| true).unwrap().commands {
            s.apply(&c).unwrap();
        }
        assert_eq!(on(&s, "node-2"), 0, "drained: {:?}", nodes_of(&s));
    }

    #[test]
    fn a_deleted_deployment_frees_its_nodes_and_a_deleted_app_needs_nothing() {
        let mut s = cluster(3);
        for c in placement_commands(&s, |_| true).unwrap().commands {
            s.apply(&c).unwrap();
        }
        assert_eq!(nodes_of(&s).len(), 3);
        s.apply(&Command::DeleteApp {
            tenant: n("default"),
            name: n("web"),
        })
        .unwrap();
        let decision = placement_commands(&s, |_| true).unwrap();
        assert!(decision.commands.is_empty(), "{:?}", decision.commands);
        assert_eq!(s.placements().count(), 0, "placements go with the app");
    }
}
