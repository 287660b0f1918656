//! Fixtures of the rollout tests: an app with two versions deployed, and
//! a rollout's start.

#![allow(dead_code)] // each test binary uses part of this

use state::{Command, Name, Quotas, Region, State, VersionConfig};

pub fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

/// Tenant `acme`, regions `eu` and `us`, app `shop` at /shop with versions
/// 1 (deployed in both regions) and 2.
pub fn shop() -> State {
    shop_in(&["eu", "us"])
}

/// Tenant `acme`, `regions`, app `shop` at /shop with versions 1 (deployed
/// in every region, one replica) and 2.
pub fn shop_in(regions: &[&str]) -> State {
    let mut s = State::default();
    let mut commands = vec![Command::PutTenant {
        name: n("acme"),
        quotas: Quotas::default(),
    }];
    for r in regions {
        commands.push(Command::PutRegion {
            region: Region::named(n(r)),
        });
    }
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
        regions: regions.iter().map(|r| (n(r), 1)).collect(),
    });
    for c in commands {
        s.apply(&c).unwrap();
    }
    s
}

/// Starts a rollout of `acme/shop` to version `to` at 1,000 ms.
pub fn start(to: u64, plan: rollout::Plan) -> Command {
    Command::StartRollout {
        tenant: n("acme"),
        app: n("shop"),
        to,
        plan,
        by: "admin".into(),
        now_unix_ms: 1_000,
    }
}
