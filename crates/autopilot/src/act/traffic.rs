//! The troubles the nodes' served counters show at once, with no learned
//! band (part 1's detectors need an hour of signal first): a version's
//! warm pool failing on one node while the same version serves elsewhere,
//! a rollout's canary failing while the app's other versions serve, and a
//! tenant flooding the cluster while another tenant suffers.
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
/// A rollout's canary is judged over all it served since its rollout
/// began, once it served this many requests: the gateway's breaker takes
/// a version that fails five times in a row out of the split and lets one
/// trial request through every five seconds, so a canary that fails hard
/// never fills a window.
pub const CANARY_MIN_REQUESTS: u64 = 10;
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
    /// The version each app's running rollout brings in (its canary), by
    /// `(tenant, app)`, as of the last read, with the rollout's id.
    canaries: BTreeMap<(String, String), (u64, u64)>,
    /// What each canary served since its rollout began (requests,
    /// errors), by `(tenant, app, rollout id)`.
    canary_served: BTreeMap<(String, String, u64), (u64, u64)>,
}

impl Traffic {
    /// Reads every node's report in `state`; a report new since the last
    /// read (same boot) gives its node's versions new windows.
    pub fn observe(&mut self, state: &State, now_ms: u64) {
        self.canaries = state
            .active_rollouts()
            .map(|r| ((r.tenant.to_string(), r.app.to_string()), (r.id, r.to)))
            .collect();
        let canaries = &self.canaries;
        self.canary_served.retain(|(tenant, app, rollout), _| {
            canaries
                .get(&(tenant.clone(), app.clone()))
                .is_some_and(|&(id, _)| id == *rollout)
        });
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
            let mut new = Vec::new();
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
                    new.push((
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
                    ));
                }
            } else {
                // A new boot's counters start again: no window yet.
                self.windows.retain(|id, _| id.3 != name);
            }
            for (id, window) in new {
                self.record(id, window);
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

    /// Keeps a new window, and adds it to its version's tally when the
    /// version is a running rollout's canary.
    fn record(&mut self, id: PoolId, window: Window) {
        if let Some(&(rollout, canary)) = self.canaries.get(&(id.0.clone(), id.1.clone()))
            && canary == id.2
        {
            let tally = self
                .canary_served
                .entry((id.0.clone(), id.1.clone(), rollout))
                .or_default();
            tally.0 += window.requests;
            tally.1 += window.errors;
        }
        self.windows.insert(id, window);
    }

    /// Sets a window directly (the tests' way in).
    pub fn insert(&mut self, id: PoolId, window: Window) {
        self.record(id, window);
    }

    /// Marks `version` as the canary of running rollout `rollout` of
    /// `tenant/app` (the tests' way in; [`Traffic::observe`] reads them
    /// from the state).
    pub fn set_canary(&mut self, tenant: &str, app: &str, rollout: u64, version: u64) {
        self.canaries
            .insert((tenant.to_string(), app.to_string()), (rollout, version));
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
    out.extend(failing_canaries(traffic, now_ms, seen_ms));
    out.extend(floods(traffic, now_ms, seen_ms));
    out
}

/// Requests and errors of one version over its fresh windows on every
/// node.
fn served(traffic: &Traffic, now_ms: u64, tenant: &str, app: &str, version: u64) -> (u64, u64) {
    traffic
        .fresh(now_ms)
        .filter(|(id, _)| id.0 == tenant && id.1 == app && id.2 == version)
        .fold((0, 0), |(r, e), (_, w)| (r + w.requests, e + w.errors))
}

/// A running rollout's canary failing (over all it served since its
/// rollout began, on every node) while another version of the same app —
/// the stable one, or the rollout's baseline copy of it — serves well now:
/// the new version, not a node, is at fault, and the rollout is still
/// under way, so taking it back asks no one (it has not passed). Only a
/// rollout's canary is judged: a version deployed whole has no healthy
/// version beside it, and an older version failing beside a newer one is
/// no reason to roll the older back.
fn failing_canaries(traffic: &Traffic, now_ms: u64, seen_ms: u64) -> Vec<Trouble> {
    let mut out = Vec::new();
    for ((tenant, app), &(rollout, canary)) in &traffic.canaries {
        let Some(&(requests, errors)) =
            traffic
                .canary_served
                .get(&(tenant.clone(), app.clone(), rollout))
        else {
            continue;
        };
        if requests < CANARY_MIN_REQUESTS {
            continue;
        }
        let ratio = errors as f64 / requests as f64;
        if ratio < POOL_FAILING_RATIO {
            continue;
        }
        let mut others: Vec<u64> = traffic
            .fresh(now_ms)
            .filter(|(id, _)| &id.0 == tenant && &id.1 == app && id.2 != canary)
            .map(|(id, _)| id.2)
            .collect();
        others.dedup();
        let healthy = others.into_iter().find(|&v| {
            let (r, e) = served(traffic, now_ms, tenant, app, v);
            r >= MIN_REQUESTS && e as f64 / r as f64 <= POOL_HEALTHY_RATIO
        });
        let Some(healthy) = healthy else {
            continue;
        };
        out.push(Trouble {
            source: format!(
                "the canary {tenant}/{app}@{canary} failed {errors} of {requests} requests since rollout {rollout} began, while version {healthy} serves"
            ),
            class: FaultClass::VersionErrors,
            signal: SignalEvidence {
                series: format!("error_ratio of {tenant}/{app}@{canary}"),
                observed: ratio,
                band_low: None,
                band_high: Some(POOL_HEALTHY_RATIO),
                limit: Some(POOL_FAILING_RATIO),
            },
            place: Place::Version {
                tenant: tenant.clone(),
                app: app.clone(),
                version: canary,
            },
            basis: Basis::Observed,
            score: ratio.min(1.0),
            seen_ms,
        });
    }
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
    fn a_failing_canary_beside_a_healthy_stable_version() {
        let v = |n: u64, node: &str| ("acme".to_string(), "shop".to_string(), n, node.to_string());
        let fill = |t: &mut Traffic| {
            // The canary (2) fails on both nodes, version 1 serves.
            t.insert(v(1, "n1"), window(80, 0, 5.0));
            t.insert(v(2, "n1"), window(6, 6, 5.0));
            t.insert(v(2, "n2"), window(6, 3, 5.0));
        };
        let mut t = Traffic::default();
        fill(&mut t);
        assert!(
            troubles(&t, NOW, 7).is_empty(),
            "no rollout running: version 2 is no canary"
        );
        let mut t = Traffic::default();
        t.set_canary("acme", "shop", 4, 2);
        fill(&mut t);
        let found = troubles(&t, NOW, 7);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].class, FaultClass::VersionErrors);
        assert_eq!(
            found[0].place,
            Place::Version {
                tenant: "acme".into(),
                app: "shop".into(),
                version: 2
            }
        );
        // Summed over nodes: 9 of 12.
        assert!((found[0].signal.observed - 9.0 / 12.0).abs() < 1e-9);
        assert!(found[0].source.contains("version 1 serves"), "{found:?}");
        // A new rollout of the same version starts its tally again.
        t.set_canary("acme", "shop", 5, 2);
        assert!(troubles(&t, NOW, 7).is_empty());
    }

    #[test]
    fn a_canary_is_judged_over_every_window_since_its_rollout_began() {
        let v = |n: u64| ("acme".to_string(), "shop".to_string(), n, "n1".to_string());
        let mut t = Traffic::default();
        t.set_canary("acme", "shop", 1, 2);
        // The breaker lets a trial request through now and then: each
        // window holds one failure, too few alone.
        for k in 0..CANARY_MIN_REQUESTS - 1 {
            t.insert(v(1), window(80, 0, 5.0));
            t.insert(v(2), window(1, 1, 5.0));
            assert!(troubles(&t, NOW, k).is_empty());
        }
        t.insert(v(2), window(1, 1, 5.0));
        assert_eq!(troubles(&t, NOW, 9).len(), 1);
    }

    #[test]
    fn a_canary_is_not_judged_without_a_healthy_version_or_enough_requests() {
        let v = |n: u64| ("acme".to_string(), "shop".to_string(), n, "n1".to_string());
        let mut t = Traffic::default();
        t.set_canary("acme", "shop", 1, 2);
        // Both fail: the app, not the canary.
        t.insert(v(1), window(80, 40, 5.0));
        t.insert(v(2), window(30, 30, 5.0));
        assert!(troubles(&t, NOW, 7).is_empty());
        // Stable serves, but the canary served too few to judge.
        let mut t = Traffic::default();
        t.set_canary("acme", "shop", 1, 2);
        t.insert(v(1), window(80, 0, 5.0));
        t.insert(
            v(2),
            window(CANARY_MIN_REQUESTS - 1, CANARY_MIN_REQUESTS - 1, 5.0),
        );
        assert!(troubles(&t, NOW, 7).is_empty());
        // Stable fails while the canary serves: nothing to roll back.
        let mut t = Traffic::default();
        t.set_canary("acme", "shop", 1, 2);
        t.insert(v(1), window(80, 80, 5.0));
        t.insert(v(2), window(80, 0, 5.0));
        assert!(troubles(&t, NOW, 7).is_empty());
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
