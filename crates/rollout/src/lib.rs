//! Progressive delivery: moving an app's traffic from a stable version to a
//! new one in steps, judging the new one against the old between steps.
//!
//! So far this crate holds the statistical judge ([`judge`]): a canary's
//! samples against a baseline's, started at the same time on the stable
//! version — latency compared with a Mann-Whitney U test, error counts
//! with a two-proportion z-test — giving [`Verdict::Pass`], `Marginal`,
//! `Fail` or `Inconclusive` with the evidence — and the [`Plan`]: steps
//! (`set_weight`, `pause`, `analysis`) read from JSON and checked whole,
//! each error naming its step — and the step machine ([`advance`]): plan,
//! progress, metrics and time in, the next progress and the actions
//! (weights, audit records) out. Region waves, blue-green and the
//! controller come with the rest of the rollouts issue.
//!
//! Invariants: everything here is a pure function of its arguments — no
//! I/O, no clock, no randomness — so the controller and the simulator run
//! the same code. It depends on no other DWCP crate yet (`control` only,
//! when plans name apps and versions).

mod judge;
mod machine;
mod plan;
mod stats;
mod window;

pub use judge::{
    ErrorEvidence, JudgeError, Judgment, LatencyEvidence, Sample, Thresholds, Verdict, judge,
};
pub use machine::{
    Action, Input, Progress, Status, Tally, advance, preview_open, start, wave_of, weight_in_wave,
};
pub use plan::{Analysis, Check, Comparator, METRICS, Plan, PlanError, Step};
pub use stats::{MannWhitney, ProportionTest, mann_whitney_u, normal_sf, two_proportion_z};
pub use window::{MAX_LATENCIES, Side, Window, measure};
