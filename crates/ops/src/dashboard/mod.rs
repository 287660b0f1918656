//! The web dashboard (the ops center's pages), served by every node's API
//! server next to `/api/v1`: overview, apps, rollouts, nodes, incidents,
//! SLOs, capacity, costs, the autopilot's findings, the audit log and
//! certification.
//!
//! Pages are HTML rendered on the server ([`pages`]), charts SVG drawn on
//! the server ([`chart`]); the one small script (`assets/dashboard.js`)
//! only swaps in the parts each live frame carries, from the server-sent
//! events at `GET /api/v1/events?page=NAME` ([`feed`]). Nothing is loaded
//! from elsewhere: the pages work with no network beyond the node, and the
//! Content-Security-Policy allows only this origin.
//!
//! Pages need a session (`POST /api/v1/session` from `/login`); without
//! one they send the browser to `/login`. The data is the cluster's, the
//! same for every signed-in user.

pub(crate) mod autopilot;
pub(crate) mod certification;
pub(crate) mod chart;
pub(crate) mod decisions;
pub(crate) mod feed;
pub(crate) mod history;
pub(crate) mod html;
pub(crate) mod pages;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};

use crate::ControlPlane;
use crate::api::Caller;
pub(crate) use feed::{EventStream, Feed};

/// A response body: whole, or a live event stream.
pub type Body = http_body_util::Either<Full<Bytes>, EventStream>;

/// The pages, in the order the navigation lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Page {
    Overview,
    Apps,
    Rollouts,
    Nodes,
    Incidents,
    Slos,
    Capacity,
    Costs,
    Autopilot,
    Audit,
    Certification,
}

impl Page {
    pub const ALL: [Page; 11] = [
        Page::Overview,
        Page::Apps,
        Page::Rollouts,
        Page::Nodes,
        Page::Incidents,
        Page::Slos,
        Page::Capacity,
        Page::Costs,
        Page::Autopilot,
        Page::Audit,
        Page::Certification,
    ];

    /// The name `?page=` takes.
    pub fn name(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::Apps => "apps",
            Page::Rollouts => "rollouts",
            Page::Nodes => "nodes",
            Page::Incidents => "incidents",
            Page::Slos => "slos",
            Page::Capacity => "capacity",
            Page::Costs => "costs",
            Page::Autopilot => "autopilot",
            Page::Audit => "audit",
            Page::Certification => "certification",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Apps => "Apps",
            Page::Rollouts => "Rollouts",
            Page::Nodes => "Nodes",
            Page::Incidents => "Incidents",
            Page::Slos => "SLOs",
            Page::Capacity => "Capacity",
            Page::Costs => "Costs",
            Page::Autopilot => "Autopilot",
            Page::Audit => "Audit log",
            Page::Certification => "Certification",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Page::Overview => "/",
            Page::Apps => "/apps",
            Page::Rollouts => "/rollouts",
            Page::Nodes => "/nodes",
            Page::Incidents => "/incidents",
            Page::Slos => "/slos",
            Page::Capacity => "/capacity",
            Page::Costs => "/costs",
            Page::Autopilot => "/autopilot",
            Page::Audit => "/audit",
            Page::Certification => "/certification",
        }
    }

    /// The page named `name` (for `?page=`).
    pub fn named(name: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| p.name() == name)
    }

    fn at(path: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| p.path() == path)
    }
}

const CSS: &str = include_str!("assets/dashboard.css");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const LOGIN_SCRIPT: &str = include_str!("assets/login.js");
const LOGIN_PAGE: &str = include_str!("assets/login.html");

/// Only this origin's scripts, styles and images; no frames.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Whether `path` is the dashboard's (not the API's, not `/metrics`).
pub fn owns(path: &str) -> bool {
    !path.starts_with("/api/") && path != "/metrics"
}

/// Whether `path` is one of the pages (not an asset or the sign-in page).
pub(crate) fn is_page(path: &str) -> bool {
    Page::at(path).is_some()
}

/// Answers a dashboard request: an asset, the login page, or a page for a
/// signed-in caller (`caller` is who the API's authentication found, or
/// `None` when it found nobody, which sends the browser to `/login`).
pub(crate) fn serve<P: ControlPlane>(
    plane: &P,
    feed: &Feed,
    req: &Request<Incoming>,
    caller: Option<&Caller>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n");
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let asset = match path {
        "/assets/dashboard.css" => Some(("text/css; charset=utf-8", CSS)),
        "/assets/dashboard.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "/assets/login.js" => Some(("text/javascript; charset=utf-8", LOGIN_SCRIPT)),
        "/login" => Some(("text/html; charset=utf-8", LOGIN_PAGE)),
        _ => None,
    };
    if let Some((kind, body)) = asset {
        return text(StatusCode::OK, kind, body);
    }
    let Some(page) = Page::at(path) else {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such page; the dashboard starts at /\n",
        );
    };
    let Some(caller) = caller else {
        let mut r = text(StatusCode::SEE_OTHER, "text/plain", "sign in at /login\n");
        r.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/login"));
        return r;
    };
    let roles: Vec<String> = caller
        .roles
        .iter()
        .map(|(tenant, role)| match tenant.as_str() {
            "*" => format!("{role:?}").to_lowercase(),
            _ => format!("{role:?} of {tenant}").to_lowercase(),
        })
        .collect();
    let who = format!("{} · {}", caller.name, roles.join(", "));
    let html = html::page(
        page,
        &who,
        &feed.render_for(plane, page, caller.limited_to().as_deref()),
    );
    text(StatusCode::OK, "text/html; charset=utf-8", &html)
}

fn text(status: StatusCode, kind: &'static str, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_names_and_paths_both_ways() {
        for p in Page::ALL {
            assert_eq!(Page::named(p.name()), Some(p));
            assert_eq!(Page::at(p.path()), Some(p));
        }
        assert_eq!(Page::named("nope"), None);
        assert!(owns("/") && owns("/assets/dashboard.js"));
        assert!(!owns("/api/v1/apps") && !owns("/metrics"));
    }
}
