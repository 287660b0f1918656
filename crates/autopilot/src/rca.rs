//! Root-cause ranking: when an SLO's alert fires, an anomaly is strong
//! enough or a prediction opens, rank what may have caused it — a
//! version, a node, a region, a tenant, a recent change in the store — by
//! evidence, and keep the top five with their evidence.
//!
//! The trouble shows on one series (the focus: an app's errors, a node's
//! memory, ...). Its onset is placed by a CUSUM over the series' robust
//! z-scores against its own earliest third (Page 1954: the change is at
//! the last time the sum was zero before it crossed). Every other series
//! is then judged by its **deviation**: how far the median of its points
//! since the onset moved from the median before, in robust standard
//! deviations (BARO's robust scaling: Pham et al. 2024). Each candidate
//! is scored from four kinds of evidence, each in [0, 1]:
//! - **deviation** of its own series of the focus's metric (for a tenant
//!   its request rate: more demand; for a version under a load problem
//!   its latency: slower requests hold more sandboxes);
//! - **concentration**: how much more it deviates than its siblings (the
//!   other versions of the app, the other nodes);
//! - **spread**: a version at fault is off on every node that serves it;
//!   a node at fault makes every version it serves off;
//! - **timing**: a change in the store that concerns it came shortly
//!   before the onset (a version deployed, a node added, a failover).
//!
//! A change is a candidate of its own, scored by its timing and by how
//! close it is to the focus. Scores compare within one diagnosis only.

use std::collections::BTreeMap;

use state::autopilot::{Candidate, Cause, Diagnosis, MAX_CAUSES, MAX_EVIDENCE, Trigger};
use state::{Name, State};

use crate::signal::{ChangeLog, Metric, Point, SeriesKey, Signals, StoreChange, Subject};
use crate::stats::MAD_TO_SIGMA;

/// The ranking's settings; `docs/autopilot.md` says how they were set.
#[derive(Clone, Debug, PartialEq)]
pub struct RcaConfig {
    /// Changes this long before the onset (or after it, up to
    /// `after_ms`) are weighed.
    pub lookback_ms: u64,
    pub after_ms: u64,
    /// A change's timing evidence halves every this long from the onset.
    pub timing_half_life_ms: f64,
    /// A deviation of this many robust standard deviations counts as off
    /// (spread) and scores one half.
    pub off_z: f64,
}

impl Default for RcaConfig {
    fn default() -> RcaConfig {
        RcaConfig {
            lookback_ms: 60 * 60_000,
            after_ms: 2 * 60_000,
            timing_half_life_ms: 10.0 * 60_000.0,
            off_z: 3.0,
        }
    }
}

/// Ranks the causes of what `focus` shows; see the module's doc.
pub fn diagnose(
    cfg: &RcaConfig,
    trigger: Trigger,
    focus: &SeriesKey,
    signals: &Signals,
    changes: &ChangeLog,
    state: &State,
    now_ms: u64,
) -> Diagnosis {
    let points: Vec<Point> = signals
        .get(focus)
        .map(|s| s.points().copied().collect())
        .unwrap_or_default();
    let onset = onset(&points);
    let split_ms = onset.unwrap_or_else(|| now_ms.saturating_sub(15 * 60_000));
    let judge = Judge {
        cfg,
        signals,
        split_ms,
    };
    let mut scored: Vec<(Candidate, f64, Vec<String>)> = Vec::new();
    let related = Related::of(focus, signals, state);
    let load = matches!(focus.metric, Metric::RequestRate | Metric::Concurrency);
    for v in &related.versions {
        scored.push(judge.version(focus, v, &related, changes, load));
    }
    for n in &related.nodes {
        scored.push(judge.node(focus, n, &related, changes));
    }
    for t in &related.tenants {
        scored.push(judge.tenant(t, load, changes));
    }
    for (region, nodes) in &related.regions {
        scored.push(judge.region(focus, region, nodes, changes));
    }
    for c in changes.iter() {
        if let Some(scored_change) = judge.change(focus, c) {
            scored.push(scored_change);
        }
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let causes = scored
        .into_iter()
        .take(MAX_CAUSES)
        .enumerate()
        .map(
            |(i, (candidate, score, mut evidence)): (usize, (Candidate, f64, Vec<String>))| {
                evidence.truncate(MAX_EVIDENCE);
                let evidence = evidence.into_iter().map(crate::predict::clip).collect();
                Cause {
                    rank: i as u32 + 1,
                    candidate,
                    score: (score * 1000.0).round() / 1000.0,
                    evidence,
                }
            },
        )
        .collect();
    Diagnosis {
        id: 0,
        trigger,
        subject: focus.subject.clone(),
        t_ms: now_ms,
        onset_ms: onset,
        causes,
    }
}

/// Where the focus's trouble began: the last time a CUSUM of its robust
/// z-scores (against its earliest third) was zero before it crossed 5,
/// in whichever direction it crossed; `None` if it never did.
pub fn onset(points: &[Point]) -> Option<u64> {
    if points.len() < 9 {
        return None;
    }
    let base: Vec<f64> = points[..points.len() / 3].iter().map(|p| p.value).collect();
    let (center, scale) = robust(&base)?;
    const SLACK: f64 = 0.5;
    const ALARM: f64 = 5.0;
    let (mut up, mut down) = (0.0f64, 0.0f64);
    let (mut up_from, mut down_from) = (points[0].t_ms, points[0].t_ms);
    for (i, p) in points.iter().enumerate() {
        let z = ((p.value - center) / scale).clamp(-10.0, 10.0);
        up = (up + z - SLACK).max(0.0);
        down = (down - z - SLACK).max(0.0);
        if up == 0.0 {
            up_from = points.get(i + 1).map_or(p.t_ms, |n| n.t_ms);
        }
        if down == 0.0 {
            down_from = points.get(i + 1).map_or(p.t_ms, |n| n.t_ms);
        }
        if up > ALARM {
            return Some(up_from);
        }
        if down > ALARM {
            return Some(down_from);
        }
    }
    None
}

/// Median and robust spread (at least a small share of the median, so a
/// flat series still has a scale).
fn robust(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = crate::stats::quantile_sorted(&v, 0.5);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = crate::stats::quantile_sorted(&dev, 0.5) * MAD_TO_SIGMA;
    let floor = 0.02 * median.abs() + 1e-9;
    Some((median, mad.max(floor)))
}

/// x / (x + 3): evidence in [0, 1), one half at 3.
fn squash(x: f64) -> f64 {
    let x = x.max(0.0);
    if x.is_finite() { x / (x + 3.0) } else { 1.0 }
}

/// The candidates a focus brings up.
#[derive(Debug, Default)]
struct Related {
    /// (tenant, app, version).
    versions: Vec<(Name, Name, u64)>,
    nodes: Vec<Name>,
    tenants: Vec<Name>,
    /// Each region with its nodes (among `nodes`).
    regions: BTreeMap<Name, Vec<Name>>,
    /// Every node known, by region (peers of `nodes`).
    all_nodes: Vec<Name>,
}

impl Related {
    fn of(focus: &SeriesKey, signals: &Signals, state: &State) -> Related {
        let mut r = Related::default();
        let app = focus.subject.app();
        let node = focus.subject.node();
        // Versions and nodes from the per-node series: those of the app,
        // or those on the node.
        for (key, _) in signals.of_metric(Metric::RequestRate) {
            if let Subject::VersionOnNode {
                tenant,
                app: a,
                version,
                node: n,
            } = &key.subject
            {
                let in_app = app.is_some_and(|(t, ap)| t == tenant && ap == a);
                let on_node = node.is_some_and(|nn| nn == n);
                if in_app || on_node || app.is_none() && node.is_none() {
                    push_new(&mut r.versions, (tenant.clone(), a.clone(), *version));
                    push_new(&mut r.nodes, n.clone());
                    push_new(&mut r.tenants, tenant.clone());
                }
            }
        }
        if let Some(n) = node {
            push_new(&mut r.nodes, n.clone());
        }
        if let Some((t, _)) = app {
            push_new(&mut r.tenants, t.clone());
        }
        for n in state.nodes() {
            r.all_nodes.push(n.name.clone());
            if r.nodes.contains(&n.name) {
                r.regions
                    .entry(n.region.clone())
                    .or_default()
                    .push(n.name.clone());
            }
        }
        r
    }
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

struct Judge<'a> {
    cfg: &'a RcaConfig,
    signals: &'a Signals,
    split_ms: u64,
}

impl Judge<'_> {
    /// How far `key`'s points since the split moved from before it, in
    /// robust standard deviations, upwards (0 without enough points).
    fn deviation(&self, key: &SeriesKey) -> f64 {
        let Some(series) = self.signals.get(key) else {
            return 0.0;
        };
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for p in series.points() {
            if p.t_ms < self.split_ms {
                before.push(p.value);
            } else {
                after.push(p.value);
            }
        }
        if before.len() < 3 || after.is_empty() {
            return 0.0;
        }
        let (Some((b, scale)), Some((a, _))) = (robust(&before), robust(&after)) else {
            return 0.0;
        };
        ((a - b) / scale).clamp(0.0, 100.0)
    }

    /// The timing evidence of the changes concerning `about` (the best).
    fn timing(
        &self,
        changes: &ChangeLog,
        about: impl Fn(&StoreChange) -> bool,
    ) -> (f64, Option<String>) {
        let mut best = (0.0, None);
        for c in changes.iter().filter(|c| about(c)) {
            let t = self.change_timing(c);
            if t > best.0 {
                best = (
                    t,
                    Some(format!(
                        "{} {} changed {} before the onset",
                        c.record,
                        c.key,
                        crate::predict::duration(self.split_ms.saturating_sub(c.t_ms))
                    )),
                );
            }
        }
        best
    }

    /// 1 for a change at the onset, halving every half-life before it; 0
    /// outside the window.
    fn change_timing(&self, c: &StoreChange) -> f64 {
        if c.t_ms + self.cfg.lookback_ms < self.split_ms
            || c.t_ms > self.split_ms + self.cfg.after_ms
        {
            return 0.0;
        }
        let gap = self.split_ms.saturating_sub(c.t_ms) as f64;
        0.5f64.powf(gap / self.cfg.timing_half_life_ms)
    }

    fn key(subject: Subject, metric: Metric) -> SeriesKey {
        SeriesKey { subject, metric }
    }

    /// The metric a version or node is judged by for this focus: the same
    /// for request metrics; for a node's resources, what its versions do
    /// to them (requests in flight hold sandboxes; requests grow memory).
    fn request_metric(focus: Metric) -> Metric {
        match focus {
            Metric::LiveSandboxes | Metric::Concurrency => Metric::Concurrency,
            Metric::MemoryBytes | Metric::DiskBytes | Metric::SilenceS | Metric::ReportingNodes => {
                Metric::RequestRate
            }
            m => m,
        }
    }

    fn version(
        &self,
        focus: &SeriesKey,
        (tenant, app, version): &(Name, Name, u64),
        related: &Related,
        changes: &ChangeLog,
        load: bool,
    ) -> (Candidate, f64, Vec<String>) {
        // Under load, a version is at fault when it got slower; else by
        // the focus's own metric.
        let metric = if load {
            Metric::LatencyP50Ms
        } else {
            Self::request_metric(focus.metric)
        };
        let of = |v: u64| {
            Self::key(
                Subject::Version {
                    tenant: tenant.clone(),
                    app: app.clone(),
                    version: v,
                },
                metric,
            )
        };
        let dev = self.deviation(&of(*version));
        let siblings = related
            .versions
            .iter()
            .filter(|(t, a, v)| t == tenant && a == app && v != version)
            .map(|(_, _, v)| self.deviation(&of(*v)))
            .fold(0.0, f64::max);
        // Spread: the nodes serving it where it is off.
        let on_nodes: Vec<f64> = related
            .nodes
            .iter()
            .filter_map(|n| {
                let k = Self::key(
                    Subject::VersionOnNode {
                        tenant: tenant.clone(),
                        app: app.clone(),
                        version: *version,
                        node: n.clone(),
                    },
                    metric,
                );
                self.signals.get(&k).map(|_| self.deviation(&k))
            })
            .collect();
        let spread = share_off(&on_nodes, self.cfg.off_z);
        let (timing, when) = self.timing(changes, |c| {
            c.subject.as_ref().is_some_and(|s| {
                matches!(s, Subject::Version { tenant: t, app: a, version: v } if t == tenant && a == app && v == version)
            })
        });
        let resource = Self::request_metric(focus.metric) != focus.metric;
        let (w_dev, w_conc, w_spread, w_time) = if resource {
            (0.15, 0.15, 0.1, 0.6)
        } else {
            (0.25, 0.3, 0.25, 0.2)
        };
        let score = w_dev * squash(dev)
            + w_conc * squash(dev - siblings)
            + w_spread * spread
            + w_time * timing;
        let mut evidence = vec![format!(
            "its {metric} moved {dev:.1} robust sd since the onset (its app's other versions at most {siblings:.1})"
        )];
        if !on_nodes.is_empty() {
            evidence.push(format!(
                "off on {:.0} % of the {} nodes serving it",
                spread * 100.0,
                on_nodes.len()
            ));
        }
        evidence.extend(when);
        (
            Candidate::Version {
                tenant: tenant.clone(),
                app: app.clone(),
                version: *version,
            },
            score,
            evidence,
        )
    }

    fn node(
        &self,
        focus: &SeriesKey,
        node: &Name,
        related: &Related,
        changes: &ChangeLog,
    ) -> (Candidate, f64, Vec<String>) {
        // A node is judged by its own series of the focus's metric when it
        // has one (node metrics), else by its latency.
        let metric = match focus.metric {
            Metric::ErrorRatio | Metric::LatencyP50Ms => focus.metric,
            Metric::RequestRate | Metric::Concurrency => Metric::LatencyP99Ms,
            m => m,
        };
        let of = |n: &Name| Self::key(Subject::Node { node: n.clone() }, metric);
        let dev = self.deviation(&of(node));
        let mut peers: Vec<f64> = related
            .all_nodes
            .iter()
            .filter(|n| *n != node)
            .filter(|n| self.signals.get(&of(n)).is_some())
            .map(|n| self.deviation(&of(n)))
            .collect();
        peers.sort_by(f64::total_cmp);
        let peer = if peers.is_empty() {
            0.0
        } else {
            peers[peers.len() / 2]
        };
        // Spread: the versions it serves that are off on it.
        let request = Self::request_metric(focus.metric);
        let on_it: Vec<f64> = self
            .signals
            .of_metric(request)
            .filter(
                |(k, _)| matches!(&k.subject, Subject::VersionOnNode { node: n, .. } if n == node),
            )
            .map(|(k, _)| self.deviation(k))
            .collect();
        let spread = share_off(&on_it, self.cfg.off_z);
        let (timing, when) = self.timing(changes, |c| {
            c.subject.as_ref().is_some_and(|s| s.node() == Some(node))
                && !matches!(c.record.as_str(), "node_silent")
        });
        let score = 0.3 * squash(dev) + 0.3 * squash(dev - peer) + 0.25 * spread + 0.15 * timing;
        let mut evidence = vec![format!(
            "its {metric} moved {dev:.1} robust sd since the onset (the median of the other nodes {peer:.1})"
        )];
        if !on_it.is_empty() {
            evidence.push(format!(
                "{:.0} % of the {} versions it serves are off on it",
                spread * 100.0,
                on_it.len()
            ));
        }
        evidence.extend(when);
        (Candidate::Node { node: node.clone() }, score, evidence)
    }

    fn tenant(
        &self,
        tenant: &Name,
        load: bool,
        changes: &ChangeLog,
    ) -> (Candidate, f64, Vec<String>) {
        let k = Self::key(
            Subject::Tenant {
                tenant: tenant.clone(),
            },
            Metric::RequestRate,
        );
        let dev = self.deviation(&k);
        let (timing, when) = self.timing(changes, |c| {
            c.subject.as_ref().and_then(|s| s.tenant()) == Some(tenant)
        });
        // More demand explains load; elsewhere it is weaker evidence.
        let weight = if load { 0.85 } else { 0.3 };
        let score = weight * squash(dev) + 0.1 * timing;
        let mut evidence = vec![format!(
            "its request rate moved {dev:.1} robust sd since the onset"
        )];
        evidence.extend(when);
        (
            Candidate::Tenant {
                tenant: tenant.clone(),
            },
            score,
            evidence,
        )
    }

    fn region(
        &self,
        focus: &SeriesKey,
        region: &Name,
        nodes: &[Name],
        changes: &ChangeLog,
    ) -> (Candidate, f64, Vec<String>) {
        let metric = match focus.metric {
            Metric::RequestRate | Metric::Concurrency => Metric::LatencyP99Ms,
            m if Self::request_metric(m) != m => m,
            m => m,
        };
        let devs: Vec<f64> = nodes
            .iter()
            .map(|n| self.deviation(&Self::key(Subject::Node { node: n.clone() }, metric)))
            .collect();
        let spread = share_off(&devs, self.cfg.off_z);
        let mean = devs.iter().sum::<f64>() / devs.len().max(1) as f64;
        let (timing, when) = self.timing(
            changes,
            |c| matches!(&c.subject, Some(Subject::Region { region: r }) if r == region),
        );
        // A region is at fault when most of its nodes are, together.
        let score = 0.5 * spread * squash(mean) + 0.3 * timing;
        let mut evidence = vec![format!(
            "{:.0} % of its {} nodes involved are off on {metric}",
            spread * 100.0,
            devs.len()
        )];
        evidence.extend(when);
        (
            Candidate::Region {
                region: region.clone(),
            },
            score,
            evidence,
        )
    }

    fn change(&self, focus: &SeriesKey, c: &StoreChange) -> Option<(Candidate, f64, Vec<String>)> {
        let timing = self.change_timing(c);
        if timing <= 0.0 || c.revision == 0 {
            return None;
        }
        let f = &focus.subject;
        let relevance = match &c.subject {
            Some(s) if s == f => 1.0,
            Some(s) if s.app().is_some() && s.app() == f.app() => 0.9,
            Some(s) if s.node().is_some() && s.node() == f.node() => 0.9,
            Some(s) if s.tenant().is_some() && s.tenant() == f.tenant() => 0.5,
            _ => 0.2,
        };
        let score = 0.5 * timing * relevance;
        Some((
            Candidate::Change {
                revision: c.revision,
                record: c.record.clone(),
                key: c.key.clone(),
            },
            score,
            vec![format!(
                "{} {} changed {} before the onset of {}",
                c.record,
                c.key,
                crate::predict::duration(self.split_ms.saturating_sub(c.t_ms)),
                focus
            )],
        ))
    }
}

/// The share of deviations at or above `off_z`.
fn share_off(devs: &[f64], off_z: f64) -> f64 {
    if devs.is_empty() {
        return 0.0;
    }
    devs.iter().filter(|d| **d >= off_z).count() as f64 / devs.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onset_is_where_the_shift_began() {
        let points: Vec<Point> = (0..40u64)
            .map(|i| Point {
                t_ms: i * 60_000,
                value: if i < 25 {
                    10.0 + (i % 3) as f64 * 0.1
                } else {
                    10.0 + (i - 24) as f64
                },
            })
            .collect();
        let at = onset(&points).unwrap();
        assert!((24 * 60_000..=26 * 60_000).contains(&at), "{at}");
        let flat: Vec<Point> = (0..40u64)
            .map(|i| Point {
                t_ms: i * 60_000,
                value: 10.0 + (i % 3) as f64 * 0.1,
            })
            .collect();
        assert_eq!(onset(&flat), None);
    }
}
