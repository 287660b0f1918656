//! Progressive delivery: moving an app's traffic from a stable version to a
//! new one in steps, judging the new one against the old between steps.
//!
//! - The [`Plan`]: steps (`set_weight`, `pause`, `analysis`, `region_wave`,
//!   `blue_green`) read from JSON or TOML and checked whole, each error
//!   naming its step and field.
//! - The step machine ([`advance`]): plan, progress, metrics and time in,
//!   the next progress and the actions (weights, audit records) out; what
//!   a progress means for a region's weight ([`weight_in_wave`]) and for a
//!   blue-green preview ([`preview_open`]).
//! - The analysis: a [`Window`] of what the canary and its baseline served,
//!   [`measure`]d into the metrics checks name, and the statistical
//!   [`judge`] — a canary against a baseline started at the same time on
//!   the stable version, latency by a Mann-Whitney U test, errors by a
//!   two-proportion z-test — giving [`Verdict::Pass`], `Marginal`, `Fail`
//!   or `Inconclusive` with the evidence.
//! - Sizing a plan to an app's traffic before it starts ([`sizing`]):
//!   what each analysis step gets at a rate, which cannot decide, and the
//!   default plan with its first weight and windows fitted to the rate;
//!   an inconclusive measurement says what its window lacked
//!   ([`SampleSize`]).
//! - The controller's decisions ([`Tracking`]): each round, per running
//!   rollout, the report counters' increase since the last round into its
//!   window, the step machine run, and the one `AdvanceRollout` command to
//!   write. The loop that runs it on the leader is `controllers::delivery`.
//!
//! The rollout record in the store is `state::Rollout`. Its plan and
//! progress are that record's data, so they are defined in `state::rollout`
//! (and re-exported here); the decisions over them are this crate's.
//!
//! Invariants: everything here is a pure function of its arguments — no
//! I/O, no clock, no randomness — so the controller and the simulator run
//! the same code. It depends on no DWCP crate but `state`, and never on
//! one that does I/O (`replica`, `cluster`, `node`, `ops`).

mod controller;
mod judge;
mod machine;
pub mod sizing;
mod stats;
mod window;

pub use controller::Tracking;
pub use judge::{
    ErrorEvidence, JudgeError, Judgment, LatencyEvidence, Sample, Thresholds, Verdict, judge,
};
pub use machine::{Action, Input, SampleSize, advance};
// The plan and the progress are data the store keeps in a rollout record,
// so they live in `state`; they are re-exported here, where they are used.
pub use state::rollout::{
    Analysis, Check, Comparator, METRICS, Op, Plan, PlanError, Progress, Query, Status, Step,
    Tally, preview_open, start, wave_of, weight_in_wave,
};
pub use stats::{MannWhitney, ProportionTest, mann_whitney_u, normal_sf, two_proportion_z};
pub use window::{MAX_LATENCIES, Side, Window, measure};
