//! A backup's state restored into a new cluster: what comes from the
//! backup, what stays the new cluster's, and that a populated cluster is
//! never overwritten.

use std::collections::BTreeMap;

use state::{
    Command, Name, Node, Outcome, Quotas, Region, Rejection, Revision, Role, State, VersionConfig,
};

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

fn apply(state: &mut State, command: Command) {
    state.apply(&command).unwrap();
}

fn node(name: &str, region: &str) -> Command {
    Command::PutNode {
        node: Node {
            name: n(name),
            region: n(region),
            address: format!("{name}:7071"),
            labels: BTreeMap::new(),
            capacity: 10,
            api: None,
            gateway: None,
            peer_key: None,
        },
    }
}

fn credential(name: &str, role: Role, c: char) -> Command {
    Command::PutCredential {
        name: n(name),
        role,
        sha256: c.to_string().repeat(64),
    }
}

/// What a founder writes first: region, node, tenant, node-id register,
/// join and admin credentials.
fn founded(region: &str, node_name: &str, hash: char) -> State {
    let mut s = State::default();
    apply(
        &mut s,
        Command::PutRegion {
            region: Region::named(n(region)),
        },
    );
    apply(&mut s, node(node_name, region));
    apply(
        &mut s,
        Command::PutTenant {
            name: n("default"),
            quotas: Quotas::default(),
        },
    );
    apply(
        &mut s,
        Command::Put {
            key: "cluster/next-node-id".into(),
            value: b"2".to_vec(),
        },
    );
    apply(&mut s, credential("join", Role::Join, hash));
    apply(&mut s, credential("admin", Role::Admin, hash));
    s
}

/// The cluster backed up: three nodes, an app deployed and placed, a
/// user with TOTP, registers.
fn backed_up() -> State {
    let mut s = founded("eu", "node-1", 'a');
    apply(&mut s, node("node-2", "eu"));
    apply(&mut s, node("node-3", "eu"));
    apply(
        &mut s,
        Command::Put {
            key: "cluster/next-node-id".into(),
            value: b"4".to_vec(),
        },
    );
    apply(
        &mut s,
        Command::CreateApp {
            tenant: n("default"),
            name: n("shop"),
            route: "/shop".into(),
            host: None,
        },
    );
    apply(
        &mut s,
        Command::AddVersion {
            tenant: n("default"),
            app: n("shop"),
            digest: "d".repeat(64),
            config: VersionConfig::default(),
        },
    );
    apply(
        &mut s,
        Command::SetDeployment {
            tenant: n("default"),
            app: n("shop"),
            version: 1,
            regions: [(n("eu"), 2)].into(),
        },
    );
    apply(
        &mut s,
        Command::SetPlacements {
            tenant: n("default"),
            app: n("shop"),
            placements: vec![state::PlacementSpec {
                version: 1,
                node: n("node-2"),
                count: 2,
            }],
        },
    );
    apply(&mut s, credential("ci", Role::Operator, 'c'));
    apply(
        &mut s,
        Command::PutUser {
            name: n("ana"),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            roles: [("*".to_string(), Role::Admin)].into(),
        },
    );
    apply(
        &mut s,
        Command::SetUserTotp {
            name: n("ana"),
            sealed: "v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            code_sha256: None,
            now_unix_ms: 0,
        },
    );
    for i in 0..100 {
        apply(
            &mut s,
            Command::Put {
                key: format!("k/{i}"),
                value: i.to_string().into_bytes(),
            },
        );
    }
    s
}

fn restore(backup: &State) -> Command {
    Command::Restore {
        backup: Box::new(backup.clone()),
        by: "dwcp restore".into(),
        now_unix_ms: 1_700_000_000_000,
    }
}

#[test]
fn the_backup_becomes_the_state_and_the_new_cluster_keeps_its_identity() {
    let backup = backed_up();
    let mut fresh = founded("us", "node-1", 'b');
    let before = fresh.revision();
    assert_eq!(fresh.apply(&restore(&backup)), Ok(Outcome::Applied));

    // From the backup.
    assert!(fresh.app(&n("default"), &n("shop")).is_some());
    assert_eq!(fresh.versions(&n("default"), &n("shop")).count(), 1);
    assert!(fresh.deployment(&n("default"), &n("shop")).is_some());
    assert_eq!(fresh.register("k/99"), Some(&b"99"[..]));
    let ci = fresh.credentials().find(|c| c.name == n("ci")).unwrap();
    assert_eq!(ci.role, Role::Operator);
    let admin = fresh.credentials().find(|c| c.name == n("admin")).unwrap();
    assert_eq!(admin.sha256, "a".repeat(64), "the backup's admin token");

    // The new cluster's.
    let nodes: Vec<String> = fresh.nodes().map(|n| n.name.to_string()).collect();
    assert_eq!(nodes, ["node-1"]);
    assert_eq!(
        fresh.node(&n("node-1")).unwrap().region,
        n("us"),
        "the new node"
    );
    assert_eq!(fresh.placements().count(), 0, "old nodes' placements gone");
    let join = fresh.credentials().find(|c| c.role == Role::Join).unwrap();
    assert_eq!(join.sha256, "b".repeat(64), "the new cluster's join token");
    assert_eq!(
        fresh.credentials().filter(|c| c.role == Role::Join).count(),
        1
    );
    assert_eq!(fresh.register("cluster/next-node-id"), Some(&b"2"[..]));
    let regions: Vec<String> = fresh.regions().map(|r| r.name.to_string()).collect();
    assert_eq!(regions, ["eu", "us"]);

    // Sealed secrets cannot follow: enrolment cleared, sessions ended.
    let ana = fresh.user(&n("ana")).unwrap();
    assert_eq!(
        (ana.totp_sealed.as_deref(), ana.totp_confirmed),
        (None, false)
    );

    // The revision goes on after both; history starts afresh.
    let revision = fresh.revision();
    assert_eq!(revision.0, before.0.max(backup.revision().0) + 1);
    assert!(fresh.events_since(Revision(1)).is_err(), "watchers re-read");
    assert_eq!(fresh.events_since(revision), Ok(vec![]));
    let last = fresh.audit_since(Revision(0)).last().unwrap();
    assert_eq!(last.revision, revision);
    assert!(
        last.what.contains(&backup.revision().0.to_string()),
        "{last:?}"
    );
}

#[test]
fn a_cluster_with_apps_is_never_overwritten() {
    let backup = backed_up();
    let mut populated = backed_up();
    let before = populated.clone();
    let refused = populated.apply(&restore(&backup)).unwrap_err();
    match &refused {
        Rejection::Invalid { field, .. } => assert_eq!(field, "restore"),
        other => panic!("{other:?}"),
    }
    assert!(refused.to_string().contains("new cluster"), "{refused}");
    assert_eq!(populated, before, "nothing changed");
}

#[test]
fn a_restore_travels_through_the_json_log_whole() {
    let command = restore(&backed_up());
    let text = serde_json::to_string(&command).unwrap();
    assert!(
        text.len() < 20_000,
        "base64 of postcard: {} bytes",
        text.len()
    );
    let back: Command = serde_json::from_str(&text).unwrap();
    // The state travels whole except its event history, which is never
    // serialized (a restore starts the history afresh anyway).
    let Command::Restore { backup, .. } = &back else {
        panic!("{back:?}")
    };
    assert!(
        backup
            .events_since(Revision(0))
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    let again =
        restore(&state::snapshot::from_bytes(&state::snapshot::to_bytes(&backed_up())).unwrap());
    assert_eq!(back, again);
    let mut damaged: serde_json::Value = serde_json::from_str(&text).unwrap();
    damaged["backup"] = "bm90IGEgc3RhdGU=".into();
    let e = serde_json::from_value::<Command>(damaged).unwrap_err();
    assert!(e.to_string().contains("not a DWCP state"), "{e}");
}

#[test]
fn replicas_restoring_the_same_backup_agree() {
    let backup = backed_up();
    let mut fresh = founded("us", "node-1", 'b');
    let mut copy = fresh.clone();
    copy.apply(&restore(&backup)).unwrap();
    fresh.apply(&restore(&backup)).unwrap();
    assert_eq!(copy, fresh);
}
