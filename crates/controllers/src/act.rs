//! The autopilot's acting loop (issue 20), as `dwcp up` runs it on every
//! node: only the cluster's leader acts. Each round it reads the state
//! and builds the cluster's view (liveness from the nodes' reports, the
//! store's voters from the replica), lets the approvals move on with time
//! (one `Tick`), decides about each trouble due (`autopilot::act::decide`,
//! pure; one `Record` each, the state machine checking the guardrails
//! again), carries out the actions running in the ledger with the
//! existing machinery's commands (`autopilot::act::apply`) and records
//! each finished. People hear of approvals through incidents: one opens
//! when an action waits for a person, a note reminds, a page escalates.
//!
//! A new leader resumes the running actions (their commands are
//! idempotent) and decides afresh: the memory of what it decided lately
//! is this loop's, the decisions themselves are the store's.
//!
//! Time: the autopilot's clock (`now_ms`: decisions, cool-downs,
//! approvals) is the one `dwcp up` gives it — the wall clock, or under
//! `--manual-clock` the test clock; liveness is judged on this process's
//! monotonic clock, as the scheduler judges it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autopilot::act::approval::ApprovalEffect;
use autopilot::act::book::{ActCommand, notifications};
use autopilot::act::record::{Outcome, Proposal};
use autopilot::act::view::{ClusterView, EntryState};
use autopilot::act::{apply, decide, observe, sense, traffic};
use cluster::{ClusterNode, node_name};
use ops::slo::Clock;
use scheduler::Liveness;
use state::{Command, Severity};

/// How often a round runs when nothing changes (liveness and approvals
/// move with time alone).
const ROUND: Duration = Duration::from_millis(500);

/// Troubles handed to this process's loop from outside (`dwcp up
/// --manual-clock`'s test hook), decided at its next round as leader.
static HANDED: Mutex<Vec<autopilot::act::Trouble>> = Mutex::new(Vec::new());

/// Hands the loop troubles as `sense` makes them (JSON `act::Trouble`s),
/// for end-to-end tests of actions whose detectors need hours of signal;
/// refused whole, naming the one at fault, when one does not read.
pub fn hand(troubles: Vec<serde_json::Value>) -> Result<(), String> {
    let mut read = Vec::with_capacity(troubles.len());
    for (i, t) in troubles.into_iter().enumerate() {
        read.push(serde_json::from_value(t).map_err(|e| format!("troubles[{i}]: {e}"))?);
    }
    handed().extend(read);
    Ok(())
}

fn handed() -> std::sync::MutexGuard<'static, Vec<autopilot::act::Trouble>> {
    // A panic while holding it leaves plain data behind.
    HANDED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a round that begins `now` after the last one began at `last`
/// (both on the monotonic clock) must forget what the leader kept: a gap
/// as long as a node's time to be judged dead means this process was
/// frozen (SIGSTOP) or starved, and its state and view may be stale — a
/// resumed old leader still says it leads until it hears otherwise, and
/// would judge every node silent from reports that stood still in its own
/// copy while it did not run (its writes are forwarded to the real
/// leader and commit).
fn stale_after(last: Option<Duration>, now: Duration) -> bool {
    last.is_some_and(|l| now.saturating_sub(l) >= crate::scheduling::DEAD_AFTER)
}

/// Runs rounds until the task is aborted.
pub async fn run(node: Arc<ClusterNode>, clock: Arc<dyn Clock>) {
    let started = Instant::now();
    let mut leading: Option<Leading> = None;
    let mut last_round: Option<Duration> = None;
    let mut last_problem = String::new();
    loop {
        let status = node.replica().status();
        let revision = node.replica().read_local().revision();
        let now = started.elapsed();
        if stale_after(last_round.replace(now), now) {
            // Judged afresh, with full grace, as a new leader would.
            leading = None;
        }
        if status.leader != Some(status.id) {
            // A new leader judges liveness afresh, with full grace.
            leading = None;
        } else {
            let l = leading.get_or_insert_with(Leading::new);
            let problems = l.round(&node, clock.now_ms(), started.elapsed()).await;
            let problem = problems.join("; ");
            if problem != last_problem && !problem.is_empty() {
                cluster::say!(warn, "autopilot", "{problem}");
            }
            last_problem = problem;
        }
        let _ = node.replica().watch(revision, ROUND).await;
    }
}

/// What the leader keeps between rounds.
struct Leading {
    liveness: Liveness,
    memory: sense::Memory,
    /// What each version served on each node lately.
    traffic: traffic::Traffic,
}

impl Leading {
    fn new() -> Leading {
        Leading {
            liveness: Liveness::new(crate::scheduling::DEAD_AFTER),
            memory: sense::Memory::default(),
            traffic: traffic::Traffic::default(),
        }
    }

    /// One round; the problems it met (writes that failed), for the log.
    async fn round(&mut self, node: &ClusterNode, now_ms: u64, elapsed: Duration) -> Vec<String> {
        let mut problems = Vec::new();
        let voters: Vec<String> = node
            .replica()
            .status()
            .voters
            .iter()
            .map(|&id| node_name(id).to_string())
            .collect();
        // Approvals move on first; what people must hear of, they hear.
        let tick = ActCommand::Tick {
            view: Box::new(self.view(node, &voters, elapsed)),
            now_ms,
        };
        let before = node.replica().read_local().acts().clone();
        // Written only when it changes something: a quiet cluster's log
        // does not grow by a tick every round.
        let moves = before
            .step(&tick)
            .is_ok_and(|(_, stepped)| !stepped.keys.is_empty());
        if moves && act(node, tick, "moving approvals on", &mut problems).await {
            let after = node.replica().read_local().acts().clone();
            for (id, effect) in notifications(&before, &after) {
                notify(node, id, &effect, now_ms, &mut problems).await;
            }
        }

        // Then the troubles due, on the state the tick left (an expired
        // approval's safe default may have answered one already).
        let view = self.view(node, &voters, elapsed);
        let due = {
            let state = node.replica().read_local();
            let mut troubles = sense::from_view(&view, now_ms);
            troubles.extend(sense::from_findings(&state, now_ms));
            // Windows are timed on the monotonic clock, as liveness is.
            let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            self.traffic.observe(&state, elapsed_ms);
            troubles.extend(self.traffic.troubles(elapsed_ms, now_ms));
            troubles.extend(handed().drain(..));
            self.memory.due(troubles, &state.acts().policy(), now_ms)
        };
        for trouble in due {
            self.decide(node, &view, trouble, now_ms, &mut problems)
                .await;
        }
        finish_running(node, now_ms, &mut problems).await;
        problems
    }

    /// The cluster as the store has it now, with liveness from the
    /// nodes' reports.
    fn view(&mut self, node: &ClusterNode, voters: &[String], elapsed: Duration) -> ClusterView {
        let state = node.replica().read_local();
        self.liveness.observe(
            state.nodes().map(|n| {
                let beat = state.report(&n.name).map(|r| (r.boot, r.sequence));
                (&n.name, beat)
            }),
            elapsed,
        );
        let live = &self.liveness;
        observe::cluster_view(&state, |n| live.healthy(n, elapsed), voters)
    }

    /// Decides about one trouble and records the decision; an approval it
    /// opens is announced.
    async fn decide(
        &mut self,
        node: &ClusterNode,
        view: &ClusterView,
        trouble: autopilot::act::Trouble,
        now_ms: u64,
        problems: &mut Vec<String>,
    ) {
        let decision = {
            let state = node.replica().read_local();
            let decision = decide::decide_now(&state, view.clone(), trouble, now_ms);
            // One question per action at a time: while people are asked
            // about this very action, asking again only adds noise.
            if let Outcome::Proposed {
                action,
                proposal: Proposal::NeedsApproval { .. },
            } = &decision.outcome
                && state
                    .acts()
                    .approvals
                    .values()
                    .any(|r| r.approval.state.waiting() && &r.approval.action == action)
            {
                return;
            }
            decision
        };
        let summary = format!(
            "{} on {}: {}{}",
            decision.evidence.trouble.class,
            decision.evidence.trouble.place,
            decision.outcome.as_str(),
            decision
                .outcome
                .action()
                .map_or(String::new(), |a| format!(" ({a})"))
        );
        let written = node
            .write(Command::Act {
                act: ActCommand::Record {
                    decision: Box::new(decision),
                },
            })
            .await;
        match written {
            Ok(r) => match r.result {
                Ok(_) => {
                    let (id, asked) = {
                        let state = node.replica().read_local();
                        let id = state.acts().last_decision;
                        (id, state.acts().approvals.get(&id).cloned())
                    };
                    cluster::say!("autopilot", "decision {id}: {summary}");
                    if let Some(record) = asked {
                        let text = format!(
                            "the autopilot's decision {id} waits for a person: {} — {}. Approve with `dwcp autopilot approve {id}` or reject with `dwcp autopilot reject {id}`; with no answer in {} minutes {}.",
                            record.approval.action,
                            record.approval.reasons.join("; "),
                            state_times_minutes(node),
                            record
                                .approval
                                .safe_default
                                .as_ref()
                                .map_or("nothing is done".to_string(), |a| format!(
                                    "its safe default applies: {a}"
                                )),
                        );
                        incident(node, id, &text, Severity::Ticket, now_ms, problems).await;
                    }
                }
                Err(e) => problems.push(format!("recording a decision refused: {e}")),
            },
            // The trouble comes back due after its cool-down; a new
            // leader decides it at once.
            Err(e) => problems.push(format!("recording a decision: {e}")),
        }
    }
}

/// Minutes an approval waits before its safe default.
fn state_times_minutes(node: &ClusterNode) -> u64 {
    node.replica().read_local().acts().times.expire_after_ms / 60_000
}

/// Writes one book command; whether it was applied.
async fn act(node: &ClusterNode, act: ActCommand, what: &str, problems: &mut Vec<String>) -> bool {
    match node.write(Command::Act { act }).await {
        Ok(r) => match r.result {
            Ok(_) => true,
            Err(e) => {
                problems.push(format!("{what} refused: {e}"));
                false
            }
        },
        Err(e) => {
            problems.push(format!("{what}: {e}"));
            false
        }
    }
}

/// Carries out every action running in the ledger, then records it done
/// or failed. A write that does not reach the store leaves it running, to
/// be tried again next round (the commands are idempotent).
async fn finish_running(node: &ClusterNode, now_ms: u64, problems: &mut Vec<String>) {
    let running: Vec<_> = node
        .replica()
        .read_local()
        .acts()
        .ledger
        .entries
        .iter()
        .filter(|e| e.state == EntryState::Running)
        .map(|e| (e.decision, e.action.clone()))
        .collect();
    'actions: for (decision, action) in running {
        let commands = {
            let state = node.replica().read_local();
            apply::commands_for(&action, &state, now_ms)
        };
        let (state, note) = match commands {
            Err(why) => (EntryState::Failed, why),
            Ok(commands) => {
                let mut refused = None;
                for command in commands {
                    match node.write(command).await {
                        Ok(r) => {
                            if let Err(e) = r.result {
                                refused = Some(format!("{action}: refused: {e}"));
                                break;
                            }
                        }
                        Err(e) => {
                            problems.push(format!("applying {action}: {e}"));
                            continue 'actions;
                        }
                    }
                }
                match refused {
                    Some(note) => (EntryState::Failed, note),
                    None => (EntryState::Done, format!("{action}: done")),
                }
            }
        };
        let note: String = note.chars().take(400).collect();
        cluster::say!("autopilot", "decision {decision}: {note}");
        act(
            node,
            ActCommand::Finish {
                decision,
                state,
                note,
            },
            "finishing an action",
            problems,
        )
        .await;
    }
}

/// Reminds or pages about an approval, on its incident.
async fn notify(
    node: &ClusterNode,
    id: u64,
    effect: &ApprovalEffect,
    now_ms: u64,
    problems: &mut Vec<String>,
) {
    let (text, severity) = match effect {
        ApprovalEffect::Remind => (
            format!(
                "reminder: the autopilot's decision {id} still waits for approval (dwcp autopilot approve|reject {id})"
            ),
            Severity::Ticket,
        ),
        ApprovalEffect::Page => (
            format!(
                "paging: the autopilot's decision {id} has waited for approval past its page time; its safe default applies at the deadline"
            ),
            Severity::Page,
        ),
        _ => return,
    };
    incident(node, id, &text, severity, now_ms, problems).await;
}

/// Opens the approval's incident, or adds to it while it is unresolved
/// (the state machine joins an open incident with the same fingerprint).
async fn incident(
    node: &ClusterNode,
    id: u64,
    text: &str,
    severity: Severity,
    now_ms: u64,
    problems: &mut Vec<String>,
) {
    let command = match apply::approval_incident(id, text, severity, now_ms) {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("approval {id}'s incident: {e}"));
            return;
        }
    };
    match node.write(command).await {
        Ok(r) => {
            if let Err(e) = r.result {
                problems.push(format!("approval {id}'s incident refused: {e}"));
            }
        }
        Err(e) => problems.push(format!("approval {id}'s incident: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_after_a_freeze_starts_afresh() {
        let dead = crate::scheduling::DEAD_AFTER;
        let at = Duration::from_secs(100);
        assert!(!stale_after(None, at), "the first round");
        assert!(!stale_after(Some(at), at + ROUND), "an ordinary round");
        assert!(!stale_after(Some(at), at + dead - ROUND), "a slow round");
        assert!(stale_after(Some(at), at + dead), "a frozen process");
        assert!(stale_after(Some(at), at + Duration::from_secs(10)));
    }
}
