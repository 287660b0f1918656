//! What the gateway of a node should serve, from the desired state: a
//! pure function, so it is tested without a cluster.
//!
//! Every app deployed in the node's region gets a route. The node serves
//! the deployed version itself when the scheduler placed it on this node
//! (its warm pool sized by the placement's count), or when it is placed on
//! no node of the region yet (a fresh deployment answers before the
//! scheduler has run). Otherwise the route forwards to the region's nodes
//! that hold it (their peer addresses: forwarding goes over mutual TLS).

use std::collections::{BTreeMap, HashMap};

use state::act::book::pool_key;
use state::{Deployment, Name, State, Version, VersionConfig};

use crate::gateway::AppKey;

/// One version a route should serve, and its share of the traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedVersion {
    pub number: u64,
    pub weight: u32,
    /// The artifact's sha256.
    pub digest: String,
    pub config: VersionConfig,
    /// Sandboxes the scheduler placed on this node for it (0: none, the
    /// node serves it until the scheduler places it): the warm pool's size.
    pub placed: u32,
    /// Times the autopilot restarted its pool on this node: when it
    /// changes, the agent prepares a fresh pool in place of the old.
    pub restarts: u64,
}

impl WantedVersion {
    /// Sandboxes its warm pool keeps: the placed count on a warm route, 0
    /// on a cold one (or before it is placed).
    pub fn warm_pool(&self) -> u32 {
        if self.config.warm { self.placed } else { 0 }
    }
}

/// How a route is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serving {
    /// By this node's sandboxes.
    Local(Vec<WantedVersion>),
    /// By other nodes of the region: their peer addresses (`host:port`,
    /// sorted), where forwarded requests go over mutual TLS.
    Forward(Vec<String>),
}

/// One route the gateway should serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedRoute {
    pub app: AppKey,
    /// Only requests for this host match; `None`: any host.
    pub host: Option<String>,
    pub prefix: String,
    /// The deployed version's configuration (timeout, warm), its
    /// `max_concurrency` within the tenant's quota.
    pub config: VersionConfig,
    pub serving: Serving,
}

/// The tenant each host named by an app belongs to (`state::claims`: one
/// tenant per host), deployed or not: the gateway answers on such a host
/// only with that tenant's routes.
pub fn host_owners(state: &State) -> HashMap<String, Name> {
    state
        .apps()
        .filter_map(|a| Some((a.host.clone()?, a.tenant.clone())))
        .collect()
}

/// The routes the gateway of `node` in `region` should serve, ordered by
/// app (an app in a blue-green rollout has a second route, its preview).
pub fn wanted_routes(state: &State, node: &Name, region: &Name) -> Vec<WantedRoute> {
    let mut routes = Vec::new();
    for d in state
        .deployments()
        .filter(|d| d.regions.get(region).is_some_and(|&r| r > 0))
    {
        let Some(app) = state.app(&d.tenant, &d.app) else {
            continue;
        };
        let Some(stable) = version_of(state, d, d.version) else {
            continue;
        };
        let rollout = state.active_rollout(&d.tenant, &d.app);
        // (version, weight): stable alone, or the rollout's split here.
        let mut split = vec![(d.version, 100)];
        if let Some(r) = rollout {
            let w = r.weights_in(region.as_str());
            split = vec![(r.from, w.stable), (r.to, w.canary)];
            if let Some(b) = r.baseline {
                split.push((b, w.baseline));
            }
        }
        // A node holding any version of the app serves all of them (the
        // ones not placed here start cold): a split is never cut in two
        // by forwarding.
        let mut here = BTreeMap::new();
        let mut elsewhere = Vec::new();
        for p in state.placements_of_app(&d.tenant, &d.app) {
            if &p.node == node {
                *here.entry(p.version).or_insert(0) += p.count;
            } else if let Some(other) = state.node(&p.node)
                && &other.region == region
            {
                elsewhere.push(other.address.clone());
            }
        }
        elsewhere.sort();
        elsewhere.dedup();
        let local = !here.is_empty() || elsewhere.is_empty();
        let wanted = |number: u64, weight: u32| {
            let v = version_of(state, d, number)?;
            Some(WantedVersion {
                number,
                weight,
                digest: v.digest.clone(),
                config: v.config.clone(),
                placed: here.get(&number).copied().unwrap_or(0),
                restarts: state
                    .acts()
                    .pool_restarts
                    .get(&pool_key(
                        d.tenant.as_str(),
                        d.app.as_str(),
                        number,
                        node.as_str(),
                    ))
                    .copied()
                    .unwrap_or(0),
            })
        };
        let serving = if local {
            Serving::Local(split.iter().filter_map(|&(n, w)| wanted(n, w)).collect())
        } else {
            Serving::Forward(elsewhere.clone())
        };
        let key = AppKey::new(d.tenant.clone(), d.app.clone());
        // The tenant's concurrency quota caps every route of its apps
        // (the autopilot's throttle lowers it for a while).
        let capped = |config: &VersionConfig| {
            let mut config = config.clone();
            if let Some(t) = state.tenant(&d.tenant) {
                config.max_concurrency = config.max_concurrency.min(t.quotas.max_concurrency);
            }
            config
        };
        routes.push(WantedRoute {
            app: key.clone(),
            host: app.host.clone(),
            prefix: app.route.clone(),
            config: capped(&stable.config),
            serving,
        });
        if let Some(r) = rollout
            && let Some(preview) = r.plan.preview_route()
            && state::rollout::preview_open(&r.plan, &r.progress)
            && let Some(to) = version_of(state, d, r.to)
        {
            routes.push(WantedRoute {
                app: key,
                host: app.host.clone(),
                prefix: preview.to_string(),
                config: capped(&to.config),
                serving: if local {
                    Serving::Local(wanted(r.to, 100).into_iter().collect())
                } else {
                    Serving::Forward(elsewhere)
                },
            });
        }
    }
    routes
}

fn version_of<'s>(state: &'s State, d: &Deployment, number: u64) -> Option<&'s Version> {
    state
        .versions(&d.tenant, &d.app)
        .find(|v| v.number == number)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use state::{Command, Node, PlacementSpec, Quotas, Region};

    use super::*;

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    /// Tenant `acme` and regions `eu` and `us`, in the commands it returns.
    fn acme_in_eu_and_us() -> Vec<Command> {
        vec![
            Command::PutTenant {
                name: n("acme"),
                quotas: Quotas::default(),
            },
            Command::PutRegion {
                region: Region::named(n("eu")),
            },
            Command::PutRegion {
                region: Region::named(n("us")),
            },
        ]
    }

    /// App `shop` of `acme` at `/shop` and its version 1 with `config`.
    fn shop_v1(config: VersionConfig) -> [Command; 2] {
        [
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: "a".repeat(64),
                config,
            },
        ]
    }

    #[test]
    fn serves_what_is_deployed_in_its_region_only() {
        let mut s = State::default();
        let mut commands = acme_in_eu_and_us();
        commands.extend([
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::CreateApp {
                tenant: n("acme"),
                name: n("idle"),
                route: "/idle".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: "a".repeat(64),
                config: VersionConfig::default(),
            },
            Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: "b".repeat(64),
                config: VersionConfig::default(),
            },
            Command::SetDeployment {
                tenant: n("acme"),
                app: n("shop"),
                version: 2,
                regions: BTreeMap::from([(n("eu"), 1)]),
            },
        ]);
        for c in commands {
            s.apply(&c).unwrap();
        }
        let eu = wanted_routes(&s, &n("n1"), &n("eu"));
        assert_eq!(eu.len(), 1);
        assert_eq!(eu[0].prefix, "/shop");
        let Serving::Local(versions) = &eu[0].serving else {
            panic!("not placed anywhere yet: served here, got {:?}", eu[0]);
        };
        assert_eq!(versions[0].number, 2);
        assert_eq!(versions[0].digest, "b".repeat(64));
        assert_eq!(versions[0].placed, 0);
        assert!(wanted_routes(&s, &n("n1"), &n("us")).is_empty());
    }

    #[test]
    fn placed_here_serves_with_its_pool_placed_elsewhere_forwards() {
        let mut s = State::default();
        let mut commands = acme_in_eu_and_us();
        for (name, region) in [("n1", "eu"), ("n2", "eu"), ("n3", "eu"), ("u1", "us")] {
            commands.push(Command::PutNode {
                node: Node {
                    name: n(name),
                    region: n(region),
                    address: format!("{name}:7071"),
                    labels: BTreeMap::new(),
                    capacity: 10,
                    api: None,
                    gateway: Some(format!("{name}:8080")),
                    peer_key: None,
                },
            });
        }
        commands.extend(shop_v1(VersionConfig::default()));
        commands.extend([
            Command::SetDeployment {
                tenant: n("acme"),
                app: n("shop"),
                version: 1,
                regions: BTreeMap::from([(n("eu"), 3), (n("us"), 1)]),
            },
            Command::SetPlacements {
                tenant: n("acme"),
                app: n("shop"),
                placements: [("n1", 2), ("n2", 1), ("u1", 1)]
                    .map(|(node, count)| PlacementSpec {
                        version: 1,
                        node: n(node),
                        count,
                    })
                    .to_vec(),
            },
        ]);
        for c in commands {
            s.apply(&c).unwrap();
        }
        let serving = |node: &str| wanted_routes(&s, &n(node), &n("eu"))[0].serving.clone();
        let Serving::Local(v) = serving("n1") else {
            panic!("n1 holds it")
        };
        assert_eq!(v[0].placed, 2);
        // n3 holds none: it forwards within its region, never to `us`.
        assert_eq!(
            serving("n3"),
            Serving::Forward(vec!["n1:7071".into(), "n2:7071".into()])
        );
    }

    #[test]
    fn the_tenant_concurrency_quota_caps_its_routes() {
        let mut s = State::default();
        let mut commands = acme_in_eu_and_us();
        commands.extend(shop_v1(VersionConfig {
            max_concurrency: 64,
            ..VersionConfig::default()
        }));
        commands.extend([Command::SetDeployment {
            tenant: n("acme"),
            app: n("shop"),
            version: 1,
            regions: BTreeMap::from([(n("eu"), 1)]),
        }]);
        for c in commands {
            s.apply(&c).unwrap();
        }
        let limit = |s: &State| {
            wanted_routes(s, &n("n1"), &n("eu"))[0]
                .config
                .max_concurrency
        };
        assert_eq!(limit(&s), 64, "the version's own limit under the quota");
        // A throttle: the quota lowered for a while, then given back.
        for (quota, expected) in [(8, 8), (Quotas::CONCURRENCY_LIMIT, 64)] {
            s.apply(&Command::PutTenant {
                name: n("acme"),
                quotas: Quotas {
                    max_concurrency: quota,
                    ..Quotas::default()
                },
            })
            .unwrap();
            assert_eq!(limit(&s), expected, "quota {quota}");
        }
        let Serving::Local(v) = &wanted_routes(&s, &n("n1"), &n("eu"))[0].serving else {
            panic!("served here")
        };
        assert_eq!(v[0].restarts, 0, "no pool restarted");
    }

    #[test]
    fn a_rollout_splits_the_route_by_region_wave_and_a_blue_green_adds_its_preview() {
        let mut s = State::default();
        let mut commands = acme_in_eu_and_us();
        commands.push(Command::CreateApp {
            tenant: n("acme"),
            name: n("shop"),
            route: "/shop".into(),
            host: None,
        });
        for d in ['a', 'b'] {
            commands.push(Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: d.to_string().repeat(64),
                config: VersionConfig::default(),
            });
        }
        commands.push(Command::SetDeployment {
            tenant: n("acme"),
            app: n("shop"),
            version: 1,
            regions: BTreeMap::from([(n("eu"), 1), (n("us"), 1)]),
        });
        let plan = rollout::Plan::from_json(
            r#"{"steps": [{"region_wave": {"waves": [["eu"], ["us"]]}}, {"set_weight": {"weight": 10}}, {"pause": {}}, {"set_weight": {"weight": 100}}]}"#,
        )
        .unwrap();
        commands.push(Command::StartRollout {
            tenant: n("acme"),
            app: n("shop"),
            to: 2,
            plan: plan.clone(),
            by: "admin".into(),
            now_unix_ms: 0,
        });
        for c in commands {
            s.apply(&c).unwrap();
        }
        let r = s.active_rollout(&n("acme"), &n("shop")).unwrap().clone();
        let (progress, _) = rollout::advance(&plan, &r.progress, &rollout::Input::default());
        s.apply(&Command::AdvanceRollout {
            tenant: n("acme"),
            app: n("shop"),
            id: r.id,
            expected: r.updated,
            progress,
            records: vec![],
            now_unix_ms: 1,
        })
        .unwrap();
        let split = |s: &State, region: &str| -> Vec<(u64, u32)> {
            let routes = wanted_routes(s, &n("n1"), &n(region));
            let Serving::Local(versions) = &routes[0].serving else {
                panic!("served here")
            };
            versions.iter().map(|v| (v.number, v.weight)).collect()
        };
        // Stable, canary, baseline (3, a copy of 1's artifact).
        assert_eq!(split(&s, "eu"), [(1, 80), (2, 10), (3, 10)]);
        assert_eq!(split(&s, "us"), [(1, 100), (2, 0), (3, 0)], "the next wave");

        // Aborted: the route is stable alone again.
        s.apply(&Command::AbortRollout {
            tenant: n("acme"),
            app: n("shop"),
            reason: String::new(),
            by: "admin".into(),
            now_unix_ms: 2,
        })
        .unwrap();
        assert_eq!(split(&s, "eu"), [(1, 100)]);

        // Blue-green: a preview route for the new version alone.
        s.apply(&Command::StartRollout {
            tenant: n("acme"),
            app: n("shop"),
            to: 2,
            plan: rollout::Plan::blue_green_plan("/preview/shop", 1000),
            by: "admin".into(),
            now_unix_ms: 3,
        })
        .unwrap();
        let r = s.active_rollout(&n("acme"), &n("shop")).unwrap().clone();
        let (progress, _) = rollout::advance(&r.plan, &r.progress, &rollout::Input::default());
        s.apply(&Command::AdvanceRollout {
            tenant: n("acme"),
            app: n("shop"),
            id: r.id,
            expected: r.updated,
            progress,
            records: vec![],
            now_unix_ms: 4,
        })
        .unwrap();
        let routes = wanted_routes(&s, &n("n1"), &n("eu"));
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].prefix, "/preview/shop");
        let Serving::Local(preview) = &routes[1].serving else {
            panic!("served here")
        };
        assert_eq!((preview[0].number, preview[0].weight), (2, 100));
        assert_eq!(
            split(&s, "eu"),
            [(1, 100), (2, 0)],
            "no baseline in blue-green"
        );
    }
}
