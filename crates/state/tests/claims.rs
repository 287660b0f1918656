//! Tenant isolation in routing, as the state machine enforces it: a host
//! belongs to one tenant, a route prefix is owned across tenants, and a
//! caller scoped to some tenants places apps only on hosts of their own.

use state::{Command, Name, Quotas, Rejection, State, VersionConfig, rollout};

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

fn app(tenant: &str, name: &str, route: &str, host: Option<&str>) -> Command {
    Command::CreateApp {
        tenant: n(tenant),
        name: n(name),
        route: route.into(),
        host: host.map(Into::into),
    }
}

fn scoped(tenants: &[&str], command: Command) -> Command {
    Command::Scoped {
        tenants: tenants.iter().map(|t| n(t)).collect(),
        command: Box::new(command),
    }
}

/// Tenants `acme` (the victim, with `/hello` on every host and `/shop` on
/// shop.example.com) and `evil`.
fn two_tenants() -> State {
    let mut s = State::default();
    for tenant in ["acme", "evil"] {
        s.apply(&Command::PutTenant {
            name: n(tenant),
            quotas: Quotas::default(),
        })
        .unwrap();
    }
    s.apply(&app("acme", "hello", "/hello", None)).unwrap();
    s.apply(&app("acme", "shop", "/shop", Some("shop.example.com")))
        .unwrap();
    s
}

fn field(r: Result<state::Outcome, Rejection>) -> String {
    match r {
        Err(e) => e.field().unwrap_or("(none)").to_string(),
        Ok(o) => panic!("applied: {o:?}"),
    }
}

#[test]
fn another_tenant_cannot_take_a_prefix_or_a_host() {
    let mut s = two_tenants();
    let before = s.clone();
    // The attack of issue 16: `/hello` on 127.0.0.1 (preferred by the
    // gateway for that host), or a longer prefix under `/hello`.
    for (route, host, expected) in [
        ("/hello", Some("127.0.0.1"), "route"),
        ("/hello/login", None, "route"),
        ("/hello/login", Some("evil.example.com"), "route"),
        ("/", Some("evil.example.com"), "route"),
        ("/", None, "route"),
        ("/shop", Some("shop.example.com"), "host"),
        ("/other", Some("shop.example.com"), "host"),
    ] {
        let got = field(s.apply(&app("evil", "x", route, host)));
        assert_eq!(got, expected, "{route} on {host:?}");
    }
    assert_eq!(s, before, "nothing changed");
    // The message names the owner.
    let Err(e) = s.apply(&app("evil", "x", "/hello/login", None)) else {
        panic!()
    };
    assert!(
        e.to_string().contains("tenant acme has route /hello"),
        "{e}"
    );
    // Prefixes that do not nest are free, on any host; `/shop` is only
    // acme's on its host, so `/shop` elsewhere is free too... except that
    // an app on every host would also answer on shop.example.com.
    s.apply(&app("evil", "a", "/helloworld", None)).unwrap();
    s.apply(&app("evil", "b", "/shop", Some("evil.example.com")))
        .unwrap();
    assert_eq!(field(s.apply(&app("evil", "c", "/shop/x", None))), "route");
    // The owner itself may nest its own routes.
    s.apply(&app("acme", "login", "/hello/login", None))
        .unwrap();
    s.apply(&app("acme", "api", "/api", Some("shop.example.com")))
        .unwrap();
    assert!(s.route_conflicts().is_empty());
}

#[test]
fn a_scoped_caller_needs_a_dns_name_and_its_own_tenant() {
    let mut s = two_tenants();
    let before = s.clone();
    for host in [None, Some("127.0.0.1"), Some("127.1"), Some("localhost")] {
        let got = field(s.apply(&scoped(&["evil"], app("evil", "x", "/evil", host))));
        assert_eq!(got, "host", "{host:?}");
    }
    // Not in their tenants.
    let got = field(s.apply(&scoped(
        &["evil"],
        app("acme", "x", "/x", Some("x.example.com")),
    )));
    assert_eq!(got, "tenant");
    // Not a tenant's change at all.
    let got = field(s.apply(&scoped(
        &["evil"],
        Command::PutTenant {
            name: n("evil"),
            quotas: Quotas::default(),
        },
    )));
    assert_eq!(got, "command");
    assert_eq!(s, before);
    s.apply(&scoped(
        &["evil"],
        app("evil", "x", "/evil", Some("evil.example.com")),
    ))
    .unwrap();
    // Audited around scoped applies whole, with its record.
    s.apply(&Command::Audited {
        who: "user:eve".into(),
        from: "127.0.0.1".into(),
        what: "POST /api/v1/tenants/evil/apps".into(),
        unix_ms: 1,
        command: Box::new(scoped(
            &["evil"],
            app("evil", "y", "/y", Some("evil.example.com")),
        )),
    })
    .unwrap();
    assert!(s.app(&n("evil"), &n("y")).is_some());
    assert_eq!(s.audit_since(state::Revision(0)).count(), 1);
}

#[test]
fn a_preview_route_is_a_claim_too() {
    let mut s = two_tenants();
    s.apply(&Command::PutRegion {
        region: state::Region::named(n("eu")),
    })
    .unwrap();
    s.apply(&app("evil", "web", "/web", Some("evil.example.com")))
        .unwrap();
    s.apply(&Command::AddVersion {
        tenant: n("evil"),
        app: n("web"),
        digest: "a".repeat(64),
        config: VersionConfig::default(),
    })
    .unwrap();
    s.apply(&Command::AddVersion {
        tenant: n("evil"),
        app: n("web"),
        digest: "b".repeat(64),
        config: VersionConfig::default(),
    })
    .unwrap();
    s.apply(&Command::SetDeployment {
        tenant: n("evil"),
        app: n("web"),
        version: 1,
        regions: [(n("eu"), 1)].into(),
    })
    .unwrap();
    let start = |preview: &str| Command::StartRollout {
        tenant: n("evil"),
        app: n("web"),
        to: 2,
        plan: rollout::Plan::blue_green_plan(preview, 1000),
        by: "eve".into(),
        now_unix_ms: 1,
    };
    // Under acme's `/hello` (on every host, so on evil's host too).
    assert_eq!(field(s.apply(&start("/hello/preview"))), "plan");
    s.apply(&start("/preview/web")).unwrap();
    // Now the preview is evil's: acme cannot take it (acme is unscoped).
    assert_eq!(field(s.apply(&app("acme", "p", "/preview", None))), "route");
}

#[test]
fn conflicts_of_an_older_state_are_reported() {
    // A state as an older version could write it (in a snapshot), made by
    // renaming a route in the snapshot's bytes: `/hellx/login` and
    // `/hello/login` have the same length, so the encoding stays valid.
    let mut s = two_tenants();
    s.apply(&app("evil", "x", "/hellx/login", Some("evil.example.com")))
        .unwrap();
    assert!(s.route_conflicts().is_empty());
    let mut bytes = postcard::to_allocvec(&s).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"/hellx/login")
        .unwrap();
    bytes[at + 5] = b'o';
    let old: State = postcard::from_bytes(&bytes).unwrap();
    let conflicts = old.route_conflicts();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = &conflicts[0];
    assert_eq!(c.rule, "route");
    assert_eq!(
        (c.first.tenant.as_str(), c.first.route.as_str()),
        ("acme", "/hello")
    );
    assert_eq!(
        (c.second.tenant.as_str(), c.second.route.as_str()),
        ("evil", "/hello/login")
    );
}
