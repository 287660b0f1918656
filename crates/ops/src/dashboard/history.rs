//! The dashboard's memory of the last minutes: rates and gauges sampled
//! from the nodes' reports once a second. Pure: [`History::observe`] takes
//! the reports and the time, so tests drive it without a cluster.
//!
//! Reports carry counters since each node's process started. A node that
//! restarts (a new `boot`) starts again from zero; its first report then
//! counts whole, so the cluster's totals here only ever grow.

use std::collections::{BTreeMap, HashMap, VecDeque};

use state::NodeReport;

/// How many samples are kept: five minutes at one a second.
pub const KEPT: usize = 300;
/// Rates are taken over this many milliseconds, so that a report arriving
/// just before or just after a sample does not make the rate jump.
pub const RATE_WINDOW_MS: u64 = 5_000;

/// `(tenant, app)`.
pub type AppKey = (String, String);

/// Counters that only grow, summed over the cluster since the dashboard
/// started watching.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub starts: u64,
}

/// What one sample saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub at_ms: u64,
    pub totals: Totals,
    pub apps: BTreeMap<AppKey, Totals>,
    /// p99 of the latencies sampled in the reports that arrived since the
    /// previous sample, in ms; `None` when none did.
    pub p99_ms: Option<f64>,
    pub live_sandboxes: u64,
}

/// One point of a chart: time (unix ms) and value.
pub type Point = (u64, f64);

/// Rates over [`RATE_WINDOW_MS`] at one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub requests_per_s: f64,
    /// Errors over requests, 0 when there were no requests.
    pub error_ratio: f64,
    pub starts_per_s: f64,
}

#[derive(Clone, Debug)]
struct NodeSeen {
    boot: u64,
    sequence: u64,
    /// Per (tenant, app, version): (requests, errors) at the last report.
    versions: HashMap<(String, String, u64), (u64, u64)>,
    starts: u64,
}

impl NodeSeen {
    fn first(report: &NodeReport) -> NodeSeen {
        NodeSeen {
            boot: report.boot,
            sequence: report.sequence,
            versions: report
                .versions
                .iter()
                .map(|v| {
                    let key = (v.tenant.to_string(), v.app.to_string(), v.version);
                    (key, (v.requests, v.errors))
                })
                .collect(),
            starts: report.sandbox_starts,
        }
    }
}

/// The last [`KEPT`] samples, what each node last reported, and whether
/// each node is alive — the scheduler's own judgement
/// ([`scheduler::Liveness`] with [`scheduler::DEAD_AFTER`]), on this
/// node's clock.
#[derive(Clone, Debug)]
pub struct History {
    samples: VecDeque<Sample>,
    nodes: HashMap<String, NodeSeen>,
    totals: Totals,
    apps: BTreeMap<AppKey, Totals>,
    liveness: scheduler::Liveness,
}

impl Default for History {
    fn default() -> History {
        History {
            samples: VecDeque::new(),
            nodes: HashMap::new(),
            totals: Totals::default(),
            apps: BTreeMap::new(),
            liveness: scheduler::Liveness::new(scheduler::DEAD_AFTER),
        }
    }
}

/// A node's health as shown: the scheduler's judgement of its reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeHealth {
    /// Its report changed within [`scheduler::DEAD_AFTER`].
    pub healthy: bool,
    /// How long its report has stood still, in ms (since first seen, for
    /// a node not seen to change yet).
    pub heartbeat_age_ms: u64,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Takes a sample at `at_ms` of the reports in the state now.
    pub fn observe<'a>(&mut self, at_ms: u64, reports: impl IntoIterator<Item = &'a NodeReport>) {
        let mut latencies: Vec<u32> = Vec::new();
        let mut live = 0;
        let mut beats = Vec::new();
        for report in reports {
            beats.push((report.node.clone(), Some((report.boot, report.sequence))));
            live += report.live_sandboxes;
            let name = report.node.to_string();
            let Some(seen) = self.nodes.get_mut(&name) else {
                // What a node served before the dashboard watched is not
                // a rate: its first report sets where counting starts.
                latencies.extend(report.versions.iter().flat_map(|v| &v.recent_latencies_us));
                self.nodes.insert(name, NodeSeen::first(report));
                continue;
            };
            if seen.boot != report.boot {
                // A restarted process counts from zero again.
                seen.boot = report.boot;
                seen.versions.clear();
                seen.starts = 0;
                seen.sequence = 0;
            }
            if seen.sequence == report.sequence {
                continue;
            }
            seen.sequence = report.sequence;
            self.totals.starts += report.sandbox_starts.saturating_sub(seen.starts);
            seen.starts = report.sandbox_starts;
            for v in &report.versions {
                latencies.extend_from_slice(&v.recent_latencies_us);
                let key = (v.tenant.to_string(), v.app.to_string(), v.version);
                let (requests, errors) = seen.versions.get(&key).copied().unwrap_or((0, 0));
                let new_requests = v.requests.saturating_sub(requests);
                let new_errors = v.errors.saturating_sub(errors);
                seen.versions.insert(key, (v.requests, v.errors));
                self.totals.requests += new_requests;
                self.totals.errors += new_errors;
                let app = self
                    .apps
                    .entry((v.tenant.to_string(), v.app.to_string()))
                    .or_default();
                app.requests += new_requests;
                app.errors += new_errors;
            }
        }
        self.liveness.observe(
            beats.iter().map(|(name, beat)| (name, *beat)),
            std::time::Duration::from_millis(at_ms),
        );
        let p99_ms = percentile(&mut latencies, 0.99).map(|us| us as f64 / 1000.0);
        if self.samples.len() == KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at_ms,
            totals: self.totals,
            apps: self.apps.clone(),
            p99_ms,
            live_sandboxes: live,
        });
    }

    /// The newest sample.
    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// When the oldest kept sample was taken.
    pub fn first_at_ms(&self) -> Option<u64> {
        self.samples.front().map(|s| s.at_ms)
    }

    /// Rates at the newest sample, cluster-wide.
    pub fn rates(&self) -> Rates {
        self.rates_at(self.samples.len().saturating_sub(1), |s| Some(s.totals))
    }

    /// Rates at the newest sample for one app.
    pub fn app_rates(&self, app: &AppKey) -> Rates {
        self.rates_at(self.samples.len().saturating_sub(1), |s| {
            s.apps.get(app).copied()
        })
    }

    /// Whether `node` is healthy at the newest sample; `None` when it
    /// never reported while this node watched.
    pub fn node_fresh(&self, node: &str) -> Option<bool> {
        self.node_health(node).map(|h| h.healthy)
    }

    /// `node`'s health at the newest sample; `None` when it never
    /// reported while this node watched.
    pub fn node_health(&self, node: &str) -> Option<NodeHealth> {
        let now = std::time::Duration::from_millis(self.last()?.at_ms);
        let name = state::Name::new("node", node).ok()?;
        let silent = self.liveness.silent_for(&name, now)?;
        Some(NodeHealth {
            healthy: self.liveness.healthy(&name, now),
            heartbeat_age_ms: silent.as_millis() as u64,
        })
    }

    /// An app's traffic over about the last `window_ms` (as much of it as
    /// the samples cover): its rates and the span they were measured
    /// over, in ms; `None` before two samples.
    pub fn app_traffic(&self, app: &AppKey, window_ms: u64) -> Option<(Rates, u64)> {
        let last = self.samples.len().checked_sub(1).filter(|&i| i > 0)?;
        let (rates, span_ms) = self.rates_over(last, window_ms, |s| s.apps.get(app).copied());
        Some((rates, span_ms))
    }

    /// A chart series over the kept samples.
    pub fn series(&self, of: Series) -> Vec<Point> {
        (0..self.samples.len())
            .filter_map(|i| {
                let s = &self.samples[i];
                let value = match of {
                    Series::RequestsPerSecond => {
                        Some(self.rates_at(i, |s| Some(s.totals)).requests_per_s)
                    }
                    Series::ErrorPercent => {
                        Some(self.rates_at(i, |s| Some(s.totals)).error_ratio * 100.0)
                    }
                    Series::StartsPerSecond => {
                        Some(self.rates_at(i, |s| Some(s.totals)).starts_per_s)
                    }
                    Series::LatencyP99Ms => s.p99_ms,
                    Series::LiveSandboxes => Some(s.live_sandboxes as f64),
                };
                value.map(|v| (s.at_ms, v))
            })
            .collect()
    }

    /// Requests per second of one app over the kept samples.
    pub fn app_series(&self, app: &AppKey) -> Vec<Point> {
        (0..self.samples.len())
            .map(|i| {
                let rate = self.rates_at(i, |s| s.apps.get(app).copied());
                (self.samples[i].at_ms, rate.requests_per_s)
            })
            .collect()
    }

    /// Rates between sample `i` and the oldest sample within
    /// [`RATE_WINDOW_MS`] before it.
    fn rates_at(&self, i: usize, totals: impl Fn(&Sample) -> Option<Totals>) -> Rates {
        self.rates_over(i, RATE_WINDOW_MS, totals).0
    }

    /// Rates between sample `i` and the oldest sample within `window_ms`
    /// before it, and the span between them in ms.
    fn rates_over(
        &self,
        i: usize,
        window_ms: u64,
        totals: impl Fn(&Sample) -> Option<Totals>,
    ) -> (Rates, u64) {
        let Some(now) = self.samples.get(i) else {
            return (Rates::default(), 0);
        };
        let mut j = i;
        while j > 0 && now.at_ms - self.samples[j - 1].at_ms <= window_ms {
            j -= 1;
        }
        let then = &self.samples[j];
        let span_ms = now.at_ms - then.at_ms;
        let seconds = span_ms as f64 / 1000.0;
        let (a, b) = (
            totals(then).unwrap_or_default(),
            totals(now).unwrap_or_default(),
        );
        if seconds <= 0.0 {
            return (Rates::default(), 0);
        }
        let requests = b.requests.saturating_sub(a.requests);
        let errors = b.errors.saturating_sub(a.errors);
        let rates = Rates {
            requests_per_s: requests as f64 / seconds,
            error_ratio: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            starts_per_s: b.starts.saturating_sub(a.starts) as f64 / seconds,
        };
        (rates, span_ms)
    }
}

/// Which chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    RequestsPerSecond,
    ErrorPercent,
    LatencyP99Ms,
    LiveSandboxes,
    StartsPerSecond,
}

/// The `q` quantile (nearest rank) of `values`, reordering them.
fn percentile(values: &mut [u32], q: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    let (_, nth, _) = values.select_nth_unstable(rank - 1);
    Some(*nth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{LatencySummary, Name, VersionReport};

    fn report(node: &str, boot: u64, sequence: u64, requests: u64, errors: u64) -> NodeReport {
        NodeReport {
            node: Name::new("node", node).unwrap(),
            boot,
            sequence,
            templates_ready: 1,
            live_sandboxes: 2,
            sandbox_starts: requests,
            usage: Default::default(),
            versions: vec![VersionReport {
                tenant: Name::new("tenant", "acme").unwrap(),
                app: Name::new("app", "shop").unwrap(),
                version: 1,
                requests,
                errors,
                timeouts: 0,
                latency_us: LatencySummary::default(),
                busy_us: 0,
                recent_latencies_us: (1..=100).map(|i| i * 1000).collect(),
                latency_histogram_us: Default::default(),
            }],
        }
    }

    #[test]
    fn rates_come_from_differences_over_the_window() {
        let mut h = History::new();
        h.observe(0, &[report("n1", 1, 1, 100, 0)]);
        // What the node served before counts for nothing.
        assert_eq!(h.last().unwrap().totals.requests, 0);
        h.observe(1_000, &[report("n1", 1, 2, 300, 10)]);
        h.observe(2_000, &[report("n1", 1, 3, 500, 10)]);
        let r = h.rates();
        // 400 requests over 2 s.
        assert_eq!(r.requests_per_s, 200.0);
        assert_eq!(r.error_ratio, 10.0 / 400.0);
        assert_eq!(
            h.app_rates(&("acme".into(), "shop".into())).requests_per_s,
            200.0
        );
        assert_eq!(h.last().unwrap().p99_ms, Some(99.0));
    }

    #[test]
    fn an_unchanged_report_counts_once_and_a_restart_counts_from_zero() {
        let mut h = History::new();
        h.observe(0, &[report("n1", 1, 1, 100, 0)]);
        h.observe(1_000, &[report("n1", 1, 2, 150, 0)]);
        h.observe(2_000, &[report("n1", 1, 2, 150, 0)]);
        assert_eq!(h.last().unwrap().totals.requests, 50);
        assert_eq!(h.last().unwrap().p99_ms, None);
        h.observe(3_000, &[report("n1", 2, 1, 30, 0)]);
        assert_eq!(h.last().unwrap().totals.requests, 80);
        assert_eq!(h.last().unwrap().totals.starts, 80);
    }

    #[test]
    fn a_node_goes_stale_when_its_reports_stop() {
        let mut h = History::new();
        h.observe(0, &[report("n1", 1, 1, 1, 0)]);
        assert_eq!(h.node_fresh("n1"), Some(true));
        assert_eq!(h.node_fresh("n2"), None);
        let dead_ms = scheduler::DEAD_AFTER.as_millis() as u64;
        h.observe(dead_ms - 1, &[report("n1", 1, 1, 1, 0)]);
        assert_eq!(
            h.node_health("n1"),
            Some(NodeHealth {
                healthy: true,
                heartbeat_age_ms: dead_ms - 1
            })
        );
        h.observe(dead_ms, &[report("n1", 1, 1, 1, 0)]);
        assert_eq!(h.node_fresh("n1"), Some(false), "the scheduler's judgement");
        h.observe(dead_ms + 500, &[report("n1", 1, 2, 1, 0)]);
        assert_eq!(h.node_health("n1").unwrap().heartbeat_age_ms, 0);
    }

    #[test]
    fn an_app_s_traffic_over_a_longer_window() {
        let mut h = History::new();
        let app = ("acme".to_string(), "shop".to_string());
        assert_eq!(h.app_traffic(&app, 60_000), None);
        for i in 0..=30u64 {
            h.observe(i * 1000, &[report("n1", 1, i + 1, 100 + i * 50, 0)]);
        }
        let (rates, span_ms) = h.app_traffic(&app, 20_000).unwrap();
        assert_eq!(span_ms, 20_000);
        assert_eq!(rates.requests_per_s, 50.0);
        let (_, span_ms) = h.app_traffic(&app, 60_000).unwrap();
        assert_eq!(span_ms, 30_000, "as much as the samples cover");
    }

    #[test]
    fn keeps_a_bounded_number_of_samples() {
        let mut h = History::new();
        for i in 0..(KEPT as u64 + 10) {
            h.observe(i * 1000, &[report("n1", 1, i + 1, i, 0)]);
        }
        assert_eq!(h.series(Series::LiveSandboxes).len(), KEPT);
        assert_eq!(h.series(Series::RequestsPerSecond).last().unwrap().1, 1.0);
    }
}
