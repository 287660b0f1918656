//! The troubles the autopilot acts on, read from the cluster's view: a
//! node that stopped reporting, a region with no node serving. (Part 1's
//! detections and predictions add theirs through the same [`Trouble`].)
//! And the memory that keeps one trouble from being decided every round:
//! a trouble is decided when first seen, then again only once its rule's
//! cool-down has passed while it lasts.

use std::collections::BTreeMap;

use state::act::policy::Policy;
use state::act::trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
use state::act::view::ClusterView;

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
