//! The rollout record's data: its [`Plan`] (steps read from JSON or TOML
//! and checked whole, each error naming its step and field), the metric
//! [`Query`]s its analysis checks use, and its [`Progress`].
//!
//! They live here because the store keeps them and [`State::apply`]
//! (crate::State::apply) checks and starts them; the decisions over them —
//! the step machine and the statistical judge — are the `rollout` crate's,
//! which re-exports all of this.

mod plan;
mod progress;
mod query;

pub use plan::{Analysis, Check, Comparator, METRICS, Plan, PlanError, Step};
pub use progress::{Progress, Status, Tally, preview_open, start, wave_of, weight_in_wave};
pub use query::{Op, Query};
