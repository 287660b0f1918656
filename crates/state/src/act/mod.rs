//! The autopilot's acting (issue 20), as the store keeps and checks it:
//! the action vocabulary with its undo, the troubles acted on, the
//! policies (TOML, checked whole), what the guardrails read and the
//! guardrails themselves, the approval state machine, the decision
//! records, and the book of all of it the state machine keeps
//! ([`book::ActBook`]).
//!
//! It lives here, not in the `autopilot` crate that decides, because the
//! state machine checks the guardrails again before any action begins —
//! and this crate depends on no other. `autopilot::act` re-exports it and
//! adds the decision itself (`decide`), pure like everything here.
//!
//! - [`action`]: restart a warm pool, drain, cordon, scale, roll back,
//!   throttle, fail over, open or escalate an incident — each with its
//!   undo, its class and the target it holds.
//! - [`trouble`]: what is acted on (fault class, place, observed or
//!   forecast, the signal that showed it).
//! - [`policy`]: rules mapping troubles to actions, with defaults for
//!   every fault class; a forecast may only prepare.
//! - [`view`]: the cluster, the actions taken lately, the switches.
//! - [`guard`]: the guardrails, one pure function; past a hard limit an
//!   action is refused, past a soft one a person approves.
//! - [`approval`]: the wait for a person — remind, page, and the safe
//!   default on expiry.
//! - [`record`]: a decision with its evidence, alternatives and
//!   counterfactual.
//! - [`book`]: the store's part — controls, policy, ledger, decisions,
//!   approvals, node schedules — and its one step function.
//!
//! Invariants: no I/O, no clock (`now_ms` is an argument). Every type
//! here is kept in snapshots (postcard): enums are externally tagged and
//! no field is skipped.

pub mod action;
pub mod approval;
pub mod book;
pub mod guard;
pub mod policy;
pub mod record;
pub mod trouble;
pub mod view;
