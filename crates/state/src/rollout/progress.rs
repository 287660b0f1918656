//! Where a rollout stands ([`Progress`], [`Status`]) and what a progress
//! means for a region's weight and a blue-green preview: the data the
//! store keeps in a rollout record, and the queries on it that the state
//! machine, the gateway and the scheduler share. What the next progress
//! is, is decided by the `rollout` crate's step machine (`rollout::advance`).

use serde::{Deserialize, Serialize};

use super::{Plan, Step};

/// Where a rollout stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The step being run (an index into the plan's steps).
    pub step: usize,
    /// The new version's share of the traffic now, in %.
    pub weight: u32,
    /// When the rollout started, and the current step, in ms on the
    /// caller's clock.
    pub started_ms: u64,
    pub step_started_ms: u64,
    /// The current analysis step's tally.
    pub analysis: Tally,
    /// The wave of regions being rolled out to (an index into the plan's
    /// `region_wave`; 0 without one).
    #[serde(default)]
    pub wave: usize,
    pub status: Status,
}

/// An analysis step's measurements so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub measurements: u32,
    pub failures: u32,
    pub inconclusive: u32,
    /// When the next measurement is due, in ms (the first is due one
    /// interval after the step started, when this is still 0).
    pub next_ms: u64,
}

/// A rollout's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Status {
    #[default]
    Progressing,
    /// Waiting at a pause step until promoted.
    Paused,
    /// Every step done: the new version takes all the traffic.
    Succeeded,
    /// Stopped; all traffic went back to the stable version.
    Aborted { reason: String },
}

/// The progress of a rollout that starts at `now_ms`.
pub fn start(now_ms: u64) -> Progress {
    Progress {
        started_ms: now_ms,
        step_started_ms: now_ms,
        ..Progress::default()
    }
}

/// The new version's share of the traffic, in %, in the region that is in
/// wave `wave` of the plan (0 without waves; see [`wave_of`]).
pub fn weight_in_wave(progress: &Progress, wave: usize) -> u32 {
    match progress.status {
        Status::Aborted { .. } => 0,
        Status::Succeeded => 100,
        Status::Progressing | Status::Paused => match wave.cmp(&progress.wave) {
            std::cmp::Ordering::Less => 100,
            std::cmp::Ordering::Equal => progress.weight,
            std::cmp::Ordering::Greater => 0,
        },
    }
}

/// The wave `region` belongs to: the one naming it, else the last.
pub fn wave_of(plan: &Plan, region: &str) -> usize {
    match plan.waves() {
        None => 0,
        Some(waves) => waves
            .iter()
            .position(|w| w.iter().any(|r| r == region))
            .unwrap_or(waves.len() - 1),
    }
}

/// Whether the blue-green preview is open: after its step, until the
/// rollout ends.
pub fn preview_open(plan: &Plan, progress: &Progress) -> bool {
    !matches!(progress.status, Status::Succeeded | Status::Aborted { .. })
        && plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::BlueGreen { .. }))
            .is_some_and(|i| progress.step >= i)
}
