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

impl Progress {
    /// The step to show people, counted from 1 and never past the plan's
    /// last: a rollout that finished its last step is at "step 4 of 4",
    /// not "5 of 4".
    pub fn shown_step(&self, plan: &Plan) -> usize {
        (self.step + 1).min(plan.steps.len()).max(1)
    }

    /// The measurement of an analysis step of `count` to show, counted
    /// from 1: the one being taken while the rollout runs, the last one
    /// taken once it ended; never past `count` ("3 of 3", not "4 of 3").
    pub fn shown_measurement(&self, count: u32) -> u32 {
        let running = matches!(self.status, Status::Progressing | Status::Paused);
        let n = if running {
            self.analysis.measurements + 1
        } else {
            self.analysis.measurements
        };
        n.clamp(1, count.max(1))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_never_pass_the_plan() {
        let plan = Plan::default_plan();
        let mut p = start(0);
        assert_eq!(p.shown_step(&plan), 1);
        p.step = plan.steps.len();
        p.status = Status::Succeeded;
        assert_eq!(
            p.shown_step(&plan),
            plan.steps.len(),
            "not one past the last"
        );
        p.step = 1;
        p.analysis.measurements = 3;
        p.status = Status::Aborted {
            reason: "inconclusive".into(),
        };
        assert_eq!(p.shown_measurement(3), 3, "the last taken, not 4 of 3");
        p.status = Status::Progressing;
        p.analysis.measurements = 1;
        assert_eq!(p.shown_measurement(3), 2, "the one being taken");
        p.analysis.measurements = 3;
        assert_eq!(p.shown_measurement(3), 3);
    }
}
