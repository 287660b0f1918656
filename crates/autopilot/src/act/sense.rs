//! The troubles the autopilot acts on, read from the cluster's view (a
//! node that stopped reporting, a region with no node serving) and from
//! part 1's findings in the store (predictions, open or come true, and
//! fresh detections on a version's errors or latency).
//! And the memory that keeps one trouble from being decided every round:
//! a trouble is decided when first seen, then again only once its rule's
//! cool-down has passed while it lasts.

use std::collections::BTreeMap;

use state::State;
use state::act::policy::Policy;
use state::act::trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
use state::act::view::ClusterView;
use state::autopilot::{FailureKind, Metric, PredictionStatus, Subject};

/// A detection older than this is not acted on (the detectors speak
/// again while the anomaly lasts).
pub const FRESH_DETECTION_MS: u64 = 60_000;
/// A prediction that came true is acted on (as observed) this long after.
pub const FRESH_HAPPENED_MS: u64 = 10 * 60_000;

/// Troubles the view shows by itself.
pub fn from_view(view: &ClusterView, now_ms: u64) -> Vec<Trouble> {
    let mut out = Vec::new();
    for n in view.nodes.iter().filter(|n| !n.serving && !n.cordoned) {
        out.push(Trouble {
            source: format!("node {} stopped reporting", n.name),
            class: FaultClass::NodeSilent,
            place: Place::Node {
                node: n.name.clone(),
            },
            basis: Basis::Observed,
            score: 1.0,
            seen_ms: now_ms,
            signal: SignalEvidence {
                series: format!("reports of node {}", n.name),
                observed: 0.0,
                band_low: None,
                band_high: None,
                limit: Some(1.0),
            },
        });
    }
    for r in &view.regions {
        let nodes = view.nodes.iter().filter(|n| n.region == r.name).count();
        if nodes > 0 && !r.serving && r.failed_over_to.is_none() {
            out.push(Trouble {
                source: format!("region {} has no node serving", r.name),
                class: FaultClass::RegionLost,
                place: Place::Region {
                    region: r.name.clone(),
                },
                basis: Basis::Observed,
                score: 1.0,
                seen_ms: now_ms,
                signal: SignalEvidence {
                    series: format!("nodes serving in region {}", r.name),
                    observed: 0.0,
                    band_low: None,
                    band_high: None,
                    limit: Some(1.0),
                },
            });
        }
    }
    out
}

/// Troubles from part 1's findings in `state`: every open prediction
/// but a node's silence (a forecast: it may prepare, never destroy), every prediction that came
/// true in the last [`FRESH_HAPPENED_MS`] (observed), and detections on a
/// version's error ratio or p99 latency in the last
/// [`FRESH_DETECTION_MS`] (observed, with their band).
pub fn from_findings(state: &State, now_ms: u64) -> Vec<Trouble> {
    let mut out = Vec::new();
    for p in state.predictions() {
        // A silent node is judged from the reports by `from_view`, on the
        // monotonic clock and at once; a prediction of silence reads the
        // autopilot's clock, which a test clock (or a clock step) moves
        // while every node reports: it would only add false alarms.
        if p.kind == FailureKind::NodeSilent {
            continue;
        }
        let basis = match p.status {
            PredictionStatus::Open => Basis::Forecast,
            PredictionStatus::Happened
                if p.closed_ms
                    .is_some_and(|at| now_ms.saturating_sub(at) < FRESH_HAPPENED_MS) =>
            {
                Basis::Observed
            }
            _ => continue,
        };
        let Some(place) = place_of(&p.subject) else {
            continue;
        };
        out.push(Trouble {
            source: format!("prediction {}: {}", p.id, p.why),
            class: class_of(p.kind),
            place,
            basis,
            score: 1.0,
            seen_ms: now_ms,
            signal: SignalEvidence {
                series: format!("{} of {}", p.series.metric.as_str(), p.subject),
                observed: p.value,
                band_low: None,
                band_high: None,
                limit: Some(p.limit),
            },
        });
    }
    for d in state.detections().rev() {
        if now_ms.saturating_sub(d.t_ms) >= FRESH_DETECTION_MS {
            break;
        }
        let class = match d.series.metric {
            Metric::ErrorRatio => FaultClass::VersionErrors,
            Metric::LatencyP99Ms => FaultClass::VersionLatency,
            _ => continue,
        };
        let Some(place @ (Place::Version { .. } | Place::VersionOnNode { .. })) =
            place_of(&d.series.subject)
        else {
            continue;
        };
        out.push(Trouble {
            source: format!("detection {}", d.id),
            class,
            place,
            basis: Basis::Observed,
            score: d.score,
            seen_ms: now_ms,
            signal: SignalEvidence {
                series: format!("{} of {}", d.series.metric.as_str(), d.series.subject),
                observed: d.observed,
                band_low: d.band.as_ref().map(|b| b.low),
                band_high: d.band.as_ref().map(|b| b.high),
                limit: None,
            },
        });
    }
    out
}

/// The fault class a predicted failure is.
fn class_of(kind: FailureKind) -> FaultClass {
    match kind {
        FailureKind::SlotExhaustion => FaultClass::SlotExhaustion,
        FailureKind::MemoryExhaustion => FaultClass::MemoryExhaustion,
        FailureKind::DiskFull => FaultClass::DiskFull,
        FailureKind::VersionErrors => FaultClass::VersionErrors,
        FailureKind::VersionLatency => FaultClass::VersionLatency,
        FailureKind::NodeSilent => FaultClass::NodeSilent,
        FailureKind::RegionCapacity => FaultClass::RegionCapacity,
        FailureKind::LoadPastCapacity => FaultClass::LoadPastCapacity,
    }
}

/// Where a finding is, as a trouble names it (the whole cluster is no
/// place an action can hold).
fn place_of(subject: &Subject) -> Option<Place> {
    Some(match subject {
        Subject::Cluster => return None,
        Subject::Region { region } => Place::Region {
            region: region.to_string(),
        },
        Subject::Node { node } => Place::Node {
            node: node.to_string(),
        },
        Subject::Tenant { tenant } => Place::Tenant {
            tenant: tenant.to_string(),
        },
        Subject::App { tenant, app } => Place::App {
            tenant: tenant.to_string(),
            app: app.to_string(),
        },
        Subject::Version {
            tenant,
            app,
            version,
        } => Place::Version {
            tenant: tenant.to_string(),
            app: app.to_string(),
            version: *version,
        },
        Subject::VersionOnNode {
            tenant,
            app,
            version,
            node,
        } => Place::VersionOnNode {
            tenant: tenant.to_string(),
            app: app.to_string(),
            version: *version,
            node: node.to_string(),
        },
    })
}

/// When each trouble was last decided about.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    last_ms: BTreeMap<String, u64>,
}

impl Memory {
    /// The troubles due for a decision now: new ones, and lasting ones
    /// whose rule's cool-down has passed. Forgets troubles gone.
    pub fn due(&mut self, troubles: Vec<Trouble>, policy: &Policy, now_ms: u64) -> Vec<Trouble> {
        let keys: Vec<String> = troubles.iter().map(key).collect();
        self.last_ms.retain(|k, _| keys.contains(k));
        let mut out = Vec::new();
        for (t, k) in troubles.into_iter().zip(keys) {
            let rest_ms = policy
                .rule_for(t.class, t.basis, t.score)
                .map_or(state::act::policy::MIN_COOLDOWN_S * 1000, |r| {
                    r.cooldown_s.saturating_mul(1000)
                });
            let due = self
                .last_ms
                .get(&k)
                .is_none_or(|&at| now_ms.saturating_sub(at) >= rest_ms);
            if due {
                self.last_ms.insert(k, now_ms);
                out.push(t);
            }
        }
        out
    }
}

fn key(t: &Trouble) -> String {
    format!("{}|{}|{:?}", t.class, t.place, t.basis)
}
