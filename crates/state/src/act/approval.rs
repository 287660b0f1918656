//! Humans in the loop: a critical action waits for a person. The wait is
//! a pure state machine with time as an argument: asked (people are
//! notified), reminded, paged, and at the deadline it expires into the
//! action's safe default — what is safe to do with no one answering,
//! usually nothing (the incident stays open), for a drain a cordon.
//!
//! An approval or rejection at or after the deadline is refused: the
//! expiry has already decided, so a late "yes" cannot act on a situation
//! nobody looked at since.

use serde::{Deserialize, Serialize};

use super::action::Action;

/// When a waiting approval escalates and expires, counted from when it
/// was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalTimes {
    /// People are notified again.
    pub remind_after_ms: u64,
    /// Whoever is on call is paged.
    pub page_after_ms: u64,
    /// The safe default is applied.
    pub expire_after_ms: u64,
}

impl Default for ApprovalTimes {
    fn default() -> ApprovalTimes {
        // A failover waiting longer than a quarter of an hour has lost
        // most of its point; the page comes with time left to answer.
        ApprovalTimes {
            remind_after_ms: 2 * 60_000,
            page_after_ms: 5 * 60_000,
            expire_after_ms: 15 * 60_000,
        }
    }
}

/// Where an approval stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Asked; people notified.
    Asked,
    /// Notified again.
    Reminded,
    /// The on-call person paged.
    Paged,
    Approved {
        by: String,
        at_ms: u64,
    },
    Rejected {
        by: String,
        at_ms: u64,
    },
    /// No answer in time: the safe default was applied.
    Expired {
        at_ms: u64,
    },
}

impl ApprovalState {
    /// Whether it still waits for an answer.
    pub fn waiting(&self) -> bool {
        matches!(
            self,
            ApprovalState::Asked | ApprovalState::Reminded | ApprovalState::Paged
        )
    }
}

/// A critical action waiting for a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The decision that proposed it (its id is the approval's).
    pub decision: u64,
    pub action: Action,
    /// Why it needs a person, one line each.
    pub reasons: Vec<String>,
    /// Applied when nobody answers in time (`None`: nothing).
    pub safe_default: Option<Action>,
    pub asked_ms: u64,
    pub state: ApprovalState,
}

/// What happens to an approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalEvent {
    /// Time passes.
    Tick {
        now_ms: u64,
    },
    Approve {
        by: String,
        now_ms: u64,
    },
    Reject {
        by: String,
        now_ms: u64,
    },
}

/// What the loop does about a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalEffect {
    Remind,
    Page,
    /// Approved: apply it (after checking the guardrails again).
    Apply(Action),
    /// Expired: apply the safe default, if there is one.
    ApplySafeDefault(Option<Action>),
}

/// A step refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval {decision} is already {state}")]
    Settled { decision: u64, state: &'static str },
    #[error(
        "approval {decision} expired at {deadline_ms} (answered at {now_ms}): its safe default applies"
    )]
    TooLate {
        decision: u64,
        deadline_ms: u64,
        now_ms: u64,
    },
}

/// What is safe to do about `action` when nobody approves it: for a
/// drain, cordon (no new work there, nothing moved); for everything else
/// nothing (the incident stays open and paged).
pub fn safe_default(action: &Action) -> Option<Action> {
    match action {
        Action::Drain { node, .. } => Some(Action::Cordon { node: node.clone() }),
        _ => None,
    }
}

impl Approval {
    /// A new approval, asked at `now_ms` (people are notified by the
    /// caller when it records it).
    pub fn ask(decision: u64, action: Action, reasons: Vec<String>, now_ms: u64) -> Approval {
        Approval {
            decision,
            safe_default: safe_default(&action),
            action,
            reasons,
            asked_ms: now_ms,
            state: ApprovalState::Asked,
        }
    }

    /// When it expires.
    pub fn deadline_ms(&self, times: &ApprovalTimes) -> u64 {
        self.asked_ms.saturating_add(times.expire_after_ms)
    }

    /// The approval after `event`, and what to do about it.
    pub fn step(
        &self,
        event: &ApprovalEvent,
        times: &ApprovalTimes,
    ) -> Result<(Approval, Vec<ApprovalEffect>), ApprovalError> {
        let mut next = self.clone();
        let mut effects = Vec::new();
        if !self.state.waiting() {
            if let ApprovalEvent::Tick { .. } = event {
                return Ok((next, effects));
            }
            return Err(ApprovalError::Settled {
                decision: self.decision,
                state: match self.state {
                    ApprovalState::Approved { .. } => "approved",
                    ApprovalState::Rejected { .. } => "rejected",
                    _ => "expired",
                },
            });
        }
        let now_ms = match event {
            ApprovalEvent::Tick { now_ms }
            | ApprovalEvent::Approve { now_ms, .. }
            | ApprovalEvent::Reject { now_ms, .. } => *now_ms,
        };
        let waited_ms = now_ms.saturating_sub(self.asked_ms);
        if waited_ms >= times.expire_after_ms {
            next.state = ApprovalState::Expired {
                at_ms: self.deadline_ms(times),
            };
            effects.push(ApprovalEffect::ApplySafeDefault(self.safe_default.clone()));
            return match event {
                ApprovalEvent::Tick { .. } => Ok((next, effects)),
                _ => Err(ApprovalError::TooLate {
                    decision: self.decision,
                    deadline_ms: self.deadline_ms(times),
                    now_ms,
                }),
            };
        }
        match event {
            ApprovalEvent::Tick { .. } => {
                if waited_ms >= times.page_after_ms && self.state != ApprovalState::Paged {
                    next.state = ApprovalState::Paged;
                    effects.push(ApprovalEffect::Page);
                } else if waited_ms >= times.remind_after_ms && self.state == ApprovalState::Asked {
                    next.state = ApprovalState::Reminded;
                    effects.push(ApprovalEffect::Remind);
                }
            }
            ApprovalEvent::Approve { by, .. } => {
                next.state = ApprovalState::Approved {
                    by: by.clone(),
                    at_ms: now_ms,
                };
                effects.push(ApprovalEffect::Apply(self.action.clone()));
            }
            ApprovalEvent::Reject { by, .. } => {
                next.state = ApprovalState::Rejected {
                    by: by.clone(),
                    at_ms: now_ms,
                };
            }
        }
        Ok((next, effects))
    }
}
