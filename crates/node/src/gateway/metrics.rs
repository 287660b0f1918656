//! Counters and latency per app and version, read as plain data.
//!
//! Every request that reached a version is counted once in `requests` and,
//! by its status, in at most one error class: `errors_4xx`, `timeouts`
//! (504) or `errors_5xx` (every other 5xx); a client that left before its
//! answer counts as a 4xx (499). Requests that matched no route
//! or no version, and requests forwarded to another node, are counted
//! gateway-wide. Latency is from the request's
//! arrival to its answer, in microseconds, in an hdrhistogram with two
//! significant digits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use cluster::exposition::HistogramSnapshot;
use hdrhistogram::Histogram;
use rng::SplitMix64;
use serde::Serialize;

use super::breaker::Breaker;
use super::handle::CLIENT_GONE;
use super::routes::AppKey;

/// Longest latency the histograms hold (an hour, in µs); longer ones are
/// recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Longest sandbox start the start histogram holds (an hour, in ns).
const MAX_START_NS: u64 = 3_600_000_000_000;

/// The gateway's metrics.
pub struct Metrics {
    versions: RwLock<HashMap<(AppKey, u64), Arc<VersionMetrics>>>,
    /// Time to start a fresh sandbox for a request (cold routes), in ns.
    sandbox_starts: Mutex<StartTimes>,
    unrouted: AtomicU64,
    no_version: AtomicU64,
    forwarded: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            versions: RwLock::default(),
            sandbox_starts: Mutex::new(StartTimes::new()),
            unrouted: AtomicU64::new(0),
            no_version: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        }
    }
}

/// One version's live counters.
pub(crate) struct VersionMetrics {
    requests: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
    timeouts: AtomicU64,
    in_flight: AtomicU64,
    latency: Mutex<Latency>,
    /// Kept here, beside the counters it follows, so one lookup per
    /// request finds both.
    breaker: Mutex<Breaker>,
}

impl VersionMetrics {
    fn new() -> VersionMetrics {
        VersionMetrics {
            requests: AtomicU64::new(0),
            errors_4xx: AtomicU64::new(0),
            errors_5xx: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            latency: Mutex::new(Latency::new()),
            breaker: Mutex::new(Breaker::default()),
        }
    }

    /// Whether the version's circuit breaker lets a request through now.
    pub(crate) fn allows(&self, now: Instant) -> bool {
        self.breaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allows(now)
    }

    /// Counts one answered request.
    pub(crate) fn record(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let class = match status {
            504 => Some(&self.timeouts),
            500..=599 => Some(&self.errors_5xx),
            400..=499 => Some(&self.errors_4xx),
            _ => None,
        };
        if let Some(counter) = class {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        // The app's own faults (500) and timeouts (504) count against its
        // breaker; the gateway's own refusals (503, 413) do not.
        let failed = matches!(status, 500 | 502 | 504);
        if status != CLIENT_GONE {
            self.breaker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(!failed, Instant::now());
        }
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let us = l.record(latency);
        if status != CLIENT_GONE {
            l.recent.offer(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }

    /// Marks a request admitted; the returned guard marks it done.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// An admitted request of a version, counted in `in_flight` until dropped.
pub(crate) struct InFlight(Arc<VersionMetrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// The counters of `version` of `app`, created on first use.
    pub(crate) fn version(&self, app: &AppKey, version: u64) -> Arc<VersionMetrics> {
        let key = (app.clone(), version);
        if let Some(m) = self
            .versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return m.clone();
        }
        self.versions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert_with(|| Arc::new(VersionMetrics::new()))
            .clone()
    }

    /// Counts the start of a fresh sandbox that took `took`.
    pub(crate) fn record_sandbox_start(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_START_NS);
        let mut s = self
            .sandbox_starts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        s.histogram.saturating_record(ns);
        s.sum_ns = s.sum_ns.saturating_add(ns);
    }

    /// The histogram of fresh sandbox starts (cold routes), in
    /// [`START_BUCKETS_NS`].
    pub fn sandbox_start_histogram(&self) -> HistogramSnapshot {
        let s = self
            .sandbox_starts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        snapshot_of(&s.histogram, START_BUCKETS_NS, 1, s.sum_ns)
    }

    /// Every fresh sandbox start so far, in ns, as the gateway recorded it
    /// (two significant digits): for percentiles, and for differences
    /// between two moments.
    pub fn sandbox_starts_ns(&self) -> Histogram<u64> {
        self.sandbox_starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .histogram
            .clone()
    }

    /// Each version's request latency histogram, by (tenant, app, version).
    pub fn latency_histograms(&self) -> Vec<((String, String, u64), HistogramSnapshot)> {
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = versions
            .iter()
            .map(|((app, version), m)| {
                let l = m.latency.lock().unwrap_or_else(|p| p.into_inner());
                (
                    (app.tenant.to_string(), app.app.to_string(), *version),
                    snapshot_of(&l.histogram, LATENCY_BUCKETS_US, 1_000, l.sum_us),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub(crate) fn count_unrouted(&self) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_no_version(&self) {
        self.no_version.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now, versions sorted by app and number.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<VersionSnapshot> = versions
            .iter()
            .map(|((app, version), m)| {
                let l = m.latency.lock().unwrap_or_else(|p| p.into_inner());
                VersionSnapshot {
                    tenant: app.tenant.to_string(),
                    app: app.app.to_string(),
                    version: *version,
                    requests: m.requests.load(Ordering::Relaxed),
                    errors_4xx: m.errors_4xx.load(Ordering::Relaxed),
                    errors_5xx: m.errors_5xx.load(Ordering::Relaxed),
                    timeouts: m.timeouts.load(Ordering::Relaxed),
                    in_flight: m.in_flight.load(Ordering::Relaxed),
                    latency_us: LatencySnapshot::of(&l.histogram, l.sum_us),
                    circuit_open: m
                        .breaker
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_open(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.tenant, &a.app, a.version).cmp(&(&b.tenant, &b.app, b.version)));
        MetricsSnapshot {
            versions: out,
            unrouted: self.unrouted.load(Ordering::Relaxed),
            no_version: self.no_version.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            sandbox_starts: self
                .sandbox_starts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .histogram
                .len(),
        }
    }

    /// Each version's latencies since the process started, in the
    /// report's mergeable histogram, by (tenant, app, version).
    pub fn log_histograms(&self) -> Vec<((String, String, u64), state::LogHistogram)> {
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
        versions
            .iter()
            .map(|((app, version), m)| {
                let l = m.latency.lock().unwrap_or_else(|p| p.into_inner());
                (
                    (app.tenant.to_string(), app.app.to_string(), *version),
                    l.log.clone(),
                )
            })
            .collect()
    }

    /// Takes each version's latency sample gathered since the last call
    /// (for the node's report), by (tenant, app, version).
    pub fn take_recent_latencies(&self) -> Vec<((String, String, u64), Vec<u32>)> {
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
        versions
            .iter()
            .map(|((app, version), m)| {
                let mut l = m.latency.lock().unwrap_or_else(|p| p.into_inner());
                let sample = std::mem::take(&mut l.recent).values;
                (
                    (app.tenant.to_string(), app.app.to_string(), *version),
                    sample,
                )
            })
            .filter(|(_, sample)| !sample.is_empty())
            .collect()
    }
}

/// A version's latencies: all of them in a histogram, and a uniform sample
/// of the recent ones for the rollout judge (which needs values, not
/// percentiles).
struct Latency {
    histogram: Histogram<u64>,
    /// The same latencies in the compact, mergeable histogram the node's
    /// report carries (the autopilot merges them across versions, nodes
    /// and regions).
    log: state::LogHistogram,
    /// The exact sum of what was recorded, in µs (for Prometheus' `_sum`).
    sum_us: u64,
    recent: Reservoir,
}

impl Latency {
    fn new() -> Latency {
        Latency {
            histogram: Histogram::new_with_bounds(1, MAX_LATENCY_US, 2)
                .expect("valid histogram bounds"),
            log: state::LogHistogram::default(),
            sum_us: 0,
            recent: Reservoir::default(),
        }
    }

    /// Records `took`; in µs, as recorded.
    fn record(&mut self, took: Duration) -> u64 {
        let us = u64::try_from(took.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_LATENCY_US);
        self.histogram.saturating_record(us);
        self.log.record(us);
        self.sum_us = self.sum_us.saturating_add(us);
        us
    }
}

/// Upper bounds of the buckets a request latency histogram is exposed in,
/// in µs (Prometheus' `le`, from 50 µs to 10 s).
pub const LATENCY_BUCKETS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Upper bounds of the buckets the sandbox start histogram is exposed in,
/// in ns (from 100 ns, where a prepared start lies, to 1 s).
pub const START_BUCKETS_NS: &[u64] = &[
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Fresh sandbox starts, in ns.
struct StartTimes {
    histogram: Histogram<u64>,
    sum_ns: u64,
}

impl StartTimes {
    fn new() -> StartTimes {
        StartTimes {
            histogram: Histogram::new_with_bounds(1, MAX_START_NS, 2)
                .expect("valid histogram bounds"),
            sum_ns: 0,
        }
    }
}

/// A histogram as `/metrics` shows it: cumulative counts at each of
/// `bounds`, in ns. `h` holds values in units of `unit_ns` nanoseconds;
/// `bounds` and `sum` are in the same unit. Within the histogram's
/// resolution (two significant digits): a value within 1 % above a bound
/// may count in it.
fn snapshot_of(h: &Histogram<u64>, bounds: &[u64], unit_ns: u64, sum: u64) -> HistogramSnapshot {
    let mut running = 0;
    let buckets = bounds
        .iter()
        .map(|&le| {
            // Cumulative and never decreasing, whatever the rounding.
            running = h.count_between(0, le).max(running);
            (le.saturating_mul(unit_ns), running)
        })
        .collect();
    HistogramSnapshot {
        buckets,
        count: h.len(),
        sum_ns: sum.saturating_mul(unit_ns),
    }
}

/// Most latencies sampled per version between two reports.
pub const RECENT_SAMPLE: usize = 512;

/// Reservoir sampling (Vitter's algorithm R): after `n` offers, each
/// offered value is in `values` with the same chance, whatever `n`.
#[derive(Default)]
struct Reservoir {
    values: Vec<u32>,
    offered: u64,
    /// Any fixed seed will do for sampling.
    rng: SplitMix64,
}

impl Reservoir {
    fn offer(&mut self, value: u32) {
        self.offered += 1;
        if self.values.len() < RECENT_SAMPLE {
            self.values.push(value);
            return;
        }
        let slot = self.rng.below_u64(self.offered);
        if let Some(v) = self.values.get_mut(slot as usize) {
            *v = value;
        }
    }
}

/// The gateway's metrics at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    pub versions: Vec<VersionSnapshot>,
    /// Requests no route matched (answered 404).
    pub unrouted: u64,
    /// Requests whose route had no version with a weight above 0 (503).
    pub no_version: u64,
    /// Requests sent on to another node's gateway (counted by version
    /// there, not here).
    pub forwarded: u64,
    /// Fresh sandboxes started (cold routes) since the process started.
    pub sandbox_starts: u64,
}

impl MetricsSnapshot {
    /// The counters of one version, if it has served a request.
    pub fn version(&self, tenant: &str, app: &str, version: u64) -> Option<&VersionSnapshot> {
        self.versions
            .iter()
            .find(|v| v.tenant == tenant && v.app == app && v.version == version)
    }
}

/// One version's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionSnapshot {
    pub tenant: String,
    pub app: String,
    pub version: u64,
    /// Requests answered.
    pub requests: u64,
    pub errors_4xx: u64,
    /// 5xx answers other than 504.
    pub errors_5xx: u64,
    /// 504 answers.
    pub timeouts: u64,
    /// Requests admitted whose sandbox has not finished yet (it may outlive
    /// a 504 answer until its own deadline stops it).
    pub in_flight: u64,
    pub latency_us: LatencySnapshot,
    /// Its circuit breaker keeps it out of the split now (see
    /// `breaker.rs`).
    pub circuit_open: bool,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencySnapshot {
    pub count: u64,
    /// The sum of every latency recorded, exactly: the time the version's
    /// requests kept a sandbox busy (what sandbox-seconds are billed on).
    pub sum: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl LatencySnapshot {
    fn of(h: &Histogram<u64>, sum: u64) -> LatencySnapshot {
        if h.is_empty() {
            return LatencySnapshot::default();
        }
        LatencySnapshot {
            count: h.len(),
            sum,
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::Name;

    #[test]
    fn classes_and_latency() {
        let metrics = Metrics::default();
        let app = AppKey::new(
            Name::new("tenant", "t").unwrap(),
            Name::new("app", "a").unwrap(),
        );
        let v = metrics.version(&app, 1);
        let guard = v.enter();
        for status in [200, 302, 404, 413, 500, 503, 504] {
            v.record(status, Duration::from_micros(100));
        }
        let snap = metrics.snapshot();
        let s = snap.version("t", "a", 1).unwrap();
        assert_eq!(
            (s.requests, s.errors_4xx, s.errors_5xx, s.timeouts),
            (7, 2, 2, 1)
        );
        assert_eq!(s.in_flight, 1);
        assert_eq!(s.latency_us.count, 7);
        assert!((99..=101).contains(&s.latency_us.p50), "{:?}", s.latency_us);
        drop(guard);
        assert_eq!(metrics.snapshot().versions[0].in_flight, 0);
        assert!(snap.version("t", "a", 2).is_none());
        let h = &metrics.latency_histograms()[0].1;
        assert_eq!((h.count, h.sum_ns), (7, 700_000));
        assert_eq!(h.buckets[0], (50_000, 0));
        assert_eq!(h.buckets[1], (100_000, 7));
        assert!(h.buckets.iter().all(|&(_, c)| c <= h.count));
        let recent = metrics.take_recent_latencies();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].1, [100; 7]);
        assert!(metrics.take_recent_latencies().is_empty(), "taken once");
    }

    #[test]
    fn the_recent_sample_is_bounded_and_uniform() {
        let mut r = Reservoir::default();
        for i in 0..100_000u32 {
            r.offer(i);
        }
        assert_eq!(r.values.len(), RECENT_SAMPLE);
        // A uniform sample of 0..100000 has its mean near 50000 (the
        // standard error is about 1300).
        let mean = r.values.iter().map(|&v| f64::from(v)).sum::<f64>() / RECENT_SAMPLE as f64;
        assert!((40_000.0..60_000.0).contains(&mean), "{mean}");
    }
}

#[cfg(test)]
mod start_tests {
    use super::*;

    #[test]
    fn sandbox_starts_are_bucketed_from_100_ns() {
        let metrics = Metrics::default();
        for ns in [80, 90, 300, 1_200, 40_000] {
            metrics.record_sandbox_start(Duration::from_nanos(ns));
        }
        let h = metrics.sandbox_start_histogram();
        assert_eq!((h.count, h.sum_ns), (5, 41_670));
        assert_eq!(h.buckets[0], (100, 2));
        assert_eq!(h.buckets[2], (500, 3));
        assert_eq!(h.buckets[4], (2_500, 4));
        assert_eq!(h.buckets[8], (50_000, 5));
        assert_eq!(metrics.sandbox_starts_ns().len(), 5);
        assert_eq!(metrics.snapshot().sandbox_starts, 5);
    }
}
