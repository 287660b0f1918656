//! Bearer tokens: a request's token is hashed and looked up among the
//! credentials in the replicated state; its role says what it may do
//! ([`permit`]): `admin` everything, `operator` reads and changes to apps,
//! `viewer` reads only; `join` tokens only join nodes.
//!
//! Users log in instead (`session.rs`) and send the session cookie: their
//! role depends on the tenant a route acts in ([`permit_request`]),
//! changes need the session's CSRF token ([`check_csrf`]), and the admin
//! actions of [`needs_mfa`] need a login that passed TOTP. Tokens are
//! machine credentials: no TOTP applies to them.

use std::collections::BTreeMap;

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE};
use state::Role;

use super::error::ApiError;
use super::router::{Matched, RouteId, Verb};
use crate::ControlPlane;

/// The bearer token of a request, if it carries one in the right form.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("this route needs a token: send `Authorization: Bearer <token>`")
    })?;
    let text = value.to_str().map_err(|_| {
        ApiError::unauthorized("the Authorization header must be `Bearer <token>` in ASCII")
    })?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

/// How a caller authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// A bearer token: a machine credential, not subject to TOTP.
    Token,
    /// A user's session cookie.
    Session {
        /// Whether the login passed the TOTP second factor.
        mfa: bool,
        /// The session's CSRF token, which changes (non-GET) requests
        /// must carry in `x-csrf-token`.
        csrf: String,
        /// The sha256 of the session's token (its key in the state).
        sha256: String,
        expires_unix_ms: u64,
    },
}

/// Who is calling: the credential's or user's name, their role on the
/// whole cluster, their roles per tenant and how they authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    pub name: String,
    /// A token's role; a user's role on every tenant (`*`), else viewer.
    pub role: Role,
    /// Per tenant (or `*`) the caller's role; a token's is `{"*": role}`.
    pub roles: BTreeMap<String, Role>,
    pub via: Via,
}

impl Caller {
    /// The name audit records and rollout trails carry: a token's name,
    /// or `user:<name>` for a user's session.
    pub fn audit_name(&self) -> String {
        match self.via {
            Via::Token => self.name.clone(),
            Via::Session { .. } => format!("user:{}", self.name),
        }
    }

    /// Whether this is the session of user `name`.
    pub fn is_user(&self, name: &str) -> bool {
        matches!(self.via, Via::Session { .. }) && self.name == name
    }

    /// Whether this is a user's session that did not pass TOTP.
    pub fn lacks_mfa(&self) -> bool {
        matches!(self.via, Via::Session { mfa: false, .. })
    }

    /// The tenants this caller's changes are limited to, for
    /// [`state::Command::Scoped`]: `None` for a token or a user who is an
    /// operator or admin on every tenant (`*`, who may change every
    /// tenant's apps anyway), else the tenants where the user is an
    /// operator or admin.
    pub fn scope(&self) -> Option<Vec<state::Name>> {
        let changes_all = |role: Option<&Role>| matches!(role, Some(Role::Admin | Role::Operator));
        if self.via == Via::Token || changes_all(self.roles.get(state::users::ALL_TENANTS)) {
            return None;
        }
        Some(
            self.roles
                .iter()
                .filter(|(_, role)| changes_all(Some(role)))
                .filter_map(|(tenant, _)| state::Name::new("tenant", tenant).ok())
                .collect(),
        )
    }

    /// The tenants a user whose roles are limited to some tenants may
    /// read (any role there); `None` for a token or a user with a role on
    /// every tenant (`*`), who reads everything.
    pub fn limited_to(&self) -> Option<Vec<state::Name>> {
        if self.via == Via::Token || self.roles.contains_key(state::users::ALL_TENANTS) {
            return None;
        }
        Some(
            self.roles
                .keys()
                .filter_map(|tenant| state::Name::new("tenant", tenant).ok())
                .collect(),
        )
    }

    /// `state` as this caller may read it: whole, or only their tenants'
    /// records ([`state::State::visible_to`]).
    pub fn view<'a>(&self, state: &'a state::State) -> std::borrow::Cow<'a, state::State> {
        match self.limited_to() {
            None => std::borrow::Cow::Borrowed(state),
            Some(tenants) => std::borrow::Cow::Owned(state.visible_to(&tenants)),
        }
    }

    /// Whether the caller may read what belongs to `tenant`: any role
    /// there (or on every tenant).
    pub fn sees(&self, tenant: &str) -> bool {
        self.role_in(tenant).is_some()
    }

    /// Refuses, as not found (what the caller may not see does not exist
    /// for them), a record of a tenant the caller has no role in.
    pub fn check_sees(&self, tenant: &str, what: &str) -> Result<(), ApiError> {
        if self.sees(tenant) {
            return Ok(());
        }
        Err(ApiError::not_found(format!("{what} does not exist")))
    }

    /// The caller's strongest role in any tenant.
    fn strongest(&self) -> Option<Role> {
        self.roles.values().copied().reduce(state::users::stronger)
    }

    /// The caller's role in `tenant` (a token's role everywhere).
    pub fn role_in(&self, tenant: &str) -> Option<Role> {
        let here = self.roles.get(tenant).copied();
        let all = self.roles.get(state::users::ALL_TENANTS).copied();
        match (here, all) {
            (Some(a), Some(b)) => Some(state::users::stronger(a, b)),
            (a, b) => a.or(b),
        }
    }
}

/// The name of the session cookie: a `__Host-` cookie (see
/// `cluster::credentials`, which the gateway strips it by).
pub(crate) const SESSION_COOKIE: &str = ::cluster::credentials::SESSION_COOKIE;
/// The header carrying the CSRF token of a cookie-authenticated change.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Lets the request through if it carries a bearer token of an API
/// credential (admin, operator or viewer) or, without an `Authorization`
/// header, the cookie of a live session; who it is.
pub(crate) async fn authorize<P: ControlPlane>(
    plane: &P,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    if !headers.contains_key(AUTHORIZATION) && session_cookie(headers).is_some() {
        return session_caller(plane, headers).await;
    }
    let hash = state::digest_of(bearer(headers)?.as_bytes());
    let find = move |state: &state::State| {
        state
            .credential_by_hash(&hash)
            .map(|c| (c.role, c.name.to_string()))
    };
    // This node's applied state answers at once, even when no leader can
    // be reached; only a token it does not know yet (made moments ago
    // elsewhere) costs a linearizable read. A deleted credential stops
    // working on a node once it has applied the deletion.
    let found = match plane.read_local(find.clone()) {
        Some(found) => Some(found),
        None => plane.read(find).await?,
    };
    match found {
        Some((Role::Join, _)) => Err(ApiError::forbidden(
            "this token may only join nodes to the cluster; use an API token",
        )),
        Some((role, name)) => Ok(Caller {
            name,
            role,
            roles: [(state::users::ALL_TENANTS.to_string(), role)].into(),
            via: Via::Token,
        }),
        None => Err(ApiError::unauthorized(
            "the token is not known (it may have been deleted); ask an admin for a token",
        )),
    }
}

/// The value of the session cookie, if the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// The CSRF token of the session whose token is `token`: derived from it
/// (sha256 under a label), so any node can give it again (`GET
/// /session`) while the state keeps only its hash, and knowing it reveals
/// nothing of the session token.
pub(crate) fn csrf_of(token: &str) -> String {
    state::digest_of(format!("dwcp csrf v1:{token}").as_bytes())
}

/// Authenticates a request by its session cookie alone (the dashboard's
/// HTML pages call this): the user, their roles and whether the login
/// passed TOTP; 401 without a live session.
pub(crate) async fn session_caller<P: ControlPlane>(
    plane: &P,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let token = session_cookie(headers)
        .ok_or_else(|| ApiError::unauthorized("no session: log in with POST /api/v1/session"))?;
    if !state::is_sha256_hex(token) {
        return Err(ApiError::unauthorized(
            "the session cookie is malformed; log in again",
        ));
    }
    let sha256 = state::digest_of(token.as_bytes());
    let key = sha256.clone();
    let find = move |state: &state::State| {
        let session = state.session(&key)?;
        let user = state.user(&session.user)?;
        Some((session.clone(), user.roles.clone()))
    };
    let found = match plane.read_local(find.clone()) {
        Some(found) => Some(found),
        None => plane.read(find).await?,
    };
    let Some((session, roles)) = found else {
        return Err(ApiError::unauthorized(
            "the session is not known (logged out, or the user changed); log in again",
        ));
    };
    if session.expires_unix_ms <= super::reply::now_unix_ms() {
        return Err(ApiError::unauthorized(
            "the session has expired; log in again",
        ));
    }
    let role = roles
        .get(state::users::ALL_TENANTS)
        .copied()
        .unwrap_or(Role::Viewer);
    Ok(Caller {
        name: session.user.to_string(),
        role,
        roles,
        via: Via::Session {
            mfa: session.mfa,
            csrf: csrf_of(token),
            sha256,
            expires_unix_ms: session.expires_unix_ms,
        },
    })
}

/// A change (any method but GET) made with a session cookie must carry the
/// session's CSRF token in `x-csrf-token`: a page of another site can make
/// the browser send the cookie, not read the token.
pub(crate) fn check_csrf(caller: &Caller, verb: Verb, headers: &HeaderMap) -> Result<(), ApiError> {
    let Via::Session { csrf, .. } = &caller.via else {
        return Ok(());
    };
    if verb == Verb::Get {
        return Ok(());
    }
    let sent = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    if crate::totp::constant_time_eq(sent, csrf.as_bytes()) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "a change made with a session cookie needs the header `{CSRF_HEADER}` with the session's CSRF token (`csrf` in the answer of POST or GET /api/v1/session)"
    )))
}

/// Routes that, for a user's session, need a login that passed TOTP:
/// rollout promote and abort, membership changes and user management.
fn needs_mfa(route: RouteId, verb: Verb) -> bool {
    use RouteId as R;
    matches!(
        route,
        R::RolloutPromote
            | R::RolloutAbort
            | R::ClusterNode
            | R::JoinTokens
            | R::JoinToken
            | R::User
            | R::UserTotpEnrollment
            | R::FailoverApprove
            | R::CertifyWaiver
            | R::CertifySignOffs
            | R::CertifyPolicy
            | R::AutopilotDecisionUndo
            | R::AutopilotApprove
            | R::AutopilotReject
    ) || (matches!(route, R::Users | R::AutopilotControls | R::AutopilotPolicy)
        && verb != Verb::Get)
        || matches!(route, R::UserTotp | R::UserTotpConfirm)
}

/// The autopilot's cluster-wide routes (nodes', regions' and every
/// tenant's findings).
fn is_cluster_autopilot(route: RouteId) -> bool {
    use RouteId as R;
    matches!(
        route,
        R::AutopilotAnomalies
            | R::AutopilotPredictions
            | R::AutopilotCauses
            | R::AutopilotForecast
            | R::AutopilotDecisions
            | R::AutopilotDecision
            | R::AutopilotApprovals
    )
}

/// The tenant a route acts in, if it is one of a tenant's.
fn tenant_of(matched: &Matched) -> Option<&str> {
    use RouteId as R;
    matches!(
        matched.entry.id,
        R::TenantApps
            | R::App
            | R::Versions
            | R::Deployment
            | R::Rollouts
            | R::Rollout
            | R::RolloutPromote
            | R::RolloutAbort
            | R::AppLogs
            | R::AppTraffic
            | R::TenantAutopilotAnomalies
            | R::TenantAutopilotPredictions
            | R::TenantAutopilotCauses
            | R::AppAutopilotForecast
            | R::TenantAutopilotDecisions
            | R::AppSlos
            | R::AppSlo
    )
    .then(|| matched.param(0))
}

/// Routes of records that each belong to a tenant the path does not name
/// (incidents by id, and the lists of SLOs and incidents): a user acts by
/// their strongest role, and the handler shows or changes only records of
/// tenants where the user has one ([`Caller::sees`]; the state machine
/// holds a scoped user's changes to their tenants too).
fn checked_per_record(route: RouteId) -> bool {
    use RouteId as R;
    matches!(
        route,
        R::Slos
            | R::Incidents
            | R::Incident
            | R::IncidentAcknowledge
            | R::IncidentResolve
            | R::IncidentNotes
    )
}

/// Cluster-wide lists whose handlers show a user with roles in some
/// tenants only those tenants' records ([`Caller::view`]).
fn filtered_for_tenants(route: RouteId) -> bool {
    use RouteId as R;
    matches!(
        route,
        R::Tenants
            | R::Apps
            | R::Audit
            | R::Watch
            | R::Nodes
            | R::Capacity
            | R::Costs
            | R::RouteConflicts
            | R::Events
    )
}

/// Cluster-wide reads that hold no tenant's records: the cluster's
/// members and regions, routing, failovers, prices, runbooks, and an
/// artifact's size by its digest.
fn cluster_fact(route: RouteId) -> bool {
    use RouteId as R;
    matches!(
        route,
        R::Cluster
            | R::ClusterGlobal
            | R::Planet
            | R::Route
            | R::Failovers
            | R::Prices
            | R::Runbooks
            | R::Runbook
            | R::Blob
    )
}

/// Whether `caller` may make this request: a token by its role
/// ([`permit`]); a user by their role in the route's tenant (or on every
/// tenant, `*`, for what is not a tenant's: cluster-wide reads need any
/// role, cluster-wide changes a role on `*`). A user's session that did
/// not pass TOTP acts at most as an operator and may not call the routes
/// of [`needs_mfa`]. Anyone may see and end their own session, and enroll
/// in and confirm their own TOTP.
pub(crate) fn permit_request(
    caller: &Caller,
    matched: &Matched,
    verb: Verb,
) -> Result<(), ApiError> {
    use RouteId as R;
    let route = matched.entry.id;
    if route == R::Session
        || (matches!(route, R::UserTotp | R::UserTotpConfirm) && caller.is_user(matched.param(0)))
    {
        return Ok(());
    }
    if caller.via == Via::Token {
        return permit(caller.role, route, verb);
    }
    let per_record = checked_per_record(route)
        .then(|| caller.strongest())
        .flatten();
    let role = match (per_record, tenant_of(matched)) {
        (Some(role), _) => role,
        (None, Some(tenant)) => caller.role_in(tenant).ok_or_else(|| {
            ApiError::forbidden(format!(
                "user `{}` has no role in tenant `{}`",
                caller.name,
                tenant.chars().take(63).collect::<String>()
            ))
        })?,
        (None, None) => match caller.roles.get(state::users::ALL_TENANTS) {
            Some(role) => *role,
            // The cluster-wide findings hold every tenant's: a user with
            // roles in some tenants reads the tenant-scoped routes.
            None if is_cluster_autopilot(route) => {
                return Err(ApiError::forbidden(format!(
                    "user `{}` has roles in some tenants only; the cluster's autopilot findings need a role on every tenant (`*`): read /api/v1/tenants/{{tenant}}/autopilot/… instead",
                    caller.name
                )));
            }
            // Cluster-wide lists a user with roles in some tenants reads
            // filtered to them (the handlers take the caller), and the
            // cluster's own facts; nothing else.
            None if verb == Verb::Get && (filtered_for_tenants(route) || cluster_fact(route)) => {
                Role::Viewer
            }
            // Artifacts are content-addressed and shared: an operator of
            // any tenant may upload one.
            None if route == R::Blobs && caller.roles.values().any(|r| *r != Role::Viewer) => {
                Role::Operator
            }
            None => {
                return Err(ApiError::forbidden(format!(
                    "user `{}` has roles in some tenants only; changing tenants, prices, runbooks or the cluster's members, and reading tokens, join tokens, users, registers or backups, need a role on every tenant (`*`)",
                    caller.name
                )));
            }
        },
    };
    if permit(role, route, verb).is_err() {
        return Err(ApiError::forbidden(match role {
            Role::Viewer => format!("user `{}` is a viewer here: it may only read", caller.name),
            _ => format!(
                "user `{}` is an operator here: tenants, tokens, users, prices and the cluster's members need the admin role on every tenant (`*`)",
                caller.name
            ),
        }));
    }
    if caller.lacks_mfa()
        && (needs_mfa(route, verb) || permit(Role::Operator, route, verb).is_err())
    {
        return Err(ApiError::forbidden(format!(
            "this needs a login that passed TOTP: enroll (POST /api/v1/users/{0}/totp with the one-time `enrollment_code` an admin made for you), confirm a code (POST /api/v1/users/{0}/totp/confirm), then log in again with `totp`",
            caller.name
        )));
    }
    Ok(())
}

/// Whether `role` may call `route` with `verb`: viewers read; operators
/// read and change apps (versions, deployments, rollouts, artifacts,
/// runbooks, registers); admins also manage tenants, tokens, prices and
/// members.
pub(crate) fn permit(role: Role, route: RouteId, verb: Verb) -> Result<(), ApiError> {
    use RouteId as R;
    let allowed = match role {
        Role::Admin => true,
        Role::Join => false,
        // Who may log in, and as what, is for admins to read.
        _ if matches!(
            route,
            R::Users | R::User | R::UserTotp | R::UserTotpConfirm | R::UserTotpEnrollment
        ) =>
        {
            false
        }
        // A backup holds every credential's and password's hash.
        _ if matches!(route, R::Backup | R::BlobContent) => false,
        _ if verb == Verb::Get => true,
        Role::Viewer => false,
        Role::Operator => !matches!(
            route,
            R::Tenants
                | R::Tenant
                | R::ClusterNode
                | R::JoinTokens
                | R::JoinToken
                | R::Tokens
                | R::Token
                | R::Prices
                | R::TestClock
                | R::FailoverApprove
                | R::CertifyReports
                | R::CertifyWaiver
                | R::CertifySignOffs
                | R::CertifyPolicy
                | R::AutopilotControls
                | R::AutopilotPolicy
                | R::AutopilotDecisionUndo
                | R::AutopilotApprove
                | R::AutopilotReject
        ),
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::forbidden(match role {
        Role::Viewer => "this token is a viewer's: it may only read (GET); ask an admin for an operator token".to_string(),
        _ => "this token is an operator's: tenants, tokens, prices and the cluster's members are changed with an admin token".to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn reads_bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_err());
        for bad in ["Basic abc", "Bearer", "Bearer ", "token"] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(bearer(&headers).unwrap_err().code, "unauthorized", "{bad}");
        }
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
        assert_eq!(bearer(&headers).unwrap(), "s3cret");
    }

    fn user(roles: &[(&str, Role)], mfa: bool) -> Caller {
        Caller {
            name: "ann".into(),
            role: Role::Viewer,
            roles: roles.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
            via: Via::Session {
                mfa,
                csrf: csrf_of("tok"),
                sha256: String::new(),
                expires_unix_ms: 0,
            },
        }
    }

    fn may(caller: &Caller, verb: Verb, path: &str) -> bool {
        let m = super::super::router::find(path).unwrap();
        permit_request(caller, &m, verb).is_ok()
    }

    #[test]
    fn users_act_by_their_role_in_the_route_s_tenant() {
        use Verb::{Delete, Get, Post, Put};
        let op = user(&[("acme", Role::Operator)], true);
        assert!(may(&op, Put, "/api/v1/tenants/acme/apps/shop/deployment"));
        assert!(!may(&op, Put, "/api/v1/tenants/other/apps/shop/deployment"));
        assert!(
            !may(&op, Get, "/api/v1/tenants/other/apps/shop"),
            "no role there"
        );
        assert!(!may(&op, Get, "/api/v1/tenants/zzz/apps/shop/rollout"));
        assert!(may(&op, Get, "/api/v1/apps"), "cluster-wide reads");
        assert!(may(&op, Post, "/api/v1/blobs"));
        assert!(!may(&op, Post, "/api/v1/tenants"));
        assert!(!may(&op, Get, "/api/v1/users"));
        assert!(may(&op, Post, "/api/v1/users/ann/totp"), "own TOTP");
        assert!(!may(&op, Post, "/api/v1/users/bob/totp"));
        assert!(may(&op, Delete, "/api/v1/session"));
        let viewer = user(&[("*", Role::Viewer), ("acme", Role::Operator)], true);
        assert!(may(&viewer, Post, "/api/v1/tenants/acme/apps"));
        assert!(!may(&viewer, Post, "/api/v1/tenants/beta/apps"));
        assert!(!may(&viewer, Post, "/api/v1/blobs"), "viewer on *");
        let admin = user(&[("*", Role::Admin)], true);
        for (verb, path) in [
            (Post, "/api/v1/tenants"),
            (Post, "/api/v1/users"),
            (Delete, "/api/v1/cluster/nodes/2"),
            (Post, "/api/v1/tenants/acme/apps/shop/rollout/abort"),
        ] {
            assert!(may(&admin, verb, path), "{path}");
        }
        // Without TOTP an admin acts at most as an operator, and the
        // admin actions are refused.
        let weak = user(&[("*", Role::Admin)], false);
        assert!(may(&weak, Put, "/api/v1/tenants/acme/apps/shop/deployment"));
        for (verb, path) in [
            (Post, "/api/v1/tenants"),
            (Post, "/api/v1/users"),
            (Post, "/api/v1/tokens"),
            (Post, "/api/v1/cluster/join-tokens"),
            (Post, "/api/v1/tenants/acme/apps/shop/rollout/abort"),
            (Post, "/api/v1/tenants/acme/apps/shop/rollout/promote"),
        ] {
            assert!(!may(&weak, verb, path), "{path}");
        }
        assert!(may(&weak, Post, "/api/v1/users/ann/totp"), "may enroll");
    }

    #[test]
    fn cookie_changes_need_the_csrf_token() {
        let caller = user(&[("*", Role::Admin)], true);
        let mut headers = HeaderMap::new();
        assert!(check_csrf(&caller, Verb::Get, &headers).is_ok());
        assert_eq!(
            check_csrf(&caller, Verb::Post, &headers).unwrap_err().code,
            "forbidden"
        );
        headers.insert(CSRF_HEADER, HeaderValue::from_static("nope"));
        assert!(check_csrf(&caller, Verb::Delete, &headers).is_err());
        headers.insert(CSRF_HEADER, HeaderValue::from_str(&csrf_of("tok")).unwrap());
        assert!(check_csrf(&caller, Verb::Put, &headers).is_ok());
        let token = Caller {
            via: Via::Token,
            ..caller
        };
        assert!(check_csrf(&token, Verb::Post, &HeaderMap::new()).is_ok());
        assert_ne!(csrf_of("a"), csrf_of("b"));
    }

    #[test]
    fn reads_the_session_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=b; __Host-dwcp_session=abc ; c=d"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        // Not the unprefixed name (a sibling host could have set it).
        for other in ["__Host-dwcp_sessionx=1", "dwcp_session=1"] {
            headers.insert(COOKIE, HeaderValue::from_static(other));
            assert_eq!(session_cookie(&headers), None, "{other}");
        }
    }
}
