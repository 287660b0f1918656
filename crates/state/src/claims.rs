//! Who may serve where: tenant isolation in routing.
//!
//! An app answers at its route (a path prefix, matched on whole segments)
//! on its host, or on every host when it names none; an active blue-green
//! rollout also answers at its preview route on the app's host. Each of
//! these is a [`Claim`] of the app's tenant. The rules, checked by the
//! state machine on every command that makes a claim (so no API path goes
//! around them):
//!
//! - **A host belongs to one tenant**: the first app that names it claims
//!   it; another tenant's app may not name it.
//! - **A prefix is owned**: no claim of one tenant may be equal to, under
//!   or above a claim of another tenant where their hosts meet (the same
//!   host, or either of them on every host). So tenant `evil` cannot add
//!   `/hello/login`, `/hello` on host `127.0.0.1`, or `/`, next to tenant
//!   `acme`'s `/hello`.
//! - **Shared hosts are for the cluster's own roles**: every host (no
//!   host), an IP address or `localhost` is shared by whatever answers
//!   there, so only a caller with a role on every tenant (who may change
//!   every tenant's apps anyway) places an app on one; a caller whose roles
//!   are limited to some tenants ([`crate::Command::Scoped`]) needs a DNS
//!   name of their own.
//!
//! A state written before these rules may break them: [`State::route_conflicts`]
//! lists what does, for `dwcp up` to warn about and the API to show.

use serde::Serialize;

use crate::state::State;
use crate::{Name, Rejection};

/// Who asks for a claim: what [`crate::Command::Scoped`] says of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// The cluster itself, or a caller with a role on every tenant (an
    /// unscoped command): may claim a shared host.
    Cluster,
    /// A caller whose roles are limited to some tenants.
    Tenant,
}

/// One place an app answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub tenant: Name,
    pub app: Name,
    /// `None`: every host.
    pub host: Option<String>,
    /// The path prefix.
    pub route: String,
    /// `route`, or `preview of rollout N`.
    pub kind: String,
}

impl Claim {
    fn describe(&self) -> String {
        let on = self
            .host
            .as_deref()
            .map_or_else(|| "every host".to_string(), |h| format!("host {h}"));
        format!(
            "{} {} of app {}/{} on {on}",
            self.kind, self.route, self.tenant, self.app
        )
    }
}

/// Two claims of different tenants that break the rules: what
/// [`State::route_conflicts`] reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteConflict {
    pub first: Claim,
    pub second: Claim,
    /// Which rule: `host` (both name it) or `route` (prefixes nest).
    pub rule: &'static str,
}

/// Whether one prefix is the other or lies under it, on whole segments
/// (`/hello` and `/hello/login` are; `/hello` and `/hellox` are not; `/`
/// is above every prefix), as the gateway matches them.
pub fn prefixes_nest(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        outer == "/"
            || inner == outer
            || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
    };
    under(a, b) || under(b, a)
}

/// Whether requests for `host` may be answered by apps of more than one
/// tenant: every host (`None`), an IP address (a last label that is a
/// number, as browsers read `127.1` or `0x7f.1`), or `localhost`.
pub fn is_shared_host(host: Option<&str>) -> bool {
    let Some(host) = host else {
        return true;
    };
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    numeric || host == "localhost" || host.ends_with(".localhost")
}

fn hosts_meet(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl State {
    /// Every claim: each app's route, and each active rollout's preview.
    pub fn claims(&self) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self
            .apps()
            .map(|a| Claim {
                tenant: a.tenant.clone(),
                app: a.name.clone(),
                host: a.host.clone(),
                route: a.route.clone(),
                kind: "route".into(),
            })
            .collect();
        for r in self.active_rollouts() {
            if let (Some(preview), Some(app)) =
                (r.plan.preview_route(), self.app(&r.tenant, &r.app))
            {
                claims.push(Claim {
                    tenant: r.tenant.clone(),
                    app: r.app.clone(),
                    host: app.host.clone(),
                    route: preview.to_string(),
                    kind: format!("preview of rollout {}", r.id),
                });
            }
        }
        claims
    }

    /// Refuses a claim of `tenant` on `host` at `route` that breaks the
    /// rules of this module against the claims of other tenants. `field`
    /// names the route in the refusal (`route`, or the plan's preview).
    pub(crate) fn check_claim(
        &self,
        tenant: &Name,
        host: Option<&str>,
        route: &str,
        field: &str,
        authority: Authority,
    ) -> Result<(), Rejection> {
        if authority == Authority::Tenant && is_shared_host(host) {
            return Err(Rejection::invalid(
                "host",
                host.unwrap_or("(every host)"),
                "a DNS name for this tenant's apps (e.g. shop.example.com): an app on every host, an IP address or localhost shares its origin with other tenants' apps, so it needs a role on every tenant (`*`)",
            ));
        }
        let others = self.claims().into_iter().filter(|c| &c.tenant != tenant);
        for other in others {
            if let (Some(host), Some(theirs)) = (host, other.host.as_deref())
                && host == theirs
            {
                return Err(Rejection::conflict(
                    "host",
                    host,
                    format!(
                        "a host no other tenant serves (tenant {} has {})",
                        other.tenant,
                        other.describe()
                    ),
                ));
            }
            if hosts_meet(host, other.host.as_deref()) && prefixes_nest(route, &other.route) {
                return Err(Rejection::conflict(
                    field,
                    route,
                    format!(
                        "a path prefix neither equal to, under nor above another tenant's (tenant {} has {})",
                        other.tenant,
                        other.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The pairs of claims of different tenants that break the rules
    /// (possible only in a state written before they were checked), each
    /// pair once.
    pub fn route_conflicts(&self) -> Vec<RouteConflict> {
        let claims = self.claims();
        let mut conflicts = Vec::new();
        for (i, first) in claims.iter().enumerate() {
            for second in &claims[i + 1..] {
                if first.tenant == second.tenant {
                    continue;
                }
                let rule = match (first.host.as_deref(), second.host.as_deref()) {
                    (Some(a), Some(b)) if a == b => Some("host"),
                    (a, b) if hosts_meet(a, b) && prefixes_nest(&first.route, &second.route) => {
                        Some("route")
                    }
                    _ => None,
                };
                if let Some(rule) = rule {
                    conflicts.push(RouteConflict {
                        first: first.clone(),
                        second: second.clone(),
                        rule,
                    });
                }
            }
        }
        conflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_nest_on_whole_segments() {
        for (a, b) in [
            ("/hello", "/hello"),
            ("/hello", "/hello/login"),
            ("/hello/login/x", "/hello"),
            ("/", "/anything"),
            ("/a/b", "/"),
        ] {
            assert!(prefixes_nest(a, b), "{a} {b}");
        }
        for (a, b) in [("/hello", "/hellox"), ("/a/b", "/a/c"), ("/ab", "/a")] {
            assert!(!prefixes_nest(a, b), "{a} {b}");
        }
    }

    #[test]
    fn shared_hosts_are_every_host_addresses_and_localhost() {
        for shared in [
            None,
            Some("127.0.0.1"),
            Some("127.1"),
            Some("2130706433"),
            Some("0x7f.1"),
            Some("localhost"),
            Some("app.localhost"),
        ] {
            assert!(is_shared_host(shared), "{shared:?}");
        }
        for own in ["shop.example.com", "example", "a1.b2", "x.0x7g"] {
            assert!(!is_shared_host(Some(own)), "{own}");
        }
    }
}
