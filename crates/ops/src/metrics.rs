//! `GET /metrics`: what this node measures, in the Prometheus text
//! exposition format (version 0.0.4), for Prometheus or any scraper that
//! reads it. Authenticated like the API (a scrape config gives the token as
//! `authorization: {credentials: …}`).
//!
//! Families: the control plane as this node sees it (Raft term, commit
//! index, leadership, members), the desired state (apps, nodes, running
//! rollouts and their canary weights), each node's last report (live
//! sandboxes, templates), and — on a node that runs a gateway — requests,
//! errors, in-flight requests and a latency histogram per app and version,
//! open circuit breakers, and a histogram of fresh sandbox starts.

use std::fmt::Write as _;
use std::time::Duration;

use cluster::ClusterStatus;
use node::gateway::{Gateway, HistogramSnapshot};
use state::State;

use crate::ControlPlane;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a scrape waits for the cluster's status before leaving the
/// Raft families out.
const STATUS_WAIT: Duration = Duration::from_secs(1);

/// The whole exposition for this node.
pub async fn render<P: ControlPlane>(plane: &P, gateway: Option<&Gateway>) -> String {
    let status = tokio::time::timeout(STATUS_WAIT, plane.status())
        .await
        .ok()
        .and_then(Result::ok);
    let mut out = Exposition::default();
    if let Some(status) = &status {
        raft(&mut out, plane.node_id(), status);
    }
    plane.read_local(|state| desired(&mut out, state));
    if let Some(gateway) = gateway {
        serving(&mut out, gateway);
    }
    out.text
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

fn serving(out: &mut Exposition, gateway: &Gateway) {
    let m = gateway.metrics();
    let version_labels = |v: &node::gateway::VersionSnapshot| {
        [
            ("tenant", v.tenant.clone()),
            ("app", v.app.clone()),
            ("version", v.version.to_string()),
        ]
    };
    let per_version = |out: &mut Exposition,
                       name: &str,
                       kind: &str,
                       help: &str,
                       value: fn(&node::gateway::VersionSnapshot) -> u64| {
        out.family(name, kind, help);
        for v in &m.versions {
            out.sample(name, &version_labels(v), value(v));
        }
    };
    per_version(
        out,
        "dwcp_requests_total",
        "counter",
        "Requests this node's gateway answered from an app's version.",
        |v| v.requests,
    );
    out.family(
        "dwcp_request_errors_total",
        "counter",
        "Requests answered with an error, by class: 4xx, 5xx (other than 504) and timeout (504).",
    );
    for v in &m.versions {
        for (class, n) in [
            ("4xx", v.errors_4xx),
            ("5xx", v.errors_5xx),
            ("timeout", v.timeouts),
        ] {
            let [t, a, ver] = version_labels(v);
            out.sample(
                "dwcp_request_errors_total",
                &[t, a, ver, ("class", class.to_string())],
                n,
            );
        }
    }
    per_version(
        out,
        "dwcp_requests_in_flight",
        "gauge",
        "Requests admitted whose sandbox has not finished.",
        |v| v.in_flight,
    );
    per_version(
        out,
        "dwcp_circuit_open",
        "gauge",
        "1 while a version's circuit breaker keeps it out of its split on this gateway.",
        |v| u64::from(v.circuit_open),
    );
    out.family(
        "dwcp_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its answer, per app and version.",
    );
    for ((tenant, app, version), h) in gateway.latency_histograms() {
        let labels = [
            ("tenant", tenant),
            ("app", app),
            ("version", version.to_string()),
        ];
        out.histogram("dwcp_request_duration_seconds", &labels, &h);
    }
    out.family(
        "dwcp_sandbox_start_seconds",
        "histogram",
        "Time to start a fresh sandbox for a request (routes without a warm pool).",
    );
    out.histogram(
        "dwcp_sandbox_start_seconds",
        &[],
        &gateway.sandbox_start_histogram(),
    );
    for (name, help, value) in [
        (
            "dwcp_gateway_unrouted_total",
            "Requests no route matched (404).",
            m.unrouted,
        ),
        (
            "dwcp_gateway_no_version_total",
            "Requests whose route had no version taking traffic (503).",
            m.no_version,
        ),
        (
            "dwcp_gateway_forwarded_total",
            "Requests sent on to another node's gateway.",
            m.forwarded,
        ),
    ] {
        out.family(name, "counter", help);
        out.sample(name, &[] as &[(&str, String)], value);
    }
}

/// A Prometheus text exposition being written: each family's `# HELP` and
/// `# TYPE` once, then its samples.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample<L: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(&str, L)],
        value: impl std::fmt::Display,
    ) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v.as_ref()));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A one-sample gauge family.
    fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        self.family(name, "gauge", help);
        self.sample(name, labels, value);
    }

    /// The samples of one histogram (its family already written).
    fn histogram(&mut self, name: &str, labels: &[(&str, String)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let with_le = |le: String| {
            let mut l: Vec<(&str, String)> = labels.to_vec();
            l.push(("le", le));
            l
        };
        for &(le_us, count) in &h.buckets {
            self.sample(&bucket, &with_le(seconds(le_us)), count);
        }
        self.sample(&bucket, &with_le("+Inf".into()), h.count);
        self.sample(&format!("{name}_sum"), labels, seconds(h.sum_us));
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// Microseconds as seconds, exactly (`0.00025`, `2.5`).
fn seconds(us: u64) -> String {
    let whole = us / 1_000_000;
    let frac = us % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_histograms_and_escaping() {
        let mut e = Exposition::default();
        e.family("x_seconds", "histogram", "A \\ test.");
        let h = HistogramSnapshot {
            buckets: vec![(250, 1), (1_000_000, 3)],
            count: 4,
            sum_us: 2_500_001,
        };
        e.histogram("x_seconds", &[("app", "a\"b".to_string())], &h);
        assert_eq!(
            e.text,
            "# HELP x_seconds A \\\\ test.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"0.00025\"} 1\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"1\"} 3\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"+Inf\"} 4\n\
             x_seconds_sum{app=\"a\\\"b\"} 2.500001\n\
             x_seconds_count{app=\"a\\\"b\"} 4\n"
        );
    }
}
