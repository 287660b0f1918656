//! The autopilot's book in the state machine: the guardrails checked
//! again when an action begins, approvals answered, timing out into their
//! safe default, the kill switch, bad policies refused, and the book
//! surviving a snapshot (postcard).

use state::act::action::Action;
use state::act::book::{ActCommand, Answer, Schedule};
use state::act::guard::{Guardrail, Limits};
use state::act::policy::Policy;
use state::act::record::{Decision, Evidence, Outcome, Proposal};
use state::act::trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
use state::act::view::{ClusterView, Controls, EntryState, Ledger, NodeView, RegionView};
use state::{Command, Rejection, State};

const NOW: u64 = 1_800_000_000_000;

fn view() -> ClusterView {
    ClusterView {
        nodes: (0..6)
            .map(|i| NodeView {
                name: format!("n{i}"),
                region: "r0".into(),
                serving: true,
                cordoned: false,
                voter: false,
                sandboxes: 10,
            })
            .collect(),
        regions: vec![RegionView {
            name: "r0".into(),
            serving: true,
            failed_over_to: None,
        }],
        ..ClusterView::default()
    }
}

/// A decision as `autopilot::act::decide` would make it (its checks left
/// out: the state machine reads only the outcome and the evidence).
fn decision(outcome: Outcome, now_ms: u64) -> Decision {
    Decision {
        id: 0,
        evidence: Evidence {
            trouble: Trouble {
                source: "test".into(),
                class: FaultClass::NodeSilent,
                place: Place::Node { node: "n1".into() },
                basis: Basis::Observed,
                score: 1.0,
                seen_ms: now_ms,
                signal: SignalEvidence {
                    series: "reports of node n1".into(),
                    observed: 0.0,
                    band_low: None,
                    band_high: None,
                    limit: Some(1.0),
                },
            },
            rule: Policy::defaults()
                .rule_for(FaultClass::NodeSilent, Basis::Observed, 1.0)
                .cloned(),
            view: view(),
            ledger: Ledger::default(),
            controls: Controls::default(),
            limits: Limits::default(),
            now_ms,
        },
        outcome,
        considered: Vec::new(),
        counterfactual: String::new(),
        refused_at_commit: None,
    }
}

fn act(state: &mut State, act: ActCommand) -> Result<state::Outcome, Rejection> {
    state.apply(&Command::Act { act })
}

fn record(state: &mut State, outcome: Outcome, now_ms: u64) -> u64 {
    act(
        state,
        ActCommand::Record {
            decision: Box::new(decision(outcome, now_ms)),
        },
    )
    .expect("recorded");
    state.acts().last_decision
}

fn cordon(node: &str) -> Outcome {
    Outcome::Acted {
        action: Action::Cordon { node: node.into() },
    }
}

fn enable(state: &mut State) {
    act(
        state,
        ActCommand::SetControls {
            paused: None,
            destructive_enabled: Some(true),
        },
    )
    .expect("set");
}

#[test]
fn an_acted_decision_begins_its_action_and_the_store_checks_the_guardrails_again() {
    let mut s = State::default();
    let id = record(&mut s, cordon("n1"), NOW);
    assert_eq!(id, 1);
    assert_eq!(s.acts().schedules.get("n1"), Some(&Schedule::Cordoned));
    assert_eq!(s.acts().ledger.entries.len(), 1);
    // The same target again at once: the decision was made before the
    // first was recorded, but the store refuses it (cool-down).
    let id = record(&mut s, cordon("n1"), NOW + 1_000);
    let d = s.acts().decision(id).expect("kept");
    assert_eq!(d.refused_at_commit, Some(Guardrail::Cooldown));
    assert_eq!(s.acts().ledger.entries.len(), 1);
}

#[test]
fn the_kill_switch_stops_actions_at_once_even_those_already_decided() {
    let mut s = State::default();
    act(
        &mut s,
        ActCommand::SetControls {
            paused: Some(true),
            destructive_enabled: None,
        },
    )
    .expect("paused");
    let id = record(&mut s, cordon("n2"), NOW);
    assert_eq!(
        s.acts().decision(id).and_then(|d| d.refused_at_commit),
        Some(Guardrail::KillSwitch)
    );
    assert!(s.acts().ledger.entries.is_empty());
    assert!(s.acts().schedules.is_empty());
}

#[test]
fn a_destructive_action_running_in_the_ledger_is_finished_by_the_loop() {
    let mut s = State::default();
    enable(&mut s);
    let id = record(
        &mut s,
        Outcome::Acted {
            action: Action::Scale {
                tenant: "t".into(),
                app: "a".into(),
                from: 10,
                to: 11,
            },
        },
        NOW,
    );
    assert_eq!(s.acts().ledger.entries[0].state, EntryState::Running);
    act(
        &mut s,
        ActCommand::Finish {
            decision: id,
            state: EntryState::Done,
            note: "scaled".into(),
        },
    )
    .expect("finished");
    assert_eq!(s.acts().ledger.entries[0].state, EntryState::Done);
    let again = act(
        &mut s,
        ActCommand::Finish {
            decision: id,
            state: EntryState::Done,
            note: String::new(),
        },
    );
    assert!(
        matches!(again, Err(Rejection::NotFound { .. })),
        "{again:?}"
    );
}

fn drain_needing_approval(s: &mut State) -> u64 {
    record(
        s,
        Outcome::Proposed {
            action: Action::Drain {
                node: "n3".into(),
                terminations: 10,
            },
            proposal: Proposal::NeedsApproval {
                reasons: vec!["draining a second node".into()],
            },
        },
        NOW,
    )
}

#[test]
fn an_approved_action_begins_at_the_next_tick_checked_again() {
    let mut s = State::default();
    enable(&mut s);
    let id = drain_needing_approval(&mut s);
    assert!(s.acts().approvals[&id].approval.state.waiting());
    act(
        &mut s,
        ActCommand::Answer {
            id,
            answer: Answer::Approve,
            by: "alice".into(),
            now_ms: NOW + 60_000,
        },
    )
    .expect("approved");
    assert!(s.acts().schedules.is_empty(), "not begun before the tick");
    act(
        &mut s,
        ActCommand::Tick {
            view: Box::new(view()),
            now_ms: NOW + 61_000,
        },
    )
    .expect("ticked");
    assert_eq!(s.acts().schedules.get("n3"), Some(&Schedule::Drained));
    assert_eq!(s.acts().approvals[&id].applied.as_deref(), Some("begun"));
    // Answering twice is refused.
    let twice = act(
        &mut s,
        ActCommand::Answer {
            id,
            answer: Answer::Reject,
            by: "bob".into(),
            now_ms: NOW + 62_000,
        },
    );
    assert!(matches!(twice, Err(Rejection::Invalid { .. })), "{twice:?}");
}

#[test]
fn an_unanswered_approval_times_out_into_its_safe_default() {
    let mut s = State::default();
    enable(&mut s);
    let id = drain_needing_approval(&mut s);
    let tick = |s: &mut State, ms: u64| {
        act(
            s,
            ActCommand::Tick {
                view: Box::new(view()),
                now_ms: NOW + ms,
            },
        )
        .expect("ticked")
    };
    tick(&mut s, 300_000);
    assert_eq!(
        s.acts().approvals[&id].approval.state,
        state::act::approval::ApprovalState::Paged
    );
    tick(&mut s, 900_000);
    // A drain nobody approved becomes a cordon: no new work there,
    // nothing moved.
    assert_eq!(s.acts().schedules.get("n3"), Some(&Schedule::Cordoned));
    assert_eq!(s.acts().approvals[&id].applied.as_deref(), Some("begun"));
    let late = act(
        &mut s,
        ActCommand::Answer {
            id,
            answer: Answer::Approve,
            by: "alice".into(),
            now_ms: NOW + 901_000,
        },
    );
    assert!(late.is_err(), "{late:?}");
}

#[test]
fn a_bad_policy_is_refused_naming_the_field() {
    let mut s = State::default();
    let mut p = Policy::defaults();
    p.rules[3].cooldown_s = 1;
    let err = act(&mut s, ActCommand::PutPolicy { policy: Some(p) }).unwrap_err();
    assert_eq!(err.field(), Some("policy.cooldown_s"));
    assert!(s.acts().policy.is_none());
}

#[test]
fn the_book_survives_a_snapshot() {
    let mut s = State::default();
    enable(&mut s);
    record(&mut s, cordon("n1"), NOW);
    drain_needing_approval(&mut s);
    let bytes = postcard::to_allocvec(&s).expect("serializes");
    let back: State = postcard::from_bytes(&bytes).expect("reads back");
    assert_eq!(back.acts(), s.acts());
}

#[test]
fn an_applied_action_is_undone_through_the_guardrails_and_only_once() {
    let mut s = State::default();
    let id = record(&mut s, cordon("n3"), NOW);
    assert_eq!(s.acts().schedules.get("n3"), Some(&Schedule::Cordoned));
    let undo = |s: &mut State, now_ms: u64| {
        act(
            s,
            ActCommand::Undo {
                decision: id,
                by: "ann".into(),
                view: Box::new(view()),
                now_ms,
            },
        )
    };
    // Within the limits' own cool-down the target still rests.
    let early = undo(&mut s, NOW + 1_000).expect_err("too soon");
    assert!(early.to_string().contains("cooldown"), "{early}");
    assert_eq!(s.acts().schedules.get("n3"), Some(&Schedule::Cordoned));
    undo(&mut s, NOW + 61_000).expect("undone");
    assert!(s.acts().schedules.is_empty(), "uncordoned");
    let states: Vec<EntryState> = s.acts().ledger.entries.iter().map(|e| e.state).collect();
    assert_eq!(states, [EntryState::Undone, EntryState::Done]);
    // The undo's own entry is the latest: undoing again takes it back.
    undo(&mut s, NOW + 200_000).expect("undo of the undo");
    assert_eq!(s.acts().schedules.get("n3"), Some(&Schedule::Cordoned));
    // An action with no undo, and a decision that applied nothing.
    let incident = record(
        &mut s,
        Outcome::Acted {
            action: Action::OpenIncident {
                fingerprint: "f".into(),
                text: "t".into(),
            },
        },
        NOW + 300_000,
    );
    act(
        &mut s,
        ActCommand::Finish {
            decision: incident,
            state: EntryState::Done,
            note: String::new(),
        },
    )
    .expect("finished");
    let err = act(
        &mut s,
        ActCommand::Undo {
            decision: incident,
            by: "ann".into(),
            view: Box::new(view()),
            now_ms: NOW + 400_000,
        },
    )
    .expect_err("no undo");
    assert!(err.to_string().contains("has no undo"), "{err}");
    let err = act(
        &mut s,
        ActCommand::Undo {
            decision: 99,
            by: "ann".into(),
            view: Box::new(view()),
            now_ms: NOW + 400_000,
        },
    )
    .expect_err("nothing applied");
    assert!(matches!(err, Rejection::NotFound { .. }), "{err}");
}
