//! A decision as the store keeps it: the evidence it read, what it
//! decided, every action it considered with the guardrails' checks, and
//! the counterfactual. Made by `autopilot::act::decide` (pure), replayed
//! from its evidence by the same.

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionKind};
use super::guard::{Check, Guardrail, Limits};
use super::policy::Rule;
use super::trouble::Trouble;
use super::view::{ClusterView, Controls, Ledger};

/// Everything a decision read: enough to make it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub trouble: Trouble,
    /// The rule that matched (a copy: the policy may change later).
    pub rule: Option<Rule>,
    pub view: ClusterView,
    pub ledger: Ledger,
    pub controls: Controls,
    pub limits: Limits,
    /// The autopilot's clock, ms since the Unix epoch.
    pub now_ms: u64,
}

/// Why an action is proposed rather than applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proposal {
    /// Its rule is a dry run, or destructive actions are not enabled on
    /// this cluster.
    DryRun { why: String },
    /// A person approves first; one line per reason.
    NeedsApproval { reasons: Vec<String> },
}

/// What was decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Apply it.
    Acted {
        action: Action,
    },
    Proposed {
        action: Action,
        proposal: Proposal,
    },
    /// Every action the rule offered was refused; the first, and the
    /// guardrail that refused it.
    Refused {
        action: Action,
        guardrail: Guardrail,
    },
    /// Nothing to do (no rule, nothing applicable).
    Declined {
        reason: String,
    },
}

impl Outcome {
    /// `acted`, `proposed`, `refused` or `declined`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Acted { .. } => "acted",
            Outcome::Proposed { .. } => "proposed",
            Outcome::Refused { .. } => "refused",
            Outcome::Declined { .. } => "declined",
        }
    }

    /// The action it names, if one.
    pub fn action(&self) -> Option<&Action> {
        match self {
            Outcome::Acted { action }
            | Outcome::Proposed { action, .. }
            | Outcome::Refused { action, .. } => Some(action),
            Outcome::Declined { .. } => None,
        }
    }
}

/// An action the rule offered, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Considered {
    pub kind: ActionKind,
    /// The action built for this trouble, or `None` when it could not be
    /// (`note` says why).
    pub action: Option<Action>,
    pub checks: Vec<Check>,
    /// `chosen`, `refused by <guardrail>`, `not tried (an earlier one was
    /// chosen)`, or why it did not apply.
    pub note: String,
}

/// One decision with its evidence and explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Given by the store (0 until then).
    pub id: u64,
    pub evidence: Evidence,
    pub outcome: Outcome,
    /// Every action the rule offered, in its order.
    pub considered: Vec<Considered>,
    /// What would have led to no action.
    pub counterfactual: String,
    /// Set when the store, checking the guardrails again as it recorded
    /// an acted decision, refused its action (a pause or another action
    /// came first): the action was not begun. The outcome stays what the
    /// evidence decided, so that it replays.
    pub refused_at_commit: Option<Guardrail>,
}
