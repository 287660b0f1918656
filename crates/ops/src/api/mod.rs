//! The HTTP API: JSON under `/api/v1`, HTTP/1.1 and HTTP/2 (prior
//! knowledge) on plain TCP, served with hyper.
//!
//! A request goes: [`router::find`] matches its path; the two public
//! routes (`GET /health`, `GET /openapi.json`) answer at once; every other
//! request — unknown paths included — is authorized by its bearer token
//! ([`auth`]) *before* its body is read; then the method is checked (405
//! with `Allow`) and one handler per resource module runs. A handler
//! validates everything it can without the state, then makes at most one
//! [`ControlPlane::write`]. Errors take one shape ([`error`]); every
//! response carries `dwcp-node`, every write `dwcp-revision`.
//!
//! Users log in with `POST /api/v1/session` (the one route besides the
//! public ones answered without credentials) and then send the session
//! cookie instead of a token; see `auth.rs` and `session.rs`.

mod apps;
mod audit;
mod auth;
mod autopilot;
pub(crate) mod autopilot_act;
mod backup;
pub(crate) mod certify;
pub(crate) use auth::Caller;
mod blobs;
mod body;
pub(crate) mod capacity;
mod cluster;
pub(crate) mod costs;
mod deployments;
mod error;
mod failovers;
mod failures;
#[doc(hidden)]
pub mod fuzzing;
mod hash_pool;
mod incidents;
mod lockout;
mod login_limit;
mod logs;
mod nodes;
mod openapi;
mod password;
mod planet;
mod registers;
mod reply;
mod rollouts;
mod router;
mod runbooks;
pub(crate) mod seal;
mod session;
mod slos;
mod strict;
mod tenants;
pub mod test_clock;
mod tokens;
mod traffic;
mod users;
mod validate;
mod versions;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::ControlPlane;
use crate::dashboard::{self, Body, Feed, Page, feed};
use ::cluster::exposition::Source;
use error::ApiError;
use lockout::Lockout;
/// Unknown-token requests in a minute after which an address is locked
/// out (the default of [`serve_node`]).
pub const MAX_FAILED_AUTH: u32 = lockout::MAX_FAILURES;
use login_limit::LoginLimiter;
use reply::{NODE_HEADER, Reply, json};
use router::{RouteId, Verb};
pub use test_clock::{ClockHook, install_clock_hook};

/// Serves the API on `listener` until the returned task is aborted.
/// Aborting it also closes the connections it accepted.
pub fn serve<P: ControlPlane>(listener: TcpListener, plane: Arc<P>) -> JoinHandle<()> {
    serve_node(listener, plane, None)
}

/// [`serve`] on a node that measures more (its gateway): `/metrics`
/// includes what `more` exposes.
pub fn serve_node<P: ControlPlane>(
    listener: TcpListener,
    plane: Arc<P>,
    more: Option<Arc<dyn Source>>,
) -> JoinHandle<()> {
    serve_with(listener, plane, more, lockout::MAX_FAILURES)
}

/// [`serve_node`] locking an address out after `max_failed_auth` requests
/// with unknown tokens in a minute (see `lockout.rs`; the default is 10).
pub fn serve_with<P: ControlPlane>(
    listener: TcpListener,
    plane: Arc<P>,
    more: Option<Arc<dyn Source>>,
    max_failed_auth: u32,
) -> JoinHandle<()> {
    serve_api(listener, plane, more, max_failed_auth, None)
}

/// [`serve_with`], over TLS 1.3 when `tls` is given (`dwcp up --api-tls`).
pub fn serve_api<P: ControlPlane>(
    listener: TcpListener,
    plane: Arc<P>,
    more: Option<Arc<dyn Source>>,
    max_failed_auth: u32,
    tls: Option<::cluster::serving::ServerTls>,
) -> JoinHandle<()> {
    let lockout = Arc::new(Lockout::new(max_failed_auth));
    let limiter = Arc::new(LoginLimiter::default());
    let feed = Feed::new();
    // The feed's task stops when the server's task (which owns the
    // handler, and so this) is aborted.
    let running = Arc::new(feed::Running(tokio::spawn(feed.clone().run(plane.clone()))));
    let handler = move |req| {
        let plane = plane.clone();
        let more = more.clone();
        let lockout = lockout.clone();
        let limiter = limiter.clone();
        let feed = feed.clone();
        let _running = running.clone();
        async move {
            let servers = Servers {
                lockout: &lockout,
                limiter: &limiter,
                feed: &feed,
            };
            handle(&*plane, more.as_deref(), servers, req).await
        }
    };
    match tls {
        None => ::cluster::serving::serve_plain(listener, handler),
        Some(tls) => ::cluster::serving::serve_tls(listener, tls, handler),
    }
}

/// What one API server keeps across requests.
struct Servers<'a> {
    /// Addresses guessing tokens.
    lockout: &'a Lockout,
    /// Failed logins per user and address.
    limiter: &'a LoginLimiter,
    /// The dashboard's live updates.
    feed: &'a Feed,
}

/// Answers one request; never fails (errors are responses).
async fn handle<P: ControlPlane>(
    plane: &P,
    more: Option<&dyn Source>,
    servers: Servers<'_>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path();
    if dashboard::owns(path) {
        let caller = auth::authorize(plane, req.headers()).await.ok();
        if caller.is_some() && dashboard::is_page(path) {
            servers.feed.refresh_status(plane).await;
        }
        // A user limited to some tenants sees the pages built from their
        // tenants' records only (`Caller::view`).
        let mut response = dashboard::serve(plane, servers.feed, &req, caller.as_ref());
        response
            .headers_mut()
            .insert(NODE_HEADER, HeaderValue::from(plane.node_id()));
        return response.map(Body::Left);
    }
    // A login is limited by the login limiter (per user and address), not
    // by the token lockout: its failures are not guessed tokens, and its
    // successes must not reset a token guesser's count.
    let login = path == "/api/v1/session" && req.method() == hyper::Method::POST;
    let public = path == "/api/v1/health" || path == "/api/v1/openapi.json" || login;
    let peer = req
        .extensions()
        .get::<::cluster::serving::PeerAddr>()
        .map(|p| p.0.ip())
        .filter(|_| !public);
    // Only a request that sent a token counts for (and against) the
    // lockout; while locked, a good token still passes.
    let sent_token = req.headers().contains_key(hyper::header::AUTHORIZATION);
    let locked = match peer.and_then(|ip| servers.lockout.check(ip, Instant::now()).err()) {
        Some(wait) if auth::authorize(plane, req.headers()).await.is_err() => Some(wait),
        _ => None,
    };
    let answer = if let Some(wait) = locked {
        Err(ApiError::too_many_requests(
            format!(
                "too many requests with unknown tokens from this address; try again in {wait} s"
            ),
            wait,
        ))
    } else if path == "/metrics" {
        metrics(plane, more, &req).await.map(|r| r.map(Body::Left))
    } else {
        route(plane, &servers, req).await
    };
    if let (Some(ip), None, true) = (peer, locked, sent_token) {
        match &answer {
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                servers.lockout.failed(ip, Instant::now())
            }
            _ => servers.lockout.succeeded(ip),
        }
    }
    let mut response = match answer {
        Ok(response) => response,
        Err(error) => error.into_response().map(Body::Left),
    };
    response
        .headers_mut()
        .insert(NODE_HEADER, HeaderValue::from(plane.node_id()));
    response
}

/// `GET /metrics`: the Prometheus exposition (every tenant's apps), for
/// a token or a user with a role on every tenant.
async fn metrics<P: ControlPlane>(
    plane: &P,
    more: Option<&dyn Source>,
    req: &Request<Incoming>,
) -> Result<Reply, ApiError> {
    let caller = auth::authorize(plane, req.headers()).await?;
    if caller.limited_to().is_some() {
        return Err(ApiError::forbidden(format!(
            "user `{}` has roles in some tenants only; /metrics holds every tenant's apps and needs a role on every tenant (`*`)",
            caller.name
        )));
    }
    if Verb::of(req.method()) != Some(Verb::Get) {
        return Err(ApiError::method_not_allowed(
            req.method().as_str(),
            "/metrics",
            "GET".into(),
        ));
    }
    let text = crate::metrics::render(plane, more).await;
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(response)
}

/// `GET /api/v1/events?page=NAME`: server-sent events, one `frame` a
/// second with the parts of the dashboard page `NAME` (default
/// `overview`), for any signed-in caller; a caller limited to some
/// tenants gets the page as it shows their tenants only (filtered here,
/// as the page itself is).
fn events<P: ControlPlane>(
    plane: &P,
    feed: &Feed,
    caller: &auth::Caller,
    req: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let name = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .unwrap_or("overview");
    let page = Page::named(name).ok_or_else(|| {
        let names: Vec<&str> = Page::ALL.iter().map(|p| p.name()).collect();
        ApiError::invalid(
            "page",
            format!(
                "page `{}` is not one of the dashboard's pages: {}",
                name.chars().take(40).collect::<String>(),
                names.join(", ")
            ),
        )
    })?;
    let mut response = Response::new(Body::Right(feed.watch(plane, page, caller.limited_to())));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    node: u64,
}

async fn route<P: ControlPlane>(
    plane: &P,
    servers: &Servers<'_>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let matched = router::find(&path);
    let verb = Verb::of(req.method());
    if let Some(m) = &matched
        && m.entry.public
        && verb == Some(Verb::Get)
    {
        return match m.entry.id {
            RouteId::Health => json(
                StatusCode::OK,
                &Health {
                    status: "ok",
                    node: plane.node_id(),
                },
            ),
            _ => {
                let mut response = Response::new(Full::new(openapi::encoded()));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Ok(response)
            }
        }
        .map(|r| r.map(Body::Left));
    }
    if let Some(m) = &matched
        && m.entry.id == RouteId::Session
        && verb == Some(Verb::Post)
    {
        return session::login(plane, servers.limiter, req)
            .await
            .map(|r| r.map(Body::Left));
    }
    let caller = auth::authorize(plane, req.headers()).await?;
    let Some(m) = matched else {
        return Err(ApiError::not_found(format!(
            "there is no route {}; GET /api/v1/openapi.json lists the routes",
            path.chars().take(200).collect::<String>()
        )));
    };
    let Some(verb) = verb.filter(|v| m.entry.verbs.contains(v)) else {
        return Err(ApiError::method_not_allowed(
            req.method().as_str(),
            &path,
            m.entry.allow(),
        ));
    };
    auth::check_csrf(&caller, verb, req.headers())?;
    auth::permit_request(&caller, &m, verb)?;
    if m.entry.id == RouteId::Events {
        return events(plane, servers.feed, &caller, &req);
    }
    let audit = reply::AuditContext {
        who: caller.audit_name(),
        from: req
            .extensions()
            .get::<::cluster::serving::PeerAddr>()
            .map_or_else(|| "unknown".to_string(), |p| p.0.ip().to_string()),
        what: format!(
            "{} {}",
            verb.as_str(),
            path.chars().take(300).collect::<String>()
        ),
        scope: caller.scope(),
    };
    reply::AUDIT
        .scope(audit, dispatch(plane, servers.feed, &m, verb, &caller, req))
        .await
        .map(|r| r.map(Body::Left))
}

/// Runs the handler of a matched, authorized request.
async fn dispatch<P: ControlPlane>(
    plane: &P,
    feed: &Feed,
    m: &router::Matched,
    verb: Verb,
    caller: &auth::Caller,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let who = caller.audit_name();
    let not_allowed =
        || ApiError::method_not_allowed(req.method().as_str(), req.uri().path(), m.entry.allow());
    let (p0, p1, p2) = (m.param(0), m.param(1), m.param(2));
    match (m.entry.id, verb) {
        (RouteId::Tenants, Verb::Get) => tenants::list(plane, caller).await,
        (RouteId::Tenants, Verb::Post) => tenants::create(plane, req).await,
        (RouteId::Tenant, Verb::Delete) => tenants::delete(plane, p0).await,
        (RouteId::Apps, Verb::Get) => apps::list(plane, caller, req.uri().query()).await,
        (RouteId::TenantApps, Verb::Post) => apps::create(plane, p0, req).await,
        (RouteId::App, Verb::Get) => apps::show(plane, p0, p1).await,
        (RouteId::App, Verb::Delete) => apps::delete(plane, p0, p1).await,
        (RouteId::Versions, Verb::Post) => versions::add(plane, p0, p1, req).await,
        (RouteId::Deployment, Verb::Put) => deployments::set(plane, p0, p1, caller, req).await,
        (RouteId::Rollouts, Verb::Get) => rollouts::list(plane, p0, p1).await,
        (RouteId::Rollouts, Verb::Post) => rollouts::start(plane, p0, p1, caller, req).await,
        (RouteId::Rollout, Verb::Get) => rollouts::show(plane, p0, p1).await,
        (RouteId::RolloutPromote, Verb::Post) => {
            rollouts::steer(plane, p0, p1, who, false, req).await
        }
        (RouteId::RolloutAbort, Verb::Post) => rollouts::steer(plane, p0, p1, who, true, req).await,
        (RouteId::AppLogs, Verb::Get) => logs::show(plane, p0, p1, req.uri().query()).await,
        (RouteId::AppTraffic, Verb::Get) => traffic::show(plane, feed, p0, p1).await,
        (RouteId::Blobs, Verb::Post) => blobs::upload(plane, req).await,
        (RouteId::Blob, Verb::Get) => blobs::show(plane, p0).await,
        (RouteId::Cluster, Verb::Get) => cluster::status(plane, feed).await,
        (RouteId::ClusterGlobal, Verb::Get) => cluster::global_status(plane).await,
        (RouteId::ClusterNode, Verb::Delete) => cluster::remove(plane, p0).await,
        (RouteId::JoinTokens, Verb::Post) => cluster::join_token(plane, req).await,
        (RouteId::JoinTokens, Verb::Get) => cluster::join_tokens(plane).await,
        (RouteId::JoinToken, Verb::Delete) => cluster::revoke_join_token(plane, p0).await,
        (RouteId::Nodes, Verb::Get) => nodes::list(plane, caller, feed).await,
        (RouteId::Capacity, Verb::Get) => capacity::show(plane, caller).await,
        (RouteId::Planet, Verb::Get) => planet::show(plane).await,
        (RouteId::Route, Verb::Get) => planet::route(plane, req.uri().query()).await,
        (RouteId::Failovers, Verb::Get) => failovers::list(plane).await,
        (RouteId::FailoverApprove, Verb::Post) => failovers::approve(plane, p0).await,
        (RouteId::Audit, Verb::Get) => audit::list(plane, caller, req.uri().query()).await,
        (RouteId::Costs, Verb::Get) => costs::show(plane, caller).await,
        (RouteId::Prices, Verb::Get) => costs::prices(plane).await,
        (RouteId::Prices, Verb::Put) => costs::set_prices(plane, req).await,
        (RouteId::Watch, Verb::Get) => watch::changes(plane, caller, req.uri().query()).await,
        (RouteId::Tokens, Verb::Get) => tokens::list(plane).await,
        (RouteId::Tokens, Verb::Post) => tokens::create(plane, req).await,
        (RouteId::Token, Verb::Delete) => tokens::delete(plane, p0).await,
        (RouteId::Runbooks, Verb::Get) => runbooks::list(plane).await,
        (RouteId::Runbook, Verb::Get) => runbooks::show(plane, p0).await,
        (RouteId::Runbook, Verb::Put) => runbooks::put(plane, p0, req).await,
        (RouteId::Runbook, Verb::Delete) => runbooks::delete(plane, p0).await,
        (RouteId::Register, Verb::Get) => registers::get(plane, p0).await,
        (RouteId::Register, Verb::Put) => registers::put(plane, p0, req).await,
        (RouteId::RegisterCas, Verb::Post) => registers::cas(plane, p0, req).await,
        (RouteId::Users, Verb::Get) => users::list(plane).await,
        (RouteId::Users, Verb::Post) => users::create(plane, req).await,
        (RouteId::User, Verb::Delete) => users::delete(plane, p0).await,
        (RouteId::UserTotp, Verb::Post) => users::enroll(plane, caller, p0, req).await,
        (RouteId::UserTotpConfirm, Verb::Post) => users::confirm(plane, caller, p0, req).await,
        (RouteId::UserTotpEnrollment, Verb::Post) => users::enrollment_code(plane, p0).await,
        (RouteId::Session, Verb::Get) => session::show(caller),
        (RouteId::Session, Verb::Delete) => session::logout(plane, caller).await,
        (RouteId::Slos, Verb::Get) => slos::list_all(plane, caller).await,
        (RouteId::AppSlos, Verb::Get) => slos::list(plane, p0, p1).await,
        (RouteId::AppSlo, Verb::Get) => slos::show(plane, p0, p1, p2).await,
        (RouteId::AppSlo, Verb::Put) => slos::put(plane, p0, p1, p2, req).await,
        (RouteId::AppSlo, Verb::Delete) => slos::delete(plane, p0, p1, p2).await,
        (RouteId::Incidents, Verb::Get) => incidents::list(plane, caller, req.uri().query()).await,
        (RouteId::Incident, Verb::Get) => incidents::show(plane, caller, p0).await,
        (RouteId::IncidentAcknowledge, Verb::Post) => {
            incidents::step(plane, caller, p0, incidents::Step::Acknowledge, req).await
        }
        (RouteId::IncidentResolve, Verb::Post) => {
            incidents::step(plane, caller, p0, incidents::Step::Resolve, req).await
        }
        (RouteId::IncidentNotes, Verb::Post) => {
            incidents::step(plane, caller, p0, incidents::Step::Note, req).await
        }
        (RouteId::TestClock, Verb::Post) => test_clock::advance(req).await,
        (RouteId::Backup, Verb::Get) => backup::point(plane, req.uri().query()).await,
        (RouteId::Backups, Verb::Get) => backup::scheduled(plane).await,
        (RouteId::BlobContent, Verb::Get) => backup::content(plane, p0).await,
        (RouteId::AutopilotAnomalies, Verb::Get) => {
            autopilot::anomalies(plane, None, req.uri().query()).await
        }
        (RouteId::TenantAutopilotAnomalies, Verb::Get) => {
            autopilot::anomalies(plane, Some(p0), req.uri().query()).await
        }
        (RouteId::AutopilotPredictions, Verb::Get) => {
            autopilot::predictions(plane, None, req.uri().query()).await
        }
        (RouteId::TenantAutopilotPredictions, Verb::Get) => {
            autopilot::predictions(plane, Some(p0), req.uri().query()).await
        }
        (RouteId::AutopilotCauses, Verb::Get) => {
            autopilot::causes(plane, None, req.uri().query()).await
        }
        (RouteId::TenantAutopilotCauses, Verb::Get) => {
            autopilot::causes(plane, Some(p0), req.uri().query()).await
        }
        (RouteId::AutopilotForecast, Verb::Get) => {
            autopilot::forecast(plane, None, req.uri().query()).await
        }
        (RouteId::AppAutopilotForecast, Verb::Get) => {
            autopilot::forecast(plane, Some((p0, p1)), req.uri().query()).await
        }
        // The acting routes' futures are boxed: inline, they would grow
        // this function's future (and the stack of every request it
        // serves) by their size.
        (
            RouteId::AutopilotControls
            | RouteId::AutopilotPolicy
            | RouteId::AutopilotDecisions
            | RouteId::TenantAutopilotDecisions
            | RouteId::AutopilotDecision
            | RouteId::AutopilotDecisionUndo
            | RouteId::AutopilotApprovals
            | RouteId::AutopilotApprove
            | RouteId::AutopilotReject,
            _,
        ) => Box::pin(autopilot_act::dispatch(plane, feed, m, verb, who, req)).await,
        (RouteId::RouteConflicts, Verb::Get) => apps::conflicts(plane, caller).await,
        (RouteId::Certify, Verb::Get) => certify::status(plane).await,
        (RouteId::CertifyReports, Verb::Get) => certify::reports(plane).await,
        (RouteId::CertifyReports, Verb::Post) => certify::record(plane, who, req).await,
        (RouteId::CertifyReport, Verb::Get) => certify::report(plane, p0).await,
        (RouteId::CertifyWaivers, Verb::Get) => certify::waivers(plane).await,
        (RouteId::CertifyWaiver, Verb::Put) => certify::waive(plane, p0, who, req).await,
        (RouteId::CertifyWaiver, Verb::Delete) => certify::unwaive(plane, p0).await,
        (RouteId::CertifySignOffs, Verb::Post) => certify::sign_off(plane, caller, req).await,
        (RouteId::CertifyPolicy, Verb::Put) => certify::set_policy(plane, req).await,
        // The table and this match list the same pairs (tests/api.rs calls
        // every pair with an admin token and never gets 405).
        _ => Err(not_allowed()),
    }
}
