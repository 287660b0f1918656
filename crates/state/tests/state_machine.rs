//! The state machine: whole changes or none, validation that names the
//! field, quotas, cascades, compare-and-swap, watch, and determinism.

use std::collections::BTreeMap;

use rng::SplitMix64;
use state::{
    Command, Compacted, Name, Node, Outcome, Quotas, Record, Region, Rejection, Revision, State,
    VersionConfig,
};

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

fn digest(c: char) -> String {
    c.to_string().repeat(64)
}

fn region(name: &str) -> Command {
    Command::PutRegion {
        region: Region {
            name: n(name),
            metro: "ams".into(),
            country: "nl".into(),
            continent: "eu".into(),
        },
    }
}

/// A state with tenant `acme` (quotas given), region `eu-1` and app `shop`
/// at version 1.
fn shop(quotas: Quotas) -> State {
    let mut s = State::default();
    for cmd in [
        Command::PutTenant {
            name: n("acme"),
            quotas,
        },
        region("eu-1"),
        Command::CreateApp {
            tenant: n("acme"),
            name: n("shop"),
            route: "/shop".into(),
            host: None,
        },
        Command::AddVersion {
            tenant: n("acme"),
            app: n("shop"),
            digest: digest('a'),
            config: VersionConfig::default(),
        },
    ] {
        s.apply(&cmd).unwrap();
    }
    s
}

fn deploy(version: u64, replicas: u32) -> Command {
    Command::SetDeployment {
        tenant: n("acme"),
        app: n("shop"),
        version,
        regions: BTreeMap::from([(n("eu-1"), replicas)]),
    }
}

/// Applies `cmd`, expecting a rejection, and checks nothing changed.
fn refused(state: &mut State, cmd: &Command) -> Rejection {
    let before = state.clone();
    let err = state.apply(cmd).expect_err("the command must be refused");
    assert_eq!(*state, before, "a refused command changed the state");
    err
}

#[test]
fn a_deployment_flow_advances_one_revision_per_command() {
    let mut s = shop(Quotas::default());
    assert_eq!(s.revision(), Revision(4));
    assert_eq!(
        s.apply(&Command::AddVersion {
            tenant: n("acme"),
            app: n("shop"),
            digest: digest('b'),
            config: VersionConfig::default(),
        }),
        Ok(Outcome::VersionAdded(2))
    );
    assert_eq!(s.apply(&deploy(2, 3)), Ok(Outcome::Applied));
    assert_eq!(s.revision(), Revision(6));
    let d = s.deployment(&n("acme"), &n("shop")).unwrap();
    assert_eq!((d.version, d.replicas(), d.updated), (2, 3, Revision(6)));
    let numbers: Vec<u64> = s
        .versions(&n("acme"), &n("shop"))
        .map(|v| v.number)
        .collect();
    assert_eq!(numbers, [1, 2]);
}

#[test]
fn bad_input_is_refused_by_field_and_changes_nothing() {
    let mut s = shop(Quotas::default());
    let field = |r: Rejection| r.field().map(str::to_string);
    let bad_route = Command::CreateApp {
        tenant: n("acme"),
        name: n("cart"),
        route: "no-slash".into(),
        host: None,
    };
    assert_eq!(field(refused(&mut s, &bad_route)), Some("route".into()));
    let bad_digest = Command::AddVersion {
        tenant: n("acme"),
        app: n("shop"),
        digest: "xyz".into(),
        config: VersionConfig::default(),
    };
    assert_eq!(field(refused(&mut s, &bad_digest)), Some("digest".into()));
    let bad_timeout = Command::AddVersion {
        tenant: n("acme"),
        app: n("shop"),
        digest: digest('c'),
        config: VersionConfig {
            timeout_ms: 0,
            ..VersionConfig::default()
        },
    };
    assert_eq!(
        field(refused(&mut s, &bad_timeout)),
        Some("timeout_ms".into())
    );
    assert!(matches!(
        refused(&mut s, &deploy(9, 1)),
        Rejection::NotFound { kind, .. } if kind == "version"
    ));
    let unknown_region = Command::SetDeployment {
        tenant: n("acme"),
        app: n("shop"),
        version: 1,
        regions: BTreeMap::from([(n("mars-1"), 1)]),
    };
    assert!(matches!(
        refused(&mut s, &unknown_region),
        Rejection::NotFound { kind, .. } if kind == "region"
    ));
    let homeless = Command::PutNode {
        node: Node {
            name: n("n1"),
            region: n("mars-1"),
            address: "127.0.0.1:7000".into(),
            labels: BTreeMap::new(),
            capacity: 10,
            api: None,
            gateway: None,
            peer_key: None,
        },
    };
    assert!(matches!(
        refused(&mut s, &homeless),
        Rejection::NotFound { .. }
    ));
}

#[test]
fn names_from_a_log_entry_are_checked_again() {
    // A peer's log entry is JSON; a bad name in it cannot even be decoded.
    let json = r#"{"op":"create_app","tenant":"acme","name":"Not OK","route":"/x"}"#;
    let err = serde_json::from_str::<Command>(json).unwrap_err();
    assert!(err.to_string().contains("not a valid name"), "{err}");
}

#[test]
fn routes_are_unique_across_tenants() {
    let mut s = shop(Quotas::default());
    s.apply(&Command::PutTenant {
        name: n("other"),
        quotas: Quotas::default(),
    })
    .unwrap();
    let clash = Command::CreateApp {
        tenant: n("other"),
        name: n("shop"),
        route: "/shop".into(),
        host: None,
    };
    // Another tenant's prefix (tests/claims.rs has the whole rule): a
    // conflict with the state, not a bad route.
    assert!(matches!(
        refused(&mut s, &clash),
        Rejection::Conflict { field, .. } if field == "route"
    ));
    // The same tenant's route: it exists.
    let again = Command::CreateApp {
        tenant: n("acme"),
        name: n("shop2"),
        route: "/shop".into(),
        host: None,
    };
    assert!(matches!(
        refused(&mut s, &again),
        Rejection::AlreadyExists { kind, .. } if kind == "route"
    ));
}

#[test]
fn quotas_bound_apps_and_replicas() {
    let mut s = shop(Quotas {
        max_apps: 1,
        max_replicas: 5,
        ..Quotas::default()
    });
    let second = Command::CreateApp {
        tenant: n("acme"),
        name: n("cart"),
        route: "/cart".into(),
        host: None,
    };
    assert!(matches!(
        refused(&mut s, &second),
        Rejection::Quota { what, limit: 1, wanted: 2, .. } if what == "apps"
    ));
    assert_eq!(s.apply(&deploy(1, 5)), Ok(Outcome::Applied));
    assert!(matches!(
        refused(&mut s, &deploy(1, 6)),
        Rejection::Quota { what, .. } if what == "replicas"
    ));
    // Lowering max_apps below what the tenant has is refused, by field.
    let shrink = Command::PutTenant {
        name: n("acme"),
        quotas: Quotas {
            max_apps: 0,
            max_replicas: 5,
            ..Quotas::default()
        },
    };
    assert_eq!(refused(&mut s, &shrink).field(), Some("quotas.max_apps"));
}

#[test]
fn deleting_an_app_removes_its_versions_and_deployment_in_one_revision() {
    let mut s = shop(Quotas::default());
    s.apply(&deploy(1, 2)).unwrap();
    let before = s.revision();
    s.apply(&Command::DeleteApp {
        tenant: n("acme"),
        name: n("shop"),
    })
    .unwrap();
    assert_eq!(s.revision(), Revision(before.0 + 1));
    assert!(s.app(&n("acme"), &n("shop")).is_none());
    assert_eq!(s.versions(&n("acme"), &n("shop")).count(), 0);
    assert!(s.deployment(&n("acme"), &n("shop")).is_none());
    let events = s.events_since(before).unwrap();
    let kinds: Vec<(Record, bool)> = events
        .iter()
        .map(|e| (e.change.record, e.change.deleted))
        .collect();
    assert_eq!(
        kinds,
        [
            (Record::Version, true),
            (Record::Deployment, true),
            (Record::App, true)
        ]
    );
    assert!(events.iter().all(|e| e.revision == s.revision()));
    // The tenant can go now that it has no apps; before, it could not.
    s.apply(&Command::DeleteTenant { name: n("acme") }).unwrap();
}

#[test]
fn a_tenant_with_apps_cannot_be_deleted() {
    let mut s = shop(Quotas::default());
    assert!(matches!(
        refused(&mut s, &Command::DeleteTenant { name: n("acme") }),
        Rejection::InUse { .. }
    ));
}

#[test]
fn compare_and_swap_is_a_register() {
    let mut s = State::default();
    let cas = |expected: Option<&[u8]>, new: Option<&[u8]>| Command::CompareAndSwap {
        key: "k".into(),
        expected: expected.map(<[u8]>::to_vec),
        new: new.map(<[u8]>::to_vec),
    };
    assert_eq!(
        s.apply(&cas(None, Some(b"1"))),
        Ok(Outcome::Swapped {
            swapped: true,
            previous: None
        })
    );
    let rev = s.revision();
    assert_eq!(
        s.apply(&cas(Some(b"0"), Some(b"2"))),
        Ok(Outcome::Swapped {
            swapped: false,
            previous: Some(b"1".to_vec())
        })
    );
    assert_eq!(s.revision(), rev, "a failed swap is no change");
    s.apply(&cas(Some(b"1"), None)).unwrap();
    assert_eq!(s.register("k"), None);
    let big = Command::Put {
        key: "k".into(),
        value: vec![0; 70_000],
    };
    assert_eq!(refused(&mut s, &big).field(), Some("value"));
}

#[test]
fn watchers_see_changes_in_order_and_learn_when_they_fell_behind() {
    let mut s = State::default();
    for i in 0..10_050u32 {
        s.apply(&Command::Put {
            key: format!("k{}", i % 7),
            value: i.to_le_bytes().to_vec(),
        })
        .unwrap();
    }
    let recent = s.events_since(Revision(10_040)).unwrap();
    assert_eq!(recent.len(), 10);
    assert!(recent.windows(2).all(|w| w[0].revision < w[1].revision));
    assert_eq!(recent.last().unwrap().revision, s.revision());
    assert_eq!(
        s.events_since(Revision(3)),
        Err(Compacted {
            floor: Revision(50)
        })
    );
    // A replica restored from a snapshot has the state but no history.
    let snapshot = postcard::to_allocvec(&s).unwrap();
    let restored: State = postcard::from_bytes(&snapshot).unwrap();
    assert_eq!(restored.register("k0"), s.register("k0"));
    assert_eq!(restored.revision(), s.revision());
    assert!(restored.events_since(Revision(10_040)).is_err());
    assert_eq!(restored.events_since(s.revision()), Ok(Vec::new()));
}

fn random_command(rng: &mut SplitMix64) -> Command {
    let t = n(["acme", "globex", "initech"][(rng.next_u64() % 3) as usize]);
    let a = n(["shop", "cart", "api", "web"][(rng.next_u64() % 4) as usize]);
    match rng.next_u64() % 8 {
        0 => Command::PutTenant {
            name: t,
            quotas: Quotas {
                max_apps: (rng.next_u64() % 4) as u32,
                max_replicas: (rng.next_u64() % 20) as u32,
                ..Quotas::default()
            },
        },
        1 => Command::CreateApp {
            route: format!("/{t}-{a}"),
            host: None,
            tenant: t,
            name: a,
        },
        2 => Command::AddVersion {
            tenant: t,
            app: a,
            digest: digest('d'),
            config: VersionConfig::default(),
        },
        3 => Command::SetDeployment {
            tenant: t,
            app: a,
            version: rng.next_u64() % 3,
            regions: BTreeMap::from([(n("eu-1"), (rng.next_u64() % 8) as u32)]),
        },
        4 => Command::DeleteApp { tenant: t, name: a },
        5 => Command::DeleteTenant { name: t },
        6 => region("eu-1"),
        _ => Command::CompareAndSwap {
            key: "x".into(),
            expected: Some(vec![(rng.next_u64() % 2) as u8])
                .filter(|_| !rng.next_u64().is_multiple_of(3)),
            new: Some(vec![(rng.next_u64() % 2) as u8]),
        },
    }
}

#[test]
fn replicas_applying_the_same_log_agree_and_refusals_never_half_apply() {
    for seed in 1..=20u64 {
        let mut rng = SplitMix64::new(seed);
        let log: Vec<Command> = (0..400).map(|_| random_command(&mut rng)).collect();
        let (mut a, mut b) = (State::default(), State::default());
        let mut outcomes = Vec::new();
        for cmd in &log {
            let before = a.clone();
            let result = a.apply(cmd);
            if result.is_err() {
                assert_eq!(a, before, "seed {seed}: a refusal changed the state");
            }
            outcomes.push(result);
        }
        for (cmd, expected) in log.iter().zip(&outcomes) {
            assert_eq!(&b.apply(cmd), expected, "seed {seed}");
        }
        assert_eq!(a, b, "seed {seed}: replicas diverged");
        // Invariants the commands maintain.
        for d in a.deployments() {
            assert!(
                a.app(&d.tenant, &d.app).is_some(),
                "seed {seed}: orphan deployment"
            );
        }
        for t in a.tenants() {
            let apps = a.apps().filter(|x| x.tenant == t.name).count() as u32;
            assert!(
                apps <= t.quotas.max_apps.max(apps.min(t.quotas.max_apps)),
                "seed {seed}"
            );
        }
    }
}

fn node(name: &str) -> Command {
    Command::PutNode {
        node: Node {
            name: n(name),
            region: n("eu-1"),
            address: format!("127.0.0.1:{}", 7000 + name.len()),
            labels: BTreeMap::new(),
            capacity: 100,
            api: None,
            gateway: None,
            peer_key: None,
        },
    }
}

fn place(specs: &[(u64, &str, u32)]) -> Command {
    Command::SetPlacements {
        tenant: n("acme"),
        app: n("shop"),
        placements: specs
            .iter()
            .map(|&(version, node, count)| state::PlacementSpec {
                version,
                node: n(node),
                count,
            })
            .collect(),
    }
}

#[test]
fn placements_replace_an_apps_share_and_go_with_the_app() {
    let mut s = shop(Quotas::default());
    s.apply(&node("n1")).unwrap();
    s.apply(&node("n2")).unwrap();
    s.apply(&place(&[(1, "n1", 2), (1, "n2", 1)])).unwrap();
    let counts =
        |s: &State, node: &str| -> u32 { s.placements_on(&n(node)).map(|p| p.count).sum() };
    assert_eq!((counts(&s, "n1"), counts(&s, "n2")), (2, 1));

    // A new decision replaces the old one whole; a zero count places nothing.
    s.apply(&place(&[(1, "n2", 3), (1, "n1", 0)])).unwrap();
    assert_eq!((counts(&s, "n1"), counts(&s, "n2")), (0, 3));
    let events = s.events_since(Revision(s.revision().0 - 1)).unwrap();
    assert_eq!(events[0].change.record, Record::Placement);

    // Refused whole: an unknown node, an unknown version, a pair twice.
    let before = s.clone();
    assert!(
        matches!(refused(&mut s, &place(&[(1, "n1", 1), (1, "nx", 1)])), Rejection::NotFound { kind, .. } if kind == "node")
    );
    assert!(
        matches!(refused(&mut s, &place(&[(9, "n1", 1)])), Rejection::NotFound { kind, .. } if kind == "version")
    );
    assert_eq!(
        refused(&mut s, &place(&[(1, "n1", 1), (1, "n1", 2)])).field(),
        Some("placements")
    );
    assert_eq!(s, before);

    // Deleting the app takes its placements with it.
    s.apply(&Command::DeleteApp {
        tenant: n("acme"),
        name: n("shop"),
    })
    .unwrap();
    assert_eq!(s.placements().count(), 0);
}

#[test]
fn a_node_report_replaces_the_last_and_goes_with_its_node() {
    use state::{LatencySummary, NodeReport, VersionReport};
    let mut s = shop(Quotas::default());
    let report = |sequence: u64| NodeReport {
        node: n("n1"),
        boot: 7,
        sequence,
        templates_ready: 1,
        live_sandboxes: 3,
        sandbox_starts: 2,
        usage: Default::default(),
        versions: vec![VersionReport {
            tenant: n("acme"),
            app: n("shop"),
            version: 1,
            requests: 10 * sequence,
            errors: 1,
            timeouts: 0,
            latency_us: LatencySummary::default(),
            busy_us: 9_000,
            recent_latencies_us: vec![900],
            latency_histogram_us: Default::default(),
        }],
    };
    // A report from a node the state does not know is refused.
    assert!(matches!(
        refused(&mut s, &Command::Report { report: report(1) }),
        Rejection::NotFound { kind, .. } if kind == "node"
    ));
    s.apply(&Command::PutNode {
        node: Node {
            name: n("n1"),
            region: n("eu-1"),
            address: "127.0.0.1:7000".into(),
            labels: BTreeMap::new(),
            capacity: 10,
            api: None,
            gateway: Some("127.0.0.1:8080".into()),
            peer_key: None,
        },
    })
    .unwrap();
    for sequence in 1..=3 {
        s.apply(&Command::Report {
            report: report(sequence),
        })
        .unwrap();
    }
    assert_eq!(s.reports().count(), 1);
    assert_eq!(s.report(&n("n1")).unwrap().sequence, 3);
    assert_eq!(s.report(&n("n1")).unwrap().versions[0].requests, 30);
    let before = s.revision();
    s.apply(&Command::RemoveNode { name: n("n1") }).unwrap();
    assert!(s.report(&n("n1")).is_none());
    let events = s.events_since(before).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.change.record == Record::Report && e.change.deleted),
        "{events:?}"
    );
}

#[test]
fn an_apps_placements_are_its_own_whatever_its_neighbours() {
    let mut s = shop(Quotas::default());
    s.apply(&node("n1")).unwrap();
    s.apply(&node("n2")).unwrap();
    // Apps sorting just before and after `shop`, each placed too.
    for name in ["shoo", "shopa"] {
        s.apply(&Command::CreateApp {
            tenant: n("acme"),
            name: n(name),
            route: format!("/{name}"),
            host: None,
        })
        .unwrap();
        s.apply(&Command::AddVersion {
            tenant: n("acme"),
            app: n(name),
            digest: digest('c'),
            config: VersionConfig::default(),
        })
        .unwrap();
        s.apply(&Command::SetPlacements {
            tenant: n("acme"),
            app: n(name),
            placements: vec![state::PlacementSpec {
                version: 1,
                node: n("n1"),
                count: 5,
            }],
        })
        .unwrap();
    }
    s.apply(&place(&[(1, "n2", 2), (1, "n1", 1)])).unwrap();
    let of_shop: Vec<(String, u64, u32)> = s
        .placements_of_app(&n("acme"), &n("shop"))
        .map(|p| (p.app.to_string(), p.version, p.count))
        .collect();
    assert_eq!(
        of_shop,
        [("shop".to_string(), 1, 1), ("shop".to_string(), 1, 2)]
    );
    assert_eq!(s.placements_of_app(&n("acme"), &n("nothing")).count(), 0);
}

/// Issue 16: a tenant's quotas bound its versions' limits — memory per
/// sandbox, timeout, concurrency, request and response bodies — for every
/// caller, the admin's token included; a version over one is refused
/// naming the configuration's field, and nothing is stored. Quotas out of
/// range are refused naming the quota.
#[test]
fn a_version_over_its_tenant_s_quotas_is_refused_naming_the_field() {
    let quotas = Quotas {
        max_memory_bytes: 128 << 20,
        max_timeout_ms: 10_000,
        max_concurrency: 64,
        max_body_bytes: 1 << 20,
        ..Quotas::default()
    };
    let mut s = shop(quotas.clone());
    let base = VersionConfig {
        memory_bytes: 64 << 20,
        timeout_ms: 1_000,
        max_concurrency: 64,
        max_request_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
        ..VersionConfig::default()
    };
    let add = |config: VersionConfig| Command::AddVersion {
        tenant: n("acme"),
        app: n("shop"),
        digest: digest('b'),
        config,
    };
    for (config, field) in [
        (
            VersionConfig {
                memory_bytes: 256 << 20,
                ..base.clone()
            },
            "config.memory_bytes",
        ),
        (
            VersionConfig {
                timeout_ms: 10_001,
                ..base.clone()
            },
            "config.timeout_ms",
        ),
        (
            VersionConfig {
                max_concurrency: 65,
                ..base.clone()
            },
            "config.max_concurrency",
        ),
        (
            VersionConfig {
                max_request_bytes: (1 << 20) + 1,
                ..base.clone()
            },
            "config.max_request_bytes",
        ),
        (
            VersionConfig {
                max_response_bytes: 2 << 20,
                ..base.clone()
            },
            "config.max_response_bytes",
        ),
    ] {
        let before = s.clone();
        match s.apply(&add(config)) {
            Err(Rejection::Quota { what, tenant, .. }) => {
                assert_eq!((what.as_str(), tenant.as_str()), (field, "acme"));
            }
            other => panic!("{field}: {other:?}"),
        }
        assert_eq!(s, before, "nothing stored");
    }
    assert_eq!(s.apply(&add(base)), Ok(Outcome::VersionAdded(2)));
    // Quotas themselves are bounded by the global maxima.
    for (quotas, field) in [
        (
            Quotas {
                max_memory_bytes: 5 << 30,
                ..quotas.clone()
            },
            "quotas.max_memory_bytes",
        ),
        (
            Quotas {
                max_timeout_ms: 0,
                ..quotas.clone()
            },
            "quotas.max_timeout_ms",
        ),
        (
            Quotas {
                max_concurrency: 0,
                ..quotas.clone()
            },
            "quotas.max_concurrency",
        ),
        (
            Quotas {
                max_body_bytes: (64 << 20) + 1,
                ..quotas.clone()
            },
            "quotas.max_body_bytes",
        ),
    ] {
        let put = Command::PutTenant {
            name: n("acme"),
            quotas,
        };
        match s.apply(&put) {
            Err(Rejection::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // A state written before these quotas reads them as the maxima.
    let old: Quotas = serde_json::from_str(r#"{"max_apps":3,"max_replicas":4}"#).unwrap();
    assert_eq!(old.max_memory_bytes, 4 << 30);
    assert_eq!(old.max_body_bytes, 64 << 20);
}
