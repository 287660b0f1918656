//! The troubles the nodes' served counters show at once, with no learned
//! band (part 1's detectors need an hour of signal first): a version's
//! warm pool failing on one node while the same version serves elsewhere,
//! and a tenant flooding the cluster while another tenant suffers.
//!
//! [`Traffic`] keeps each node's last report and what every version served
//! on it between its last two reports (a window); [`troubles`] judges the
//! fresh windows. Pure: the caller gives the state and a monotonic time.

use std::collections::BTreeMap;

use state::act::trouble::{Basis, FaultClass, Place, SignalEvidence, Trouble};
use state::{LogHistogram, NodeReport, State};

/// A window with fewer requests says nothing.
pub const MIN_REQUESTS: u64 = 20;
/// A pool failing at least this share of its requests is unhealthy...
pub const POOL_FAILING_RATIO: f64 = 0.5;
/// ... when the same version on another node fails at most this share.
pub const POOL_HEALTHY_RATIO: f64 = 0.05;
/// A tenant sending at least this many requests a second...
pub const FLOOD_MIN_RATE_PER_S: f64 = 200.0;
/// ... and this many times the rate of every other tenant together ...
pub const FLOOD_RATIO: f64 = 4.0;
/// ... floods when another tenant's version fails at least this share of
/// its requests or answers its 99th percentile this late.
pub const VICTIM_ERROR_RATIO: f64 = 0.01;
pub const VICTIM_P99_MS: f64 = 500.0;
/// A window older than this (its node stopped reporting) is not judged.
pub const FRESH_WINDOW_MS: u64 = 10_000;
/// A trouble found lasts this long after it was last found, so that one
/// quiet window does not make it new again (and decided again) when it
/// comes back.
pub const LASTS_MS: u64 = 30_000;

/// What one version served on one node between the node's last two
/// reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p99_ms: Option<f64>,
    /// When it was seen (the caller's monotonic ms).
    pub seen_ms: u64,
}

impl Window {
    fn error_ratio(&self) -> f64 {
        self.errors as f64 / self.requests.max(1) as f64
    }
}

/// `(tenant, app, version, node)`.
pub type PoolId = (String, String, u64, String);

/// The nodes' last reports and the windows between them.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    last: BTreeMap<String, NodeReport>,
    windows: BTreeMap<PoolId, Window>,
    /// The troubles found lately, by class and place, with when last found.
    found: BTreeMap<String, (u64, Trouble)>,
}

impl Traffic {
    /// Reads every node's report in `state`; a report new since the last
    /// read (same boot) gives its node's versions new windows.
    pub fn observe(&mut self, state: &State, now_ms: u64) {
        self.last
            .retain(|n, _| state.nodes().any(|x| x.name.as_str() == n));
        self.windows
            .retain(|id, _| state.nodes().any(|x| x.name.as_str() == id.3));
        for node in state.nodes() {
            let Some(report) = state.report(&node.name) else {
                continue;
            };
            let name = node.name.as_str();
            let before = self.last.get(name);
            if before.is_some_and(|b| b.boot == report.boot && b.sequence == report.sequence) {
                continue;
            }
            if let Some(b) = before.filter(|b| b.boot == report.boot) {
                self.windows.retain(|id, _| id.3 != name);
                let ms = report.usage.uptime_ms.saturating_sub(b.usage.uptime_ms);
                // An older node that does not say its uptime: one report
                // interval is about a second.
                let seconds = if ms == 0 { 1.0 } else { ms as f64 / 1000.0 };
                for v in &report.versions {
                    let base = b
                        .versions
                        .iter()
                        .find(|x| x.tenant == v.tenant && x.app == v.app && x.version == v.version);
                    let requests = v.requests.saturating_sub(base.map_or(0, |x| x.requests));
                    let latency = match base {
                        Some(x) => v.latency_histogram_us.since(&x.latency_histogram_us),
                        None => v.latency_histogram_us.clone(),
                    };
                    self.windows.insert(
                        (
                            v.tenant.to_string(),
                            v.app.to_string(),
                            v.version,
                            name.to_string(),
                        ),
                        Window {
                            requests,
                            errors: v.errors.saturating_sub(base.map_or(0, |x| x.errors)),
                            seconds,
                            p99_ms: p99_ms(&latency),
                            seen_ms: now_ms,
                        },
                    );
                }
            } else {
                // A new boot's counters start again: no window yet.
                self.windows.retain(|id, _| id.3 != name);
            }
            self.last.insert(name.to_string(), report.clone());
        }
    }

    /// The windows seen within [`FRESH_WINDOW_MS`] of `now_ms`.
    fn fresh(&self, now_ms: u64) -> impl Iterator<Item = (&PoolId, &Window)> {
        self.windows
            .iter()
            .filter(move |(_, w)| now_ms.saturating_sub(w.seen_ms) < FRESH_WINDOW_MS)
    }

    /// Sets a window directly (the tests' way in).
    pub fn insert(&mut self, id: PoolId, window: Window) {
        self.windows.insert(id, window);
    }
}

fn p99_ms(h: &LogHistogram) -> Option<f64> {
    h.quantile(0.99).map(|us| us as f64 / 1000.0)
}

impl Traffic {
    /// The troubles the fresh windows show at `now_ms` (monotonic, as the
    /// windows were seen), and those found within [`LASTS_MS`] before;
    /// `seen_ms` is the autopilot's clock for the troubles themselves.
    pub fn troubles(&mut self, now_ms: u64, seen_ms: u64) -> Vec<Trouble> {
        for t in troubles(self, now_ms, seen_ms) {
            self.found
                .insert(format!("{}|{}", t.class, t.place), (now_ms, t));
        }
        self.found
            .retain(|_, (at, _)| now_ms.saturating_sub(*at) < LASTS_MS);
        self.found.values().map(|(_, t)| t.clone()).collect()
    }
}

/// The troubles the fresh windows show at `now_ms`, alone.
fn troubles(traffic: &Traffic, now_ms: u64, seen_ms: u64) -> Vec<Trouble> {
    let mut out = failing_pools(traffic, now_ms, seen_ms);
    out.extend(floods(traffic, now_ms, seen_ms));
    out
}

/// A version's pool failing on one node while the same version serves
/// well on another: the pool, not the version, is at fault.
fn failing_pools(traffic: &Traffic, now_ms: u64, seen_ms: u64) -> Vec<Trouble> {
    let fresh: Vec<(&PoolId, &Window)> = traffic
        .fresh(now_ms)
        .filter(|(_, w)| w.requests >= MIN_REQUESTS)
        .collect();
    let mut out = Vec::new();
    for (id, w) in &fresh {
        let ratio = w.error_ratio();
        if ratio < POOL_FAILING_RATIO {
            continue;
        }
        let healthy_peer = fresh.iter().any(|(o, ow)| {
            (&o.0, &o.1, o.2) == (&id.0, &id.1, id.2)
                && o.3 != id.3
                && ow.error_ratio() <= POOL_HEALTHY_RATIO
        });
        if !healthy_peer {
            continue;
        }
        let (tenant, app, version, node) = (*id).clone();
        out.push(Trouble {
            source: format!(
                "{tenant}/{app}@{version} failed {} of {} requests on {node} but serves on other nodes",
                w.errors, w.requests
            ),
            class: FaultClass::PoolUnhealthy,
            signal: SignalEvidence {
                series: format!("error_ratio of {tenant}/{app}@{version} on {node}"),
                observed: ratio,
                band_low: None,
                band_high: Some(POOL_HEALTHY_RATIO),
                limit: Some(POOL_FAILING_RATIO),
            },
            place: Place::VersionOnNode {
                tenant,
                app,
                version,
                node,
            },
            basis: Basis::Observed,
            score: ratio.min(1.0),
            seen_ms,
        });
    }
    out
}

/// A tenant sending most of the cluster's requests while another tenant's
/// version fails or slows.
fn floods(traffic: &Traffic, now_ms: u64, seen_ms: u64) -> Vec<Trouble> {
    let mut rate: BTreeMap<&str, f64> = BTreeMap::new();
    for (id, w) in traffic.fresh(now_ms) {
        *rate.entry(id.0.as_str()).or_default() += w.requests as f64 / w.seconds.max(0.001);
    }
    let total: f64 = rate.values().sum();
    let mut out = Vec::new();
    for (&tenant, &r) in &rate {
        let others = total - r;
        if r < FLOOD_MIN_RATE_PER_S || r < FLOOD_RATIO * others {
            continue;
        }
        let victim = traffic.fresh(now_ms).find(|(id, w)| {
            id.0 != tenant
                && w.requests > 0
                && (w.error_ratio() >= VICTIM_ERROR_RATIO
                    || w.p99_ms.is_some_and(|p| p >= VICTIM_P99_MS))
        });
        let Some((victim, vw)) = victim else {
            continue;
        };
        out.push(Trouble {
            source: format!(
                "tenant {tenant} sends {r:.0} requests/s, {:.0} % of the cluster's, while {}/{}@{} on {} fails {:.1} % with p99 {} ms",
                100.0 * r / total.max(1.0),
                victim.0,
                victim.1,
                victim.2,
                victim.3,
                100.0 * vw.error_ratio(),
                vw.p99_ms.map_or("-".into(), |p| format!("{p:.0}")),
            ),
            class: FaultClass::TenantFlood,
            place: Place::Tenant {
                tenant: tenant.to_string(),
            },
            basis: Basis::Observed,
            score: (r / total.max(1.0)).min(1.0),
            seen_ms,
            signal: SignalEvidence {
                series: format!("request_rate of tenant {tenant}"),
                observed: r,
                band_low: None,
                band_high: Some(FLOOD_RATIO * others),
                limit: Some(FLOOD_MIN_RATE_PER_S),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 100_000;

    fn window(requests: u64, errors: u64, p99_ms: f64) -> Window {
        Window {
            requests,
            errors,
            seconds: 1.0,
            p99_ms: Some(p99_ms),
            seen_ms: NOW - 500,
        }
    }

    fn id(tenant: &str, app: &str, node: &str) -> PoolId {
        (tenant.into(), app.into(), 1, node.into())
    }

    #[test]
    fn a_pool_failing_on_one_node_while_its_version_serves_elsewhere() {
        let mut t = Traffic::default();
        t.insert(id("acme", "shop", "n1"), window(100, 80, 5.0));
        t.insert(id("acme", "shop", "n2"), window(100, 0, 5.0));
        let found = troubles(&t, NOW, 7);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].class, FaultClass::PoolUnhealthy);
        assert_eq!(
            found[0].place,
            Place::VersionOnNode {
                tenant: "acme".into(),
                app: "shop".into(),
                version: 1,
                node: "n1".into()
            }
        );
        assert_eq!(found[0].seen_ms, 7);
        assert!(found[0].score >= 0.5);
    }

    #[test]
    fn a_version_failing_everywhere_is_no_pool_fault() {
        let mut t = Traffic::default();
        t.insert(id("acme", "shop", "n1"), window(100, 80, 5.0));
        t.insert(id("acme", "shop", "n2"), window(100, 90, 5.0));
        // Too few requests to judge the healthy-looking third.
        t.insert(id("acme", "shop", "n3"), window(5, 0, 5.0));
        assert!(troubles(&t, NOW, 7).is_empty());
    }

    #[test]
    fn a_trouble_lasts_through_a_quiet_window() {
        let mut t = Traffic::default();
        t.insert(id("acme", "shop", "n1"), window(100, 80, 5.0));
        t.insert(id("acme", "shop", "n2"), window(100, 0, 5.0));
        assert_eq!(t.troubles(NOW, 7).len(), 1);
        // The next window is quiet: the trouble is still the same one.
        t.insert(id("acme", "shop", "n1"), window(100, 0, 5.0));
        assert_eq!(t.troubles(NOW + 1_000, 8).len(), 1);
        // Quiet for long enough: gone.
        assert!(t.troubles(NOW + 1_000 + LASTS_MS, 9).is_empty());
    }

    #[test]
    fn stale_windows_are_not_judged() {
        let mut t = Traffic::default();
        t.insert(id("acme", "shop", "n1"), window(100, 80, 5.0));
        t.insert(id("acme", "shop", "n2"), window(100, 0, 5.0));
        assert!(troubles(&t, NOW + FRESH_WINDOW_MS, 7).is_empty());
    }

    #[test]
    fn a_tenant_flooding_while_another_suffers() {
        let mut t = Traffic::default();
        t.insert(id("flood", "app", "n1"), window(900, 0, 50.0));
        t.insert(id("flood", "app", "n2"), window(900, 0, 50.0));
        t.insert(id("acme", "shop", "n1"), window(40, 0, 900.0));
        let found = troubles(&t, NOW, 7);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].class, FaultClass::TenantFlood);
        assert_eq!(
            found[0].place,
            Place::Tenant {
                tenant: "flood".into()
            }
        );
        assert!(found[0].score >= 0.5);
    }

    #[test]
    fn a_busy_tenant_alone_or_with_happy_neighbours_is_no_flood() {
        let mut t = Traffic::default();
        t.insert(id("flood", "app", "n1"), window(1_800, 0, 50.0));
        assert!(troubles(&t, NOW, 7).is_empty(), "no one suffers");
        t.insert(id("acme", "shop", "n1"), window(40, 0, 20.0));
        assert!(troubles(&t, NOW, 7).is_empty(), "the neighbour is fine");
        // Suffering, but the busy tenant is not far ahead of the others.
        t.insert(id("acme", "shop", "n2"), window(600, 30, 900.0));
        assert!(troubles(&t, NOW, 7).is_empty(), "no flood: 1800 vs 640");
    }
}
