//! The scheduler controller's decision: from the replicated state and the
//! nodes' health, the commands that bring placements in line with the
//! deployments. The controller's loop (in the `dwcp` binary) only reads
//! the state, calls [`placement_commands`] and writes what it returns.

use std::collections::BTreeMap;

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
/// says) and returns the `SetPlacements` commands for the apps whose
/// placements differ from the plan. Empty when everything is in place.
pub fn placement_commands(
    state: &State,
    healthy: impl Fn(&Name) -> bool,
) -> Result<Decision, InputError> {
    let nodes: Vec<NodeView> = state
        .nodes()
        .map(|n| NodeView::of(n, healthy(&n.name)))
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
