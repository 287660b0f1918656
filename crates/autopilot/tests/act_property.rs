//! The guardrails hold over random runs: a random cluster, random trouble
//! every few seconds, the default policy, the kill switch flipped, nodes
//! dying and coming back, approvals given late — and every action applied
//! is checked afterwards by code that shares nothing with the guardrails
//! but the action type: sliding windows over what was applied.

mod common;

use autopilot::act::guard::{self, GuardInput};
use autopilot::act::{
    Action, ActionClass, Basis, ClusterView, Entry, EntryState, Evidence, Ledger, Limits, Outcome,
    Policy, Proposal, Target, decide,
};
use rng::SplitMix64;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
/// Every default rule rests its target this long.
const DEFAULT_COOLDOWN_MS: u64 = 300_000;

/// One action as it reached the cluster, with the world around it.
struct Applied {
    at_ms: u64,
    action: Action,
    basis: Basis,
    paused: bool,
    before: ClusterView,
    /// Targets held by running actions when it started.
    busy: Vec<Target>,
}

struct Pending {
    action: Action,
    cooldown_ms: u64,
}

#[test]
fn no_guardrail_is_ever_breached_over_random_runs() {
    let policy = Policy::defaults();
    let limits = Limits::default();
    let mut acted = 0;
    let mut approved = 0;
    let mut refused = 0;
    for seed in 0..300u64 {
        let mut rng = SplitMix64::new(seed);
        let mut view = common::cluster(&mut rng);
        let mut controls = common::controls(&mut rng);
        let mut ledger = Ledger::default();
        let mut now_ms = common::START_MS;
        let mut applied: Vec<Applied> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut decision_id = 0;
        for _ in 0..150 {
            now_ms += if rng.chance(5) {
                rng.below_u64(HOUR_MS)
            } else {
                rng.below_u64(20_000)
            };
            world_moves(&mut rng, &mut view, &mut controls, &mut ledger, now_ms);
            ledger.trim(now_ms);

            let trouble = common::trouble(&mut rng, &view, now_ms);
            let rule = policy
                .rule_for(trouble.class, trouble.basis, trouble.score)
                .cloned();
            let cooldown_ms = rule.as_ref().map_or(0, |r| r.cooldown_s * 1000);
            let basis = trouble.basis;
            let decision = decide(Evidence {
                trouble,
                rule,
                view: view.clone(),
                ledger: ledger.clone(),
                controls: controls.clone(),
                limits: limits.clone(),
                now_ms,
            });
            decision_id += 1;
            match decision.outcome {
                Outcome::Acted { action } => {
                    acted += 1;
                    apply(
                        &mut view,
                        &mut ledger,
                        &mut applied,
                        action,
                        basis,
                        &controls,
                        now_ms,
                        decision_id,
                    );
                }
                Outcome::Proposed {
                    action,
                    proposal: Proposal::NeedsApproval { .. },
                } => pending.push(Pending {
                    action,
                    cooldown_ms,
                }),
                Outcome::Refused { .. } => refused += 1,
                _ => {}
            }

            // A person approves a waiting action, maybe much later: it is
            // checked again against the world as it is now.
            if !pending.is_empty() && rng.chance(30) {
                let p = pending.remove(rng.below(pending.len()));
                let report = guard::check(
                    &p.action,
                    &GuardInput {
                        view: &view,
                        ledger: &ledger,
                        controls: &controls,
                        limits: &limits,
                        cooldown_ms: p.cooldown_ms,
                        now_ms,
                    },
                );
                if report.breach().is_none() {
                    approved += 1;
                    apply(
                        &mut view,
                        &mut ledger,
                        &mut applied,
                        p.action,
                        Basis::Observed,
                        &controls,
                        now_ms,
                        decision_id,
                    );
                }
            }
        }
        check_run(seed, &applied, &limits);
    }
    // The runs exercised the guardrails: actions taken, approved and refused.
    assert!(acted > 500, "only {acted} actions applied");
    assert!(approved > 50, "only {approved} approvals applied");
    assert!(refused > 500, "only {refused} refusals");
}

/// What happens without the autopilot: nodes die and return, the
/// operator flips the switches, running actions finish.
fn world_moves(
    rng: &mut SplitMix64,
    view: &mut ClusterView,
    controls: &mut autopilot::act::Controls,
    ledger: &mut Ledger,
    now_ms: u64,
) {
    if rng.chance(10) {
        let i = rng.below(view.nodes.len());
        let n = &mut view.nodes[i];
        n.serving = !n.serving && !n.cordoned;
    }
    if rng.chance(5) {
        controls.paused = !controls.paused;
    }
    for e in &mut ledger.entries {
        if e.state == EntryState::Running && now_ms - e.at_ms > 10_000 && rng.chance(50) {
            e.state = EntryState::Done;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    view: &mut ClusterView,
    ledger: &mut Ledger,
    applied: &mut Vec<Applied>,
    action: Action,
    basis: Basis,
    controls: &autopilot::act::Controls,
    now_ms: u64,
    decision: u64,
) {
    let after = view.after(&action);
    let busy = ledger
        .entries
        .iter()
        .filter(|e| e.state == EntryState::Running)
        .map(|e| e.action.target())
        .collect();
    applied.push(Applied {
        at_ms: now_ms,
        action: action.clone(),
        basis,
        paused: controls.paused,
        before: view.clone(),
        busy,
    });
    ledger.entries.push(Entry {
        decision,
        at_ms: now_ms,
        cost_per_hour_added: after.cost_per_hour - view.cost_per_hour,
        action,
        state: EntryState::Running,
    });
    *view = after;
}

/// The invariants, from the applied actions alone.
fn check_run(seed: u64, applied: &[Applied], limits: &Limits) {
    for (i, a) in applied.iter().enumerate() {
        let what = format!("seed {seed}, action {i} ({}) at {}", a.action, a.at_ms);
        assert!(!a.paused, "{what}: applied while paused");
        assert!(
            !(a.basis == Basis::Forecast && a.action.class() == ActionClass::Destructive),
            "{what}: destructive on a forecast"
        );
        let target = a.action.target();
        assert!(!a.busy.contains(&target), "{what}: its target was busy");
        let window = |len_ms: u64| {
            applied[..=i]
                .iter()
                .filter(move |b| a.at_ms - b.at_ms < len_ms)
        };
        if let Some(prev) = applied[..i]
            .iter()
            .rev()
            .find(|b| b.action.target() == target)
        {
            assert!(
                a.at_ms - prev.at_ms >= DEFAULT_COOLDOWN_MS.max(limits.cooldown_ms),
                "{what}: {target} acted on {} ms before",
                a.at_ms - prev.at_ms
            );
        }

        // Terminations per node per minute.
        for node in a.before.nodes.iter().map(|n| &n.name) {
            let stopped: u64 = window(MINUTE_MS)
                .map(|b| u64::from(b.action.terminations_on(node)))
                .sum();
            assert!(
                stopped <= 100,
                "{what}: {stopped} sandboxes stopped on {node} in a minute"
            );
        }

        // Failovers per hour.
        if matches!(a.action, Action::Failover { .. }) {
            let n = window(HOUR_MS)
                .filter(|b| matches!(b.action, Action::Failover { .. }))
                .count();
            assert!(n <= 3, "{what}: {n} failovers in an hour");
        }

        // Floors, for what the action itself takes out of service.
        let serving = |v: &ClusterView| v.nodes.iter().filter(|n| n.serving).count();
        let nodes = a.before.nodes.len();
        let takes_node = match &a.action {
            Action::Drain { node, .. } | Action::Cordon { node } => a
                .before
                .nodes
                .iter()
                .find(|n| &n.name == node)
                .is_some_and(|n| n.serving),
            _ => false,
        };
        if takes_node {
            let left = serving(&a.before) - 1;
            assert!(
                2 * left >= nodes,
                "{what}: {left} of {nodes} nodes left serving"
            );
            let voters = a.before.nodes.iter().filter(|n| n.voter).count();
            let voters_serving = a
                .before
                .nodes
                .iter()
                .filter(|n| n.voter && n.serving)
                .count();
            let took_voter = match &a.action {
                Action::Drain { node, .. } | Action::Cordon { node } => {
                    a.before.nodes.iter().any(|n| &n.name == node && n.voter)
                }
                _ => false,
            };
            if took_voter {
                assert!(
                    voters_serving - 1 > voters / 2,
                    "{what}: {} of {voters} voters left serving",
                    voters_serving - 1
                );
            }
        }
        if let Action::Failover { region, .. } = &a.action {
            let regions = a.before.regions.len();
            let serving_regions = a.before.regions.iter().filter(|r| r.serving).count();
            let was_serving = a
                .before
                .regions
                .iter()
                .any(|r| &r.name == region && r.serving);
            if was_serving {
                assert!(
                    2 * (serving_regions - 1) >= regions,
                    "{what}: {} of {regions} regions left serving",
                    serving_regions - 1
                );
            }
        }

        // Cost added by scaling in any hour, over the cost at its start.
        if a.action.replica_delta() > 0 {
            let in_window: Vec<&Applied> = window(HOUR_MS).collect();
            let cost_at_start = in_window[0].before.cost_per_hour;
            let added: f64 = in_window.iter().map(|b| scale_cost(b).max(0.0)).sum();
            assert!(
                added <= 0.2 * cost_at_start + 1e-9,
                "{what}: +{added} an hour on {cost_at_start}"
            );
        }
    }
}

fn scale_cost(a: &Applied) -> f64 {
    match &a.action {
        Action::Scale { tenant, app, .. } => {
            let per = a
                .before
                .apps
                .iter()
                .find(|x| &x.tenant == tenant && &x.app == app)
                .map_or(0.0, |x| x.replica_cost_per_hour);
            a.action.replica_delta() as f64 * per
        }
        _ => 0.0,
    }
}
