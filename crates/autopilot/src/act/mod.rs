//! Part 2: acting within guardrails — what the autopilot does about the
//! trouble part 1 finds, as pure functions the leader's loop calls.
//!
//! - [`action`]: the vocabulary — restart a warm pool, drain, cordon,
//!   scale, roll back, throttle, fail over, open or escalate an incident —
//!   each with its undo, its class and the target it holds.
//! - [`trouble`]: the input, a [`Trouble`] (fault class, place, observed
//!   or forecast, the signal that showed it).
//! - [`policy`]: rules mapping troubles to actions, as TOML checked whole,
//!   with defaults for every fault class.
//! - [`view`]: what the guardrails read — the cluster, the actions taken
//!   lately, the operator's switches.
//! - [`guard`]: the guardrails, one pure function; past a hard limit an
//!   action is refused, past a soft one a person approves.
//! - [`decide`]: one decision with its evidence, alternatives and
//!   counterfactual, replayable from its evidence.
//! - [`approval`]: the wait for a person — remind, page, and the safe
//!   default on expiry.
//!
//! Invariants: no I/O, no clock (`now_ms` is an argument), no randomness;
//! an action reaches the cluster only through an [`decide::Outcome::Acted`]
//! or an approved [`approval::Approval`], both after [`guard::check`], and
//! the caller checks again when it applies it.

pub mod action;
pub mod approval;
pub mod decide;
pub mod guard;
pub mod policy;
pub mod trouble;
pub mod view;

pub use action::{Action, ActionClass, ActionKind, Target};
pub use approval::{Approval, ApprovalEffect, ApprovalEvent, ApprovalState, ApprovalTimes};
pub use decide::{Decision, Evidence, Outcome, Proposal, decide};
pub use guard::{Check, GuardInput, GuardReport, Guardrail, Limits, Verdict};
pub use policy::{Policy, PolicyError, Rule};
pub use trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
pub use view::{ClusterView, Controls, Entry, EntryState, Ledger};
