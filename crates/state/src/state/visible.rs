//! What a caller whose roles are limited to some tenants may read of the
//! whole state: [`State::visible_to`] is a copy holding their tenants'
//! records only, so every cluster-wide list built from it (the API's
//! apps, audit, nodes, capacity and costs, the dashboard's pages) shows
//! nothing of another tenant, and [`State::event_visible_to`] filters the
//! change feed the same way.
//!
//! Kept whole: the cluster's own facts (nodes and their resources,
//! regions, failovers, prices, runbooks). Dropped: what belongs to no
//! tenant or to the cluster's administrators (credentials, join tokens,
//! users, sessions, registers, the autopilot's cluster-wide findings and
//! acting, certification records). Kept in part: nodes' reports (their counters of visible apps
//! only), the audit trail (requests under `/api/v1/tenants/<tenant>/` of
//! the visible tenants only).

use super::{Record, State};
use crate::{Event, Name};

impl State {
    /// A copy of the state with only what `tenants` may see.
    pub fn visible_to(&self, tenants: &[Name]) -> State {
        let sees = |t: &Name| tenants.contains(t);
        let mut out = State {
            revision: self.revision,
            tenants: keep(&self.tenants, |t, _| sees(t)),
            apps: keep(&self.apps, |(t, _), _| sees(t)),
            versions: keep(&self.versions, |(t, _, _), _| sees(t)),
            deployments: keep(&self.deployments, |(t, _), _| sees(t)),
            placements: keep(&self.placements, |(t, _, _, _), _| sees(t)),
            regions: self.regions.clone(),
            failovers: self.failovers.clone(),
            nodes: self.nodes.clone(),
            reports: self.reports.clone(),
            rollouts: keep(&self.rollouts, |(t, _, _), _| sees(t)),
            runbooks: self.runbooks.clone(),
            prices: self.prices.clone(),
            audit: self
                .audit
                .iter()
                .filter(|e| {
                    audit_tenant(&e.what).is_some_and(|t| tenants.iter().any(|v| v.as_str() == t))
                })
                .cloned()
                .collect(),
            slos: keep(&self.slos, |(t, _, _), _| sees(t)),
            slo_status: keep(&self.slo_status, |(t, _, _), _| sees(t)),
            incidents: keep(&self.incidents, |_, i| sees(&i.tenant)),
            next_incident: self.next_incident,
            ..State::default()
        };
        for report in out.reports.values_mut() {
            report.versions.retain(|v| sees(&v.tenant));
        }
        out.history = self
            .history
            .iter()
            .filter(|e| self.event_visible_to(e, tenants))
            .cloned()
            .collect();
        out.floor = self.floor;
        out
    }

    /// Whether a caller limited to `tenants` may see change `event`: a
    /// change to a record of one of their tenants, or to one of the
    /// cluster's own facts (nodes, reports, regions, failovers, prices,
    /// runbooks, a restore).
    pub fn event_visible_to(&self, event: &Event, tenants: &[Name]) -> bool {
        let first = event.change.key.split('/').next().unwrap_or_default();
        let of_tenant = || tenants.iter().any(|t| t.as_str() == first);
        match event.change.record {
            Record::Tenant
            | Record::App
            | Record::Version
            | Record::Deployment
            | Record::Placement
            | Record::Rollout
            | Record::Slo
            | Record::SloStatus => of_tenant(),
            Record::Incident => event
                .change
                .key
                .parse::<u64>()
                .ok()
                .and_then(|id| self.incidents.get(&id))
                .is_some_and(|i| tenants.contains(&i.tenant)),
            Record::Region
            | Record::Node
            | Record::Report
            | Record::Runbook
            | Record::Prices
            | Record::Failover
            | Record::Restore => true,
            Record::Credential
            | Record::Register
            | Record::User
            | Record::Session
            | Record::Audit
            | Record::Autopilot
            | Record::Act
            | Record::Certification => false,
        }
    }
}

/// The tenant of an audited request `what` (`PUT /api/v1/tenants/acme/…`).
fn audit_tenant(what: &str) -> Option<&str> {
    let path = what.split_once(' ').map_or(what, |(_, p)| p);
    let rest = path.strip_prefix("/api/v1/tenants/")?;
    rest.split(['/', '?']).next().filter(|t| !t.is_empty())
}

fn keep<K: Ord + Clone, V: Clone>(
    map: &std::collections::BTreeMap<K, V>,
    f: impl Fn(&K, &V) -> bool,
) -> std::collections::BTreeMap<K, V> {
    map.iter()
        .filter(|(k, v)| f(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_records_belong_to_the_tenant_of_their_path() {
        assert_eq!(
            audit_tenant("PUT /api/v1/tenants/acme/apps/shop/deployment"),
            Some("acme")
        );
        assert_eq!(audit_tenant("POST /api/v1/tenants/acme"), Some("acme"));
        assert_eq!(audit_tenant("POST /api/v1/tokens"), None);
        assert_eq!(audit_tenant("POST /api/v1/tenants/"), None);
    }
}
