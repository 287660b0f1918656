//! The experiment engine: steady state first, then the fault, watched
//! against the stop condition while it is in force, then taken back, then
//! the way back to the objective timed. It drives a [`Target`] (the live
//! cluster in `live.rs`; a fake in this file's tests) and judges with the
//! pure functions of `verdict.rs`.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use tokio::time::Instant;

use super::catalog::{Experiment, Fault, Radius};
use super::verdict::{self, Objective, Sample};

/// What the autopilot showed, as counters read from the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Autopilot {
    /// Part 1's detections (`GET /autopilot/anomalies`)...
    pub detections: u64,
    /// ... and its failure predictions (`GET /autopilot/predictions`).
    pub predictions: u64,
    /// Decisions that acted, were proposed for approval, or were refused by
    /// a guardrail (`GET /autopilot/decisions`), when the build has them.
    pub decisions: Option<Decisions>,
}

/// Decisions by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decisions {
    pub acted: u64,
    pub proposed: u64,
    pub refused: u64,
    pub approvals_asked: u64,
}

/// What an experiment runs against.
pub trait Target {
    /// Starts a new record of the load's answers (and drops the old one).
    fn clear(&mut self);
    /// The load's answers since [`Target::clear`], times from `origin`.
    fn samples(&self, origin: Instant) -> Vec<Sample>;
    /// Breaks what `fault` says; the nodes it aimed at.
    fn inject(&mut self, fault: &Fault) -> impl Future<Output = Result<Vec<usize>>>;
    /// Moves a fault that changes over time on (a creep, a crash loop).
    fn tick(&mut self, since: Duration) -> impl Future<Output = Result<()>>;
    /// Takes the fault back (a person's or the harness's repair).
    fn restore(&mut self) -> impl Future<Output = Result<()>>;
    /// The autopilot's counters now.
    fn autopilot(&mut self) -> impl Future<Output = Result<Autopilot>>;
}

/// How long each phase may take.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    /// The fault stays in force this long unless stopped.
    #[serde(rename = "hold_ms", serialize_with = "as_ms")]
    pub hold: Duration,
    /// After the restore, the objective must be back within this.
    #[serde(rename = "settle_ms", serialize_with = "as_ms")]
    pub settle: Duration,
    /// The steady state must hold before the fault within this.
    #[serde(rename = "steady_ms", serialize_with = "as_ms")]
    pub steady: Duration,
    /// How often the stop condition and the course are looked at.
    #[serde(rename = "poll_ms", serialize_with = "as_ms")]
    pub poll: Duration,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Timing {
    pub fn new(hold: Duration) -> Timing {
        Timing {
            hold,
            settle: Duration::from_secs(90),
            steady: Duration::from_secs(90),
            poll: Duration::from_millis(250),
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The objective never broke.
    NoImpact,
    /// It broke and came back while the fault was still in force: nobody
    /// repaired anything.
    Autonomous,
    /// It came back only after the fault was taken back.
    AfterRestore,
    /// It did not come back within the settle time.
    NotRecovered,
    /// The stop condition fired: the fault was taken back early.
    Aborted,
    /// The run could not finish (see `Run::error`).
    Error,
}

/// One run of one experiment.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub experiment: String,
    pub seed: u64,
    pub resolution: Resolution,
    /// Injection to the objective back (0 when it never broke).
    pub mttr_ms: Option<u64>,
    pub first_bad_ms: Option<i64>,
    /// Why the stop condition fired.
    pub stopped: Option<String>,
    /// The nodes the fault aimed at.
    pub targets: Vec<usize>,
    /// The load's requests from the injection to the end, and how many
    /// failed.
    pub requests: u64,
    pub failed: u64,
    /// The autopilot's counters' increase over the run (`None`: they
    /// could not be read before or after it).
    pub autopilot: Option<Autopilot>,
    /// Why the run could not finish, when it could not (the engine's
    /// error; see [`Run::failed_with`]).
    pub error: Option<String>,
    /// Whether the fault was injected: false when the run ended before
    /// (the steady state did not hold), so that it judged no fault.
    pub injected: bool,
}

impl Run {
    /// A run of `experiment` that ended in `error` (a fault that could not
    /// be injected or taken back, a cluster that never became steady);
    /// `injected`: whether its fault had been injected by then.
    pub fn failed_with(experiment: &str, seed: u64, error: &anyhow::Error, injected: bool) -> Run {
        Run {
            experiment: experiment.to_string(),
            seed,
            resolution: Resolution::Error,
            mttr_ms: None,
            first_bad_ms: None,
            stopped: None,
            targets: Vec::new(),
            requests: 0,
            failed: 0,
            autopilot: None,
            error: Some(format!("{error:#}")),
            injected,
        }
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Runs `experiment` once against `target`; `say` reports progress.
pub async fn run<T: Target>(
    target: &mut T,
    experiment: &Experiment,
    seed: u64,
    objective: &Objective,
    timing: &Timing,
    say: &dyn Fn(&str),
) -> Result<Run> {
    let mut injected = false;
    run_marking(
        target,
        experiment,
        seed,
        objective,
        timing,
        say,
        &mut injected,
    )
    .await
}

/// [`run`], setting `injected` once the fault's injection begins (an
/// error before it judged no fault).
async fn run_marking<T: Target>(
    target: &mut T,
    experiment: &Experiment,
    seed: u64,
    objective: &Objective,
    timing: &Timing,
    say: &dyn Fn(&str),
    injected: &mut bool,
) -> Result<Run> {
    // 1. The steady state, before anything is broken.
    target.clear();
    let origin = Instant::now();
    loop {
        let now = ms(origin.elapsed());
        if verdict::steady(&target.samples(origin), objective, now) {
            break;
        }
        if origin.elapsed() > timing.steady {
            bail!(
                "{}: the steady state (the objective met {} windows in a row) did not hold within {} s before the fault; nothing was injected",
                experiment.name,
                objective.good_windows,
                timing.steady.as_secs()
            );
        }
        tokio::time::sleep(timing.poll).await;
    }
    // Unreadable counters (no leader to read them from) leave the run's
    // counters unknown; they do not end it.
    let before = target.autopilot().await.ok();

    // 2. The fault, watched.
    say(&format!(
        "{}: injecting ({})",
        experiment.name, experiment.hypothesis
    ));
    target.clear();
    let t0 = Instant::now();
    *injected = true;
    let targets = target.inject(&experiment.fault).await?;
    let radius: Vec<usize> = match experiment.radius {
        Radius::Cluster => Vec::new(),
        _ => targets.clone(),
    };
    let all_nodes = experiment.radius == Radius::Cluster;
    let mut stopped = None;
    while t0.elapsed() < timing.hold {
        tokio::time::sleep(timing.poll).await;
        target.tick(t0.elapsed()).await?;
        let now = ms(t0.elapsed());
        if let Some(why) = verdict::stop_reason(
            &target.samples(t0),
            &radius,
            all_nodes,
            &experiment.stop,
            now,
        ) {
            say(&format!(
                "{}: stop condition: {why}; restoring",
                experiment.name
            ));
            stopped = Some(why);
            break;
        }
    }
    let held = ms(t0.elapsed());
    let during = verdict::course(&target.samples(t0), objective, held);

    // 3. Taken back, and the way back timed.
    target.restore().await?;
    let restored = Instant::now();
    let mut after = verdict::course(&target.samples(t0), objective, ms(t0.elapsed()));
    while restored.elapsed() < timing.settle {
        after = verdict::course(&target.samples(t0), objective, ms(t0.elapsed()));
        let settled = match after.first_bad_ms {
            None => restored.elapsed() >= timing.poll * 8,
            // Back: after the restore, or by a good run that began under
            // the fault and lasted past it.
            Some(_) => after.back_at_ms.is_some(),
        };
        if settled {
            break;
        }
        tokio::time::sleep(timing.poll).await;
    }
    let after_counters = target.autopilot().await.ok();
    let autopilot = before.zip(after_counters).map(|(b, a)| delta(&b, &a));

    let (resolution, mttr_ms) = if stopped.is_some() {
        (Resolution::Aborted, after.back_at_ms)
    } else if during.first_bad_ms.is_none() {
        // A dent after the restore is the harness's, not the fault's.
        if after.first_bad_ms.is_none() || after.back_at_ms.is_some() {
            (Resolution::NoImpact, Some(0))
        } else {
            (Resolution::NotRecovered, None)
        }
    } else if let Some(back) = during.back_at_ms {
        (Resolution::Autonomous, Some(back))
    } else if let Some(back) = after.back_at_ms {
        // A good run that began before the restore (too short to count by
        // then) came back with nobody's repair; one after it, by the
        // restore.
        if back < held {
            (Resolution::Autonomous, Some(back))
        } else {
            (Resolution::AfterRestore, Some(back))
        }
    } else {
        (Resolution::NotRecovered, None)
    };
    let samples = target.samples(t0);
    let run = Run {
        experiment: experiment.name.to_string(),
        seed,
        resolution,
        mttr_ms: mttr_ms.map(|m| m.max(0) as u64),
        first_bad_ms: during.first_bad_ms.or(after.first_bad_ms),
        stopped,
        targets,
        requests: samples.len() as u64,
        failed: samples.iter().filter(|s| !s.ok).count() as u64,
        autopilot,
        error: None,
        injected: true,
    };
    say(&format!(
        "{}: {:?}, mttr {}, {} of {} requests failed, {} detections",
        run.experiment,
        run.resolution,
        run.mttr_ms.map_or("-".into(), |m| format!("{m} ms")),
        run.failed,
        run.requests,
        run.autopilot
            .map_or("unknown".into(), |a| a.detections.to_string())
    ));
    Ok(run)
}

/// [`run`], an error recorded as a run that failed (so that a suite goes
/// on to the next experiment) and said on stderr.
pub async fn run_or_record<T: Target>(
    target: &mut T,
    experiment: &Experiment,
    seed: u64,
    objective: &Objective,
    timing: &Timing,
    say: &dyn Fn(&str),
) -> Run {
    let mut injected = false;
    let outcome = run_marking(
        target,
        experiment,
        seed,
        objective,
        timing,
        say,
        &mut injected,
    )
    .await;
    match outcome {
        Ok(run) => run,
        Err(e) => {
            say(&format!("{}: failed: {e:#}", experiment.name));
            // Whatever was injected is taken back as well as it can be.
            if let Err(r) = target.restore().await {
                say(&format!(
                    "{}: restoring after the failure: {r:#}",
                    experiment.name
                ));
            }
            Run::failed_with(experiment.name, seed, &e, injected)
        }
    }
}

fn delta(before: &Autopilot, after: &Autopilot) -> Autopilot {
    let decisions = match (before.decisions, after.decisions) {
        (Some(b), Some(a)) => Some(Decisions {
            acted: a.acted.saturating_sub(b.acted),
            proposed: a.proposed.saturating_sub(b.proposed),
            refused: a.refused.saturating_sub(b.refused),
            approvals_asked: a.approvals_asked.saturating_sub(b.approvals_asked),
        }),
        _ => None,
    };
    Autopilot {
        detections: after.detections.saturating_sub(before.detections),
        predictions: after.predictions.saturating_sub(before.predictions),
        decisions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::catalog;

    /// Three nodes answering every 10 ms of (paused) time; a node in
    /// `failing` fails. Injecting fails the nodes the fake is told to;
    /// restoring heals them.
    struct Fake {
        start: Instant,
        failing: Vec<(Instant, Option<Instant>, usize)>,
        breaks: Vec<usize>,
        /// A fault that heals by itself this long after its injection.
        heals_after: Option<Duration>,
        injected: u32,
        restored: u32,
    }

    impl Fake {
        fn new(breaks: Vec<usize>) -> Fake {
            Fake {
                start: Instant::now(),
                failing: Vec::new(),
                breaks,
                heals_after: None,
                injected: 0,
                restored: 0,
            }
        }
    }

    impl Target for Fake {
        fn clear(&mut self) {}
        fn samples(&self, origin: Instant) -> Vec<Sample> {
            let now = Instant::now();
            let mut out = Vec::new();
            let mut t = self.start;
            let mut i = 0usize;
            while t < now {
                let node = i % 3;
                let ok = !self
                    .failing
                    .iter()
                    .any(|(from, to, n)| *n == node && t >= *from && to.is_none_or(|to| t < to));
                out.push(Sample {
                    at_ms: t.duration_since(origin).as_millis() as i64
                        - origin.duration_since(t).as_millis() as i64,
                    node,
                    ok,
                    latency_ms: 3,
                });
                t += Duration::from_millis(10);
                i += 1;
            }
            out
        }
        async fn inject(&mut self, _: &Fault) -> Result<Vec<usize>> {
            self.injected += 1;
            let now = Instant::now();
            for &n in &self.breaks {
                self.failing
                    .push((now, self.heals_after.map(|d| now + d), n));
            }
            Ok(vec![0])
        }
        async fn tick(&mut self, _: Duration) -> Result<()> {
            Ok(())
        }
        async fn restore(&mut self) -> Result<()> {
            self.restored += 1;
            let now = Instant::now();
            for f in &mut self.failing {
                f.1.get_or_insert(now);
            }
            Ok(())
        }
        async fn autopilot(&mut self) -> Result<Autopilot> {
            Ok(Autopilot::default())
        }
    }

    /// Runs `kill-follower` against `fake`, the fault held `hold_s`.
    async fn go(fake: &mut Fake, hold_s: u64) -> Run {
        let experiment = kill_follower();
        let timing = Timing::new(Duration::from_secs(hold_s));
        run(fake, &experiment, 1, &Objective::DEFAULT, &timing, &|_| {})
            .await
            .unwrap()
    }

    fn kill_follower() -> Experiment {
        catalog::select(&["kill-follower".into()])
            .unwrap()
            .remove(0)
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_condition_aborts_and_restores() {
        // The fault aims at node 0 but node 1 fails too: outside the radius.
        let mut fake = Fake::new(vec![0, 1]);
        let run = go(&mut fake, 30).await;
        assert_eq!(run.resolution, Resolution::Aborted);
        assert!(run.stopped.unwrap().contains("outside the blast radius"));
        assert_eq!((fake.injected, fake.restored), (1, 1));
        // Stopped within the stop window (and a poll), not after the hold.
        assert!(
            run.mttr_ms.is_some(),
            "the load came back after the restore"
        );
        let stopped_at = fake.failing[0].1.unwrap().duration_since(fake.failing[0].0);
        assert!(stopped_at < Duration::from_secs(7), "{stopped_at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_inside_the_radius_runs_its_course_and_is_restored() {
        let mut fake = Fake::new(vec![0]);
        let run = go(&mut fake, 10).await;
        assert_eq!(run.resolution, Resolution::AfterRestore);
        assert_eq!(run.stopped, None);
        assert_eq!(fake.restored, 1);
        let mttr = run.mttr_ms.unwrap();
        assert!((10_000..13_000).contains(&mttr), "{mttr}");
        assert!(run.failed > 0 && run.failed < run.requests);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_never_became_steady_injected_nothing() {
        // Node 1 fails from the start: the steady state never holds.
        let mut fake = Fake::new(vec![0]);
        fake.failing.push((fake.start, None, 1));
        let timing = Timing::new(Duration::from_secs(5));
        let run = run_or_record(
            &mut fake,
            &kill_follower(),
            1,
            &Objective::DEFAULT,
            &timing,
            &|_| {},
        )
        .await;
        assert_eq!(run.resolution, Resolution::Error);
        assert!(!run.injected);
        assert_eq!(fake.injected, 0);
        assert!(run.error.unwrap().contains("nothing was injected"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_way_back_begun_just_before_the_restore_is_autonomous() {
        // Node 0 fails for the first 8.5 s of a 10 s hold and then serves
        // again by itself: the good run begins under the fault but is
        // two windows short of "back" when the fault is taken back.
        let mut fake = Fake::new(vec![0]);
        fake.heals_after = Some(Duration::from_millis(8_500));
        let timing = Timing::new(Duration::from_secs(10));
        let run = run(
            &mut fake,
            &kill_follower(),
            1,
            &Objective::DEFAULT,
            &timing,
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(run.resolution, Resolution::Autonomous, "{run:?}");
        let mttr = run.mttr_ms.unwrap();
        assert!(mttr < 10_000, "{mttr}");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_broken_is_no_impact() {
        let mut fake = Fake::new(vec![]);
        let run = go(&mut fake, 5).await;
        assert_eq!(
            (run.resolution, run.mttr_ms),
            (Resolution::NoImpact, Some(0))
        );
    }
}
