//! `GET /metrics`: what this node measures, in the Prometheus text
//! exposition format (version 0.0.4), for Prometheus or any scraper that
//! reads it. Authenticated like the API (a scrape config gives the token as
//! `authorization: {credentials: …}`).
//!
//! Families: the control plane as this node sees it (Raft term, commit
//! index, leadership, members), the desired state (apps, nodes, running
//! rollouts and their canary weights), each node's last report (live
//! sandboxes, templates), and what else the node measures and hands in as
//! a [`Source`] — on a node that runs a gateway, its requests, errors,
//! in-flight requests and latency histograms per app and version, open
//! circuit breakers and fresh sandbox starts (`node::gateway`, plugged in
//! by `dwcp up`: this crate knows no gateway). The text format is
//! `cluster::exposition`'s.

use std::time::Duration;

use cluster::ClusterStatus;
use cluster::exposition::{Exposition, Source};
use state::State;

use crate::ControlPlane;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a scrape waits for the cluster's status before leaving the
/// Raft families out.
const STATUS_WAIT: Duration = Duration::from_secs(1);

/// The whole exposition for this node.
pub async fn render<P: ControlPlane>(plane: &P, more: Option<&dyn Source>) -> String {
    let status = tokio::time::timeout(STATUS_WAIT, plane.status())
        .await
        .ok()
        .and_then(Result::ok);
    let mut out = Exposition::default();
    if let Some(status) = &status {
        raft(&mut out, plane.node_id(), status);
    }
    plane.read_local(|state| {
        desired(&mut out, state);
        autopilot(&mut out, state, crate::api::test_clock::now_ms());
    });
    if let Some(more) = more {
        more.expose(&mut out);
    }
    out.into_text()
}

fn raft(out: &mut Exposition, me: u64, s: &ClusterStatus) {
    let node = me.to_string();
    let labels = [("node_id", node.as_str())];
    out.gauge(
        "dwcp_raft_term",
        "The Raft term this node is in.",
        &labels,
        s.term,
    );
    out.gauge(
        "dwcp_raft_leader",
        "1 when this node leads the cluster, 0 otherwise.",
        &labels,
        u64::from(s.leader == Some(me)),
    );
    out.gauge(
        "dwcp_raft_has_leader",
        "1 when this node knows a leader, 0 otherwise.",
        &labels,
        u64::from(s.leader.is_some()),
    );
    if let Some(commit) = s.commit_index {
        out.gauge(
            "dwcp_raft_commit_index",
            "The last log index this node knows is committed.",
            &labels,
            commit,
        );
    }
    out.gauge(
        "dwcp_raft_voters",
        "Voting members of the cluster.",
        &labels,
        s.members.iter().filter(|m| m.voter).count(),
    );
}

fn desired(out: &mut Exposition, state: &State) {
    out.gauge(
        "dwcp_state_revision",
        "The revision of the desired state this node has applied.",
        &[],
        state.revision().0,
    );
    out.gauge(
        "dwcp_apps",
        "Apps in the desired state.",
        &[],
        state.apps().count(),
    );
    out.gauge(
        "dwcp_nodes",
        "Nodes in the desired state.",
        &[],
        state.nodes().count(),
    );
    out.gauge(
        "dwcp_rollouts_running",
        "Rollouts running now.",
        &[],
        state.active_rollouts().count(),
    );
    let mut weights = Vec::new();
    for r in state.active_rollouts() {
        if let Some(d) = state.deployment(&r.tenant, &r.app) {
            for region in d.regions.keys() {
                weights.push((
                    [
                        ("tenant", r.tenant.to_string()),
                        ("app", r.app.to_string()),
                        ("region", region.to_string()),
                    ],
                    r.weights_in(region.as_str()).canary,
                ));
            }
        }
    }
    out.family(
        "dwcp_rollout_canary_weight_percent",
        "gauge",
        "The canary's share of a running rollout's traffic in a region, in percent.",
    );
    for (labels, w) in &weights {
        out.sample("dwcp_rollout_canary_weight_percent", labels, *w);
    }
    out.family(
        "dwcp_node_capacity_sandboxes",
        "gauge",
        "Most sandboxes a node holds at once (`dwcp up --sandboxes`): the capacity the scheduler places against.",
    );
    for n in state.nodes() {
        out.sample(
            "dwcp_node_capacity_sandboxes",
            &[("node", n.name.to_string())],
            n.capacity,
        );
    }
    let reports: Vec<_> = state.reports().collect();
    out.family(
        "dwcp_node_live_sandboxes",
        "gauge",
        "Sandboxes alive on a node at its last report.",
    );
    for r in &reports {
        out.sample(
            "dwcp_node_live_sandboxes",
            &[("node", r.node.to_string())],
            r.live_sandboxes,
        );
    }
    out.family(
        "dwcp_node_templates_ready",
        "gauge",
        "Templates prepared and serving on a node at its last report.",
    );
    for r in &reports {
        out.sample(
            "dwcp_node_templates_ready",
            &[("node", r.node.to_string())],
            r.templates_ready,
        );
    }
}

/// The autopilot's findings: predictions by kind and status, each open
/// prediction's time to its ETA, and the latest anomaly score per series.
fn autopilot(out: &mut Exposition, state: &State, now_ms: u64) {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for p in state.predictions() {
        *counts
            .entry((p.kind.as_str(), p.status.as_str()))
            .or_default() += 1;
    }
    out.family(
        "dwcp_autopilot_predictions",
        "gauge",
        "Failure predictions the store keeps, by kind and status (open, happened, cleared).",
    );
    for ((kind, status), n) in &counts {
        out.sample(
            "dwcp_autopilot_predictions",
            &[("kind", *kind), ("status", *status)],
            n,
        );
    }
    out.family(
        "dwcp_autopilot_prediction_eta_seconds",
        "gauge",
        "Seconds from now to the expected time of each open failure prediction (negative once past).",
    );
    for p in state.open_predictions() {
        let seconds = (p.eta.at_ms as f64 - now_ms as f64) / 1000.0;
        out.sample(
            "dwcp_autopilot_prediction_eta_seconds",
            &[
                ("id", p.id.to_string()),
                ("kind", p.kind.as_str().to_string()),
                ("subject", p.subject.to_string()),
            ],
            format!("{seconds:.0}"),
        );
    }
    let mut latest: BTreeMap<(String, &str), f64> = BTreeMap::new();
    for d in state.detections() {
        latest.insert(
            (d.series.subject.to_string(), d.series.metric.as_str()),
            d.score,
        );
    }
    out.family(
        "dwcp_autopilot_anomaly_score",
        "gauge",
        "The score of the latest anomaly the autopilot kept per series (0 to 1; 0.5 and up is anomalous).",
    );
    for ((subject, metric), score) in &latest {
        out.sample(
            "dwcp_autopilot_anomaly_score",
            &[("subject", subject.as_str()), ("metric", *metric)],
            format!("{score:.3}"),
        );
    }
}
