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

mod apps;
mod audit;
mod auth;
mod blobs;
mod body;
mod capacity;
mod cluster;
mod costs;
mod deployments;
mod error;
mod incidents;
mod lockout;
mod nodes;
mod openapi;
mod registers;
mod reply;
mod rollouts;
mod router;
mod runbooks;
mod slos;
mod tenants;
pub mod test_clock;
mod tokens;
mod validate;
mod versions;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::ControlPlane;
use error::ApiError;
use lockout::Lockout;
use node::gateway::Gateway;
use reply::{NODE_HEADER, Reply, json};
use router::{RouteId, Verb};
pub use test_clock::{ClockHook, install_clock_hook};

/// Serves the API on `listener` until the returned task is aborted.
/// Aborting it also closes the connections it accepted.
pub fn serve<P: ControlPlane>(listener: TcpListener, plane: Arc<P>) -> JoinHandle<()> {
    serve_node(listener, plane, None)
}

/// [`serve`] on a node that runs `gateway`: `/metrics` includes what the
/// gateway measures.
pub fn serve_node<P: ControlPlane>(
    listener: TcpListener,
    plane: Arc<P>,
    gateway: Option<Arc<Gateway>>,
) -> JoinHandle<()> {
    serve_with(listener, plane, gateway, lockout::MAX_FAILURES)
}

/// [`serve_node`] locking an address out after `max_failed_auth` requests
/// with unknown tokens in a minute (see `lockout.rs`; the default is 10).
pub fn serve_with<P: ControlPlane>(
    listener: TcpListener,
    plane: Arc<P>,
    gateway: Option<Arc<Gateway>>,
    max_failed_auth: u32,
) -> JoinHandle<()> {
    let lockout = Arc::new(Lockout::new(max_failed_auth));
    control::serving::serve_plain(listener, move |req| {
        let plane = plane.clone();
        let gateway = gateway.clone();
        let lockout = lockout.clone();
        async move { handle(&*plane, gateway.as_deref(), &lockout, req).await }
    })
}

/// Answers one request; never fails (errors are responses).
async fn handle<P: ControlPlane>(
    plane: &P,
    gateway: Option<&Gateway>,
    lockout: &Lockout,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let public = path == "/api/v1/health" || path == "/api/v1/openapi.json";
    let peer = req
        .extensions()
        .get::<control::serving::PeerAddr>()
        .map(|p| p.0.ip())
        .filter(|_| !public);
    let locked = peer.and_then(|ip| lockout.check(ip, Instant::now()).err());
    let answer = if let Some(wait) = locked {
        Err(ApiError::too_many_requests(
            format!(
                "too many requests with unknown tokens from this address; try again in {wait} s"
            ),
            wait,
        ))
    } else if path == "/metrics" {
        metrics(plane, gateway, &req).await
    } else {
        route(plane, req).await
    };
    if let (Some(ip), None) = (peer, locked) {
        match &answer {
            Err(e) if e.status == StatusCode::UNAUTHORIZED => lockout.failed(ip, Instant::now()),
            _ => lockout.succeeded(ip),
        }
    }
    let mut response = match answer {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response
        .headers_mut()
        .insert(NODE_HEADER, HeaderValue::from(plane.node_id()));
    response
}

/// `GET /metrics`: the Prometheus exposition, for an admin token.
async fn metrics<P: ControlPlane>(
    plane: &P,
    gateway: Option<&Gateway>,
    req: &Request<Incoming>,
) -> Result<Reply, ApiError> {
    auth::authorize(plane, req.headers()).await?;
    if Verb::of(req.method()) != Some(Verb::Get) {
        return Err(ApiError::method_not_allowed(
            req.method().as_str(),
            "/metrics",
            "GET".into(),
        ));
    }
    let text = crate::metrics::render(plane, gateway).await;
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(response)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    node: u64,
}

async fn route<P: ControlPlane>(plane: &P, req: Request<Incoming>) -> Result<Reply, ApiError> {
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
        };
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
    auth::permit(caller.role, m.entry.id, verb)?;
    let audit = reply::AuditContext {
        who: caller.name.clone(),
        from: req
            .extensions()
            .get::<control::serving::PeerAddr>()
            .map_or_else(|| "unknown".to_string(), |p| p.0.ip().to_string()),
        what: format!(
            "{} {}",
            verb.as_str(),
            path.chars().take(300).collect::<String>()
        ),
    };
    reply::AUDIT
        .scope(audit, dispatch(plane, &m, verb, caller.name, req))
        .await
}

/// Runs the handler of a matched, authorized request.
async fn dispatch<P: ControlPlane>(
    plane: &P,
    m: &router::Matched,
    verb: Verb,
    who: String,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let not_allowed =
        || ApiError::method_not_allowed(req.method().as_str(), req.uri().path(), m.entry.allow());
    let (p0, p1, p2) = (m.param(0), m.param(1), m.param(2));
    match (m.entry.id, verb) {
        (RouteId::Tenants, Verb::Get) => tenants::list(plane).await,
        (RouteId::Tenants, Verb::Post) => tenants::create(plane, req).await,
        (RouteId::Tenant, Verb::Delete) => tenants::delete(plane, p0).await,
        (RouteId::Apps, Verb::Get) => apps::list(plane, req.uri().query()).await,
        (RouteId::TenantApps, Verb::Post) => apps::create(plane, p0, req).await,
        (RouteId::App, Verb::Get) => apps::show(plane, p0, p1).await,
        (RouteId::App, Verb::Delete) => apps::delete(plane, p0, p1).await,
        (RouteId::Versions, Verb::Post) => versions::add(plane, p0, p1, req).await,
        (RouteId::Deployment, Verb::Put) => deployments::set(plane, p0, p1, req).await,
        (RouteId::Rollouts, Verb::Get) => rollouts::list(plane, p0, p1).await,
        (RouteId::Rollouts, Verb::Post) => rollouts::start(plane, p0, p1, who, req).await,
        (RouteId::Rollout, Verb::Get) => rollouts::show(plane, p0, p1).await,
        (RouteId::RolloutPromote, Verb::Post) => {
            rollouts::steer(plane, p0, p1, who, false, req).await
        }
        (RouteId::RolloutAbort, Verb::Post) => rollouts::steer(plane, p0, p1, who, true, req).await,
        (RouteId::Blobs, Verb::Post) => blobs::upload(plane, req).await,
        (RouteId::Blob, Verb::Get) => blobs::show(plane, p0).await,
        (RouteId::Cluster, Verb::Get) => cluster::status(plane).await,
        (RouteId::ClusterNode, Verb::Delete) => cluster::remove(plane, p0).await,
        (RouteId::JoinTokens, Verb::Post) => cluster::join_token(plane).await,
        (RouteId::Nodes, Verb::Get) => nodes::list(plane).await,
        (RouteId::Capacity, Verb::Get) => capacity::show(plane).await,
        (RouteId::Audit, Verb::Get) => audit::list(plane, req.uri().query()).await,
        (RouteId::Costs, Verb::Get) => costs::show(plane).await,
        (RouteId::Prices, Verb::Get) => costs::prices(plane).await,
        (RouteId::Prices, Verb::Put) => costs::set_prices(plane, req).await,
        (RouteId::Watch, Verb::Get) => watch::changes(plane, req.uri().query()).await,
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
        (RouteId::Slos, Verb::Get) => slos::list_all(plane).await,
        (RouteId::AppSlos, Verb::Get) => slos::list(plane, p0, p1).await,
        (RouteId::AppSlo, Verb::Get) => slos::show(plane, p0, p1, p2).await,
        (RouteId::AppSlo, Verb::Put) => slos::put(plane, p0, p1, p2, req).await,
        (RouteId::AppSlo, Verb::Delete) => slos::delete(plane, p0, p1, p2).await,
        (RouteId::Incidents, Verb::Get) => incidents::list(plane, req.uri().query()).await,
        (RouteId::Incident, Verb::Get) => incidents::show(plane, p0).await,
        (RouteId::IncidentAcknowledge, Verb::Post) => {
            incidents::step(plane, p0, who, incidents::Step::Acknowledge, req).await
        }
        (RouteId::IncidentResolve, Verb::Post) => {
            incidents::step(plane, p0, who, incidents::Step::Resolve, req).await
        }
        (RouteId::IncidentNotes, Verb::Post) => {
            incidents::step(plane, p0, who, incidents::Step::Note, req).await
        }
        (RouteId::TestClock, Verb::Post) => test_clock::advance(req).await,
        // The table and this match list the same pairs (tests/api.rs calls
        // every pair with an admin token and never gets 405).
        _ => Err(not_allowed()),
    }
}
