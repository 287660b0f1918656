//! The route table: path templates under `/api/v1`, the methods each
//! answers, and matching a request path against them. The OpenAPI document
//! and the dispatcher both follow this table.

use hyper::Method;

/// The API's path prefix.
pub(crate) const PREFIX: &str = "/api/v1";

/// The methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn of(method: &Method) -> Option<Verb> {
        match *method {
            Method::GET => Some(Verb::Get),
            Method::POST => Some(Verb::Post),
            Method::PUT => Some(Verb::Put),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

/// Which resource a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteId {
    Health,
    OpenApi,
    Tenants,
    Tenant,
    Apps,
    TenantApps,
    App,
    Versions,
    Deployment,
    Blobs,
    Blob,
    Cluster,
    ClusterNode,
    Nodes,
    JoinTokens,
    JoinToken,
    Watch,
    Events,
    Register,
    RegisterCas,
    Rollouts,
    Rollout,
    RolloutPromote,
    RolloutAbort,
    AppLogs,
    AppTraffic,
    Runbooks,
    Runbook,
    Tokens,
    Token,
    Capacity,
    Planet,
    ClusterGlobal,
    Route,
    Failovers,
    FailoverApprove,
    Costs,
    Prices,
    Audit,
    Users,
    User,
    UserTotp,
    UserTotpConfirm,
    UserTotpEnrollment,
    Session,
    Slos,
    AppSlos,
    AppSlo,
    Incidents,
    Incident,
    IncidentAcknowledge,
    IncidentResolve,
    IncidentNotes,
    TestClock,
    Backup,
    Backups,
    BlobContent,
    AutopilotAnomalies,
    AutopilotPredictions,
    AutopilotCauses,
    AutopilotForecast,
    TenantAutopilotAnomalies,
    TenantAutopilotPredictions,
    TenantAutopilotCauses,
    AppAutopilotForecast,
    AutopilotControls,
    AutopilotPolicy,
    AutopilotDecisions,
    AutopilotDecision,
    AutopilotDecisionUndo,
    AutopilotApprovals,
    AutopilotApprove,
    AutopilotReject,
    TenantAutopilotDecisions,
    RouteConflicts,
    Certify,
    CertifyReports,
    CertifyReport,
    CertifyWaivers,
    CertifyWaiver,
    CertifySignOffs,
    CertifyPolicy,
}

/// One path template and what it answers.
pub(crate) struct Entry {
    pub id: RouteId,
    /// Relative to [`PREFIX`]; `{name}` segments capture one path segment.
    pub template: &'static str,
    pub verbs: &'static [Verb],
    /// Answered without a token (for `GET` only).
    pub public: bool,
}

impl Entry {
    /// The value of an `Allow` header for this path.
    pub fn allow(&self) -> String {
        self.verbs
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const fn entry(id: RouteId, template: &'static str, verbs: &'static [Verb]) -> Entry {
    Entry {
        id,
        template,
        verbs,
        public: false,
    }
}

use Verb::{Delete, Get, Post, Put};

/// Every route of the API.
pub(crate) const TABLE: &[Entry] = &[
    Entry {
        public: true,
        ..entry(RouteId::Health, "/health", &[Get])
    },
    Entry {
        public: true,
        ..entry(RouteId::OpenApi, "/openapi.json", &[Get])
    },
    entry(RouteId::Tenants, "/tenants", &[Get, Post]),
    entry(RouteId::Tenant, "/tenants/{tenant}", &[Delete]),
    entry(RouteId::Apps, "/apps", &[Get]),
    entry(RouteId::TenantApps, "/tenants/{tenant}/apps", &[Post]),
    entry(RouteId::App, "/tenants/{tenant}/apps/{app}", &[Get, Delete]),
    entry(
        RouteId::Versions,
        "/tenants/{tenant}/apps/{app}/versions",
        &[Post],
    ),
    entry(
        RouteId::Deployment,
        "/tenants/{tenant}/apps/{app}/deployment",
        &[Put],
    ),
    entry(
        RouteId::Rollouts,
        "/tenants/{tenant}/apps/{app}/rollouts",
        &[Get, Post],
    ),
    entry(
        RouteId::Rollout,
        "/tenants/{tenant}/apps/{app}/rollout",
        &[Get],
    ),
    entry(
        RouteId::RolloutPromote,
        "/tenants/{tenant}/apps/{app}/rollout/promote",
        &[Post],
    ),
    entry(
        RouteId::RolloutAbort,
        "/tenants/{tenant}/apps/{app}/rollout/abort",
        &[Post],
    ),
    entry(
        RouteId::AppLogs,
        "/tenants/{tenant}/apps/{app}/logs",
        &[Get],
    ),
    entry(
        RouteId::AppTraffic,
        "/tenants/{tenant}/apps/{app}/traffic",
        &[Get],
    ),
    entry(RouteId::Blobs, "/blobs", &[Post]),
    entry(RouteId::Blob, "/blobs/{digest}", &[Get]),
    entry(RouteId::BlobContent, "/blobs/{digest}/content", &[Get]),
    entry(RouteId::Backup, "/backup", &[Get]),
    entry(RouteId::Backups, "/backups", &[Get]),
    entry(RouteId::Cluster, "/cluster", &[Get]),
    entry(RouteId::ClusterGlobal, "/cluster/global", &[Get]),
    entry(RouteId::ClusterNode, "/cluster/nodes/{id}", &[Delete]),
    entry(RouteId::JoinTokens, "/cluster/join-tokens", &[Get, Post]),
    entry(RouteId::JoinToken, "/cluster/join-tokens/{name}", &[Delete]),
    entry(RouteId::Tokens, "/tokens", &[Get, Post]),
    entry(RouteId::Token, "/tokens/{name}", &[Delete]),
    entry(RouteId::Nodes, "/nodes", &[Get]),
    entry(RouteId::Capacity, "/capacity", &[Get]),
    entry(RouteId::Planet, "/planet", &[Get]),
    entry(RouteId::Route, "/route", &[Get]),
    entry(RouteId::Failovers, "/failovers", &[Get]),
    entry(
        RouteId::FailoverApprove,
        "/failovers/{region}/approve",
        &[Post],
    ),
    entry(RouteId::Costs, "/costs", &[Get]),
    entry(RouteId::Audit, "/audit", &[Get]),
    entry(RouteId::Prices, "/prices", &[Get, Put]),
    entry(RouteId::Watch, "/watch", &[Get]),
    entry(RouteId::Events, "/events", &[Get]),
    entry(RouteId::Runbooks, "/runbooks", &[Get]),
    entry(RouteId::Runbook, "/runbooks/{name}", &[Get, Put, Delete]),
    entry(RouteId::Register, "/registers/{key}", &[Get, Put]),
    entry(RouteId::RegisterCas, "/registers/{key}/cas", &[Post]),
    entry(RouteId::Users, "/users", &[Get, Post]),
    entry(RouteId::User, "/users/{name}", &[Delete]),
    entry(RouteId::UserTotp, "/users/{name}/totp", &[Post]),
    entry(
        RouteId::UserTotpConfirm,
        "/users/{name}/totp/confirm",
        &[Post],
    ),
    entry(
        RouteId::UserTotpEnrollment,
        "/users/{name}/totp/enrollment-code",
        &[Post],
    ),
    // `POST /session` (logging in) needs no credentials: the router
    // answers it before authorizing (see `mod.rs`).
    entry(RouteId::Session, "/session", &[Get, Post, Delete]),
    entry(RouteId::Slos, "/slos", &[Get]),
    entry(
        RouteId::AppSlos,
        "/tenants/{tenant}/apps/{app}/slos",
        &[Get],
    ),
    entry(
        RouteId::AppSlo,
        "/tenants/{tenant}/apps/{app}/slos/{name}",
        &[Get, Put, Delete],
    ),
    entry(RouteId::Incidents, "/incidents", &[Get]),
    entry(RouteId::Incident, "/incidents/{id}", &[Get]),
    entry(
        RouteId::IncidentAcknowledge,
        "/incidents/{id}/acknowledge",
        &[Post],
    ),
    entry(RouteId::IncidentResolve, "/incidents/{id}/resolve", &[Post]),
    entry(RouteId::IncidentNotes, "/incidents/{id}/notes", &[Post]),
    entry(RouteId::TestClock, "/test/clock", &[Post]),
    entry(RouteId::AutopilotAnomalies, "/autopilot/anomalies", &[Get]),
    entry(
        RouteId::AutopilotPredictions,
        "/autopilot/predictions",
        &[Get],
    ),
    entry(RouteId::AutopilotCauses, "/autopilot/causes", &[Get]),
    entry(RouteId::AutopilotForecast, "/autopilot/forecast", &[Get]),
    entry(
        RouteId::TenantAutopilotAnomalies,
        "/tenants/{tenant}/autopilot/anomalies",
        &[Get],
    ),
    entry(
        RouteId::TenantAutopilotPredictions,
        "/tenants/{tenant}/autopilot/predictions",
        &[Get],
    ),
    entry(
        RouteId::TenantAutopilotCauses,
        "/tenants/{tenant}/autopilot/causes",
        &[Get],
    ),
    entry(
        RouteId::AppAutopilotForecast,
        "/tenants/{tenant}/apps/{app}/autopilot/forecast",
        &[Get],
    ),
    entry(
        RouteId::AutopilotControls,
        "/autopilot/controls",
        &[Get, Put],
    ),
    entry(RouteId::AutopilotPolicy, "/autopilot/policy", &[Get, Put]),
    entry(RouteId::AutopilotDecisions, "/autopilot/decisions", &[Get]),
    entry(
        RouteId::AutopilotDecision,
        "/autopilot/decisions/{id}",
        &[Get],
    ),
    entry(
        RouteId::AutopilotDecisionUndo,
        "/autopilot/decisions/{id}/undo",
        &[Post],
    ),
    entry(RouteId::AutopilotApprovals, "/autopilot/approvals", &[Get]),
    entry(
        RouteId::AutopilotApprove,
        "/autopilot/approvals/{id}/approve",
        &[Post],
    ),
    entry(
        RouteId::AutopilotReject,
        "/autopilot/approvals/{id}/reject",
        &[Post],
    ),
    entry(
        RouteId::TenantAutopilotDecisions,
        "/tenants/{tenant}/autopilot/decisions",
        &[Get],
    ),
    entry(RouteId::RouteConflicts, "/route-conflicts", &[Get]),
    entry(RouteId::Certify, "/certify", &[Get]),
    entry(RouteId::CertifyReports, "/certify/reports", &[Get, Post]),
    entry(RouteId::CertifyReport, "/certify/reports/{sha256}", &[Get]),
    entry(RouteId::CertifyWaivers, "/certify/waivers", &[Get]),
    entry(
        RouteId::CertifyWaiver,
        "/certify/waivers/{criterion}",
        &[Put, Delete],
    ),
    entry(RouteId::CertifySignOffs, "/certify/sign-offs", &[Post]),
    entry(RouteId::CertifyPolicy, "/certify/policy", &[Put]),
];

/// A path matched against the table, with its captured segments in order.
pub(crate) struct Matched {
    pub entry: &'static Entry,
    pub params: Vec<String>,
}

impl Matched {
    /// The `i`th captured segment (empty if the template has fewer, which
    /// the dispatcher never asks for).
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

/// Finds the route for `path` (the full path, with [`PREFIX`]). Captured
/// segments are never empty.
pub(crate) fn find(path: &str) -> Option<Matched> {
    let rest = path.strip_prefix(PREFIX)?;
    let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    TABLE.iter().find_map(|entry| {
        let template: Vec<&str> = entry.template[1..].split('/').collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (want, got) in template.iter().zip(&segments) {
            if want.starts_with('{') {
                if got.is_empty() {
                    return None;
                }
                params.push((*got).to_string());
            } else if want != got {
                return None;
            }
        }
        Some(Matched { entry, params })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_and_captures_segments() {
        let m = find("/api/v1/tenants/acme/apps/shop/versions").unwrap();
        assert_eq!(m.entry.id, RouteId::Versions);
        assert_eq!(m.params, ["acme", "shop"]);
        let m = find("/api/v1/registers/jepsen-3/cas").unwrap();
        assert_eq!((m.entry.id, m.param(0)), (RouteId::RegisterCas, "jepsen-3"));
        assert_eq!(find("/api/v1/tenants").unwrap().entry.id, RouteId::Tenants);
        for missing in [
            "/api/v1",
            "/api/v1/",
            "/api/v1/tenants/",
            "/api/v1/tenants//apps",
            "/api/v1/nope",
            "/api/v2/tenants",
            "/api/v1tenants",
            "/tenants",
        ] {
            assert!(find(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn allow_lists_the_verbs() {
        let m = find("/api/v1/tenants").unwrap();
        assert_eq!(m.entry.allow(), "GET, POST");
    }
}
