//! The sampler: reads the state at a time the caller gives and makes one
//! point per series from what changed since its last read.
//!
//! Per node, between the report read last time and this one (one boot):
//! requests, errors and busy time are counter differences, divided by the
//! difference of the node's own uptime (its monotonic clock, not the
//! reader's: a late report does not look like a burst); latency quantiles
//! come from the difference of the report's histograms. A version on all
//! its nodes, an app, a node's versions together and a tenant are merges
//! of those differences (sums, and histograms added bucket by bucket), so
//! their quantiles are exact up to the histogram's bucket. Gauges
//! (sandboxes, memory, disk) are the report's, each with the limit at
//! which it fails. A node whose report has not changed since the last read
//! gives only its silence; one silent for
//! [`SamplerConfig::silent_after_ms`] is taken for dead (and logged as a
//! change), as is its coming back.

use std::collections::BTreeMap;

use serde::Serialize;
use state::{LogHistogram, Name, NodeReport, Objective, State};

use super::change::{ChangeLog, StoreChange};
use super::{Metric, SeriesKey, Subject};

/// The burn rate at which an SLO pages (the SRE workbook's 1-hour rule,
/// as `ops::slo::burn` fires it): a version's errors at this many times
/// its budget are the failure a prediction foretells.
pub const PAGE_BURN_RATE: f64 = 14.4;

/// The sampler's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// A node whose report stands still this long is taken for dead (the
    /// scheduler takes it for unhealthy sooner; this is the autopilot's
    /// "gone silent").
    pub silent_after_ms: u64,
    /// The error ratio at which a version fails when its app has no
    /// availability SLO.
    pub default_error_limit: f64,
}

impl Default for SamplerConfig {
    fn default() -> SamplerConfig {
        SamplerConfig {
            silent_after_ms: 30_000,
            default_error_limit: 0.05,
        }
    }
}

/// One point of one series, and the limit at which the series fails.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub key: SeriesKey,
    pub value: f64,
    pub limit: Option<f64>,
}

/// What one read gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampled {
    pub t_ms: u64,
    pub samples: Vec<Sample>,
    /// Nodes taken for dead at this read.
    pub went_silent: Vec<Name>,
}

/// What the sampler remembers of a node between reads.
#[derive(Clone, Debug)]
struct NodeSeen {
    /// Boot and sequence of the report read last.
    beat: Option<(u64, u64)>,
    /// When `beat` last changed (the caller's clock).
    changed_ms: u64,
    /// The report read last (its counters are the base of the next
    /// differences).
    report: Option<NodeReport>,
    silent: bool,
}

/// Counters of requests served over one interval, mergeable.
#[derive(Clone, Debug, Default)]
struct Served {
    requests: u64,
    errors: u64,
    latency_us: LogHistogram,
    /// Requests per second.
    rate: f64,
    /// Sandbox-seconds busy per second.
    concurrency: f64,
}

impl Served {
    fn add(&mut self, o: &Served) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.latency_us.merge(&o.latency_us);
        self.rate += o.rate;
        self.concurrency += o.concurrency;
    }
}

/// Limits of a version's or app's series.
#[derive(Clone, Copy, Debug, Default)]
struct Limits {
    error_ratio: Option<f64>,
    latency_ms: Option<f64>,
    concurrency: Option<f64>,
}

/// Reads the state into samples; see the module's doc.
#[derive(Clone, Debug, Default)]
pub struct Sampler {
    cfg: SamplerConfig,
    nodes: BTreeMap<Name, NodeSeen>,
    last_ms: Option<u64>,
    changes: ChangeLog,
}

type VersionId = (Name, Name, u64);

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        Sampler {
            cfg,
            ..Sampler::default()
        }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// The store's changes seen so far.
    pub fn changes(&self) -> &ChangeLog {
        &self.changes
    }

    /// Reads `state` at `now_ms`.
    pub fn sample(&mut self, state: &State, now_ms: u64) -> Sampled {
        self.changes.read(state, now_ms);
        let mut out = Sampled {
            t_ms: now_ms,
            ..Sampled::default()
        };
        let since_last_s = self
            .last_ms
            .map(|t| now_ms.saturating_sub(t) as f64 / 1000.0);
        self.last_ms = Some(now_ms);
        self.nodes.retain(|name, _| state.node(name).is_some());
        // Per version on each node, what it served since the last read.
        let mut served: BTreeMap<(VersionId, Name), Served> = BTreeMap::new();
        for node in state.nodes() {
            let report = state.report(&node.name);
            let seen = self.nodes.entry(node.name.clone()).or_insert(NodeSeen {
                beat: None,
                changed_ms: now_ms,
                report: None,
                silent: false,
            });
            let beat = report.map(|r| (r.boot, r.sequence));
            let changed = beat != seen.beat;
            if changed {
                seen.beat = beat;
                seen.changed_ms = now_ms;
            }
            let subject = Subject::Node {
                node: node.name.clone(),
            };
            let silence_ms = now_ms.saturating_sub(seen.changed_ms);
            out.samples.push(Sample {
                key: key(&subject, Metric::SilenceS),
                value: silence_ms as f64 / 1000.0,
                limit: Some(self.cfg.silent_after_ms as f64 / 1000.0),
            });
            if silence_ms >= self.cfg.silent_after_ms && !seen.silent && seen.report.is_some() {
                seen.silent = true;
                out.went_silent.push(node.name.clone());
                self.changes
                    .push(node_change(now_ms, "node_silent", &node.name));
            }
            let Some(report) = report.filter(|_| changed) else {
                continue;
            };
            if seen.silent {
                seen.silent = false;
                self.changes
                    .push(node_change(now_ms, "node_back", &node.name));
            }
            gauges(&subject, report, &mut out.samples);
            if let Some(before) = seen.report.as_ref().filter(|b| b.boot == report.boot) {
                let dt_s = interval_s(before, report, since_last_s);
                for v in &report.versions {
                    let id = (v.tenant.clone(), v.app.clone(), v.version);
                    let base = before
                        .versions
                        .iter()
                        .find(|b| b.tenant == v.tenant && b.app == v.app && b.version == v.version);
                    let d = |now: u64, then: Option<u64>| now.saturating_sub(then.unwrap_or(0));
                    let busy_us = d(v.busy_us, base.map(|b| b.busy_us));
                    let requests = d(v.requests, base.map(|b| b.requests));
                    let latency_us = match base {
                        Some(b) => v.latency_histogram_us.since(&b.latency_histogram_us),
                        None => v.latency_histogram_us.clone(),
                    };
                    served.insert(
                        (id, node.name.clone()),
                        Served {
                            requests,
                            errors: d(v.errors, base.map(|b| b.errors)),
                            latency_us,
                            rate: requests as f64 / dt_s,
                            concurrency: busy_us as f64 / 1e6 / dt_s,
                        },
                    );
                }
            }
            seen.report = Some(report.clone());
        }
        self.served_samples(state, &served, &mut out.samples);
        self.region_samples(state, &mut out.samples);
        out
    }

    /// The series of versions (per node and merged), apps, nodes' requests
    /// and tenants.
    fn served_samples(
        &self,
        state: &State,
        served: &BTreeMap<(VersionId, Name), Served>,
        out: &mut Vec<Sample>,
    ) {
        let mut versions: BTreeMap<&VersionId, Served> = BTreeMap::new();
        let mut apps: BTreeMap<(&Name, &Name), (Served, Vec<&Name>)> = BTreeMap::new();
        let mut nodes: BTreeMap<&Name, Served> = BTreeMap::new();
        let mut tenants: BTreeMap<&Name, Served> = BTreeMap::new();
        for ((id, node), s) in served {
            let limits = version_limits(state, id, &self.cfg);
            let subject = Subject::VersionOnNode {
                tenant: id.0.clone(),
                app: id.1.clone(),
                version: id.2,
                node: node.clone(),
            };
            served_points(&subject, s, limits, out);
            versions.entry(id).or_default().add(s);
            let app = apps.entry((&id.0, &id.1)).or_default();
            app.0.add(s);
            if s.requests > 0 && !app.1.contains(&node) {
                app.1.push(node);
            }
            nodes.entry(node).or_default().add(s);
            tenants.entry(&id.0).or_default().add(s);
        }
        for (id, s) in &versions {
            let subject = Subject::Version {
                tenant: id.0.clone(),
                app: id.1.clone(),
                version: id.2,
            };
            served_points(&subject, s, version_limits(state, id, &self.cfg), out);
        }
        for ((tenant, app), (s, serving)) in &apps {
            let subject = Subject::App {
                tenant: (*tenant).clone(),
                app: (*app).clone(),
            };
            let limits = app_limits(state, tenant, app, serving.len().max(1), &self.cfg);
            served_points(&subject, s, limits, out);
        }
        for (node, s) in &nodes {
            let subject = Subject::Node {
                node: (*node).clone(),
            };
            // A node's latency fails at the shortest timeout it serves.
            let timeout_ms = served
                .keys()
                .filter(|(_, n)| n == *node)
                .filter_map(|(id, _)| version_config(state, id).map(|c| c.timeout_ms as f64))
                .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))));
            let limits = Limits {
                latency_ms: timeout_ms,
                ..Limits::default()
            };
            served_points(&subject, s, limits, out);
        }
        for (tenant, s) in &tenants {
            let subject = Subject::Tenant {
                tenant: (*tenant).clone(),
            };
            out.push(Sample {
                key: key(&subject, Metric::RequestRate),
                value: s.rate,
                limit: None,
            });
        }
    }

    /// Per region: sandboxes on its reporting nodes against their slots,
    /// and how many report.
    fn region_samples(&self, state: &State, out: &mut Vec<Sample>) {
        for region in state.regions() {
            let (mut live, mut slots, mut reporting) = (0u64, 0u64, 0u64);
            for node in state.nodes().filter(|n| n.region == region.name) {
                let Some(seen) = self.nodes.get(&node.name) else {
                    continue;
                };
                if let (Some(r), false) = (&seen.report, seen.silent) {
                    live += r.live_sandboxes;
                    slots += r.usage.sandbox_slots;
                    reporting += 1;
                }
            }
            let subject = Subject::Region {
                region: region.name.clone(),
            };
            out.push(Sample {
                key: key(&subject, Metric::ReportingNodes),
                value: reporting as f64,
                limit: None,
            });
            if reporting > 0 {
                out.push(Sample {
                    key: key(&subject, Metric::LiveSandboxes),
                    value: live as f64,
                    limit: (slots > 0).then_some(slots as f64),
                });
            }
        }
    }
}

fn key(subject: &Subject, metric: Metric) -> SeriesKey {
    SeriesKey {
        subject: subject.clone(),
        metric,
    }
}

fn node_change(t_ms: u64, record: &str, node: &Name) -> StoreChange {
    StoreChange {
        t_ms,
        revision: 0,
        record: record.into(),
        key: node.to_string(),
        deleted: false,
        subject: Some(Subject::Node { node: node.clone() }),
    }
}

/// Seconds between two reports of one boot on the node's clock, else
/// between the two reads on the caller's (at least a millisecond).
fn interval_s(before: &NodeReport, now: &NodeReport, since_last_s: Option<f64>) -> f64 {
    let (a, b) = (before.usage.uptime_ms, now.usage.uptime_ms);
    let s = if a > 0 && b > a {
        (b - a) as f64 / 1000.0
    } else {
        since_last_s.unwrap_or(1.0)
    };
    s.max(0.001)
}

/// A node's gauges, each with its limit when the node says it.
fn gauges(subject: &Subject, r: &NodeReport, out: &mut Vec<Sample>) {
    let limit = |x: u64| (x > 0).then_some(x as f64);
    out.push(Sample {
        key: key(subject, Metric::LiveSandboxes),
        value: r.live_sandboxes as f64,
        limit: limit(r.usage.sandbox_slots),
    });
    if r.usage.memory_bytes > 0 {
        out.push(Sample {
            key: key(subject, Metric::MemoryBytes),
            value: r.usage.memory_bytes as f64,
            limit: limit(r.usage.memory_limit_bytes),
        });
    }
    if r.usage.disk_bytes > 0 {
        out.push(Sample {
            key: key(subject, Metric::DiskBytes),
            value: r.usage.disk_bytes as f64,
            limit: limit(r.usage.disk_limit_bytes),
        });
    }
}

/// The points of what a subject served.
fn served_points(subject: &Subject, s: &Served, limits: Limits, out: &mut Vec<Sample>) {
    out.push(Sample {
        key: key(subject, Metric::RequestRate),
        value: s.rate,
        limit: None,
    });
    out.push(Sample {
        key: key(subject, Metric::Concurrency),
        value: s.concurrency,
        limit: limits.concurrency,
    });
    if s.requests > 0 {
        out.push(Sample {
            key: key(subject, Metric::ErrorRatio),
            value: (s.errors as f64 / s.requests as f64).min(1.0),
            limit: limits.error_ratio,
        });
    }
    for (metric, q, limit) in [
        (Metric::LatencyP50Ms, 0.5, None),
        (Metric::LatencyP99Ms, 0.99, limits.latency_ms),
    ] {
        if let Some(us) = s.latency_us.quantile(q) {
            out.push(Sample {
                key: key(subject, metric),
                value: us as f64 / 1000.0,
                limit,
            });
        }
    }
}

fn version_config<'a>(state: &'a State, id: &VersionId) -> Option<&'a state::VersionConfig> {
    state
        .versions(&id.0, &id.1)
        .find(|v| v.number == id.2)
        .map(|v| &v.config)
}

/// Where an app's errors and latency fail: at its SLOs' page rates (the
/// strictest), else the default error ratio and no latency limit.
fn slo_limits(state: &State, tenant: &Name, app: &Name, cfg: &SamplerConfig) -> Limits {
    let mut limits = Limits::default();
    for slo in state.slos_of(tenant, app) {
        let page = (PAGE_BURN_RATE * (1.0 - slo.target)).min(1.0);
        match slo.objective {
            Objective::Availability => {
                limits.error_ratio = Some(limits.error_ratio.map_or(page, |l| l.min(page)));
            }
            Objective::Latency { threshold_ms } => {
                let t = threshold_ms as f64;
                limits.latency_ms = Some(limits.latency_ms.map_or(t, |l| l.min(t)));
            }
        }
    }
    limits.error_ratio = limits.error_ratio.or(Some(cfg.default_error_limit));
    limits
}

/// A version's limits: its app's SLOs, else its timeout for latency.
fn version_limits(state: &State, id: &VersionId, cfg: &SamplerConfig) -> Limits {
    let mut limits = slo_limits(state, &id.0, &id.1, cfg);
    if limits.latency_ms.is_none() {
        limits.latency_ms = version_config(state, id).map(|c| c.timeout_ms as f64);
    }
    limits
}

/// An app's limits: its SLOs', and requests in flight up to its deployed
/// version's concurrency limit on each node serving it.
fn app_limits(
    state: &State,
    tenant: &Name,
    app: &Name,
    serving_nodes: usize,
    cfg: &SamplerConfig,
) -> Limits {
    let mut limits = slo_limits(state, tenant, app, cfg);
    let deployed = state.deployment(tenant, app).map(|d| d.version);
    let config = deployed
        .and_then(|v| version_config(state, &(tenant.clone(), app.clone(), v)))
        .or_else(|| state.versions(tenant, app).last().map(|v| &v.config));
    if let Some(c) = config {
        limits.concurrency = Some(f64::from(c.max_concurrency) * serving_nodes as f64);
        if limits.latency_ms.is_none() {
            limits.latency_ms = Some(c.timeout_ms as f64);
        }
    }
    limits
}
