//! The rollout controller, as `dwcp up` runs it on every node: only the
//! node that leads the cluster acts. Each round it reads the state and
//! asks [`rollout::Tracking::commands`] what to write — per running
//! rollout, what its canary and baseline served since the last round goes
//! into its analysis window, the step machine runs, and the rollout's new
//! progress and audit records come back as one command — and writes
//! that. The gateways derive their weights from the rollout, so that write
//! is the weight change; the decisions are pure (in `rollout`), this loop
//! only does I/O.
//!
//! The tracking lives in the leader's memory: a new leader starts with an
//! empty one, so its first measurement may be inconclusive.

use std::sync::Arc;
use std::time::Duration;

use cluster::{ClusterNode, unix_now_ms};
use rollout::Tracking;
use state::Command;

/// How often the controller looks again when the state does not change
/// (pauses and analyses move with time alone).
const ROUND: Duration = Duration::from_millis(100);

/// Runs until the task is aborted.
pub async fn run(node: Arc<ClusterNode>) {
    let mut tracking = Tracking::default();
    loop {
        let status = node.replica().status();
        let revision = if status.leader != Some(status.id) {
            tracking.clear();
            node.replica().read_local().revision()
        } else {
            let (revision, commands) = {
                let state = node.replica().read_local();
                (
                    state.revision(), // Rollouts' times (steps, the trail) are wall-clock
                    // times, readable by people.
                    tracking.commands(&state, unix_now_ms()),
                )
            };
            for command in commands {
                let what = match &command {
                    Command::AdvanceRollout {
                        tenant,
                        app,
                        id,
                        records,
                        ..
                    } => {
                        for r in records {
                            cluster::say!("rollouts", "{tenant}/{app} rollout {id}: {r}");
                        }
                        format!("{tenant}/{app}")
                    }
                    _ => String::new(),
                };
                match node.write(command).await {
                    Ok(response) => {
                        if let Err(r) = response.result {
                            // Most often an operator's abort or promotion
                            // came first: the next round reads it.
                            cluster::say!("rollouts", "{what}: step not stored: {r}");
                        }
                    }
                    Err(e) => cluster::say!("rollouts", "{what}: writing a step: {e}"),
                }
            }
            revision
        };
        let _ = node.replica().watch(revision, ROUND).await;
    }
}
