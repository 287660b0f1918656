//! What the gateway of a node in a region should serve, from the desired
//! state: a pure function, so it is tested without a cluster.
//!
//! Today every node serves every app deployed in its region, with the
//! deployment's version; placements (the scheduler's decisions) will size
//! warm pools, and rollouts will add weighted versions.

use control::{Name, State, VersionConfig};

use crate::gateway::AppKey;

/// One version a route should serve, and its share of the traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedVersion {
    pub number: u64,
    pub weight: u32,
    /// The artifact's sha256.
    pub digest: String,
    pub config: VersionConfig,
}

/// One route the gateway should serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedRoute {
    pub app: AppKey,
    pub prefix: String,
    pub versions: Vec<WantedVersion>,
}

/// The routes a gateway in `region` should serve, ordered by app.
pub fn wanted_routes(state: &State, region: &Name) -> Vec<WantedRoute> {
    state
        .deployments()
        .filter(|d| d.regions.get(region).is_some_and(|&r| r > 0))
        .filter_map(|d| {
            let app = state.app(&d.tenant, &d.app)?;
            let version = state
                .versions(&d.tenant, &d.app)
                .find(|v| v.number == d.version)?;
            Some(WantedRoute {
                app: AppKey::new(d.tenant.clone(), d.app.clone()),
                prefix: app.route.clone(),
                versions: vec![WantedVersion {
                    number: version.number,
                    weight: 100,
                    digest: version.digest.clone(),
                    config: version.config.clone(),
                }],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use control::{Command, Quotas, Region};

    use super::*;

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    #[test]
    fn serves_what_is_deployed_in_its_region_only() {
        let mut s = State::default();
        let commands = [
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
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
            },
            Command::CreateApp {
                tenant: n("acme"),
                name: n("idle"),
                route: "/idle".into(),
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
        ];
        for c in commands {
            s.apply(&c).unwrap();
        }
        let eu = wanted_routes(&s, &n("eu"));
        assert_eq!(eu.len(), 1);
        assert_eq!(eu[0].prefix, "/shop");
        assert_eq!(eu[0].versions[0].number, 2);
        assert_eq!(eu[0].versions[0].digest, "b".repeat(64));
        assert!(wanted_routes(&s, &n("us")).is_empty());
    }
}
