//! The node's heartbeat: every [`REPORT_EVERY`] (every
//! [`REPORT_EVERY_DURING_ROLLOUTS`] while a rollout runs) one `Report` command with
//! the node's observed state — templates ready, live sandboxes, and per
//! version the requests, errors and latency its gateway has counted since
//! the process started. One write per node per second (four during
//! rollouts) whatever the traffic: the scheduler judges liveness from it,
//! and rollouts and the ops center read the counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cluster::ClusterNode;
use sandbox::WasmEngine;
use state::{Command, LatencySummary, LogHistogram, Name, NodeReport, NodeUsage, VersionReport};

use super::usage::UsageProbe;

use crate::gateway::{Gateway, MetricsSnapshot};

/// How often a node reports.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How often a node reports while a rollout runs anywhere in the cluster:
/// a rollout's analysis sees a canary's requests only through reports, so
/// they bound how soon a bad canary is caught (four writes a second per
/// node, only meanwhile).
pub const REPORT_EVERY_DURING_ROLLOUTS: Duration = Duration::from_millis(250);

/// What a node observed of itself for one report.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub templates_ready: u32,
    pub live_sandboxes: u64,
    pub metrics: MetricsSnapshot,
    /// Each version's latency sample since the last report.
    pub recent: Vec<((String, String, u64), Vec<u32>)>,
    /// Each version's latency histogram since the process started.
    pub histograms: Vec<((String, String, u64), LogHistogram)>,
    pub usage: NodeUsage,
}

/// The report of `node` from what it observed.
pub fn node_report(node: Name, boot: u64, sequence: u64, observed: Observed) -> NodeReport {
    let Observed {
        templates_ready,
        live_sandboxes,
        metrics,
        mut recent,
        mut histograms,
        usage,
    } = observed;
    let versions = metrics
        .versions
        .iter()
        .filter_map(|v| {
            // The names came from `Name`s, so they are valid again.
            let tenant = Name::new("tenant", &v.tenant).ok()?;
            let app = Name::new("app", &v.app).ok()?;
            Some(VersionReport {
                tenant,
                app,
                version: v.version,
                requests: v.requests,
                errors: v.errors_5xx + v.timeouts,
                timeouts: v.timeouts,
                busy_us: v.latency_us.sum,
                recent_latencies_us: recent
                    .iter_mut()
                    .find(|((t, a, n), _)| *t == v.tenant && *a == v.app && *n == v.version)
                    .map(|(_, sample)| std::mem::take(sample))
                    .unwrap_or_default(),
                latency_histogram_us: histograms
                    .iter_mut()
                    .find(|((t, a, n), _)| *t == v.tenant && *a == v.app && *n == v.version)
                    .map(|(_, h)| std::mem::take(h))
                    .unwrap_or_default(),
                latency_us: LatencySummary {
                    count: v.latency_us.count,
                    p50: v.latency_us.p50,
                    p90: v.latency_us.p90,
                    p99: v.latency_us.p99,
                    p999: v.latency_us.p999,
                    max: v.latency_us.max,
                },
            })
        })
        .collect();
    NodeReport {
        node,
        boot,
        sequence,
        templates_ready,
        live_sandboxes,
        sandbox_starts: metrics.sandbox_starts,
        usage,
        versions,
    }
}

/// Reports until aborted. A failed report is said once on stderr, and
/// again when reports go through.
pub(super) async fn run(
    node: Arc<ClusterNode>,
    gateway: Arc<Gateway>,
    engine: Arc<WasmEngine>,
    templates_ready: Arc<AtomicU32>,
    mut probe: UsageProbe,
) {
    // Differs between two starts of the node's process.
    let boot = crate::gateway::random_u64();
    let name = node.name();
    let mut failing = false;
    // Memory held while a test's faults ask for it.
    let mut ballast = super::faults::Ballast::default();
    let mut next = tokio::time::Instant::now();
    for sequence in 1.. {
        tokio::time::sleep_until(next).await;
        let rolling = node
            .replica()
            .read_local()
            .active_rollouts()
            .next()
            .is_some();
        next += if rolling {
            REPORT_EVERY_DURING_ROLLOUTS
        } else {
            REPORT_EVERY
        };
        // A slow write does not make reports bunch up afterwards.
        next = next.max(tokio::time::Instant::now());
        if let Some(faults) = probe.test_faults() {
            gateway.set_injected_delay(faults.request_delay);
            ballast.hold(faults.memory_ballast_bytes);
        }
        let report = node_report(
            name.clone(),
            boot,
            sequence,
            Observed {
                templates_ready: templates_ready.load(Ordering::Relaxed),
                live_sandboxes: engine.live() as u64,
                metrics: gateway.metrics(),
                recent: gateway.take_recent_latencies(),
                histograms: gateway.log_histograms(),
                usage: probe.read(),
            },
        );
        let failure = match node.write(Command::Report { report }).await {
            Ok(response) => response.result.err().map(|r| r.to_string()),
            Err(e) => Some(e.to_string()),
        };
        match failure {
            Some(why) if !failing => {
                cluster::say!("agent", "the node's report was not stored: {why}");
                failing = true;
            }
            None if failing => {
                cluster::say!("agent", "reports are stored again");
                failing = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{LatencySnapshot, VersionSnapshot};

    #[test]
    fn a_report_carries_errors_with_timeouts_and_the_latency() {
        let metrics = MetricsSnapshot {
            versions: vec![VersionSnapshot {
                tenant: "acme".into(),
                app: "shop".into(),
                version: 2,
                requests: 100,
                errors_4xx: 7,
                errors_5xx: 3,
                timeouts: 2,
                in_flight: 0,
                circuit_open: false,
                latency_us: LatencySnapshot {
                    count: 100,
                    p99: 900,
                    ..LatencySnapshot::default()
                },
            }],
            ..MetricsSnapshot::default()
        };
        let node = Name::new("node", "node-1").unwrap();
        let recent = vec![(("acme".into(), "shop".into(), 2), vec![800, 900])];
        let mut histogram = LogHistogram::default();
        histogram.record(900);
        let r = node_report(
            node,
            9,
            4,
            Observed {
                templates_ready: 1,
                live_sandboxes: 5,
                metrics,
                recent,
                histograms: vec![(("acme".into(), "shop".into(), 2), histogram.clone())],
                usage: NodeUsage {
                    uptime_ms: 4_000,
                    ..NodeUsage::default()
                },
            },
        );
        assert_eq!(
            (r.boot, r.sequence, r.templates_ready, r.live_sandboxes),
            (9, 4, 1, 5)
        );
        let v = &r.versions[0];
        assert_eq!(
            (v.version, v.requests, v.errors, v.timeouts),
            (2, 100, 5, 2)
        );
        assert_eq!(v.latency_us.p99, 900);
        assert_eq!(v.recent_latencies_us, [800, 900]);
        assert_eq!(v.latency_histogram_us, histogram);
        assert_eq!(r.usage.uptime_ms, 4_000);
    }
}
