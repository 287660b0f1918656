//! What the store keeps of the autopilot's acting: the operator's
//! switches, the policy, the actions taken lately (the ledger the
//! guardrails count), the decisions with their evidence, the approvals
//! waiting or answered, and the nodes the autopilot cordoned or drained.
//!
//! [`ActBook::step`] is the state machine's part: pure, it gives the book
//! after a command or refuses it. Before any action begins — a decision
//! that acted, an approval granted, a safe default on expiry — it checks
//! the guardrails again against its own ledger and switches, so that a
//! pause committed a moment earlier, or a second leader, or an approval
//! given late cannot slip past them.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionClass};
use super::approval::{Approval, ApprovalEffect, ApprovalEvent, ApprovalState, ApprovalTimes};
use super::guard::{self, GuardInput, Limits};
use super::policy::Policy;
use super::record::{Decision, Outcome as DecisionOutcome, Proposal};
use super::view::{ClusterView, Controls, Entry, EntryState, Ledger};
use crate::Rejection;

/// Decisions kept: past it the oldest go.
pub const MAX_DECISIONS: usize = 500;
/// Settled approvals kept: past it the oldest settled go.
pub const MAX_SETTLED_APPROVALS: usize = 100;
/// Longest note on a finished action.
pub const MAX_NOTE: usize = 500;

/// Where a node stands for the scheduler, as the autopilot left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// No new placements; what runs there stays.
    Cordoned,
    /// No placements at all: the scheduler moves them off.
    Drained,
}

/// A person's answer to an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Approve,
    Reject,
}

/// A change to the book (inside [`crate::Command::Act`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActCommand {
    /// The kill switch, and whether destructive actions are applied
    /// (`None` leaves one as it is).
    SetControls {
        paused: Option<bool>,
        destructive_enabled: Option<bool>,
    },
    /// Replaces the policy (`None`: back to the defaults), checked whole.
    PutPolicy { policy: Option<Policy> },
    /// A decision with its evidence (its id is given here). An acted one
    /// begins its action after the guardrails are checked again; one that
    /// needs a person opens an approval.
    Record { decision: Box<Decision> },
    /// A person answers an approval.
    Answer {
        id: u64,
        answer: Answer,
        by: String,
        now_ms: u64,
    },
    /// Time passes: approvals remind, page or expire; approved actions
    /// and safe defaults begin, checked again against `view`.
    Tick { view: Box<ClusterView>, now_ms: u64 },
    /// A person takes an action back: the undo of the action `decision`
    /// applied begins, the guardrails checked again against `view` (the
    /// rule's cool-down no longer applies: a person asked; the limits'
    /// own still does), and the action is marked undone.
    Undo {
        decision: u64,
        by: String,
        view: Box<ClusterView>,
        now_ms: u64,
    },
    /// The loop applied an action (or could not).
    Finish {
        decision: u64,
        state: EntryState,
        note: String,
    },
}

/// What a step did, for the command's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stepped {
    /// The decision recorded, for [`ActCommand::Record`].
    pub decision: Option<u64>,
    /// What changed, as record keys (`controls`, `policy`, `decision/7`,
    /// `approval/7`, `ledger`, `node/n1`).
    pub keys: Vec<String>,
}

/// An approval with what became of it once answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub approval: Approval,
    /// The cool-down of the rule that proposed it, ms.
    pub cooldown_ms: u64,
    /// Once approved or expired: `begun`, `nothing to do`, or `refused by
    /// <guardrail>` when the guardrails, checked again, said no.
    pub applied: Option<String>,
}

/// The autopilot's acting, as the store keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActBook {
    pub controls: Controls,
    /// `None`: the defaults ([`Policy::defaults`]).
    pub policy: Option<Policy>,
    pub limits: Limits,
    pub times: ApprovalTimes,
    pub ledger: Ledger,
    /// Oldest first, at most [`MAX_DECISIONS`].
    pub decisions: VecDeque<Decision>,
    /// The id the next decision gets, less one.
    pub last_decision: u64,
    /// By decision id.
    pub approvals: BTreeMap<u64, ApprovalRecord>,
    /// Nodes cordoned or drained, by name.
    pub schedules: BTreeMap<String, Schedule>,
    /// How many times the autopilot restarted each version's warm pool on
    /// a node, by [`pool_key`]: a node's agent replaces the pool when the
    /// number changes.
    #[serde(default)]
    pub pool_restarts: BTreeMap<String, u64>,
}

/// The key of a version's warm pool on a node in
/// [`ActBook::pool_restarts`]: `tenant/app@version on node`.
pub fn pool_key(tenant: &str, app: &str, version: u64, node: &str) -> String {
    format!("{tenant}/{app}@{version} on {node}")
}

impl ActBook {
    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy.clone().unwrap_or_else(Policy::defaults)
    }

    pub fn decision(&self, id: u64) -> Option<&Decision> {
        // Ids rise with the deque's order.
        let first = self.decisions.front()?.id;
        let at = usize::try_from(id.checked_sub(first)?).ok()?;
        self.decisions.get(at).filter(|d| d.id == id)
    }

    /// The book after `command`, and what changed; refused with the
    /// field at fault.
    pub fn step(&self, command: &ActCommand) -> Result<(ActBook, Stepped), Rejection> {
        let mut next = self.clone();
        let mut keys = Vec::new();
        let mut decided = None;
        match command {
            ActCommand::SetControls {
                paused,
                destructive_enabled,
            } => {
                if let Some(p) = paused {
                    next.controls.paused = *p;
                }
                if let Some(d) = destructive_enabled {
                    next.controls.destructive_enabled = *d;
                }
                keys.push("controls".into());
            }
            ActCommand::PutPolicy { policy } => {
                if let Some(p) = policy {
                    p.check().map_err(|e| {
                        Rejection::invalid(
                            &format!("policy.{}", e.field),
                            e.rule.map_or("the policy".into(), |n| format!("rule {n}")),
                            e.message,
                        )
                    })?;
                }
                next.policy = policy.clone();
                keys.push("policy".into());
            }
            ActCommand::Record { decision } => {
                let id = next.last_decision + 1;
                next.last_decision = id;
                let mut d = (**decision).clone();
                d.id = id;
                let now_ms = d.evidence.now_ms;
                match d.outcome.clone() {
                    DecisionOutcome::Acted { action } => {
                        let cooldown_ms = d
                            .evidence
                            .rule
                            .as_ref()
                            .map_or(0, |r| r.cooldown_s.saturating_mul(1000));
                        match next.begin(id, &action, &d.evidence.view, cooldown_ms, now_ms) {
                            Ok(more) => keys.extend(more),
                            // The outcome stays what the evidence decided
                            // (it replays); the record says it was stopped.
                            Err(guardrail) => d.refused_at_commit = Some(guardrail),
                        }
                    }
                    DecisionOutcome::Proposed {
                        action,
                        proposal: Proposal::NeedsApproval { reasons },
                    } => {
                        let cooldown_ms = d
                            .evidence
                            .rule
                            .as_ref()
                            .map_or(0, |r| r.cooldown_s.saturating_mul(1000));
                        next.approvals.insert(
                            id,
                            ApprovalRecord {
                                approval: Approval::ask(id, action, reasons, now_ms),
                                cooldown_ms,
                                applied: None,
                            },
                        );
                        keys.push(format!("approval/{id}"));
                    }
                    _ => {}
                }
                next.decisions.push_back(d);
                while next.decisions.len() > MAX_DECISIONS {
                    next.decisions.pop_front();
                }
                keys.push(format!("decision/{id}"));
                decided = Some(id);
            }
            ActCommand::Answer {
                id,
                answer,
                by,
                now_ms,
            } => {
                let record = next
                    .approvals
                    .get_mut(id)
                    .ok_or_else(|| Rejection::not_found("approval", id))?;
                let event = match answer {
                    Answer::Approve => ApprovalEvent::Approve {
                        by: by.clone(),
                        now_ms: *now_ms,
                    },
                    Answer::Reject => ApprovalEvent::Reject {
                        by: by.clone(),
                        now_ms: *now_ms,
                    },
                };
                let (approval, _) = record
                    .approval
                    .step(&event, &self.times)
                    .map_err(|e| Rejection::invalid("id", id, e.to_string()))?;
                record.approval = approval;
                keys.push(format!("approval/{id}"));
            }
            ActCommand::Tick { view, now_ms } => {
                keys.extend(next.tick(view, *now_ms));
            }
            ActCommand::Undo {
                decision,
                view,
                now_ms,
                ..
            } => {
                keys.extend(next.undo(*decision, view, *now_ms)?);
            }
            ActCommand::Finish {
                decision,
                state,
                note,
            } => {
                if note.len() > MAX_NOTE {
                    return Err(Rejection::invalid(
                        "note",
                        note,
                        format!("at most {MAX_NOTE} bytes"),
                    ));
                }
                if *state == EntryState::Running {
                    return Err(Rejection::invalid(
                        "state",
                        "running",
                        "done, undone or failed",
                    ));
                }
                let entry = next
                    .ledger
                    .entries
                    .iter_mut()
                    .find(|e| e.decision == *decision && e.state == EntryState::Running)
                    .ok_or_else(|| Rejection::not_found("running action", decision))?;
                entry.state = *state;
                keys.push("ledger".into());
            }
        }
        Ok((
            next,
            Stepped {
                decision: decided,
                keys,
            },
        ))
    }

    /// Approvals move on with time; approved actions and safe defaults
    /// begin (or are refused, checked again).
    fn tick(&mut self, view: &ClusterView, now_ms: u64) -> Vec<String> {
        let mut keys = Vec::new();
        let ids: Vec<u64> = self.approvals.keys().copied().collect();
        for id in ids {
            let Some(record) = self.approvals.get(&id).cloned() else {
                continue;
            };
            let mut record = record;
            let mut changed = false;
            if let Ok((approval, effects)) = record
                .approval
                .step(&ApprovalEvent::Tick { now_ms }, &self.times)
            {
                changed = approval != record.approval;
                record.approval = approval;
                let _ = effects; // remind and page are the loop's, seen in the state
            }
            if record.applied.is_none() {
                let to_begin = match &record.approval.state {
                    ApprovalState::Approved { .. } => Some(Some(record.approval.action.clone())),
                    ApprovalState::Expired { .. } => Some(record.approval.safe_default.clone()),
                    _ => None,
                };
                if let Some(action) = to_begin {
                    record.applied = Some(match action {
                        None => "nothing to do".into(),
                        Some(action) => {
                            match self.begin(id, &action, view, record.cooldown_ms, now_ms) {
                                Ok(more) => {
                                    keys.extend(more);
                                    "begun".into()
                                }
                                Err(g) => format!("refused by {g}"),
                            }
                        }
                    });
                    changed = true;
                }
            }
            if changed {
                keys.push(format!("approval/{id}"));
                self.approvals.insert(id, record);
            }
        }
        // A pool's restart count lives as long as the pool: once no
        // placement holds that version on that node, its agent has dropped
        // the pool and the count only grows the book.
        let gone: Vec<String> = self
            .pool_restarts
            .keys()
            .filter(|k| {
                !view
                    .pools
                    .iter()
                    .any(|p| &&pool_key(&p.tenant, &p.app, p.version, &p.node) == k)
            })
            .cloned()
            .collect();
        for k in gone {
            self.pool_restarts.remove(&k);
            keys.push(format!("pool/{k}"));
        }
        // Keep the settled ones bounded, oldest first.
        let settled: Vec<u64> = self
            .approvals
            .iter()
            .filter(|(_, r)| !r.approval.state.waiting() && r.applied.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in settled
            .iter()
            .take(settled.len().saturating_sub(MAX_SETTLED_APPROVALS))
        {
            self.approvals.remove(id);
            keys.push(format!("approval/{id}"));
        }
        let before = self.ledger.entries.len();
        self.ledger.trim(now_ms);
        if self.ledger.entries.len() != before {
            keys.push("ledger".into());
        }
        keys
    }

    /// Begins the undo of the last action `decision` applied and marks
    /// that action undone; refused, naming why, when there is none, it
    /// still runs, it has no undo, or a guardrail says no.
    fn undo(
        &mut self,
        decision: u64,
        view: &ClusterView,
        now_ms: u64,
    ) -> Result<Vec<String>, Rejection> {
        let Some(at) = self
            .ledger
            .entries
            .iter()
            .rposition(|e| e.decision == decision)
        else {
            return Err(Rejection::not_found("applied action of decision", decision));
        };
        let entry = self.ledger.entries[at].clone();
        match entry.state {
            EntryState::Done => {}
            EntryState::Running => {
                return Err(Rejection::invalid(
                    "decision",
                    decision,
                    format!("its action ({}) is still being applied", entry.action),
                ));
            }
            EntryState::Undone | EntryState::Failed => {
                return Err(Rejection::invalid(
                    "decision",
                    decision,
                    format!(
                        "its action ({}) is {} already",
                        entry.action,
                        if entry.state == EntryState::Undone {
                            "undone"
                        } else {
                            "failed"
                        }
                    ),
                ));
            }
        }
        let Some(undo) = entry.action.undo() else {
            return Err(Rejection::invalid(
                "decision",
                decision,
                format!("{} has no undo", entry.action),
            ));
        };
        if undo.class() == ActionClass::Destructive && !self.controls.destructive_enabled {
            return Err(Rejection::invalid(
                "decision",
                decision,
                format!(
                    "its undo ({undo}) is destructive and destructive actions are not enabled (dwcp autopilot enable destructive)"
                ),
            ));
        }
        let mut keys = self.begin(decision, &undo, view, 0, now_ms).map_err(|g| {
            Rejection::invalid(
                "decision",
                decision,
                format!("its undo ({undo}) is refused by the {g} guardrail"),
            )
        })?;
        self.ledger.entries[at].state = EntryState::Undone;
        keys.push(format!("decision/{decision}"));
        Ok(keys)
    }

    /// Begins an action: the guardrails again, against this book's ledger
    /// and switches; then a running entry (for the store-only actions,
    /// cordon and drain, done at once with the node's schedule set).
    fn begin(
        &mut self,
        decision: u64,
        action: &Action,
        view: &ClusterView,
        cooldown_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<String>, guard::Guardrail> {
        let report = guard::check(
            action,
            &GuardInput {
                view,
                ledger: &self.ledger,
                controls: &self.controls,
                limits: &self.limits,
                cooldown_ms,
                now_ms,
            },
        );
        if let Some(breach) = report.breach() {
            return Err(breach.guardrail);
        }
        if action.class() == ActionClass::Destructive && !self.controls.destructive_enabled {
            // Switched off since the decision: the same as a guardrail.
            return Err(guard::Guardrail::KillSwitch);
        }
        let mut keys = vec!["ledger".to_string()];
        let store_only = match action {
            Action::Cordon { node } => Some((node, Some(Schedule::Cordoned))),
            Action::Drain { node, .. } => Some((node, Some(Schedule::Drained))),
            Action::Uncordon { node } => Some((node, None)),
            _ => None,
        };
        if let Some((node, schedule)) = store_only {
            match schedule {
                Some(s) => self.schedules.insert(node.clone(), s),
                None => self.schedules.remove(node),
            };
            keys.push(format!("node/{node}"));
        }
        // A pool restart is an order in the store too: the node's agent
        // sees the count change and replaces the pool.
        let restart = match action {
            Action::RestartPool {
                tenant,
                app,
                version,
                node,
                ..
            } => {
                let key = pool_key(tenant, app, *version, node);
                *self.pool_restarts.entry(key.clone()).or_default() += 1;
                keys.push(format!("pool/{key}"));
                true
            }
            _ => false,
        };
        let after = view.after(action);
        self.ledger.entries.push(Entry {
            decision,
            at_ms: now_ms,
            action: action.clone(),
            state: if store_only.is_some() || restart {
                EntryState::Done
            } else {
                EntryState::Running
            },
            cost_per_hour_added: after.cost_per_hour - view.cost_per_hour,
        });
        Ok(keys)
    }
}

/// The effects a tick's approval steps call for, for the loop to carry
/// out (remind, page): read from the approvals' states.
pub fn notifications(before: &ActBook, after: &ActBook) -> Vec<(u64, ApprovalEffect)> {
    let mut out = Vec::new();
    for (id, r) in &after.approvals {
        let was = before.approvals.get(id).map(|b| &b.approval.state);
        if was == Some(&r.approval.state) {
            continue;
        }
        match r.approval.state {
            ApprovalState::Reminded => out.push((*id, ApprovalEffect::Remind)),
            ApprovalState::Paged => out.push((*id, ApprovalEffect::Page)),
            _ => {}
        }
    }
    out
}
