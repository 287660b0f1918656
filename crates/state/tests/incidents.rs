//! SLOs and incidents in the state machine: an SLO is checked whole
//! (target in (0, 1), URLs that parse, a routing key for PagerDuty) and a
//! refused one changes nothing; incidents are deduplicated by fingerprint
//! while unresolved, move open → acknowledged → resolved only, carry their
//! times to acknowledge and resolve, and stay bounded.

use state::{
    Command, IncidentStatus, NotifyKind, NotifyTarget, Objective, Outcome, Quotas, Rejection,
    Revision, Severity, Slo, State,
};
use state::{MAX_TIMELINE, Name, RESOLVED_KEPT};

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

/// Tenant `acme` with app `shop`.
fn shop() -> State {
    let mut s = State::default();
    for c in [
        Command::PutTenant {
            name: n("acme"),
            quotas: Quotas::default(),
        },
        Command::CreateApp {
            tenant: n("acme"),
            name: n("shop"),
            route: "/shop".into(),
            host: None,
        },
    ] {
        s.apply(&c).unwrap();
    }
    s
}

fn slo() -> Slo {
    Slo {
        tenant: n("acme"),
        app: n("shop"),
        name: n("availability"),
        objective: Objective::Availability,
        target: 0.999,
        window_days: 30,
        notify: vec![NotifyTarget {
            kind: NotifyKind::Alertmanager,
            url: "http://127.0.0.1:9093/hook".into(),
            routing_key: None,
            sealed: None,
        }],
        updated: Revision::default(),
    }
}

fn open(fingerprint: &str, at: u64) -> Command {
    Command::OpenIncident {
        fingerprint: fingerprint.into(),
        alert: "SloBurnRateFast".into(),
        tenant: n("acme"),
        app: n("shop"),
        slo: n("availability"),
        severity: Severity::Page,
        text: "burning 200x".into(),
        by: "dwcp".into(),
        now_unix_ms: at,
    }
}

fn field(r: Result<Outcome, Rejection>) -> String {
    r.unwrap_err().field().unwrap_or("(none)").to_string()
}

#[test]
fn slos_are_stored_per_app_and_go_with_it() {
    let mut s = shop();
    s.apply(&Command::PutSlo { slo: slo() }).unwrap();
    let stored = s.slo(&n("acme"), &n("shop"), &n("availability")).unwrap();
    assert_eq!(stored.updated, s.revision());
    assert_eq!(s.slos_of(&n("acme"), &n("shop")).count(), 1);
    // An SLO of an app that does not exist is refused.
    let other = Slo {
        app: n("nope"),
        ..slo()
    };
    assert!(matches!(
        s.apply(&Command::PutSlo { slo: other }),
        Err(Rejection::NotFound { .. })
    ));
    s.apply(&Command::DeleteApp {
        tenant: n("acme"),
        name: n("shop"),
    })
    .unwrap();
    assert_eq!(s.slos().count(), 0);
}

#[test]
fn bad_slos_are_refused_naming_the_field_and_change_nothing() {
    let mut s = shop();
    let before = s.clone();
    let cases: Vec<(Slo, &str)> = vec![
        (
            Slo {
                target: 1.0,
                ..slo()
            },
            "target",
        ),
        (
            Slo {
                target: 0.0,
                ..slo()
            },
            "target",
        ),
        (
            Slo {
                target: f64::NAN,
                ..slo()
            },
            "target",
        ),
        (
            Slo {
                window_days: 0,
                ..slo()
            },
            "window_days",
        ),
        (
            Slo {
                objective: Objective::Latency { threshold_ms: 0 },
                ..slo()
            },
            "objective.latency.threshold_ms",
        ),
        (
            Slo {
                notify: vec![NotifyTarget {
                    kind: NotifyKind::Slack,
                    url: "not a url".into(),
                    routing_key: None,
                    sealed: None,
                }],
                ..slo()
            },
            "notify[0].url",
        ),
        (
            Slo {
                notify: vec![NotifyTarget {
                    kind: NotifyKind::PagerDuty,
                    url: "https://events.pagerduty.com/v2/enqueue".into(),
                    routing_key: None,
                    sealed: None,
                }],
                ..slo()
            },
            "notify[0].routing_key",
        ),
    ];
    for (bad, want) in cases {
        assert_eq!(field(s.apply(&Command::PutSlo { slo: bad })), want);
        // Audited, the same: the audit record is not written either.
        let audited = Command::Audited {
            who: "admin".into(),
            from: "127.0.0.1".into(),
            what: "PUT".into(),
            unix_ms: 1,
            command: Box::new(Command::PutSlo {
                slo: Slo {
                    target: 2.0,
                    ..slo()
                },
            }),
        };
        assert_eq!(field(s.apply(&audited)), "target");
    }
    assert_eq!(s, before, "nothing changed");
}

#[test]
fn an_alert_firing_again_adds_to_the_unresolved_incident() {
    let mut s = shop();
    assert_eq!(
        s.apply(&open("acme/shop/availability/page", 1_000)),
        Ok(Outcome::Incident {
            id: 1,
            opened: true
        })
    );
    assert_eq!(
        s.apply(&open("acme/shop/availability/page", 2_000)),
        Ok(Outcome::Incident {
            id: 1,
            opened: false
        })
    );
    // Another fingerprint is another incident.
    assert_eq!(
        s.apply(&open("acme/shop/availability/ticket", 2_500)),
        Ok(Outcome::Incident {
            id: 2,
            opened: true
        })
    );
    assert_eq!(s.incidents().count(), 2);
    let first = s.incident(1).unwrap();
    assert_eq!(first.status, IncidentStatus::Open);
    assert_eq!(first.timeline.len(), 2);
    assert_eq!(first.timeline[0].text, "opened: burning 200x");
    assert_eq!(first.timeline[1].text, "fired again: burning 200x");
    assert_eq!(first.timeline[1].unix_ms, 2_000);
    assert_eq!(first.time_to_acknowledge_ms(), None);

    // Acknowledged, it still dedupes; resolved, the next firing opens a new one.
    s.apply(&Command::AcknowledgeIncident {
        id: 1,
        by: "alice".into(),
        now_unix_ms: 61_000,
    })
    .unwrap();
    assert_eq!(
        s.apply(&open("acme/shop/availability/page", 62_000)),
        Ok(Outcome::Incident {
            id: 1,
            opened: false
        })
    );
    s.apply(&Command::ResolveIncident {
        id: 1,
        by: "alice".into(),
        text: Some("rolled back".into()),
        now_unix_ms: 601_000,
    })
    .unwrap();
    let done = s.incident(1).unwrap();
    assert_eq!(done.status, IncidentStatus::Resolved);
    assert_eq!(done.time_to_acknowledge_ms(), Some(60_000));
    assert_eq!(done.time_to_resolve_ms(), Some(600_000));
    assert_eq!(done.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(done.timeline.last().unwrap().text, "resolved: rolled back");
    assert_eq!(
        s.apply(&open("acme/shop/availability/page", 700_000)),
        Ok(Outcome::Incident {
            id: 3,
            opened: true
        })
    );
}

#[test]
fn incidents_move_forward_only_and_bad_notes_change_nothing() {
    let mut s = shop();
    s.apply(&open("f", 1_000)).unwrap();
    let ack = |at| Command::AcknowledgeIncident {
        id: 1,
        by: "bob".into(),
        now_unix_ms: at,
    };
    s.apply(&ack(2_000)).unwrap();
    let before = s.clone();
    assert_eq!(field(s.apply(&ack(3_000))), "status");
    for bad in ["", "   ", &"x".repeat(3_000)] {
        let note = Command::NoteIncident {
            id: 1,
            by: "bob".into(),
            text: bad.to_string(),
            now_unix_ms: 3_000,
        };
        assert_eq!(field(s.apply(&note)), "text");
    }
    assert!(matches!(
        s.apply(&Command::NoteIncident {
            id: 99,
            by: "bob".into(),
            text: "hello".into(),
            now_unix_ms: 3_000
        }),
        Err(Rejection::NotFound { .. })
    ));
    assert_eq!(s, before);
    let resolve = Command::ResolveIncident {
        id: 1,
        by: "bob".into(),
        text: None,
        now_unix_ms: 4_000,
    };
    s.apply(&resolve).unwrap();
    assert_eq!(field(s.apply(&resolve)), "status");
    // Resolved without an acknowledgement: TTA is the time to resolve.
    s.apply(&open("g", 10_000)).unwrap();
    s.apply(&Command::ResolveIncident {
        id: 2,
        by: "bob".into(),
        text: None,
        now_unix_ms: 15_000,
    })
    .unwrap();
    assert_eq!(s.incident(2).unwrap().time_to_acknowledge_ms(), Some(5_000));
}

#[test]
fn timelines_and_resolved_incidents_stay_bounded() {
    let mut s = shop();
    s.apply(&open("f", 0)).unwrap();
    for i in 0..(MAX_TIMELINE as u64 + 50) {
        s.apply(&Command::NoteIncident {
            id: 1,
            by: "dwcp".into(),
            text: format!("note {i}"),
            now_unix_ms: i,
        })
        .unwrap();
    }
    let i = s.incident(1).unwrap();
    assert_eq!(i.timeline.len(), MAX_TIMELINE);
    assert_eq!(
        i.timeline[0].text, "opened: burning 200x",
        "the first stays"
    );
    assert_eq!(i.timeline_dropped, 51);

    let mut s = shop();
    for k in 0..(RESOLVED_KEPT as u64 + 5) {
        let Ok(Outcome::Incident { id, .. }) = s.apply(&open(&format!("f{k}"), k)) else {
            panic!("not opened")
        };
        s.apply(&Command::ResolveIncident {
            id,
            by: "dwcp".into(),
            text: None,
            now_unix_ms: k + 1,
        })
        .unwrap();
    }
    assert_eq!(s.incidents().count(), RESOLVED_KEPT);
    assert_eq!(s.incidents().next().unwrap().id, 6, "the oldest went first");
}

/// Issue 16: the leader's reseal replaces only the targets of an SLO that
/// is unchanged since it was read, with every target sealed; an SLO
/// written meanwhile, a target left plain or a target of another kind is
/// refused whole and changes nothing.
#[test]
fn sealing_stored_targets_needs_the_slo_unchanged_and_every_target_sealed() {
    let mut s = shop();
    s.apply(&Command::PutSlo { slo: slo() }).unwrap();
    let read = s
        .slo(&n("acme"), &n("shop"), &n("availability"))
        .unwrap()
        .clone();
    let sealed_target = NotifyTarget {
        url: "http://127.0.0.1:9093/…".into(),
        sealed: Some("v1:00aa:11bb".into()),
        ..read.notify[0].clone()
    };
    let resealed = Slo {
        notify: vec![sealed_target.clone()],
        ..read.clone()
    };

    // A target left plain, or of another kind: refused.
    let plain = Command::SealSloTargets {
        slos: vec![read.clone()],
    };
    assert_eq!(field(s.apply(&plain)), "slos[0].notify");
    let other_kind = Command::SealSloTargets {
        slos: vec![Slo {
            notify: vec![NotifyTarget {
                kind: NotifyKind::Slack,
                ..sealed_target.clone()
            }],
            ..read.clone()
        }],
    };
    assert_eq!(field(s.apply(&other_kind)), "slos[0].notify");

    // Written meanwhile (a new target): the reseal read before is refused.
    let mut changed = s.clone();
    changed
        .apply(&Command::PutSlo {
            slo: Slo {
                target: 0.99,
                ..slo()
            },
        })
        .unwrap();
    let before = changed.revision();
    let stale = Command::SealSloTargets {
        slos: vec![resealed.clone()],
    };
    assert_eq!(field(changed.apply(&stale)), "slos[0]");
    assert_eq!(
        changed.revision(),
        before,
        "a refused reseal changed the state"
    );

    // Unchanged: only the targets are replaced.
    s.apply(&stale).unwrap();
    let stored = s.slo(&n("acme"), &n("shop"), &n("availability")).unwrap();
    assert_eq!(stored.notify, vec![sealed_target]);
    assert_eq!(stored.updated, s.revision());
    assert_eq!((stored.target, stored.window_days), (0.999, 30));
}
