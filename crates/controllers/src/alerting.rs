//! The SLO evaluator, as `dwcp up` runs it on every node: only the node
//! that leads the cluster acts. Each round (every second on the wall
//! clock; under the hidden test flag `--manual-clock`, only when an admin
//! posts to `/api/v1/test/clock`) it reads the SLOs and the nodes' reports,
//! asks [`ops::slo::Evaluator`] what fired and cleared, writes one
//! `OpenIncident` per alert that started firing (the state machine
//! deduplicates it into an unresolved incident with the same fingerprint)
//! and an "alert cleared" note per alert that stopped, then sends the
//! notifications in tasks of their own (`webhooks.rs`: retries with
//! backoff, outcomes on the incident's timeline; a firing alert re-sent
//! to an Alertmanager every minute, one attempt each), so a slow receiver
//! never holds the loop up; an alert's notifications to one target go in
//! the order decided (`alert_lanes.rs`: never "firing" after "resolved"). The SLOs' statuses (burn rates, budget left) are
//! stored at most every 10 s of the evaluator's clock, so every node's API
//! can show them. The decisions are pure; this loop only does I/O.

use std::sync::Arc;
use std::time::Duration;

use cluster::ClusterNode;
use ops::slo::{Clock, Evaluator, Notification};
use serde_json::{Value, json};
use state::{Command, Outcome};
use tokio::sync::Mutex;

use crate::alert_lanes::{self, Lanes};

/// How often the evaluator runs on the wall clock.
const ROUND: Duration = Duration::from_secs(1);
/// How often (evaluator time) statuses are stored at most.
const STATUS_EVERY_MS: u64 = 10_000;

/// The evaluator and what it needs between rounds.
pub struct Alerting {
    node: Arc<ClusterNode>,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    /// The order of each alert's notifications per target.
    lanes: Arc<Lanes>,
}

struct Inner {
    evaluator: Evaluator,
    /// When statuses were last stored (evaluator time).
    status_ms: Option<u64>,
}

impl Alerting {
    /// An evaluator on `clock`, linking notifications to `external_url`.
    pub fn new(node: Arc<ClusterNode>, clock: Arc<dyn Clock>, external_url: &str) -> Alerting {
        Alerting {
            node,
            clock,
            inner: Mutex::new(Inner {
                evaluator: Evaluator::new(external_url),
                status_ms: None,
            }),
            lanes: Arc::default(),
        }
    }

    /// One round; what it did as JSON, or why it did nothing.
    pub async fn round(&self, store_status: bool) -> Result<Value, String> {
        let mut inner = self.inner.lock().await;
        let status = self.node.replica().status();
        if status.leader != Some(status.id) {
            inner.evaluator.clear();
            return Err(format!(
                "this node ({}) does not lead the cluster; the SLO evaluator runs on the leader ({})",
                status.id,
                status.leader.map_or("none".into(), |l| l.to_string())
            ));
        }
        let now = self.clock.now_ms();
        let round = {
            let state = self.node.replica().read_local();
            inner.evaluator.evaluate(&state, now)
        };
        let due = inner
            .status_ms
            .is_none_or(|t| now.saturating_sub(t) >= STATUS_EVERY_MS);
        if (store_status || due) && !round.statuses.is_empty() {
            let command = Command::SetSloStatus {
                statuses: round.statuses.clone(),
            };
            match self.node.write(command).await {
                Ok(r) if r.result.is_ok() => inner.status_ms = Some(now),
                Ok(r) => cluster::say!("alerts", "statuses not stored: {:?}", r.result),
                Err(e) => cluster::say!("alerts", "storing statuses: {e}"),
            }
        }
        let mut opened = Vec::new();
        for o in round.openings {
            let what = format!("{} firing", o.alert);
            let id = match self.node.write(o.command).await {
                Ok(r) => match r.result {
                    Ok(Outcome::Incident { id, opened: new }) => {
                        cluster::say!(
                            "alerts",
                            "{} {} incident {id} ({})",
                            o.alert,
                            if new { "opened" } else { "fired again into" },
                            o.fingerprint
                        );
                        opened.push(json!({"incident": id, "new": new, "fingerprint": o.fingerprint, "alert": o.alert}));
                        Some(id)
                    }
                    other => {
                        cluster::say!(
                            "alerts",
                            "{}: incident not opened: {other:?}",
                            o.fingerprint
                        );
                        None
                    }
                },
                Err(e) => {
                    cluster::say!("alerts", "{}: opening an incident: {e}", o.fingerprint);
                    None
                }
            };
            self.send(id, &o.fingerprint, &what, o.notifications);
        }
        let mut cleared = Vec::new();
        for c in round.clearings {
            if let Some(note) = c.note {
                match self.node.write(note).await {
                    Ok(r) if r.result.is_ok() => {}
                    Ok(r) => cluster::say!(
                        "alerts",
                        "{}: note not stored: {:?}",
                        c.fingerprint,
                        r.result
                    ),
                    Err(e) => cluster::say!("alerts", "{}: writing a note: {e}", c.fingerprint),
                }
            }
            cleared.push(
                json!({"incident": c.incident, "fingerprint": c.fingerprint, "alert": c.alert}),
            );
            self.send(
                c.incident,
                &c.fingerprint,
                &format!("{} resolved", c.alert),
                c.notifications,
            );
        }
        let mut resent = Vec::new();
        for r in round.resends {
            resent.push(json!({"fingerprint": r.fingerprint, "alert": r.alert}));
            for n in r.notifications {
                let ticket = self.lanes.current(&lane(&r.fingerprint, &n));
                tokio::spawn(crate::webhooks::resend(
                    self.node.clone(),
                    format!("{} firing", r.alert),
                    n,
                    ticket,
                ));
            }
        }
        self.lanes.prune();
        Ok(json!({
            "now_ms": now,
            "firing": inner.evaluator.firing(),
            "opened": opened,
            "cleared": cleared,
            "resent": resent,
        }))
    }

    /// Sends each notification of alert `fingerprint` in a task of its
    /// own, each the latest of its lane.
    fn send(
        &self,
        incident: Option<u64>,
        fingerprint: &str,
        what: &str,
        notifications: Vec<Notification>,
    ) {
        for n in notifications {
            let ticket = self.lanes.next(&lane(fingerprint, &n));
            tokio::spawn(crate::webhooks::deliver(
                self.node.clone(),
                self.clock.clone(),
                incident,
                what.to_string(),
                n,
                ticket,
            ));
        }
    }
}

/// The lane of alert `fingerprint`'s notifications to `n`'s target: the
/// target as stored (kind, redacted URL, sealed secrets) and what it is
/// sealed for.
fn lane(fingerprint: &str, n: &Notification) -> String {
    let target = serde_json::to_string(&n.target).unwrap_or_default();
    alert_lanes::key(fingerprint, &format!("{} {target}", n.context))
}

/// Runs rounds on the wall clock until the task is aborted.
pub async fn run(alerting: Arc<Alerting>) {
    loop {
        // Not leading is the usual case on most nodes: nothing to say.
        let _ = alerting.round(false).await;
        tokio::time::sleep(ROUND).await;
    }
}
