//! The scheduler controller, as `dwcp up` runs it on every node: only the
//! node that leads the cluster acts. Each round it reads the state, judges
//! which nodes are alive from their reports ([`scheduler::Liveness`]), asks
//! [`scheduler::placement_commands`] what to change and writes that; the
//! decisions are pure, the loop only does I/O.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::ClusterNode;
use scheduler::Liveness;

/// A node whose report stands still this long is unhealthy (the one
/// judgement the API and the dashboard show, too).
pub use scheduler::DEAD_AFTER;

/// How often the controller looks again when the state does not change
/// (liveness moves with time alone).
const ROUND: Duration = Duration::from_millis(250);

/// Runs until the task is aborted.
pub async fn run(node: Arc<ClusterNode>) {
    let clock = Instant::now();
    let mut liveness: Option<Liveness> = None;
    let mut last_rejections = Vec::new();
    loop {
        let status = node.replica().status();
        let revision = if status.leader != Some(status.id) {
            // A new leader judges liveness afresh, with full grace.
            liveness = None;
            node.replica().read_local().revision()
        } else {
            let live = liveness.get_or_insert_with(|| Liveness::new(DEAD_AFTER));
            let now = clock.elapsed();
            let (revision, decision) = {
                let state = node.replica().read_local();
                live.observe(
                    state.nodes().map(|n| {
                        let beat = state.report(&n.name).map(|r| (r.boot, r.sequence));
                        (&n.name, beat)
                    }),
                    now,
                );
                (
                    state.revision(),
                    scheduler::placement_commands(&state, |n| live.healthy(n, now)),
                )
            };
            match decision {
                Err(e) => cluster::say!("scheduler", "cannot plan: {e}"),
                Ok(decision) => {
                    for change in &decision.plan.changes {
                        cluster::say!("scheduler", "{change}");
                    }
                    if decision.plan.rejections != last_rejections {
                        for r in &decision.plan.rejections {
                            cluster::say!("scheduler", "{r}");
                        }
                        last_rejections = decision.plan.rejections;
                    }
                    for command in decision.commands {
                        match node.write(command).await {
                            Ok(response) => {
                                if let Err(r) = response.result {
                                    cluster::say!("scheduler", "placements refused: {r}");
                                }
                            }
                            Err(e) => cluster::say!("scheduler", "writing placements: {e}"),
                        }
                    }
                }
            }
            revision
        };
        let _ = node.replica().watch(revision, ROUND).await;
    }
}
