//! Certification in the state machine: waivers lapse, a sign-off is
//! refused for a stale, partial or failing report, and recorded once per
//! role and person.

use state::certification::{CertifyCommand, GoLivePolicy, MAX_REPORTS};
use state::{Command, Name, Quotas, Rejection, State};

const HOUR_MS: u64 = 3_600_000;

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn apply(state: &mut State, c: CertifyCommand) -> Result<state::Outcome, Rejection> {
    state.apply(&Command::Certify { certify: c })
}

fn record(state: &mut State, n: u8, partial: bool, started: u64, not_passed: &[&str]) {
    apply(
        state,
        CertifyCommand::RecordReport {
            sha256: sha(n),
            target: "http://10.0.0.5:7070".into(),
            partial,
            started_unix_ms: started,
            not_passed: not_passed.iter().map(|s| s.to_string()).collect(),
            by: "admin".into(),
            now_unix_ms: started + 1000,
            json: "{}".into(),
        },
    )
    .unwrap();
}

fn sign(
    state: &mut State,
    n: u8,
    role: &str,
    by: &str,
    now: u64,
) -> Result<state::Outcome, Rejection> {
    apply(
        state,
        CertifyCommand::SignOff {
            sha256: sha(n),
            role: role.into(),
            by: by.into(),
            now_unix_ms: now,
        },
    )
}

fn waive(state: &mut State, id: &str, now: u64, until: u64) -> Result<state::Outcome, Rejection> {
    apply(
        state,
        CertifyCommand::PutWaiver {
            criterion: id.into(),
            reason: "the webhook fix lands next week".into(),
            by: "user:ana".into(),
            expires_unix_ms: until,
            now_unix_ms: now,
        },
    )
}

#[test]
fn a_failing_report_is_signed_only_while_its_failures_are_waived() {
    let mut s = State::default();
    let t0 = 1_000 * HOUR_MS;
    record(&mut s, 1, false, t0, &["security.webhooks.restricted"]);
    let refused = sign(&mut s, 1, "cto", "user:ana", t0 + HOUR_MS).unwrap_err();
    assert!(
        refused.to_string().contains("security.webhooks.restricted"),
        "{refused}"
    );
    waive(&mut s, "security.webhooks.restricted", t0, t0 + 2 * HOUR_MS).unwrap();
    sign(&mut s, 1, "cto", "user:ana", t0 + HOUR_MS).unwrap();
    // The waiver lapsed: the next approver is refused.
    let lapsed = sign(&mut s, 1, "ceo", "user:bo", t0 + 3 * HOUR_MS).unwrap_err();
    assert!(
        lapsed.to_string().contains("no waiver in force"),
        "{lapsed}"
    );
    assert!(!s.waivers().next().unwrap().in_force(t0 + 3 * HOUR_MS));
    assert_eq!(
        s.missing_sign_offs(&sha(1)),
        vec!["engineering-manager", "vp-engineering", "ceo"]
    );
}

#[test]
fn stale_partial_and_repeated_sign_offs_are_refused() {
    let mut s = State::default();
    let t0 = 1_000 * HOUR_MS;
    record(&mut s, 1, false, t0, &[]);
    sign(&mut s, 1, "cto", "user:ana", t0 + HOUR_MS).unwrap();
    // One role once, one person once.
    assert!(matches!(
        sign(&mut s, 1, "cto", "user:bo", t0 + HOUR_MS),
        Err(Rejection::AlreadyExists { .. })
    ));
    assert!(matches!(
        sign(&mut s, 1, "ceo", "user:ana", t0 + HOUR_MS),
        Err(Rejection::AlreadyExists { .. })
    ));
    // Not a role of the policy.
    let e = sign(&mut s, 1, "intern", "user:cy", t0 + HOUR_MS).unwrap_err();
    assert_eq!(e.field(), Some("role"));
    // Too old (7 days by default).
    let e = sign(&mut s, 1, "ceo", "user:bo", t0 + 8 * 24 * HOUR_MS).unwrap_err();
    assert!(e.to_string().contains("stale"), "{e}");
    // A newer report makes this one stale; a partial one cannot be signed.
    record(&mut s, 2, true, t0 + 2 * HOUR_MS, &[]);
    let e = sign(&mut s, 1, "ceo", "user:bo", t0 + 2 * HOUR_MS).unwrap_err();
    assert!(e.to_string().contains("newer"), "{e}");
    let e = sign(&mut s, 2, "ceo", "user:bo", t0 + 2 * HOUR_MS).unwrap_err();
    assert!(e.to_string().contains("left criteria out"), "{e}");
    // A report never recorded.
    assert!(matches!(
        sign(&mut s, 9, "ceo", "user:bo", t0),
        Err(Rejection::NotFound { .. })
    ));
}

#[test]
fn waivers_policy_and_history_are_checked_and_bounded() {
    let mut s = State::default();
    let now = 1_000 * HOUR_MS;
    assert_eq!(
        waive(&mut s, "Security!", now, now + HOUR_MS)
            .unwrap_err()
            .field(),
        Some("criterion")
    );
    assert_eq!(
        waive(&mut s, "security.x", now, now).unwrap_err().field(),
        Some("expires_unix_ms")
    );
    assert_eq!(
        waive(&mut s, "security.x", now, now + 91 * 24 * HOUR_MS)
            .unwrap_err()
            .field(),
        Some("expires_unix_ms")
    );
    waive(&mut s, "security.x", now, now + HOUR_MS).unwrap();
    apply(
        &mut s,
        CertifyCommand::DeleteWaiver {
            criterion: "security.x".into(),
        },
    )
    .unwrap();
    assert_eq!(s.waivers().count(), 0);
    let bad = GoLivePolicy {
        approvers: vec!["cto".into(), "cto".into()],
        max_report_age_ms: HOUR_MS,
        production: false,
        production_apps: vec![],
    };
    assert!(apply(&mut s, CertifyCommand::SetPolicy { policy: bad }).is_err());
    let policy = GoLivePolicy {
        approvers: vec!["cto".into()],
        max_report_age_ms: HOUR_MS,
        production: false,
        production_apps: vec![],
    };
    apply(&mut s, CertifyCommand::SetPolicy { policy }).unwrap();
    record(&mut s, 1, false, now, &[]);
    sign(&mut s, 1, "cto", "user:ana", now + 10).unwrap();
    assert!(s.missing_sign_offs(&sha(1)).is_empty());
    // Recording the same report again changes nothing; the history is
    // bounded and a dropped report takes its sign-offs with it.
    let revision = s.revision();
    record(&mut s, 1, false, now, &[]);
    assert_eq!(s.revision(), revision);
    for n in 2..=(MAX_REPORTS as u8 + 1) {
        record(&mut s, n, false, now, &[]);
    }
    assert_eq!(s.certify_reports().len(), MAX_REPORTS);
    assert!(s.sign_offs().is_empty());
}

/// Issue 17: the go-live gate of a cluster marked production refuses
/// changes until the latest report is current and signed by every role,
/// and again once it is stale, a newer unsigned report is recorded, or a
/// waiver it relied on lapses. A cluster not marked production is never
/// gated.
#[test]
fn a_production_cluster_is_gated_on_a_current_signed_certification() {
    let mut s = State::default();
    let now = 1_000 * HOUR_MS;
    assert_eq!(
        s.go_live_refusal("acme", "shop", now),
        None,
        "not production: no gate"
    );
    let policy = GoLivePolicy {
        approvers: vec!["cto".into(), "ceo".into()],
        max_report_age_ms: 24 * HOUR_MS,
        production: true,
        production_apps: vec![],
    };
    apply(&mut s, CertifyCommand::SetPolicy { policy }).unwrap();
    let why = s.go_live_refusal("acme", "shop", now).unwrap();
    assert!(why.contains("no certification report"), "{why}");

    record(&mut s, 1, false, now, &["security.x"]);
    waive(&mut s, "security.x", now, now + 2 * HOUR_MS).unwrap();
    let why = s.go_live_refusal("acme", "shop", now + 10).unwrap();
    assert!(
        why.contains("not signed off") && why.contains("cto, ceo"),
        "{why}"
    );
    sign(&mut s, 1, "cto", "user:ana", now + 10).unwrap();
    let why = s.go_live_refusal("acme", "shop", now + 20).unwrap();
    assert!(why.contains("missing ceo"), "{why}");
    sign(&mut s, 1, "ceo", "user:bob", now + 20).unwrap();
    assert_eq!(s.go_live_refusal("acme", "shop", now + 30), None);

    // The waiver lapses: the failure is no longer covered.
    let why = s
        .go_live_refusal("acme", "shop", now + 3 * HOUR_MS)
        .unwrap();
    assert!(
        why.contains("security.x") && why.contains("no longer current"),
        "{why}"
    );
    // Stale past the policy's age.
    let why = s
        .go_live_refusal("acme", "shop", now + 25 * HOUR_MS)
        .unwrap();
    assert!(why.contains("stale"), "{why}");
    // A newer report, not yet signed.
    record(&mut s, 2, false, now + 40, &[]);
    let why = s.go_live_refusal("acme", "shop", now + 50).unwrap();
    assert!(
        why.contains(&sha(2)) && why.contains("not signed off"),
        "{why}"
    );
    // A partial run as the latest: no longer current.
    record(&mut s, 3, true, now + 60, &[]);
    let why = s.go_live_refusal("acme", "shop", now + 70).unwrap();
    assert!(why.contains("left criteria out"), "{why}");
}

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

/// Tenant `acme` with apps `shop` and `blog`.
fn two_apps() -> State {
    let mut s = State::default();
    s.apply(&Command::PutTenant {
        name: n("acme"),
        quotas: Quotas::default(),
    })
    .unwrap();
    for (app, route) in [("shop", "/shop"), ("blog", "/blog")] {
        s.apply(&Command::CreateApp {
            tenant: n("acme"),
            name: n(app),
            route: route.into(),
            host: None,
        })
        .unwrap();
    }
    s
}

fn policy_with_apps(apps: &[&str]) -> CertifyCommand {
    CertifyCommand::SetPolicy {
        policy: GoLivePolicy {
            approvers: vec!["cto".into()],
            max_report_age_ms: 24 * HOUR_MS,
            production: false,
            production_apps: apps.iter().map(|a| a.to_string()).collect(),
        },
    }
}

/// Issue 17: an app marked production is gated alone — its changes wait
/// for a current signed certification while the cluster's other apps
/// change freely; the gate opens once the report is signed, and an app
/// unmarked is no longer gated. Only an existing app, named as
/// tenant/app, once, can be marked.
#[test]
fn an_app_marked_production_is_gated_and_the_others_are_not() {
    let mut s = two_apps();
    let now = 1_000 * HOUR_MS;
    apply(&mut s, policy_with_apps(&["acme/shop"])).unwrap();
    let why = s.go_live_refusal("acme", "shop", now).unwrap();
    assert!(
        why.contains("app acme/shop is marked production")
            && why.contains("no certification report"),
        "{why}"
    );
    assert_eq!(s.go_live_refusal("acme", "blog", now), None, "not marked");
    assert_eq!(
        s.go_live_refusal("other", "shop", now),
        None,
        "another tenant's shop"
    );
    let gate = s.go_live_gate(now).unwrap();
    assert!(
        gate.contains("1 app is marked production (acme/shop)"),
        "{gate}"
    );

    record(&mut s, 1, false, now, &[]);
    let why = s.go_live_refusal("acme", "shop", now + 10).unwrap();
    assert!(why.contains("missing cto"), "{why}");
    sign(&mut s, 1, "cto", "user:ana", now + 10).unwrap();
    assert_eq!(s.go_live_refusal("acme", "shop", now + 20), None);
    assert_eq!(s.go_live_gate(now + 20), None);
    // Stale again past the policy's age.
    assert!(
        s.go_live_refusal("acme", "shop", now + 25 * HOUR_MS)
            .is_some()
    );

    // Unmarked: no longer gated, and nothing is.
    apply(&mut s, policy_with_apps(&[])).unwrap();
    assert_eq!(s.go_live_refusal("acme", "shop", now + 25 * HOUR_MS), None);
    assert_eq!(s.go_live_gate(now + 25 * HOUR_MS), None);

    // Bad marks are refused, naming the entry; nothing changes.
    let revision = s.revision();
    for (apps, field, allowed) in [
        (
            &["acme/nothing"][..],
            "production_apps[0]",
            "an existing app",
        ),
        (
            &["acme/shop", "shop"][..],
            "production_apps[1]",
            "tenant/app",
        ),
        (
            &["acme/shop", "acme/shop"][..],
            "production_apps[1]",
            "each app once",
        ),
        (&["acme/Shop!"][..], "production_apps[0]", "tenant/app"),
    ] {
        let refused = apply(&mut s, policy_with_apps(apps)).unwrap_err();
        let text = refused.to_string();
        assert!(
            text.contains(field) && text.contains(allowed),
            "{apps:?}: {text}"
        );
    }
    assert_eq!(s.revision(), revision);
    // An app marked, then deleted, does not block a later policy change.
    apply(&mut s, policy_with_apps(&["acme/blog"])).unwrap();
    s.apply(&Command::DeleteApp {
        tenant: n("acme"),
        name: n("blog"),
    })
    .unwrap();
    apply(&mut s, policy_with_apps(&["acme/blog", "acme/shop"])).unwrap();
    assert!(
        s.go_live_refusal("acme", "shop", now + 25 * HOUR_MS)
            .is_some()
    );
}
