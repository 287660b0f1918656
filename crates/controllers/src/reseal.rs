//! Sealing the notification secrets of SLOs stored before sealing existed
//! (issue 16): on the leader, every few seconds, [`ops::notify_guard::reseal`]
//! picks the SLOs whose targets still hold a webhook URL or routing key in
//! plain and seals them under the cluster's at-rest key; the loop writes
//! them back in one `SealSloTargets`, which the state machine refuses when
//! one of them changed since it was read (the next round reads again). A
//! state with nothing to seal (the usual case, after the first round)
//! costs a scan of the SLOs and no write.

use std::sync::Arc;
use std::time::Duration;

use cluster::ClusterNode;
use state::Command;

/// How often the leader looks for SLOs to seal.
const EVERY: Duration = Duration::from_secs(2);

/// Runs rounds until the task is aborted.
pub async fn run(node: Arc<ClusterNode>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem = String::new();
    loop {
        tick.tick().await;
        if node.replica().status().leader != Some(node.id()) {
            continue;
        }
        let problem = match round(&node).await {
            Ok(0) => String::new(),
            Ok(n) => {
                cluster::say!(
                    "alerts",
                    "sealed the notification secrets of {n} SLO(s) stored before sealing"
                );
                String::new()
            }
            Err(e) => e,
        };
        if problem != last_problem && !problem.is_empty() {
            cluster::say!("alerts", "sealing stored notification secrets: {problem}");
        }
        last_problem = problem;
    }
}

/// One round: how many SLOs it sealed.
async fn round(node: &ClusterNode) -> Result<usize, String> {
    let slos = {
        let state = node.replica().read_local();
        ops::notify_guard::reseal(&node.at_rest_key(), &state).map_err(|e| e.to_string())?
    };
    if slos.is_empty() {
        return Ok(0);
    }
    let n = slos.len();
    let written = node
        .write(Command::SealSloTargets { slos })
        .await
        .map_err(|e| e.to_string())?;
    written
        .result
        .map(|_| n)
        .map_err(|rejection| format!("refused: {rejection}"))
}
