//! Part 2: acting within guardrails — what the autopilot does about the
//! trouble it finds, as pure functions the leader's loop
//! (`controllers::remedy`) calls.
//!
//! The vocabulary, the policies, the guardrails, the approval state
//! machine and the decision records live in `state::act` (the state
//! machine checks the guardrails again before any action begins) and are
//! re-exported here; this module adds:
//! - [`decide`]: one decision with its evidence, alternatives and
//!   counterfactual, replayable from its evidence ([`decide::replays`]).
//! - [`observe`]: the cluster's view, built from the store.
//! - [`sense`]: the troubles the view shows (a node silent, a region
//!   lost), and the memory that decides each once per cool-down.
//! - [`traffic`]: the troubles the nodes' served counters show at once
//!   (a pool failing on one node, a tenant flooding the others).
//! - [`apply`]: the store commands of the existing machinery that carry
//!   an action out.
//!
//! Invariants: no I/O, no clock (`now_ms` is an argument), no randomness;
//! an action reaches the cluster only through an acted decision or an
//! approved approval, both after `guard::check`, and the state machine
//! checks again when it begins it.

pub use state::act::{action, approval, book, guard, policy, record, trouble, view};

pub mod apply;
pub mod decide;
pub mod observe;
pub mod sense;
pub mod traffic;

pub use action::{Action, ActionClass, ActionKind, Target};
pub use approval::{Approval, ApprovalEffect, ApprovalEvent, ApprovalState, ApprovalTimes};
pub use decide::{decide, replays};
pub use guard::{Check, GuardInput, GuardReport, Guardrail, Limits, Verdict};
pub use policy::{Policy, PolicyError, Rule};
pub use record::{Decision, Evidence, Outcome, Proposal};
pub use trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
pub use view::{ClusterView, Controls, Entry, EntryState, Ledger};
