//! Signals: the cluster's own metric series, one typed stream per
//! (subject, metric) — a node, a version on a node, a version on all its
//! nodes, an app, a tenant, a region — made from the nodes' reports and
//! the store's events.
//!
//! - [`Sampler`] (`sample.rs`) reads the state at a time the caller
//!   gives and turns what changed since its last read into [`Sample`]s:
//!   rates and ratios from the differences of the reports' counters over
//!   the nodes' own clocks, latency quantiles from the reports' mergeable
//!   histograms (an aggregate is the merge of its parts' histograms, never
//!   an average of percentiles), gauges (sandboxes, memory, disk) with the
//!   limit at which each fails, and how long each node has been silent.
//! - [`StoreChange`] (`change.rs`): the store's events that may explain
//!   trouble (versions, deployments, rollouts, failovers, nodes, apps,
//!   SLOs), stamped with the time they were first seen, and nodes going
//!   silent or coming back.
//! - [`Signals`]: the last points of every series in rings of a fixed
//!   size, with its latest limit; series not seen for a while are
//!   forgotten, and their number is bounded.
//!
//! Nothing here reads a clock: time is the caller's `now_ms`.

mod change;
mod sample;

pub use change::{ChangeLog, StoreChange};
pub use sample::{Sample, Sampled, Sampler, SamplerConfig};

use std::collections::{BTreeMap, VecDeque};

pub use state::autopilot::{Metric, SeriesKey, Subject};

/// One point of a series: when (ms since the Unix epoch, the autopilot's
/// clock) and its value.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Point {
    pub t_ms: u64,
    pub value: f64,
}

/// The last points of one series.
#[derive(Clone, Debug, Default)]
pub struct Series {
    points: VecDeque<Point>,
    /// The value at which the failure this series can foretell happens
    /// (its latest), if any.
    limit: Option<f64>,
}

impl Series {
    /// Oldest first.
    pub fn points(&self) -> impl DoubleEndedIterator<Item = &Point> + ExactSizeIterator {
        self.points.iter()
    }

    /// The points at or after `since_ms`, oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<Point> {
        let from = self.points.partition_point(|p| p.t_ms < since_ms);
        self.points.range(from..).copied().collect()
    }

    pub fn last(&self) -> Option<Point> {
        self.points.back().copied()
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// How much [`Signals`] keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalsConfig {
    /// Points kept per series (an hour at 10-second rounds).
    pub points_per_series: usize,
    /// Series kept at most; past it the one updated longest ago goes.
    pub max_series: usize,
    /// A series not updated for this long is forgotten.
    pub forget_after_ms: u64,
}

impl Default for SignalsConfig {
    fn default() -> SignalsConfig {
        SignalsConfig {
            points_per_series: 360,
            max_series: 4_000,
            forget_after_ms: 6 * 3_600_000,
        }
    }
}

/// Every series' last points.
#[derive(Clone, Debug, Default)]
pub struct Signals {
    cfg: SignalsConfig,
    series: BTreeMap<SeriesKey, Series>,
}

impl Signals {
    pub fn new(cfg: SignalsConfig) -> Signals {
        Signals {
            cfg,
            series: BTreeMap::new(),
        }
    }

    /// Adds one point per sample at `t_ms`; a point not after the
    /// series' last is dropped (the rings stay in time order).
    pub fn record(&mut self, t_ms: u64, samples: &[Sample]) {
        for s in samples {
            if !s.value.is_finite() {
                continue;
            }
            let series = self.series.entry(s.key.clone()).or_default();
            if series.last().is_some_and(|p| p.t_ms >= t_ms) {
                continue;
            }
            series.points.push_back(Point {
                t_ms,
                value: s.value,
            });
            while series.points.len() > self.cfg.points_per_series.max(1) {
                series.points.pop_front();
            }
            series.limit = s.limit.filter(|l| l.is_finite());
        }
        let forget = t_ms.saturating_sub(self.cfg.forget_after_ms);
        self.series
            .retain(|_, s| s.last().is_some_and(|p| p.t_ms >= forget));
        while self.series.len() > self.cfg.max_series {
            let oldest = self
                .series
                .iter()
                .min_by_key(|(_, s)| s.last().map_or(0, |p| p.t_ms))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.series.remove(&k);
                }
                None => break,
            }
        }
    }

    pub fn get(&self, key: &SeriesKey) -> Option<&Series> {
        self.series.get(key)
    }

    /// Every series, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Series)> {
        self.series.iter()
    }

    /// The series of `metric`, by key.
    pub fn of_metric(&self, metric: Metric) -> impl Iterator<Item = (&SeriesKey, &Series)> {
        self.series.iter().filter(move |(k, _)| k.metric == metric)
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Heap bytes held, roughly (points and keys).
    pub fn memory_bytes(&self) -> usize {
        self.series
            .values()
            .map(|s| s.points.capacity() * size_of::<Point>() + size_of::<SeriesKey>() + 64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::Name;

    fn key(node: &str) -> SeriesKey {
        SeriesKey {
            subject: Subject::Node {
                node: Name::new("node", node).unwrap(),
            },
            metric: Metric::MemoryBytes,
        }
    }

    fn sample(node: &str, value: f64) -> Sample {
        Sample {
            key: key(node),
            value,
            limit: Some(100.0),
        }
    }

    #[test]
    fn rings_keep_the_last_points_in_order() {
        let mut s = Signals::new(SignalsConfig {
            points_per_series: 3,
            ..SignalsConfig::default()
        });
        for t in 1..=5 {
            s.record(t * 1_000, &[sample("a", t as f64)]);
        }
        // Not after the last point: dropped.
        s.record(5_000, &[sample("a", 99.0)]);
        let a = s.get(&key("a")).unwrap();
        let values: Vec<f64> = a.points().map(|p| p.value).collect();
        assert_eq!(values, [3.0, 4.0, 5.0]);
        assert_eq!(a.limit(), Some(100.0));
        assert_eq!(a.since(4_000).len(), 2);
    }

    #[test]
    fn series_are_bounded_and_forgotten() {
        let mut s = Signals::new(SignalsConfig {
            points_per_series: 10,
            max_series: 2,
            forget_after_ms: 10_000,
        });
        s.record(1_000, &[sample("a", 1.0)]);
        s.record(2_000, &[sample("b", 1.0)]);
        s.record(3_000, &[sample("c", 1.0)]);
        assert_eq!(s.len(), 2);
        assert!(
            s.get(&key("a")).is_none(),
            "the one updated longest ago went"
        );
        s.record(20_000, &[sample("c", 2.0)]);
        assert_eq!(s.len(), 1, "b was not updated for 10 s");
    }
}
