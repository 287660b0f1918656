//! Which tier owns a change, and how a region cell catches up with the
//! global tier — pure decisions, so the simulator and the tests run them
//! as `dwcp up` does.
//!
//! A planet is region cells (one Raft group per region, holding that
//! region's nodes, versions, deployments, placements, reports, rollouts,
//! credentials…) and one global tier (a Raft group of a few voters placed
//! by `topology::place_voters`, every other node a non-voting learner)
//! holding only what must be the same everywhere: tenants, app
//! definitions and the regions. A global change is committed by the global
//! tier first, then written through to the region cell of the node that
//! took it; every other region cell gets it from its leader's mirror,
//! which compares the global tier's records with its own once a second
//! and writes what differs ([`mirror`]).
//!
//! Invariants:
//! - A region cell holds a global record only as a copy: it never decides
//!   one. [`mirror`] only moves a region towards the global tier's
//!   records, so repeating it changes nothing once they agree.
//! - Regions are never deleted by the mirror: a region the global tier no
//!   longer lists keeps its record (its cell may still be serving).

use state::{App, Command, Region, RegionFailover, State, Tenant};

/// Whether `command` (or, for [`Command::Audited`], the change inside it)
/// changes a record the global tier owns.
///
/// ```
/// use planet::tier;
/// use state::{Command, Name, Quotas};
/// let tenant = Command::PutTenant { name: Name::new("tenant", "acme").unwrap(), quotas: Quotas::default() };
/// assert!(tier::is_global(&tenant));
/// let key = Command::Put { key: "k".into(), value: vec![] };
/// assert!(!tier::is_global(&key));
/// ```
pub fn is_global(command: &Command) -> bool {
    match command {
        Command::Audited { command, .. } => is_global(command),
        Command::PutTenant { .. }
        | Command::DeleteTenant { .. }
        | Command::CreateApp { .. }
        | Command::DeleteApp { .. }
        | Command::PutRegion { .. }
        | Command::PutFailover { .. }
        | Command::ApproveFailover { .. } => true,
        _ => false,
    }
}

/// The records the global tier owns, as one state holds them: what the
/// mirror compares (a copy, so that no lock is held across the read of
/// the other tier).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalRecords {
    pub regions: Vec<Region>,
    pub tenants: Vec<Tenant>,
    pub apps: Vec<App>,
    pub failovers: Vec<RegionFailover>,
}

impl GlobalRecords {
    pub fn of(state: &State) -> GlobalRecords {
        GlobalRecords {
            regions: state.regions().cloned().collect(),
            tenants: state.tenants().cloned().collect(),
            apps: state.apps().cloned().collect(),
            failovers: state.failovers().cloned().collect(),
        }
    }

    fn tenant(&self, name: &state::Name) -> Option<&Tenant> {
        self.tenants.iter().find(|t| &t.name == name)
    }

    fn has_app(&self, app: &App) -> bool {
        self.apps
            .iter()
            .any(|a| a.tenant == app.tenant && a.name == app.name)
    }
}

/// The commands that bring `region`'s copies of the global records to what
/// `global` holds, in an order each can apply in: regions and their
/// failovers, then tenants created or changed, apps created, apps
/// deleted, tenants deleted.
///
/// Take `region` before reading `global` (linearizably): an app written
/// through to the region after a global read that missed it would
/// otherwise look deleted.
///
/// An app whose route or host differs between the two keeps the region's
/// copy: there is no command that changes an app's route (apps are
/// created and deleted, never edited).
pub fn mirror(global: &GlobalRecords, region: &GlobalRecords) -> Vec<Command> {
    let mut commands = Vec::new();
    for r in &global.regions {
        let here = region.regions.iter().find(|h| h.name == r.name);
        if here != Some(r) {
            commands.push(Command::PutRegion { region: r.clone() });
        }
    }
    for f in &global.failovers {
        if !region.failovers.contains(f) {
            commands.push(Command::PutFailover {
                failover: f.clone(),
            });
        }
    }
    for t in &global.tenants {
        if region.tenant(&t.name).map(|h| &h.quotas) != Some(&t.quotas) {
            commands.push(Command::PutTenant {
                name: t.name.clone(),
                quotas: t.quotas.clone(),
            });
        }
    }
    for a in &global.apps {
        if !region.has_app(a) {
            commands.push(Command::CreateApp {
                tenant: a.tenant.clone(),
                name: a.name.clone(),
                route: a.route.clone(),
                host: a.host.clone(),
            });
        }
    }
    for a in &region.apps {
        if !global.has_app(a) {
            commands.push(Command::DeleteApp {
                tenant: a.tenant.clone(),
                name: a.name.clone(),
            });
        }
    }
    for t in &region.tenants {
        if global.tenant(&t.name).is_none() {
            commands.push(Command::DeleteTenant {
                name: t.name.clone(),
            });
        }
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{Name, Quotas, Region};

    fn name(kind: &'static str, s: &str) -> Name {
        Name::new(kind, s).unwrap()
    }

    fn apply_all(state: &mut State, commands: Vec<Command>) {
        for c in commands {
            let described = format!("{c:?}");
            state
                .apply(&c)
                .unwrap_or_else(|r| panic!("{described} refused: {r}"));
        }
    }

    fn tenant(s: &str, max_apps: u32) -> Command {
        Command::PutTenant {
            name: name("tenant", s),
            quotas: Quotas {
                max_apps,
                ..Quotas::default()
            },
        }
    }

    fn app(t: &str, a: &str, route: &str) -> Command {
        Command::CreateApp {
            tenant: name("tenant", t),
            name: name("app", a),
            route: route.into(),
            host: None,
        }
    }

    fn region_record(s: &str, metro: &str) -> Command {
        Command::PutRegion {
            region: Region {
                metro: metro.into(),
                ..Region::named(name("region", s))
            },
        }
    }

    #[test]
    fn a_region_converges_on_the_global_records_and_then_stays_put() {
        let mut global = State::default();
        apply_all(
            &mut global,
            vec![
                region_record("eu-west-1", "dublin"),
                region_record("eu-central-1", "frankfurt"),
                tenant("acme", 10),
                app("acme", "shop", "/shop"),
                tenant("initech", 5),
                app("initech", "tps", "/tps"),
            ],
        );
        let mut region = State::default();
        apply_all(
            &mut region,
            vec![
                region_record("eu-west-1", "unknown"),
                tenant("acme", 3),
                tenant("gone", 1),
                app("gone", "old", "/old"),
            ],
        );
        let first = mirror(&GlobalRecords::of(&global), &GlobalRecords::of(&region));
        apply_all(&mut region, first.clone());
        assert!(
            mirror(&GlobalRecords::of(&global), &GlobalRecords::of(&region)).is_empty(),
            "{first:?}"
        );
        assert_eq!(
            region.regions().cloned().collect::<Vec<_>>(),
            global.regions().cloned().collect::<Vec<_>>()
        );
        let names = |s: &State| {
            s.apps()
                .map(|a| format!("{}/{}{}", a.tenant, a.name, a.route))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&region), names(&global));
        assert_eq!(
            region
                .tenant(&name("tenant", "acme"))
                .unwrap()
                .quotas
                .max_apps,
            10
        );
        assert!(region.tenant(&name("tenant", "gone")).is_none());
    }

    #[test]
    fn regions_the_global_tier_does_not_list_are_kept() {
        let global = State::default();
        let mut region = State::default();
        apply_all(&mut region, vec![region_record("local", "")]);
        assert!(mirror(&GlobalRecords::of(&global), &GlobalRecords::of(&region)).is_empty());
    }

    #[test]
    fn only_the_global_records_belong_to_the_global_tier() {
        let audited = Command::Audited {
            who: "admin".into(),
            from: "test".into(),
            what: "create app".into(),
            unix_ms: 0,
            command: Box::new(app("acme", "shop", "/shop")),
        };
        assert!(is_global(&audited));
        assert!(is_global(&region_record("r", "m")));
        let deployment = Command::SetDeployment {
            tenant: name("tenant", "acme"),
            app: name("app", "shop"),
            version: 1,
            regions: Default::default(),
        };
        assert!(!is_global(&deployment));
    }
}
