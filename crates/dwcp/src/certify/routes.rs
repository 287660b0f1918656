//! Which OpenAPI routes each door is tried on, and which answered other
//! than a refusal: pure. The probe (`probes::routes`) sends the requests;
//! this plans them from the document and judges the answers, so a route
//! left open can be shown failing its criterion (the tests below).

use anyhow::{Context, Result};
use hyper::Method;
use serde_json::Value;

/// One route of the OpenAPI document, with a path to try it on.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub method: Method,
    /// As the document names it: `/api/v1/tenants/{tenant}/apps`.
    pub template: String,
    /// The template filled with names that exist nowhere.
    pub path: String,
}

/// The routes each door is tried on.
#[derive(Debug)]
pub struct Plan {
    /// Paths in the document.
    pub paths: usize,
    /// Every route: the count the report names.
    pub routes: usize,
    /// Every route but the public ones (health, the document, logging in):
    /// each must answer 401 to a request with no credential.
    pub no_credential: Vec<Route>,
    /// The non-public GET routes that answer at once (not the streams):
    /// each must answer 401 to a random bearer token.
    pub forged: Vec<Route>,
    /// Every changing route (POST, PUT, DELETE) but logging in and out:
    /// each must answer 403 to a viewer.
    pub viewer: Vec<Route>,
}

/// Fills `{…}` in an OpenAPI path with names that exist nowhere.
pub fn fill(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        out.push_str(match name {
            "tenant" => "default",
            "digest" => "0000000000000000000000000000000000000000000000000000000000000000",
            "id" => "999999",
            _ => "certify-none",
        });
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The plan for an OpenAPI document (`GET /api/v1/openapi.json`).
pub fn plan(doc: &Value) -> Result<Plan> {
    let paths = doc["paths"]
        .as_object()
        .context("no paths in the OpenAPI document")?;
    let mut routes = Vec::new();
    for (path, item) in paths {
        for (key, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("delete", Method::DELETE),
        ] {
            if item.get(key).is_some() {
                routes.push(Route {
                    method,
                    template: path.clone(),
                    path: fill(path),
                });
            }
        }
    }
    let public = |r: &Route| {
        r.template.ends_with("/health")
            || r.template.ends_with("/openapi.json")
            || (r.template.ends_with("/session") && r.method == Method::POST)
    };
    let streaming = |r: &Route| r.template.ends_with("/watch") || r.template.ends_with("/events");
    let no_credential: Vec<Route> = routes.iter().filter(|r| !public(r)).cloned().collect();
    Ok(Plan {
        paths: paths.len(),
        routes: routes.len(),
        forged: no_credential
            .iter()
            .filter(|r| r.method == Method::GET && !streaming(r))
            .cloned()
            .collect(),
        viewer: routes
            .iter()
            .filter(|r| r.method != Method::GET && !r.template.ends_with("/session"))
            .cloned()
            .collect(),
        no_credential,
    })
}

/// The routes that answered other than `refusal`: `METHOD template ->
/// status` each.
pub fn unrefused(answers: &[(Route, u16)], refusal: u16) -> Vec<String> {
    answers
        .iter()
        .filter(|(_, status)| *status != refusal)
        .map(|(r, status)| format!("{} {} -> {status}", r.method, r.template))
        .collect()
}

/// `none`, or the entries joined.
pub fn listed(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({"paths": {
            "/api/v1/health": {"get": {}},
            "/api/v1/openapi.json": {"get": {}},
            "/api/v1/session": {"post": {}, "delete": {}, "get": {}},
            "/api/v1/tenants/{tenant}/apps/{app}": {"get": {}, "delete": {}},
            "/api/v1/events": {"get": {}},
            "/api/v1/registers/{key}": {"get": {}, "put": {}},
        }})
    }

    fn templates(routes: &[Route]) -> Vec<String> {
        routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.template))
            .collect()
    }

    #[test]
    fn every_non_public_route_is_tried_and_paths_are_filled() {
        let p = plan(&doc()).unwrap();
        assert_eq!((p.paths, p.routes), (6, 10));
        let mut no_credential = templates(&p.no_credential);
        no_credential.sort();
        assert_eq!(
            no_credential,
            [
                "DELETE /api/v1/session",
                "DELETE /api/v1/tenants/{tenant}/apps/{app}",
                "GET /api/v1/events",
                "GET /api/v1/registers/{key}",
                "GET /api/v1/session",
                "GET /api/v1/tenants/{tenant}/apps/{app}",
                "PUT /api/v1/registers/{key}",
            ]
        );
        assert!(!templates(&p.forged).contains(&"GET /api/v1/events".to_string()));
        let mut viewer = templates(&p.viewer);
        viewer.sort();
        assert_eq!(
            viewer,
            [
                "DELETE /api/v1/tenants/{tenant}/apps/{app}",
                "PUT /api/v1/registers/{key}",
            ]
        );
        assert_eq!(
            fill("/a/{tenant}/b/{id}/{app}"),
            "/a/default/b/999999/certify-none"
        );
        assert!(plan(&json!({})).is_err());
    }

    /// A route left open (answering 200 with no credential) and a changing
    /// route a viewer may use: each is counted and named, and the
    /// criteria's verdicts fail.
    #[test]
    fn a_route_left_open_is_named_and_fails_its_criterion() {
        use crate::certify::catalog::CATALOG;
        let p = plan(&doc()).unwrap();
        let answers = |open: &str, status: u16, refusal: u16, routes: &[Route]| {
            routes
                .iter()
                .map(|r| {
                    let shown = format!("{} {}", r.method, r.template);
                    (r.clone(), if shown == open { status } else { refusal })
                })
                .collect::<Vec<_>>()
        };
        let judge = |id: &str, misses: &[String]| {
            let def = CATALOG.iter().find(|d| d.id == id).unwrap();
            let m = certify::Measurement::of(misses.len() as f64, listed(misses));
            certify::judge(&def.criterion(), &m, &[], 0)
        };
        let closed = unrefused(&answers("", 0, 401, &p.no_credential), 401);
        assert!(closed.is_empty());
        assert_eq!(
            judge("security.routes.no_credential", &closed).status,
            certify::Status::Pass
        );
        let open = "GET /api/v1/registers/{key}";
        let misses = unrefused(&answers(open, 200, 401, &p.no_credential), 401);
        assert_eq!(misses, ["GET /api/v1/registers/{key} -> 200"]);
        let v = judge("security.routes.no_credential", &misses);
        assert_eq!(v.status, certify::Status::Fail);
        assert!(v.detail.contains("/api/v1/registers/{key}"), "{}", v.detail);
        let misses = unrefused(&answers(open, 200, 401, &p.forged), 401);
        assert_eq!(
            judge("security.routes.forged_token", &misses).status,
            certify::Status::Fail
        );
        let write = "PUT /api/v1/registers/{key}";
        let misses = unrefused(&answers(write, 200, 403, &p.viewer), 403);
        assert_eq!(misses, ["PUT /api/v1/registers/{key} -> 200"]);
        assert_eq!(
            judge("security.routes.viewer_writes", &misses).status,
            certify::Status::Fail
        );
    }
}
