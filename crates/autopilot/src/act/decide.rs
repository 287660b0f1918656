//! The decision: from a trouble, the rule that answers it and the
//! cluster's state, what to do — act, propose (dry run, or wait for a
//! person), refuse (a guardrail said no) or decline (nothing to do) — with
//! the evidence that led there. [`decide`] is pure: a stored
//! [`Decision`]'s evidence decides the same again ([`replays`]).

use state::State;
use state::act::action::{Action, ActionClass, ActionKind};
use state::act::guard::{self, Check, GuardInput, Guardrail, Verdict};
use state::act::policy::Rule;
use state::act::record::{Considered, Decision, Evidence, Outcome, Proposal};
use state::act::trouble::{Basis, Place, Trouble};
use state::act::view::{ClusterView, Ledger};

/// Decides about `trouble` with what the store holds now: its policy,
/// ledger, switches and limits, and `view` (built from it).
pub fn decide_now(state: &State, view: ClusterView, trouble: Trouble, now_ms: u64) -> Decision {
    let book = state.acts();
    let rule = book
        .policy()
        .rule_for(trouble.class, trouble.basis, trouble.score)
        .cloned();
    decide(Evidence {
        trouble,
        rule,
        view,
        ledger: book.ledger.clone(),
        controls: book.controls.clone(),
        limits: book.limits.clone(),
        now_ms,
    })
}

/// Whether deciding again from its evidence gives the same choice:
/// the same outcome and counterfactual, and every action considered
/// the same with the same verdicts, its measured values equal to
/// within 1e-9 of their size (a record read back from JSON may differ
/// in the last bit of a float).
pub fn replays(decision: &Decision) -> bool {
    let again = decide(decision.evidence.clone());
    let same_check = |a: &Check, b: &Check| {
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
        a.guardrail == b.guardrail
            && a.verdict == b.verdict
            && close(a.value, b.value)
            && close(a.soft, b.soft)
            && close(a.limit, b.limit)
    };
    let same_considered = |a: &Considered, b: &Considered| {
        a.kind == b.kind
            && a.action == b.action
            && a.note == b.note
            && a.checks.len() == b.checks.len()
            && a.checks
                .iter()
                .zip(&b.checks)
                .all(|(x, y)| same_check(x, y))
    };
    again.outcome == decision.outcome
        && again.counterfactual == decision.counterfactual
        && again.considered.len() == decision.considered.len()
        && again
            .considered
            .iter()
            .zip(&decision.considered)
            .all(|(a, b)| same_considered(a, b))
}

/// Decides about a trouble.
pub fn decide(evidence: Evidence) -> Decision {
    let counterfactual = counterfactual(&evidence.trouble);
    let Some(rule) = evidence.rule.clone() else {
        let reason = format!(
            "no policy rule answers {} ({}) at score {:.2}",
            evidence.trouble.class,
            basis_name(evidence.trouble.basis),
            evidence.trouble.score
        );
        return Decision {
            id: 0,
            evidence,
            outcome: Outcome::Declined { reason },
            considered: Vec::new(),
            counterfactual,
            refused_at_commit: None,
        };
    };
    let input = GuardInput {
        view: &evidence.view,
        ledger: &evidence.ledger,
        controls: &evidence.controls,
        limits: &evidence.limits,
        cooldown_ms: rule.cooldown_s.saturating_mul(1000),
        now_ms: evidence.now_ms,
    };
    let mut considered = Vec::with_capacity(rule.actions.len());
    let mut chosen: Option<(Action, Vec<Check>)> = None;
    let mut first_refused: Option<(Action, Guardrail)> = None;
    for &kind in &rule.actions {
        if chosen.is_some() {
            considered.push(Considered {
                kind,
                action: build(kind, &evidence.trouble, &evidence.view, &rule).ok(),
                checks: Vec::new(),
                note: "not tried: an earlier action was chosen".into(),
            });
            continue;
        }
        let action = match build(kind, &evidence.trouble, &evidence.view, &rule) {
            Ok(action) => action,
            Err(why) => {
                considered.push(Considered {
                    kind,
                    action: None,
                    checks: Vec::new(),
                    note: why,
                });
                continue;
            }
        };
        if evidence.trouble.basis == Basis::Forecast && action.class() == ActionClass::Destructive {
            // The policy check refuses such rules; this holds for rules
            // made in code too.
            considered.push(Considered {
                kind,
                action: Some(action),
                checks: Vec::new(),
                note: "not on a forecast alone: it destroys or takes away".into(),
            });
            continue;
        }
        let report = guard::check(&action, &input);
        if let Some(breach) = report.breach() {
            let guardrail = breach.guardrail;
            considered.push(Considered {
                kind,
                action: Some(action.clone()),
                checks: report.checks,
                note: format!("refused by {guardrail}"),
            });
            if first_refused.is_none() {
                first_refused = Some((action, guardrail));
            }
            continue;
        }
        considered.push(Considered {
            kind,
            action: Some(action.clone()),
            checks: report.checks.clone(),
            note: "chosen".into(),
        });
        chosen = Some((action, report.checks));
    }
    let outcome = match (chosen, first_refused) {
        (Some((action, checks)), _) => settle(action, &checks, &rule, &evidence),
        (None, Some((action, guardrail))) => Outcome::Refused { action, guardrail },
        (None, None) => Outcome::Declined {
            reason: format!(
                "none of rule {}'s actions applies to {}",
                rule.name, evidence.trouble.place
            ),
        },
    };
    Decision {
        id: 0,
        evidence,
        outcome,
        considered,
        counterfactual,
        refused_at_commit: None,
    }
}

/// Acted, or proposed: a dry run first (it never acts, so asks no one),
/// then whatever needs a person.
fn settle(action: Action, checks: &[Check], rule: &Rule, evidence: &Evidence) -> Outcome {
    if rule.dry_run {
        return Outcome::Proposed {
            action,
            proposal: Proposal::DryRun {
                why: format!("rule {} is a dry run", rule.name),
            },
        };
    }
    if action.class() == ActionClass::Destructive && !evidence.controls.destructive_enabled {
        return Outcome::Proposed {
            action,
            proposal: Proposal::DryRun {
                why: "destructive actions are not enabled on this cluster (dwcp autopilot enable destructive)"
                    .into(),
            },
        };
    }
    let reasons = critical_reasons(&action, checks, &evidence.view, &evidence.ledger);
    if reasons.is_empty() {
        Outcome::Acted { action }
    } else {
        Outcome::Proposed {
            action,
            proposal: Proposal::NeedsApproval { reasons },
        }
    }
}

/// Why an action needs a person: region failovers, draining a second
/// node, rolling back a version that passed its rollout, anything past a
/// guardrail's soft limit. Empty when it does not.
pub fn critical_reasons(
    action: &Action,
    checks: &[Check],
    view: &ClusterView,
    ledger: &Ledger,
) -> Vec<String> {
    let mut reasons = Vec::new();
    match action {
        Action::Failover { .. } | Action::Failback { .. } => {
            reasons.push("a region failover or failback is always approved by a person".into());
        }
        Action::Drain { node, .. } => {
            let others: Vec<String> = ledger
                .drained_nodes()
                .into_iter()
                .filter(|n| n != node)
                .collect();
            if !others.is_empty() {
                reasons.push(format!(
                    "draining a second node (already drained: {})",
                    others.join(", ")
                ));
            }
        }
        Action::Rollback {
            tenant,
            app,
            version,
            ..
        } => {
            let passed = view
                .app(tenant, app)
                .and_then(|a| a.versions.iter().find(|v| v.version == *version))
                .is_some_and(|v| v.passed_rollout);
            if passed {
                reasons.push(format!(
                    "version {version} passed its rollout: rolling it back is a person's call"
                ));
            }
        }
        _ => {}
    }
    for c in checks.iter().filter(|c| c.verdict == Verdict::Soft) {
        reasons.push(format!(
            "{} at {} is past its soft limit {} (hard limit {})",
            c.guardrail,
            round(c.value),
            round(c.soft),
            round(c.limit)
        ));
    }
    reasons
}

/// Builds the action of `kind` for a trouble, from what the view says
/// about its place; why not, when it cannot.
pub fn build(
    kind: ActionKind,
    trouble: &Trouble,
    view: &ClusterView,
    rule: &Rule,
) -> Result<Action, String> {
    let place = &trouble.place;
    let need_node = || {
        place
            .node()
            .map(str::to_owned)
            .ok_or_else(|| format!("{kind} needs a node; the trouble is on {place}"))
    };
    let need_app = || {
        place
            .app()
            .ok_or_else(|| format!("{kind} needs an app; the trouble is on {place}"))
    };
    let fingerprint = format!("autopilot:{}:{}", trouble.class, place);
    Ok(match kind {
        ActionKind::RestartPool => {
            let Place::VersionOnNode {
                tenant,
                app,
                version,
                node,
            } = place
            else {
                return Err(format!(
                    "restart_pool needs a version on a node; the trouble is on {place}"
                ));
            };
            let terminations = view
                .pool(tenant, app, *version, node)
                .map_or(0, |p| p.sandboxes);
            Action::RestartPool {
                tenant: tenant.clone(),
                app: app.clone(),
                version: *version,
                node: node.clone(),
                terminations,
            }
        }
        ActionKind::Drain | ActionKind::Cordon | ActionKind::Uncordon => {
            let node = need_node()?;
            let Some(n) = view.node(&node) else {
                return Err(format!("node {node} is not in the cluster"));
            };
            match kind {
                ActionKind::Drain => {
                    if n.cordoned && n.sandboxes == 0 {
                        return Err(format!("node {node} is already drained"));
                    }
                    Action::Drain {
                        node,
                        terminations: n.sandboxes,
                    }
                }
                ActionKind::Cordon if n.cordoned => {
                    return Err(format!("node {node} is already cordoned"));
                }
                ActionKind::Cordon => Action::Cordon { node },
                _ if !n.cordoned => return Err(format!("node {node} is not cordoned")),
                _ => Action::Uncordon { node },
            }
        }
        ActionKind::ScaleOut | ActionKind::ScaleIn => {
            let (tenant, app) = need_app()?;
            let Some(a) = view.app(tenant, app) else {
                return Err(format!("app {tenant}/{app} is not in the cluster"));
            };
            let to = if kind == ActionKind::ScaleOut {
                a.replicas
                    .saturating_add(rule.scale_step)
                    .min(a.max_replicas)
            } else {
                a.replicas.saturating_sub(rule.scale_step).max(1)
            };
            if to == a.replicas {
                return Err(format!(
                    "app {tenant}/{app} has {} replicas, at its bound",
                    a.replicas
                ));
            }
            Action::Scale {
                tenant: tenant.to_owned(),
                app: app.to_owned(),
                from: a.replicas,
                to,
            }
        }
        ActionKind::Rollback => {
            let (tenant, app) = need_app()?;
            let Some(version) = place.version() else {
                return Err(format!(
                    "rollback needs a version; the trouble is on {place}"
                ));
            };
            let previous = view
                .app(tenant, app)
                .and_then(|a| a.versions.iter().find(|v| v.version == version))
                .and_then(|v| v.previous);
            let Some(to_version) = previous else {
                return Err(format!(
                    "version {tenant}/{app}@{version} has no earlier version to go back to"
                ));
            };
            Action::Rollback {
                tenant: tenant.to_owned(),
                app: app.to_owned(),
                version,
                to_version,
            }
        }
        ActionKind::RollForward => {
            return Err("roll_forward only undoes a rollback".into());
        }
        ActionKind::Throttle => {
            let Some(tenant) = place.tenant() else {
                return Err(format!(
                    "throttle needs a tenant; the trouble is on {place}"
                ));
            };
            let Some(t) = view.tenant(tenant) else {
                return Err(format!("tenant {tenant} is not in the cluster"));
            };
            let to = ((u64::from(t.concurrency) * u64::from(rule.throttle_percent)) / 100).max(1);
            let to = u32::try_from(to).unwrap_or(t.concurrency);
            if to >= t.concurrency {
                return Err(format!(
                    "tenant {tenant}'s concurrency {} cannot go lower",
                    t.concurrency
                ));
            }
            // From the quota, so that the undo gives the quota back.
            let from = if t.quota == 0 { t.concurrency } else { t.quota };
            Action::Throttle {
                tenant: tenant.to_owned(),
                from,
                to,
            }
        }
        ActionKind::Failover | ActionKind::Failback => {
            let Place::Region { region } = place else {
                return Err(format!("{kind} needs a region; the trouble is on {place}"));
            };
            let Some(r) = view.region(region) else {
                return Err(format!("region {region} is not in the cluster"));
            };
            if kind == ActionKind::Failback {
                let Some(from_region) = r.failed_over_to.clone() else {
                    return Err(format!("region {region} is not failed over"));
                };
                Action::Failback {
                    region: region.clone(),
                    from_region,
                }
            } else {
                if r.failed_over_to.is_some() {
                    return Err(format!("region {region} is already failed over"));
                }
                // The first serving region by name: the planet tier picks
                // the nearest when it applies it.
                let Some(to) = view
                    .regions
                    .iter()
                    .filter(|o| o.serving && &o.name != region)
                    .map(|o| o.name.clone())
                    .min()
                else {
                    return Err("no other region serves to take the traffic".into());
                };
                Action::Failover {
                    region: region.clone(),
                    to_region: to,
                }
            }
        }
        ActionKind::OpenIncident => Action::OpenIncident {
            text: format!(
                "{} on {}: {} at {} ({})",
                trouble.class,
                place,
                trouble.signal.series,
                round(trouble.signal.observed),
                trouble.source
            ),
            fingerprint,
        },
        ActionKind::Escalate => Action::Escalate { fingerprint },
    })
}

/// "No action if ... had stayed ...": the smallest change to the
/// evidence that decides nothing.
fn counterfactual(trouble: &Trouble) -> String {
    let s = &trouble.signal;
    let within = match (s.band_low, s.band_high, s.limit) {
        (Some(low), Some(high), _) => format!("within [{}, {}]", round(low), round(high)),
        (_, _, Some(limit)) if trouble.basis == Basis::Forecast => {
            format!("on a course that does not reach {}", round(limit))
        }
        (_, _, Some(limit)) => format!("short of {}", round(limit)),
        (_, Some(high), None) => format!("under {}", round(high)),
        (Some(low), None, None) => format!("over {}", round(low)),
        (None, None, None) => "at its usual level".into(),
    };
    format!(
        "no action if {} had stayed {within} (it was {})",
        s.series,
        round(s.observed)
    )
}

fn basis_name(basis: Basis) -> &'static str {
    match basis {
        Basis::Observed => "observed",
        Basis::Forecast => "forecast",
    }
}

/// A value as a person reads it: at most 3 decimals, no trailing zeros.
fn round(v: f64) -> String {
    let text = format!("{:.3}", v);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}
