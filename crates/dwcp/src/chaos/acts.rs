//! The act loop's records as the chaos suite reads them, typed after the
//! routes of `crates/ops/src/api/autopilot_act.rs` (`GET
//! /autopilot/decisions`, `/autopilot/decisions/{id}`,
//! `/autopilot/approvals`, `/autopilot/controls`), and the bench's own
//! re-check of the guardrails over the actions the autopilot applied
//! (pure: [`breaches`]). The re-check uses the limits, not the
//! product's checks, so that a guardrail the product got wrong shows.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use state::act::action::{Action, Target};
use state::act::book::{ApprovalRecord, Schedule};
use state::act::record::Decision;

/// One line of `GET /autopilot/decisions` (the fields the suite reads).
#[derive(Clone, Debug, Deserialize)]
pub struct Line {
    pub id: u64,
    /// `acted`, `proposed`, `refused` or `declined`.
    pub outcome: String,
}

/// `GET /autopilot/decisions`: newest first.
#[derive(Debug, Deserialize)]
pub struct Lines {
    pub decisions: Vec<Line>,
}

/// `GET /autopilot/decisions/{id}` (the fields the suite reads).
#[derive(Debug, Deserialize)]
pub struct Explained {
    pub decision: Decision,
}

/// `GET /autopilot/approvals`.
#[derive(Debug, Deserialize)]
pub struct Approvals {
    pub approvals: Vec<ApprovalRecord>,
}

/// `GET /autopilot/controls`.
#[derive(Debug, Deserialize)]
pub struct Controls {
    pub paused: bool,
    pub destructive_enabled: bool,
    /// Nodes the autopilot cordoned or drained, by name.
    pub schedules: BTreeMap<String, Schedule>,
}

impl Controls {
    /// Nodes the autopilot drained (they serve nothing).
    pub fn drained(&self) -> usize {
        self.schedules
            .values()
            .filter(|s| **s == Schedule::Drained)
            .count()
    }
}

/// Sandbox terminations on one node in a minute (issue 20).
pub const MAX_TERMINATIONS_PER_MINUTE: u64 = 100;
/// Region failovers in an hour.
pub const MAX_FAILOVERS_PER_HOUR: usize = 3;
const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// An action the autopilot applied, as the bench saw it.
#[derive(Clone, Debug)]
pub struct Applied {
    pub decision: Decision,
    /// Applied while the bench had the kill switch on.
    pub while_paused: bool,
}

/// A guardrail the applied actions broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    pub guardrail: &'static str,
    pub decision: u64,
    pub detail: String,
}

/// The guardrails re-checked over `applied` (decisions that acted and
/// were not refused when the store checked again), and the samples of how
/// many of `nodes` the autopilot had drained (one per run, at its end):
/// - the kill switch: nothing applied while paused;
/// - at most [`MAX_TERMINATIONS_PER_MINUTE`] sandbox terminations on a
///   node in any minute;
/// - at most [`MAX_FAILOVERS_PER_HOUR`] failovers in any hour;
/// - one action per target at a time, and the rule's cool-down between
///   two;
/// - at least half the nodes serving: never more than half drained.
///
/// Not re-checked here: the cost growth of scaling (the bench has no
/// prices) and the store's voters (with three voters, the nodes floor
/// is the stricter one).
pub fn breaches(applied: &[Applied], drained_samples: &[usize], nodes: usize) -> Vec<Breach> {
    let began: Vec<&Decision> = applied
        .iter()
        .map(|a| &a.decision)
        .filter(|d| d.refused_at_commit.is_none())
        .collect();
    let mut out = Vec::new();
    for a in applied
        .iter()
        .filter(|a| a.while_paused && a.decision.refused_at_commit.is_none())
    {
        out.push(Breach {
            guardrail: "kill_switch",
            decision: a.decision.id,
            detail: "applied while the autopilot was paused".into(),
        });
    }
    let action = |d: &Decision| d.outcome.action().cloned();
    let at = |d: &Decision| d.evidence.now_ms;
    let mut nodes_named: Vec<String> = began
        .iter()
        .filter_map(|d| action(d))
        .filter_map(|a| match a.target() {
            Target::Node { node } => Some(node),
            _ => None,
        })
        .collect();
    nodes_named.sort();
    nodes_named.dedup();
    for d in &began {
        let start = at(d);
        for node in &nodes_named {
            let stopped: u64 = began
                .iter()
                .filter(|o| (start..start + MINUTE_MS).contains(&at(o)))
                .filter_map(|o| action(o))
                .map(|a| u64::from(a.terminations_on(node)))
                .sum();
            if stopped > MAX_TERMINATIONS_PER_MINUTE {
                out.push(Breach {
                    guardrail: "terminations",
                    decision: d.id,
                    detail: format!(
                        "{stopped} sandboxes stopped on {node} in the minute from decision {}",
                        d.id
                    ),
                });
            }
        }
        let failovers = began
            .iter()
            .filter(|o| (start..start + HOUR_MS).contains(&at(o)))
            .filter(|o| matches!(action(o), Some(Action::Failover { .. })))
            .count();
        if failovers > MAX_FAILOVERS_PER_HOUR {
            out.push(Breach {
                guardrail: "failovers",
                decision: d.id,
                detail: format!("{failovers} failovers in the hour from decision {}", d.id),
            });
        }
        // The next action on the same target must wait out this one's
        // cool-down (which also keeps two from running at once).
        let Some(a) = action(d) else { continue };
        let cooldown_ms = d.evidence.rule.as_ref().map_or(0, |r| r.cooldown_s * 1000);
        if let Some(next) = began.iter().find(|o| {
            o.id > d.id
                && action(o).is_some_and(|b| b.target() == a.target())
                && at(o) < start + cooldown_ms
        }) {
            out.push(Breach {
                guardrail: "cooldown",
                decision: next.id,
                detail: format!(
                    "{} acted on {} {} ms after decision {}, within its {} s cool-down",
                    next.id,
                    a.target(),
                    at(next).saturating_sub(start),
                    d.id,
                    cooldown_ms / 1000
                ),
            });
        }
    }
    for (i, &drained) in drained_samples.iter().enumerate() {
        if drained * 2 > nodes {
            out.push(Breach {
                guardrail: "nodes_serving",
                decision: 0,
                detail: format!(
                    "{drained} of {nodes} nodes drained at the end of run {}",
                    i + 1
                ),
            });
        }
    }
    out
}

/// Whether the bench takes `action` back between runs, so that each
/// experiment meets the same cluster: a node's schedule, a scale or a
/// throttle. A rollback stays (its undo would roll the bad version
/// forward again); an incident is only a record.
pub fn tidied(action: &Action) -> bool {
    matches!(
        action,
        Action::Cordon { .. }
            | Action::Drain { .. }
            | Action::Scale { .. }
            | Action::Throttle { .. }
    )
}

/// Whether an API error says an undo was refused by the cool-down
/// guardrail (the action is less than a minute old), which time mends.
pub fn refused_by_cooldown(error: &str) -> bool {
    error.contains("refused by the cooldown guardrail")
}

/// The body of `PUT /autopilot/controls` that sets the switches given
/// and leaves the others as they are: an absent member is unchanged, and
/// the route refuses `null` (it would read as absent).
pub fn controls_body(paused: Option<bool>, destructive_enabled: Option<bool>) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(p) = paused {
        body.insert("paused".into(), Value::Bool(p));
    }
    if let Some(d) = destructive_enabled {
        body.insert("destructive_enabled".into(), Value::Bool(d));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A decision that applied `action` at `at_ms`, under the default
    /// policy's node-silent rule with a cool-down of `cooldown_s`.
    fn acted(id: u64, at_ms: u64, action: Action, cooldown_s: u64) -> Applied {
        use state::act::record::{Evidence, Outcome};
        use state::act::trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
        let mut rule = state::act::policy::Policy::defaults().rules.remove(0);
        rule.cooldown_s = cooldown_s;
        let trouble = Trouble {
            source: "test".into(),
            class: FaultClass::NodeSilent,
            place: Place::Node {
                node: "node-1".into(),
            },
            basis: Basis::Observed,
            score: 1.0,
            seen_ms: at_ms,
            signal: SignalEvidence {
                series: "reports".into(),
                observed: 0.0,
                band_low: None,
                band_high: None,
                limit: Some(1.0),
            },
        };
        Applied {
            decision: Decision {
                id,
                evidence: Evidence {
                    trouble,
                    rule: Some(rule),
                    view: Default::default(),
                    ledger: Default::default(),
                    controls: Default::default(),
                    limits: Default::default(),
                    now_ms: at_ms,
                },
                outcome: Outcome::Acted { action },
                considered: Vec::new(),
                counterfactual: String::new(),
                refused_at_commit: None,
            },
            while_paused: false,
        }
    }

    fn drain(node: &str, terminations: u32) -> Action {
        Action::Drain {
            node: node.into(),
            terminations,
        }
    }

    #[test]
    fn actions_within_every_guardrail_breach_none() {
        let applied = vec![
            acted(1, 0, drain("node-1", 60), 300),
            acted(2, 301_000, drain("node-1", 60), 300),
            acted(
                3,
                1_000,
                Action::Cordon {
                    node: "node-2".into(),
                },
                300,
            ),
        ];
        assert_eq!(breaches(&applied, &[0, 1, 1], 3), vec![]);
    }

    #[test]
    fn each_guardrail_broken_is_named() {
        let mut paused = acted(
            4,
            900_000,
            Action::Cordon {
                node: "node-3".into(),
            },
            0,
        );
        paused.while_paused = true;
        let applied = vec![
            // 120 terminations on node-1 within a minute, and the second
            // drain inside the first one's cool-down.
            acted(1, 0, drain("node-1", 60), 300),
            acted(2, 30_000, drain("node-1", 60), 300),
            paused,
        ];
        let found: Vec<&str> = breaches(&applied, &[2], 3)
            .iter()
            .map(|b| b.guardrail)
            .collect();
        assert_eq!(
            found,
            ["kill_switch", "terminations", "cooldown", "nodes_serving"]
        );
    }

    #[test]
    fn a_decision_refused_at_commit_applied_nothing() {
        let mut second = acted(2, 30_000, drain("node-1", 60), 300);
        second.decision.refused_at_commit = Some(state::act::guard::Guardrail::Cooldown);
        let applied = vec![acted(1, 0, drain("node-1", 60), 300), second];
        assert_eq!(breaches(&applied, &[], 3), vec![]);
    }

    #[test]
    fn more_than_three_failovers_an_hour_is_a_breach() {
        let failover = |r: &str| Action::Failover {
            region: r.into(),
            to_region: "z".into(),
        };
        let applied: Vec<Applied> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, r)| acted(i as u64 + 1, i as u64 * 600_000, failover(r), 0))
            .collect();
        let found: Vec<&str> = breaches(&applied, &[], 3)
            .iter()
            .map(|b| b.guardrail)
            .collect();
        assert_eq!(found, ["failovers"]);
        assert_eq!(breaches(&applied[..3], &[], 3), vec![]);
    }

    #[test]
    fn the_controls_body_leaves_out_the_switches_not_given() {
        // The paused pass sets only the kill switch: a `null` for the
        // other made the route refuse the whole body and ended the bench
        // after its active pass.
        assert_eq!(controls_body(Some(true), None), json!({"paused": true}));
        assert_eq!(
            controls_body(Some(false), Some(true)),
            json!({"paused": false, "destructive_enabled": true})
        );
        assert_eq!(controls_body(None, None), json!({}));
    }

    #[test]
    fn an_undo_held_by_the_cooldown_is_told_apart() {
        // The API's words (tests/act.rs sees them from the CLI too).
        let held = "decision `1` is not allowed: its undo (uncordon node node-3) is refused by the cooldown guardrail (field: decision) [HTTP 400 Bad Request, invalid]";
        assert!(refused_by_cooldown(held));
        assert!(!refused_by_cooldown(
            "decision `1` is not allowed: its undo is refused by the kill_switch guardrail"
        ));
    }
}
