//! The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{Value, json};

use super::router::PREFIX;

// Users, TOTP and sessions: their paths and schemas, merged in below.
#[path = "openapi_auth.rs"]
mod auth;
// Backups: their paths and schemas, merged in below.
#[path = "openapi_backup.rs"]
mod backup;
// Certification (waivers, reports, sign-offs): merged in below.
#[path = "openapi_certify.rs"]
mod certify;
// The autopilot's paths and schemas, merged in below.
#[path = "openapi_autopilot.rs"]
mod autopilot;
// The autopilot's acting (decisions, approvals, controls, policy).
#[path = "openapi_act.rs"]
mod act;

/// A reference to a schema in `components`.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A JSON response with `description` and body `body`.
fn ok(description: &str, body: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": body } } })
}

/// A JSON request body.
fn body(schema_name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema(schema_name) } } })
}

/// The error responses an authenticated route can give, plus `extra`.
fn errors(extra: &[(&str, &str)]) -> Value {
    let mut responses = serde_json::Map::new();
    let mut add = |status: &str, description: &str| {
        responses.insert(
            status.to_string(),
            json!({ "description": description, "content": { "application/json": { "schema": schema("Error") } } }),
        );
    };
    add(
        "401",
        "`unauthorized`: no token, or a token that is not known",
    );
    add("403", "`forbidden`: a join token (it only joins nodes)");
    add(
        "503",
        "`unavailable`: the cluster has no leader or quorum now; retry",
    );
    add("500", "`internal`: a fault on the node");
    for (status, description) in extra {
        add(status, description);
    }
    Value::Object(responses)
}

const BAD_JSON: (&str, &str) = (
    "400",
    "`invalid` (a bad value; `field` names it) or `malformed_json` (not JSON, or an unknown or missing member; `field` names it when known)",
);
const TOO_LARGE: (&str, &str) = ("413", "`payload_too_large`: a JSON body over 1 MiB");
const MEDIA: (&str, &str) = (
    "415",
    "`unsupported_media_type`: a body that is not application/json",
);
const NOT_FOUND: (&str, &str) = (
    "404",
    "`not_found`: the tenant, app or version does not exist",
);
const CONFLICT: (&str, &str) = ("409", "`already_exists`, `in_use` or `quota_exceeded`");
const BAD_NAME: (&str, &str) = ("400", "`invalid`: a path segment is not a valid name");

fn param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn tenant() -> Value {
    param("tenant", "the tenant's name (a DNS label)")
}

fn app() -> Value {
    param("app", "the app's name (a DNS label)")
}

/// A response without a body.
fn empty(description: &str) -> Value {
    json!({ "description": description })
}

const REVISION_HEADER: &str = "dwcp-revision";

/// A response to a write, with the revision header.
fn written(description: &str, body: Value) -> Value {
    let mut response = ok(description, body);
    response["headers"] = json!({ REVISION_HEADER: { "description": "the state's revision after the write", "schema": { "type": "integer" } } });
    response
}

fn written_empty(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { REVISION_HEADER: { "description": "the state's revision after the write", "schema": { "type": "integer" } } }
    })
}

/// Merges `success` into the error responses.
fn responses(success: &[(&str, Value)], extra: &[(&str, &str)]) -> Value {
    let mut all = errors(extra);
    for (status, response) in success {
        all[*status] = response.clone();
    }
    all
}

fn paths() -> Value {
    let p = |path: &str| format!("{PREFIX}{path}");
    let mut paths = serde_json::Map::new();
    let mut add = |path: &str, item: Value| {
        paths.insert(p(path), item);
    };
    add(
        "/health",
        json!({ "get": {
            "summary": "Whether this node serves the API",
            "operationId": "health",
            "security": [],
            "responses": { "200": ok("the node answers", schema("Health")) }
        }}),
    );
    add(
        "/openapi.json",
        json!({ "get": {
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": { "200": ok("the OpenAPI 3.1 document", json!({ "type": "object" })) }
        }}),
    );
    add(
        "/tenants",
        json!({
            "get": {
                "summary": "List tenants",
                "operationId": "listTenants",
                "responses": responses(&[("200", ok("the tenants", schema("TenantList")))], &[])
            },
            "post": {
                "summary": "Create a tenant (or replace the quotas of an existing one)",
                "operationId": "putTenant",
                "requestBody": body("NewTenant"),
                "responses": responses(&[
                    ("201", written("created", schema("Tenant"))),
                    ("200", written("it existed; its quotas were replaced", schema("Tenant"))),
                ], &[BAD_JSON, MEDIA, TOO_LARGE])
            }
        }),
    );
    add(
        "/tenants/{tenant}",
        json!({
            "parameters": [tenant()],
            "delete": {
                "summary": "Delete a tenant that has no apps",
                "operationId": "deleteTenant",
                "responses": responses(&[("204", written_empty("deleted"))], &[BAD_NAME, NOT_FOUND, ("409", "`in_use`: the tenant still has apps")])
            }
        }),
    );
    add(
        "/apps",
        json!({ "get": {
            "summary": "List apps, of all tenants or of one",
            "operationId": "listApps",
            "parameters": [{ "name": "tenant", "in": "query", "required": false, "schema": { "type": "string" }, "description": "only this tenant's apps" }],
            "responses": responses(&[("200", ok("the apps", schema("AppList")))], &[("400", "`invalid`: a bad tenant name or an unknown query parameter"), ("404", "`not_found`: the tenant does not exist")])
        }}),
    );
    add(
        "/route-conflicts",
        json!({ "get": {
            "summary": "Apps of different tenants whose routes break the routing rules (only a state written before the rules were checked has any)",
            "operationId": "listRouteConflicts",
            "responses": responses(&[("200", ok("the conflicts", schema("RouteConflicts")))], &[])
        }}),
    );
    add(
        "/tenants/{tenant}/apps",
        json!({
            "parameters": [tenant()],
            "post": {
                "summary": "Create an app",
                "operationId": "createApp",
                "requestBody": body("NewApp"),
                "responses": responses(&[("201", written("created", schema("App")))], &[BAD_JSON, NOT_FOUND, CONFLICT, MEDIA, TOO_LARGE])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}",
        json!({
            "parameters": [tenant(), app()],
            "get": {
                "summary": "An app with its versions and deployment",
                "operationId": "getApp",
                "responses": responses(&[("200", ok("the app", schema("AppDetail")))], &[BAD_NAME, NOT_FOUND])
            },
            "delete": {
                "summary": "Delete an app with its versions and deployment",
                "operationId": "deleteApp",
                "responses": responses(&[("204", written_empty("deleted"))], &[BAD_NAME, NOT_FOUND])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/versions",
        json!({
            "parameters": [tenant(), app()],
            "post": {
                "summary": "Add the app's next version from an uploaded artifact",
                "operationId": "addVersion",
                "requestBody": body("NewVersion"),
                "responses": responses(&[("201", written("added", schema("Version")))], &[
                    ("400", "`invalid` (e.g. `digest`: not uploaded yet, `config.memory_bytes`, `config.timeout_ms`) or `malformed_json`"),
                    NOT_FOUND, MEDIA, TOO_LARGE,
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/deployment",
        json!({
            "parameters": [tenant(), app()],
            "put": {
                "summary": "Set how many replicas of which version run in each region",
                "operationId": "setDeployment",
                "requestBody": body("SetDeployment"),
                "responses": responses(&[("200", written("set", schema("Deployment")))], &[
                    BAD_JSON,
                    ("404", "`not_found`: the tenant, app, version or a region does not exist"),
                    ("409", "`quota_exceeded`: over the tenant's replica quota; or `not_certified`: the cluster or the app is marked production and the cluster holds no current signed certification (an admin may send `override_certification`)"),
                    ("403", "`forbidden`: an override of the go-live gate by someone not an admin on every tenant"),
                    MEDIA, TOO_LARGE,
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/rollouts",
        json!({
            "parameters": [tenant(), app()],
            "get": {
                "summary": "The app's rollouts kept (the last 50), newest first, each with its audit trail",
                "operationId": "listRollouts",
                "responses": responses(&[("200", ok("the rollouts", schema("RolloutList")))], &[
                    ("404", "`not_found`: the app does not exist"),
                ])
            },
            "post": {
                "summary": "Start a rollout of a version (plan: steps set_weight, pause, analysis, region_wave, blue_green; default 1/10/50/100 % with analyses)",
                "operationId": "startRollout",
                "requestBody": body("StartRollout"),
                "responses": responses(&[("201", written("started", schema("LiveRollout")))], &[
                    ("400", "`invalid` with field `plan` (the message names the step and field); or `malformed_json`"),
                    ("404", "`not_found`: the app or version does not exist"),
                    ("409", "`not_certified`: the cluster or the app is marked production and the cluster holds no current signed certification (an admin may send `override_certification`)"),
                    ("403", "`forbidden`: an override of the go-live gate by someone not an admin on every tenant"),
                    MEDIA, TOO_LARGE,
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/rollout",
        json!({
            "parameters": [tenant(), app()],
            "get": {
                "summary": "The app's latest rollout, live: progress, weights per region, what each version served",
                "operationId": "showRollout",
                "responses": responses(&[("200", ok("the rollout", schema("LiveRollout")))], &[
                    ("404", "`not_found`: no such app, or it has had no rollout"),
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/rollout/promote",
        json!({
            "parameters": [tenant(), app()],
            "post": {
                "summary": "Skip the running rollout's current pause or analysis",
                "operationId": "promoteRollout",
                "responses": responses(&[("200", written("asked", schema("LiveRollout")))], &[
                    ("404", "`not_found`: no such app, or no rollout running"),
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/rollout/abort",
        json!({
            "parameters": [tenant(), app()],
            "post": {
                "summary": "Abort the running rollout: all traffic back on stable, in one store write",
                "operationId": "abortRollout",
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "properties": { "reason": { "type": "string" } } } } } },
                "responses": responses(&[("200", written("aborted", schema("LiveRollout")))], &[
                    BAD_JSON,
                    ("404", "`not_found`: no such app, or no rollout running"),
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/logs",
        json!({
            "parameters": [tenant(), app()],
            "get": {
                "summary": "The app's log lines from every node, oldest first: what its guests wrote to stderr, their stdout when it was not an HTTP response, and why requests failed (stream `dwcp`); each with the node, version and request id",
                "operationId": "appLogs",
                "parameters": [
                    { "name": "version", "in": "query", "required": false, "description": "only this version's lines", "schema": { "type": "integer", "minimum": 1 } },
                    { "name": "last_ms", "in": "query", "required": false, "description": "only lines of the last this many ms", "schema": { "type": "integer", "minimum": 1 } },
                    { "name": "limit", "in": "query", "required": false, "description": "lines wanted, 1 to 1000 (default 200)", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
                    { "name": "after", "in": "query", "required": false, "description": "the previous page's `cursor`: the lines after it, oldest first; without it, the newest lines", "schema": { "type": "string" } }
                ],
                "responses": responses(&[("200", ok("the lines", schema("LogPage")))], &[
                    ("400", "`invalid` with field `version`, `last_ms`, `limit` or `after`, or an unknown query parameter"),
                    ("404", "`not_found`: no such app"),
                ])
            }
        }),
    );
    add(
        "/tenants/{tenant}/apps/{app}/traffic",
        json!({
            "parameters": [tenant(), app()],
            "get": {
                "summary": "The app's request rate and error ratio over about the last minute, as this node sampled the nodes' reports (dwcp rollout start sizes a rollout's analyses with it)",
                "operationId": "appTraffic",
                "responses": responses(&[("200", ok("the traffic", json!({
                    "type": "object",
                    "required": ["requests_per_s", "error_ratio", "over_ms", "window_ms"],
                    "properties": {
                        "requests_per_s": { "type": "number" },
                        "error_ratio": { "type": "number" },
                        "over_ms": { "description": "the span measured, up to window_ms (0: not measured yet)", "type": "integer", "minimum": 0 },
                        "window_ms": { "type": "integer", "minimum": 0 }
                    }
                })))], &[
                    ("404", "`not_found`: no such app"),
                ])
            }
        }),
    );
    add(
        "/tokens",
        json!({
            "get": {
                "summary": "API tokens: names and roles (never the tokens)",
                "operationId": "listTokens",
                "responses": responses(&[("200", ok("the tokens", schema("TokenList")))], &[])
            },
            "post": {
                "summary": "Make an API token with a role: admin, operator (reads and changes to apps) or viewer (reads only); shown once (admin only)",
                "operationId": "createToken",
                "requestBody": body("NewToken"),
                "responses": responses(&[("201", written("made; `token` is shown this once", schema("NewTokenMade")))], &[
                    ("400", "`invalid` with field `name` (not a name) or `role` (not admin, operator or viewer); or `malformed_json`"),
                    MEDIA, TOO_LARGE,
                ])
            }
        }),
    );
    add(
        "/tokens/{name}",
        json!({
            "parameters": [{ "name": "name", "in": "path", "required": true, "description": "the token's name", "schema": { "type": "string" } }],
            "delete": {
                "summary": "Delete an API token: it stops working (admin only; the last admin token is kept)",
                "operationId": "deleteToken",
                "responses": responses(&[("204", empty("deleted"))], &[
                    ("400", "`invalid` with field `name`: the last admin token"),
                    ("404", "`not_found`: no API token with that name"),
                ])
            }
        }),
    );
    add(
        "/runbooks",
        json!({ "get": {
            "summary": "Every runbook: name, title and the alerts it answers",
            "operationId": "listRunbooks",
            "responses": responses(&[("200", ok("the runbooks", schema("RunbookList")))], &[])
        }}),
    );
    add(
        "/runbooks/{name}",
        json!({
            "parameters": [{ "name": "name", "in": "path", "required": true, "description": "the runbook's name", "schema": { "type": "string" } }],
            "get": {
                "summary": "One runbook with its Markdown text",
                "operationId": "showRunbook",
                "responses": responses(&[("200", ok("the runbook", schema("Runbook")))], &[
                    ("404", "`not_found`: no such runbook"),
                ])
            },
            "put": {
                "summary": "Create or replace a runbook: Markdown with TOML front matter (title, alerts) between +++ lines",
                "operationId": "putRunbook",
                "requestBody": { "required": true, "content": { "text/markdown": { "schema": { "type": "string" } } } },
                "responses": responses(&[("200", written("stored", schema("Runbook")))], &[
                    ("400", "`invalid` naming the field of the front matter (`front matter`, `title`, `alerts`, `severity`, an unknown key) or `text`; nothing is stored"),
                    ("413", "`payload_too_large`: over 64 KiB"),
                    ("415", "`unsupported_media_type`: not text/markdown or text/plain"),
                ])
            },
            "delete": {
                "summary": "Delete a runbook",
                "operationId": "deleteRunbook",
                "responses": responses(&[("204", empty("deleted"))], &[
                    ("404", "`not_found`: no such runbook"),
                ])
            }
        }),
    );
    add(
        "/blobs",
        json!({ "post": {
            "summary": "Upload an artifact (raw bytes, at most 64 MiB)",
            "operationId": "uploadBlob",
            "requestBody": {
                "required": true,
                "content": {
                    "application/wasm": { "schema": { "type": "string", "format": "binary" } },
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
                }
            },
            "responses": responses(&[("201", ok("stored", schema("BlobReceipt")))], &[
                ("400", "`invalid` with field `body`: an empty upload"),
                ("413", "`payload_too_large`: over 64 MiB"),
                ("415", "`unsupported_media_type`: not application/wasm or application/octet-stream"),
            ])
        }}),
    );
    add(
        "/blobs/{digest}",
        json!({
            "parameters": [param("digest", "lowercase hex sha256 of the artifact")],
            "get": {
                "summary": "Whether this node stores an artifact",
                "operationId": "getBlob",
                "responses": responses(&[("200", ok("stored here", schema("BlobStored")))], &[
                    ("400", "`invalid` with field `digest`: not 64 lowercase hex digits"),
                    ("404", "`not_found`: not stored on this node"),
                ])
            }
        }),
    );
    add(
        "/cluster",
        json!({ "get": {
            "summary": "Members, roles, leader, term, commit index and lag",
            "operationId": "clusterStatus",
            "responses": responses(&[("200", ok("the cluster as this node sees it", schema("ClusterStatus")))], &[])
        }}),
    );
    add(
        "/nodes",
        json!({ "get": {
            "summary": "Every node with its last report (heartbeat, templates ready, live sandboxes, per-version requests, errors and latency) and its placements",
            "operationId": "listNodes",
            "responses": responses(&[("200", ok("the nodes", schema("NodeList")))], &[])
        }}),
    );
    add(
        "/capacity",
        json!({ "get": {
            "summary": "Use and headroom per node and per region: capacity, sandboxes placed, headroom, sandboxes alive at the last report",
            "operationId": "capacity",
            "responses": responses(&[("200", ok("capacity", schema("Capacity")))], &[])
        }}),
    );
    add(
        "/planet",
        json!({ "get": {
            "summary": "The planet as this node's gossip member sees it: per region the members known and alive, its own report (health, capacity, load) and the judgement (healthy, degraded, down); per app the status in each region. 404 on a node not started with --topology",
            "operationId": "planet",
            "responses": responses(&[("200", ok("the planet", schema("Planet")))], &[("404", "`not_found`: this node does not run in a planet")])
        }}),
    );
    add(
        "/cluster/global",
        json!({ "get": {
            "summary": "The global tier's members, roles, leader, term and lag, as this node's member of it sees them (the same shape as /cluster)",
            "operationId": "globalClusterStatus",
            "responses": responses(&[("200", ok("the global tier's status", schema("ClusterStatus")))], &[("404", "`not_found`: this node does not run in a planet")])
        }}),
    );
    add(
        "/route",
        json!({ "get": {
            "summary": "Global routing: the region a client at (lat, lon) should use — the nearest by the topology's model that this node's gossip does not hold down — with its modelled RTT, judgement and gateways",
            "operationId": "route",
            "parameters": [
                { "name": "lat", "in": "query", "required": true, "description": "latitude, -90 to 90", "schema": { "type": "number", "minimum": -90, "maximum": 90 } },
                { "name": "lon", "in": "query", "required": true, "description": "longitude, -180 to 180", "schema": { "type": "number", "minimum": -180, "maximum": 180 } }
            ],
            "responses": responses(&[("200", ok("the route", schema("Route")))], &[("404", "`not_found`: this node does not run in a planet"), ("503", "`unavailable`: no region is up")])
        }}),
    );
    add(
        "/failovers",
        json!({ "get": {
            "summary": "Regions the global tier failed over (declared_ms, targets with shares in thousandths, approved, recovered_ms)",
            "operationId": "failovers",
            "responses": responses(&[("200", ok("the failovers", schema("FailoverList")))], &[])
        }}),
    );
    add(
        "/failovers/{region}/approve",
        json!({ "post": {
            "summary": "Approve a failover the hourly guardrail held (admin; a user's session needs TOTP)",
            "operationId": "approveFailover",
            "parameters": [{ "name": "region", "in": "path", "required": true, "schema": { "type": "string" } }],
            "responses": responses(&[("200", ok("the failover, approved", schema("Failover")))], &[("404", "`not_found`: no failover of that region"), ("400", "`invalid`: it is approved already"), ("503", "`unavailable`: the global tier has no quorum")])
        }}),
    );
    add(
        "/audit",
        json!({ "get": {
            "summary": "The audit log: who changed what, when and from where (one entry per change made through the API, in the same log entry as the change; the latest 10,000)",
            "operationId": "audit",
            "parameters": [
                { "name": "since", "in": "query", "required": false, "description": "only entries after this revision", "schema": { "type": "integer", "minimum": 0 } }
            ],
            "responses": responses(&[("200", ok("the entries, oldest first", schema("AuditList")))], &[
                ("400", "`invalid` with field `since`, or an unknown query parameter"),
            ])
        }}),
    );
    add(
        "/costs",
        json!({ "get": {
            "summary": "Usage (requests, sandbox-seconds, GB-seconds) and cost per app and tenant, over the nodes' last reports (what each served since its process started); cost is null until prices are set",
            "operationId": "costs",
            "responses": responses(&[("200", ok("costs", schema("Costs")))], &[])
        }}),
    );
    add(
        "/prices",
        json!({
            "get": {
                "summary": "What running apps costs",
                "operationId": "prices",
                "responses": responses(&[("200", ok("the prices", schema("Prices")))], &[
                    ("404", "`not_found`: no prices set yet"),
                ])
            },
            "put": {
                "summary": "Set the prices (admin only)",
                "operationId": "setPrices",
                "requestBody": body("Prices"),
                "responses": responses(&[("200", written("set", schema("Prices")))], &[
                    ("400", "`invalid` with field `currency` (three capital letters) or an amount (0 to 1000000); or `malformed_json`"),
                    MEDIA, TOO_LARGE,
                ])
            }
        }),
    );
    add(
        "/cluster/nodes/{id}",
        json!({
            "parameters": [{ "name": "id", "in": "path", "required": true, "description": "the node's id", "schema": { "type": "integer", "minimum": 0 } }],
            "delete": {
                "summary": "Remove a node from the cluster",
                "operationId": "removeNode",
                "responses": responses(&[("204", empty("removed"))], &[
                    ("400", "`invalid` with field `node`: not a whole number, or a removal the cluster refuses"),
                    ("404", "`not_found`: not a member"),
                ])
            }
        }),
    );
    add(
        "/watch",
        json!({ "get": {
            "summary": "Changes after a revision (a long poll, like etcd's watch)",
            "operationId": "watch",
            "parameters": [
                { "name": "since", "in": "query", "required": true, "description": "the revision to watch from", "schema": { "type": "integer", "minimum": 0 } },
                { "name": "wait_ms", "in": "query", "required": false, "description": "how long to wait for a change when there is none (default 30000, at most 60000)", "schema": { "type": "integer", "minimum": 0, "maximum": 60000 } }
            ],
            "responses": responses(&[("200", ok("the changes (none when the wait ran out) and the revision to watch from next", json!({
                "type": "object", "required": ["events", "next"],
                "properties": {
                    "events": { "type": "array", "items": { "type": "object", "properties": {
                        "revision": { "type": "integer" },
                        "change": { "type": "object", "properties": {
                            "record": { "type": "string" }, "key": { "type": "string" }, "deleted": { "type": "boolean" } } } } } },
                    "next": { "type": "integer" }
                }
            })))], &[
                ("400", "`invalid` with field `since`, `wait_ms` or an unknown parameter"),
                ("410", "`compacted` with field `since`: changes that old are no longer kept; read the state and watch from its revision"),
            ])
        }}),
    );
    add(
        "/events",
        json!({ "get": {
            "summary": "The dashboard's live updates, as server-sent events",
            "description": "A `text/event-stream` that never ends by itself: at once, then once a second, an event `frame` whose data is JSON `{at_unix_ms, parts}`; `parts` maps the id of each section of the dashboard page to its HTML (SVG charts included), rendered on the server.",
            "operationId": "events",
            "parameters": [
                { "name": "page", "in": "query", "required": false, "description": "which page: overview (default), apps, rollouts, nodes, incidents, slos, capacity, costs or audit", "schema": { "type": "string" } }
            ],
            "responses": responses(&[("200", json!({ "description": "the stream", "content": { "text/event-stream": { "schema": { "type": "string" }, "itemSchema": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": { "const": "frame" },
                    "data": { "type": "string", "contentMediaType": "application/json", "description": "{at_unix_ms, parts}" }
                }
            } } } }))], &[
                ("400", "`invalid` with field `page`: not one of the pages"),
            ])
        }}),
    );
    add(
        "/cluster/join-tokens",
        json!({ "post": {
            "summary": "Make a new join token (shown once; only its hash is stored)",
            "description": "The token admits `uses` joins (default 1; 0: any number) for `ttl_s` seconds (default 3600, at most 30 days).",
            "operationId": "newJoinToken",
            "requestBody": { "required": false, "content": { "application/json": { "schema": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "ttl_s": { "type": "integer", "minimum": 1, "maximum": 2592000 },
                    "uses": { "type": ["integer", "null"], "minimum": 0, "maximum": 4294967295u64 }
                }
            } } } },
            "responses": responses(&[("201", ok("the token, for `dwcp up --join ADDR --token T`", json!({
                "type": "object", "required": ["token"],
                "properties": { "token": { "type": "string" } }
            })))], &[BAD_JSON, MEDIA, TOO_LARGE])
        },
        "get": {
            "summary": "List the join tokens: name, expiry and uses left (never the secret)",
            "operationId": "listJoinTokens",
            "responses": responses(&[("200", ok("the join tokens", json!({
                "type": "object", "required": ["tokens"],
                "properties": { "tokens": { "type": "array", "items": {
                    "type": "object", "required": ["name", "created"],
                    "properties": {
                        "name": { "type": "string" },
                        "created": { "type": "integer" },
                        "expires_unix_ms": { "type": "integer" },
                        "uses_left": { "type": "integer" }
                    }
                } } }
            })))], &[])
        }}),
    );
    add(
        "/cluster/join-tokens/{name}",
        json!({
            "parameters": [param("name", "a join token's name, as listed")],
            "delete": {
                "summary": "Revoke a join token: it admits no more nodes",
                "operationId": "revokeJoinToken",
                "responses": responses(&[("204", written_empty("revoked"))], &[BAD_NAME, NOT_FOUND])
            }
        }),
    );
    add(
        "/registers/{key}",
        json!({
            "parameters": [param("key", "1 to 256 bytes, one path segment")],
            "get": {
                "summary": "Read a register (linearizable)",
                "operationId": "getRegister",
                "responses": responses(&[("200", ok("the value, null when unset", schema("Register")))], &[("400", "`invalid` with field `key`")])
            },
            "put": {
                "summary": "Set a register",
                "operationId": "putRegister",
                "requestBody": body("PutRegister"),
                "responses": responses(&[("200", written("set", schema("Written")))], &[BAD_JSON, MEDIA, TOO_LARGE])
            }
        }),
    );
    add(
        "/registers/{key}/cas",
        json!({
            "parameters": [param("key", "1 to 256 bytes, one path segment")],
            "post": {
                "summary": "Compare and swap: set `new` (delete when null) only if the register holds `expected` (null: unset)",
                "operationId": "casRegister",
                "requestBody": body("CompareAndSwap"),
                "responses": responses(&[("200", written("whether it swapped, and what the register held", schema("Swapped")))], &[BAD_JSON, MEDIA, TOO_LARGE])
            }
        }),
    );
    paths.extend(slo_paths());
    Value::Object(paths)
}

/// SLOs, incidents and the test clock.
fn slo_paths() -> serde_json::Map<String, Value> {
    let p = |path: &str| format!("{PREFIX}{path}");
    let id = json!({ "name": "id", "in": "path", "required": true, "description": "the incident's number", "schema": { "type": "integer", "minimum": 1 } });
    let mut paths = serde_json::Map::new();
    paths.insert(p("/slos"), json!({ "get": {
        "summary": "Every SLO with the evaluator's latest burn rates per rule and error budget left (null until evaluated)",
        "operationId": "listAllSlos",
        "responses": responses(&[("200", ok("the SLOs", schema("SloList")))], &[])
    }}));
    paths.insert(p("/tenants/{tenant}/apps/{app}/slos"), json!({
        "parameters": [tenant(), app()],
        "get": {
            "summary": "The SLOs of one app",
            "operationId": "listSlos",
            "responses": responses(&[("200", ok("the app's SLOs", schema("SloList")))], &[("404", "`not_found`: no such app")])
        }
    }));
    paths.insert(p("/tenants/{tenant}/apps/{app}/slos/{name}"), json!({
        "parameters": [tenant(), app(), param("name", "the SLO's name, unique per app")],
        "get": {
            "summary": "One SLO with its status",
            "operationId": "showSlo",
            "responses": responses(&[("200", ok("the SLO", schema("Slo")))], &[("404", "`not_found`: no such SLO")])
        },
        "put": {
            "summary": "Create or replace an SLO: availability (no 5xx) or latency (answered within threshold_ms), a target in (0, 1), a window, notification targets",
            "operationId": "putSlo",
            "requestBody": body("PutSlo"),
            "responses": responses(&[("200", written("stored", schema("Slo")))], &[
                ("400", "`invalid` naming the field: `objective`, `threshold_ms`, `target` (outside (0, 1)), `window_days`, `notify[i].kind`, `notify[i].url` (does not parse, or its host is written as a loopback, private, link-local or other internal address or `localhost` and the node does not allow it with `--allow-webhook-host`), `notify[i].routing_key`; nothing is stored"),
                ("404", "`not_found`: no such app"),
                BAD_JSON, MEDIA, TOO_LARGE,
            ])
        },
        "delete": {
            "summary": "Delete an SLO",
            "operationId": "deleteSlo",
            "responses": responses(&[("204", written_empty("deleted"))], &[("404", "`not_found`: no such SLO")])
        }
    }));
    paths.insert(p("/incidents"), json!({ "get": {
        "summary": "Incidents, newest first; `?status=open|acknowledged|resolved|unresolved|all`",
        "operationId": "listIncidents",
        "parameters": [{ "name": "status", "in": "query", "required": false, "schema": { "type": "string", "enum": ["open", "acknowledged", "resolved", "unresolved", "all"] } }],
        "responses": responses(&[("200", ok("the incidents", schema("IncidentList")))], &[("400", "`invalid` with field `status`")])
    }}));
    paths.insert(p("/incidents/{id}"), json!({
        "parameters": [id.clone()],
        "get": {
            "summary": "One incident: timeline, time to acknowledge and resolve, and the runbooks whose front matter names its alert",
            "operationId": "showIncident",
            "responses": responses(&[("200", ok("the incident", schema("Incident")))], &[("404", "`not_found`: no such incident")])
        }
    }));
    for (path, op, summary) in [
        (
            "/incidents/{id}/acknowledge",
            "acknowledgeIncident",
            "Acknowledge an open incident",
        ),
        (
            "/incidents/{id}/resolve",
            "resolveIncident",
            "Resolve an open or acknowledged incident, optionally with `text`",
        ),
        (
            "/incidents/{id}/notes",
            "noteIncident",
            "Add `text` to an incident's timeline",
        ),
    ] {
        paths.insert(p(path), json!({
            "parameters": [id.clone()],
            "post": {
                "summary": summary,
                "operationId": op,
                "requestBody": { "required": op == "noteIncident", "content": { "application/json": { "schema": if op == "noteIncident" {
                    json!({ "allOf": [schema("IncidentText")], "required": ["text"] })
                } else {
                    schema("IncidentText")
                } } } },
                "responses": responses(&[("200", written("the incident after the step", schema("Incident")))], &[
                    ("400", "`invalid`: field `status` (already acknowledged or resolved) or `text`"),
                    ("404", "`not_found`: no such incident"),
                    BAD_JSON, MEDIA,
                ])
            }
        }));
    }
    paths.insert(p("/test/clock"), json!({ "post": {
        "summary": "Tests only (admin): on a node started with the hidden `dwcp up --manual-clock`, advance the clock of the SLO evaluator and the autopilot by `advance_ms` and run one round of each; answers what fired (the autopilot's round under `autopilot`). Elsewhere 404.",
        "operationId": "advanceTestClock",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["advance_ms"], "properties": { "advance_ms": { "type": "integer", "minimum": 0 }, "troubles": { "type": "array", "description": "troubles handed to the autopilot's acting loop, as it senses them (act::Trouble)", "items": { "type": "object" } } } } } } },
        "responses": responses(&[("200", ok("the round: now_ms, firing, opened, cleared", json!({ "type": "object" })))], &[
            ("404", "`not_found`: the node runs on the wall clock"),
            ("503", "`unavailable`: this node does not lead the cluster"),
        ])
    }}));
    paths
}

/// The schemas of SLOs and incidents.
fn slo_schemas() -> serde_json::Map<String, Value> {
    let Value::Object(map) = json!({
        "PutSlo": {
            "type": "object",
            "required": ["objective", "target"],
            "additionalProperties": false,
            "properties": {
                "objective": { "type": "string", "enum": ["availability", "latency"] },
                "threshold_ms": { "type": "integer", "minimum": 1, "description": "latency only" },
                "target": { "type": "number", "exclusiveMinimum": 0, "maximum": MAX_SLO_TARGET, "description": "the objective, above 0 and at most 0.999999 (six nines)" },
                "window_days": { "type": "integer", "minimum": 1, "maximum": 90, "default": 30 },
                "notify": { "type": "array", "maxItems": 10, "items": schema("NotifyTarget") }
            },
            // `slos::slo_of`: a latency objective needs `threshold_ms`,
            // availability takes none.
            "if": { "properties": { "objective": { "const": "latency" } } },
            "then": { "required": ["threshold_ms"] },
            "else": { "not": { "required": ["threshold_ms"] } }
        },
        "NotifyTarget": {
            "type": "object",
            "required": ["kind", "url"],
            "additionalProperties": false,
            "properties": {
                "kind": { "type": "string", "enum": ["alertmanager", "alertmanager_api", "pagerduty", "slack"] },
                // What `state::slo::check_url` refuses whatever the rest
                // (another scheme, spaces, control or non-ASCII
                // characters); the host must also be a public address
                // unless the node allows it (`--allow-webhook-host`),
                // which no document can state.
                "url": { "type": "string", "maxLength": 2048, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[!-~]+$", "description": "http(s) URL of a public host (internal addresses only when the node allows the host); sealed at rest, and shown redacted to `scheme://host[:port]/…`" },
                "routing_key": { "type": ["string", "null"], "description": "pagerduty only; sealed at rest, and shown redacted to `…` and its last four characters" }
            },
            // A routing key for pagerduty, and only there.
            "if": { "properties": { "kind": { "const": "pagerduty" } } },
            "then": { "required": ["routing_key"], "properties": { "routing_key": { "type": "string", "pattern": "^[A-Za-z0-9]{1,64}$" } } },
            "else": { "properties": { "routing_key": { "type": "null" } } }
        },
        "Slo": {
            "type": "object",
            "description": "tenant, app, name, objective, threshold_ms, target, window_days, notify, updated, and status: null or {unix_ms, budget_remaining, history_ms, rules: [{rule, severity, long_window_ms, short_window_ms, factor, long_burn, short_burn, firing}]}"
        },
        "SloList": {
            "type": "object",
            "required": ["slos"],
            "properties": { "slos": { "type": "array", "items": schema("Slo") } }
        },
        "Incident": {
            "type": "object",
            "description": "id, fingerprint (tenant/app/slo/severity), alert, tenant, app, slo, severity (page|ticket), status (open|acknowledged|resolved), opened_unix_ms, acknowledged_unix_ms, resolved_unix_ms, acknowledged_by, resolved_by, timeline [{unix_ms, who, text}], timeline_dropped, time_to_acknowledge_ms, time_to_resolve_ms; on GET /incidents/{id} also runbooks [{name, title, text}]"
        },
        "IncidentList": {
            "type": "object",
            "required": ["incidents"],
            "properties": { "incidents": { "type": "array", "items": schema("Incident") } }
        },
        "IncidentText": {
            "type": "object",
            "additionalProperties": false,
            "properties": { "text": { "type": "string", "minLength": 1, "maxLength": 2000 } }
        }
    }) else {
        return serde_json::Map::new();
    };
    map
}

/// An app's route: `/`, or segments of A-Z a-z 0-9 - . _ ~ (none empty,
/// none `.` or `..`) each after a '/', at most 256 bytes
/// (`state::check_route`).
fn route_schema() -> Value {
    let segment =
        r"(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.\.[A-Za-z0-9._~-]+)";
    json!({
        "type": "string", "maxLength": 256, "pattern": format!("^(?:/|(?:/{segment})+)$"),
        "description": "a path prefix like /hello: starts with '/', at most 256 of A-Z a-z 0-9 - . _ ~ /, no empty segment, no `.` or `..` segment, no trailing '/'"
    })
}

/// A host: lowercase DNS labels joined by '.' (`state::check_host`).
const HOST_PATTERN: &str =
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$";

/// The highest SLO target the API takes (`api::slos`): finer objectives
/// leave no error budget to measure, and the JSON reader cannot tell
/// `0.9999999999999999` from 1.
pub(crate) const MAX_SLO_TARGET: f64 = 0.999_999;

/// A rollout plan's step of `kind`: an object with that one key.
fn plan_step(kind: &str, body: Value) -> Value {
    json!({ "type": "object", "required": [kind], "additionalProperties": false, "properties": { kind: body } })
}

fn name_schema() -> Value {
    json!({ "type": "string", "pattern": "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", "description": "a DNS label: 1-63 of a-z, 0-9 and '-', starting with a letter, not ending with '-'" })
}

fn schemas() -> Value {
    let uint = json!({ "type": "integer", "minimum": 0 });
    let nullable_uint = json!({ "type": ["integer", "null"], "minimum": 0 });
    let nullable_string = json!({ "type": ["string", "null"] });
    let digest = json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" });
    let override_certification = json!({
        "type": ["string", "null"], "minLength": 1, "maxLength": 200,
        "description": "an admin's reason to make the change though the go-live gate refuses it (the cluster or the app is marked production without a current signed certification); goes on the audit record"
    });
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {
                    "code": { "type": "string", "enum": [
                        "unauthorized", "forbidden", "not_found", "method_not_allowed", "invalid",
                        "malformed_json", "already_exists", "in_use", "conflict", "quota_exceeded", "not_certified",
                        "payload_too_large", "unsupported_media_type", "unavailable", "internal"
                    ] },
                    "message": { "type": "string", "description": "what is wrong and what is allowed" },
                    "field": { "type": ["string", "null"], "description": "the request field that is wrong, when there is one" }
                }
            } }
        },
        "Health": {
            "type": "object",
            "required": ["status", "node"],
            "properties": { "status": { "const": "ok" }, "node": uint }
        },
        "Quotas": {
            "type": "object",
            "properties": {
                "max_apps": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 100 },
                "max_replicas": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 1000 },
                "max_memory_bytes": { "type": "integer", "minimum": 65536, "maximum": 4294967296_u64, "default": 4294967296_u64, "description": "most memory per sandbox of the tenant's versions" },
                "max_timeout_ms": { "type": "integer", "minimum": 1, "maximum": 600000, "default": 600000, "description": "longest request deadline of the tenant's versions" },
                "max_concurrency": { "type": "integer", "minimum": 1, "maximum": 100000, "default": 100000, "description": "most concurrent requests of one of the tenant's apps" },
                "max_body_bytes": { "type": "integer", "minimum": 1, "maximum": 67108864, "default": 67108864, "description": "largest request or response body of the tenant's versions" }
            },
            "additionalProperties": false
        },
        "NewTenant": {
            "type": "object",
            "required": ["name"],
            "properties": { "name": name_schema(), "quotas": { "anyOf": [schema("Quotas"), { "type": "null" }], "description": "null or missing: the defaults" } },
            "additionalProperties": false
        },
        "Tenant": {
            "type": "object",
            "required": ["name", "quotas", "created"],
            "properties": { "name": name_schema(), "quotas": schema("Quotas"), "created": uint }
        },
        "TenantList": {
            "type": "object",
            "required": ["tenants"],
            "properties": { "tenants": { "type": "array", "items": schema("Tenant") } }
        },
        "NewApp": {
            "type": "object",
            "required": ["name", "route"],
            "properties": {
                "name": name_schema(),
                "route": route_schema(),
                "host": { "type": ["string", "null"], "maxLength": 253, "pattern": HOST_PATTERN, "description": "only requests for this host (a lowercase DNS name, no port) reach the app; absent or null: any host" }
            },
            "additionalProperties": false
        },
        "App": {
            "type": "object",
            "required": ["tenant", "name", "route", "next_version", "created"],
            "properties": {
                "tenant": name_schema(), "name": name_schema(), "route": { "type": "string" },
                "host": { "type": ["string", "null"] },
                "next_version": uint, "created": uint
            }
        },
        "AppSummary": {
            "type": "object",
            "required": ["tenant", "name", "route", "versions", "latest_version", "deployment", "placed", "rollout"],
            "properties": {
                "tenant": name_schema(), "name": name_schema(), "route": { "type": "string" },
                "host": { "type": ["string", "null"] },
                "versions": { "type": "integer", "minimum": 0, "description": "how many versions the app has" },
                "latest_version": nullable_uint,
                "deployment": { "oneOf": [schema("Deployment"), { "type": "null" }] },
                "placed": { "type": "integer", "minimum": 0, "description": "replicas of the deployed version placed on nodes" },
                "tier": { "description": "the deployed version's tier; null when nothing is deployed", "oneOf": [{ "type": "string", "enum": ["wasm", "microvm"] }, { "type": "null" }] },
                "rollout": { "description": "the running rollout: id, from, to, weight (the canary's %), paused; null when none", "oneOf": [{ "type": "object" }, { "type": "null" }] }
            }
        },
        "AppList": {
            "type": "object",
            "required": ["apps"],
            "properties": { "apps": { "type": "array", "items": schema("AppSummary") } }
        },
        "RouteClaim": {
            "type": "object",
            "required": ["tenant", "app", "host", "route", "kind"],
            "properties": {
                "tenant": name_schema(), "app": name_schema(),
                "host": { "type": ["string", "null"], "description": "null: every host" },
                "route": { "type": "string" },
                "kind": { "type": "string", "description": "`route`, or `preview of rollout N`" }
            }
        },
        "RouteConflicts": {
            "type": "object",
            "required": ["conflicts"],
            "properties": { "conflicts": { "type": "array", "items": {
                "type": "object",
                "required": ["first", "second", "rule"],
                "properties": {
                    "first": schema("RouteClaim"), "second": schema("RouteClaim"),
                    "rule": { "type": "string", "enum": ["host", "route"], "description": "`host`: both name the same host; `route`: their prefixes nest where their hosts meet" }
                }
            } } }
        },
        "AppDetail": {
            "type": "object",
            "required": ["app", "versions", "deployment", "placements"],
            "properties": {
                "app": schema("App"),
                "versions": { "type": "array", "items": schema("Version") },
                "deployment": { "oneOf": [schema("Deployment"), { "type": "null" }] },
                "placements": { "type": "array", "items": schema("Placement") }
            }
        },
        "StartRollout": {
            "type": "object",
            "required": ["to"],
            "properties": {
                "to": { "type": "integer", "minimum": 1, "description": "the version to roll out" },
                "plan": {
                    "type": "object", "required": ["steps"], "additionalProperties": false,
                    "properties": {
                        "steps": { "type": "array", "minItems": 1, "items": schema("PlanStep") },
                        "timeout_ms": { "type": ["integer", "null"], "minimum": 1 }
                    },
                    "description": "steps, and the whole rollout's `timeout_ms`; see docs/rollouts.md. Rules across steps no schema states: weights never go down and the last is 100, `region_wave` only first, at most one `blue_green` and before any weight above 0 (then weights 0 or 100), an analysis's `failure_limit` below its `count`, a check's `metric` one of the rollout metrics or a query over them"
                },
                "override_certification": override_certification.clone()
            },
            "additionalProperties": false
        },
        "PlanStep": {
            "description": "one key, the step's kind (`state::rollout::Step`)",
            "oneOf": [
                plan_step("set_weight", json!({ "type": "object", "required": ["weight"], "additionalProperties": false, "properties": { "weight": { "type": "integer", "minimum": 0, "maximum": 100 } } })),
                plan_step("pause", json!({ "type": "object", "additionalProperties": false, "properties": { "duration_ms": { "type": ["integer", "null"], "minimum": 1 } } })),
                plan_step("analysis", json!({
                    "type": "object", "required": ["checks"], "additionalProperties": false,
                    "properties": {
                        "checks": { "type": "array", "minItems": 1, "items": {
                            "type": "object", "required": ["metric", "comparator", "threshold"], "additionalProperties": false,
                            "properties": {
                                "metric": { "type": "string", "description": "a rollout metric (e.g. `error_rate`) or a query over them with + - * / and numbers" },
                                "comparator": { "type": "string", "enum": ["<", "<=", ">", ">="] },
                                "threshold": { "type": "number" }
                            }
                        } },
                        "interval_ms": { "type": "integer", "minimum": 1 },
                        "count": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
                        "failure_limit": { "type": "integer", "minimum": 0, "maximum": u32::MAX },
                        "inconclusive_limit": { "type": "integer", "minimum": 0, "maximum": u32::MAX }
                    }
                })),
                plan_step("region_wave", json!({ "type": "object", "required": ["waves"], "additionalProperties": false, "properties": { "waves": { "type": "array", "minItems": 1, "items": { "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 1, "maxLength": 63 } } } } })),
                plan_step("blue_green", json!({ "type": "object", "required": ["preview_route"], "additionalProperties": false, "properties": { "preview_route": { "type": "string", "maxLength": 200, "pattern": "^/[A-Za-z0-9/_.~-]*[A-Za-z0-9_.~-]$" } } }))
            ]
        },
        "Rollout": {
            "type": "object",
            "description": "id, from, to, baseline (a copy of from, or null in blue-green), plan, progress {step, weight, wave, analysis, status}, promote, started_unix_ms, finished_unix_ms, trail [{unix_ms, by, text}], updated"
        },
        "LogPage": {
            "type": "object",
            "required": ["lines", "cursor", "unreachable"],
            "properties": {
                "lines": { "type": "array", "items": {
                    "type": "object",
                    "required": ["node", "boot", "seq", "unix_ms", "tenant", "app", "version", "request_id", "stream", "text"],
                    "properties": {
                        "node": { "type": "string" }, "boot": uint, "seq": uint, "unix_ms": uint,
                        "tenant": { "type": "string" }, "app": { "type": "string" }, "version": uint,
                        "request_id": { "type": "string" },
                        "stream": { "enum": ["stderr", "stdout", "dwcp"] },
                        "text": { "type": "string" }
                    }
                } },
                "cursor": { "description": "per node, its ring's boot and the last line read; pass its text form (NODE:BOOT:SEQ,…) as `after`", "type": "object" },
                "unreachable": { "description": "nodes that did not answer (their lines are missing), with why", "type": "array", "items": { "type": "object", "properties": { "node": { "type": "string" }, "reason": { "type": "string" } } } }
            }
        },
        "LiveRollout": {
            "type": "object",
            "required": ["rollout", "weights", "served"],
            "properties": {
                "rollout": schema("Rollout"),
                "weights": { "type": "object", "description": "per region: {stable, baseline, canary} in %" },
                "served": { "type": "array", "items": { "type": "object", "description": "version, role (stable, baseline, canary), requests, errors, p99_us over every node's last report" } }
            }
        },
        "RolloutList": {
            "type": "object",
            "required": ["rollouts"],
            "properties": { "rollouts": { "type": "array", "items": schema("Rollout") } }
        },
        "Capacity": {
            "type": "object",
            "required": ["nodes", "regions"],
            "properties": {
                "nodes": { "type": "array", "items": { "type": "object", "description": "node, region, capacity, placed, headroom, live (null before its first report)" } },
                "regions": { "type": "array", "items": { "type": "object", "description": "region, nodes, capacity, placed, headroom, live" } }
            }
        },
        "Planet": {
            "type": "object",
            "required": ["me", "regions", "apps", "refused_packets", "replayed_packets"],
            "properties": {
                "me": { "type": "string" },
                "regions": { "type": "array", "items": { "type": "object", "description": "region, judged (healthy, degraded, down), known, alive, report ({health, capacity, load} or null)" } },
                "apps": { "type": "object", "description": "tenant/app → region → {wanted, ready, serving}" },
                "refused_packets": { "type": "integer" },
                "replayed_packets": { "type": "integer" }
            }
        },
        "Route": {
            "type": "object",
            "required": ["region", "rtt_ms", "judged", "gateways"],
            "properties": {
                "region": { "type": "string" },
                "rtt_ms": { "type": "number" },
                "judged": { "type": "string" },
                "gateways": { "type": "array", "items": { "type": "string" } }
            }
        },
        "Failover": {
            "type": "object",
            "required": ["region", "declared_ms", "targets", "approved"],
            "properties": {
                "region": { "type": "string" },
                "declared_ms": { "type": "integer" },
                "targets": { "type": "array", "items": { "type": "array", "description": "[region, share in thousandths]" } },
                "approved": { "type": "boolean" },
                "recovered_ms": { "type": ["integer", "null"] },
                "earlier_ms": { "type": "array", "items": { "type": "integer" }, "description": "this region's earlier failovers of the hour before, which count against the guardrail" }
            }
        },
        "FailoverList": {
            "type": "object",
            "required": ["failovers"],
            "properties": { "failovers": { "type": "array", "items": schema("Failover") } }
        },
        "AuditList": {
            "type": "object",
            "required": ["entries"],
            "properties": { "entries": { "type": "array", "items": { "type": "object", "description": "revision, unix_ms, who (the credential's name), from (the client's address), what (method and path)" } } }
        },
        "Prices": {
            "type": "object",
            "additionalProperties": false,
            "required": ["currency", "per_sandbox_second", "per_gb_second", "per_million_requests"],
            "properties": {
                "currency": { "type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217, e.g. EUR" },
                "per_sandbox_second": { "type": "number", "minimum": 0 },
                "per_gb_second": { "type": "number", "minimum": 0, "description": "per second a sandbox is busy, per GiB of its memory limit" },
                "per_million_requests": { "type": "number", "minimum": 0 }
            }
        },
        "Costs": {
            "type": "object",
            "required": ["prices", "apps", "tenants"],
            "properties": {
                "prices": { "oneOf": [schema("Prices"), { "type": "null" }] },
                "apps": { "type": "array", "items": { "type": "object", "description": "tenant, app, requests, sandbox_seconds, gb_seconds, cost" } },
                "tenants": { "type": "array", "items": { "type": "object", "description": "tenant, requests, sandbox_seconds, gb_seconds, cost" } }
            }
        },
        "NewToken": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "role"],
            "properties": {
                "name": name_schema(),
                "role": { "type": "string", "enum": ["admin", "operator", "viewer"] }
            }
        },
        "NewTokenMade": {
            "type": "object",
            "required": ["name", "role", "token"],
            "properties": { "name": { "type": "string" }, "role": { "type": "string" }, "token": { "type": "string" } }
        },
        "TokenList": {
            "type": "object",
            "required": ["tokens"],
            "properties": { "tokens": { "type": "array", "items": { "type": "object", "description": "name, role, created" } } }
        },
        "Runbook": {
            "type": "object",
            "required": ["name", "title", "alerts", "text", "updated"],
            "properties": {
                "name": { "type": "string" },
                "title": { "type": "string" },
                "alerts": { "type": "array", "items": { "type": "string" } },
                "text": { "type": "string", "description": "the Markdown file as uploaded" },
                "updated": { "type": "integer" }
            }
        },
        "RunbookList": {
            "type": "object",
            "required": ["runbooks"],
            "properties": { "runbooks": { "type": "array", "items": { "type": "object", "description": "name, title, alerts" } } }
        },
        "NodeList": {
            "type": "object",
            "required": ["nodes"],
            "properties": { "nodes": { "type": "array", "items": {
                "type": "object",
                "required": ["node", "report", "health", "placements"],
                "properties": {
                    "node": { "type": "object", "description": "name, region, address, labels, capacity, api, gateway" },
                    "report": { "description": "null until the node's agent reports; counters are totals since the node's process started (`boot`), `sequence` counts reports", "oneOf": [{ "type": "object" }, { "type": "null" }] },
                    "health": schema("NodeHealth"),
                    "placements": { "type": "array", "items": schema("Placement") }
                }
            } } }
        },
        "Placement": {
            "type": "object",
            "description": "Sandboxes of a version that the scheduler placed on a node.",
            "required": ["tenant", "app", "version", "node", "count"],
            "properties": {
                "tenant": name_schema(), "app": name_schema(), "version": uint,
                "node": name_schema(), "count": uint
            }
        },
        "VersionConfig": {
            "type": "object",
            "properties": {
                "memory_bytes": { "type": "integer", "minimum": 65536, "maximum": 4_u64 << 30, "multipleOf": 65536, "default": 64 << 20 },
                "timeout_ms": { "type": "integer", "minimum": 1, "maximum": 600000, "default": 10000 },
                "warm": { "type": "boolean", "default": false },
                "max_concurrency": { "type": "integer", "minimum": 1, "maximum": 100000, "default": 64 },
                "max_request_bytes": { "type": "integer", "minimum": 0, "maximum": 64_u64 << 20, "default": 1 << 20 },
                "max_response_bytes": { "type": "integer", "minimum": 1, "maximum": 64_u64 << 20, "default": 1 << 20 },
                "tier": { "type": "string", "enum": ["wasm", "microvm"], "default": "wasm", "description": "wasm: a WebAssembly module; microvm: a static x86-64 Linux program in a KVM microVM (memory_bytes then a multiple of 2 MiB from 8 MiB to 1 GiB); the artifact must be of the tier's kind" }
            },
            "additionalProperties": false,
            // `state::check_version_config`: a microVM's memory is whole
            // 2 MiB pages, 8 MiB to 1 GiB.
            "if": { "properties": { "tier": { "const": "microvm" } }, "required": ["tier"] },
            "then": { "properties": { "memory_bytes": { "multipleOf": 2 << 20, "minimum": 8 << 20, "maximum": 1 << 30 } } }
        },
        "NewVersion": {
            "type": "object",
            "required": ["digest"],
            "properties": { "digest": digest, "config": schema("VersionConfig") },
            "additionalProperties": false
        },
        "Version": {
            "type": "object",
            "required": ["tenant", "app", "number", "digest", "config", "created"],
            "properties": {
                "tenant": name_schema(), "app": name_schema(), "number": uint,
                "digest": digest, "config": schema("VersionConfig"), "created": uint
            }
        },
        "SetDeployment": {
            "type": "object",
            "required": ["version", "regions"],
            "properties": {
                "version": uint,
                "regions": { "type": "object", "propertyNames": name_schema(), "additionalProperties": { "type": "integer", "minimum": 0, "maximum": 100000 }, "description": "replicas wanted per region name" },
                "override_certification": override_certification
            },
            "additionalProperties": false
        },
        "Deployment": {
            "type": "object",
            "required": ["tenant", "app", "version", "regions", "updated"],
            "properties": {
                "tenant": name_schema(), "app": name_schema(), "version": uint,
                "regions": { "type": "object", "additionalProperties": uint },
                "updated": uint
            }
        },
        "BlobReceipt": {
            "type": "object",
            "required": ["digest", "size", "copies"],
            "properties": {
                "digest": digest, "size": uint,
                "copies": { "type": "integer", "minimum": 1, "description": "nodes holding a copy now" }
            }
        },
        "BlobStored": {
            "type": "object",
            "required": ["digest", "stored"],
            "properties": { "digest": digest, "stored": { "const": true } }
        },
        "ClusterStatus": {
            "type": "object",
            "required": ["reported_by", "leader", "term", "commit_index", "last_log_index", "members"],
            "properties": {
                "reported_by": uint, "leader": nullable_uint, "term": uint,
                "commit_index": nullable_uint, "last_log_index": nullable_uint,
                "members": { "type": "array", "items": schema("MemberStatus") },
                "cluster_id": { "type": ["string", "null"], "description": "GET /cluster only: the sha256 of the cluster's CA certificate, which a certification report must carry to be recorded here" }
            }
        },
        "MemberStatus": {
            "type": "object",
            "required": ["id", "address", "api", "role", "voter", "matched_index", "lag", "reachable", "health", "heartbeat_age_ms"],
            "properties": {
                "id": uint, "address": { "type": "string" }, "api": nullable_string,
                "role": { "type": "string", "enum": ["leader", "follower", "learner", "unknown"], "description": "`unknown` when its peer port did not answer (`reachable` false): a role last known is not shown as current" },
                "voter": { "type": "boolean" },
                "matched_index": nullable_uint, "lag": nullable_uint,
                "reachable": { "description": "whether its peer port answered the answering node just now", "type": ["boolean", "null"] },
                "health": { "description": "healthy, down or no_report: the scheduler's judgement of its reports", "type": ["string", "null"] },
                "heartbeat_age_ms": nullable_uint
            }
        },
        "NodeHealth": {
            "type": "object",
            "required": ["state", "heartbeat_age_ms"],
            "description": "the scheduler's judgement of a node's reports, as the answering node saw them",
            "properties": {
                "state": { "enum": ["healthy", "down", "no_report"], "description": "down: its report stood still for 3 s (the scheduler then moves its placements)" },
                "heartbeat_age_ms": nullable_uint
            }
        },
        "Register": {
            "type": "object",
            "required": ["key", "value", "revision"],
            "properties": { "key": { "type": "string" }, "value": nullable_string, "revision": uint }
        },
        "PutRegister": {
            "type": "object",
            "required": ["value"],
            "properties": { "value": { "type": "string", "maxLength": 65536 } },
            "additionalProperties": false
        },
        "Written": {
            "type": "object",
            "required": ["revision"],
            "properties": { "revision": uint }
        },
        "CompareAndSwap": {
            "type": "object",
            "properties": { "expected": nullable_string, "new": nullable_string },
            "additionalProperties": false
        },
        "Swapped": {
            "type": "object",
            "required": ["swapped", "previous", "revision"],
            "properties": { "swapped": { "type": "boolean" }, "previous": nullable_string, "revision": uint }
        }
    })
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut doc = base_document();
    auth::merge(&mut doc);
    backup::merge(&mut doc);
    autopilot::merge(&mut doc);
    certify::merge(&mut doc);
    act::merge(&mut doc);
    harden(&mut doc);
    doc
}

/// Makes the document say what the handlers check of parameters, found
/// by schemathesis (issue 16): each path and query parameter given as a
/// bare string gets the shape its name has everywhere in the API (names
/// are DNS labels, digests 64 lowercase hex digits, ids whole numbers,
/// register keys 1 to 256 bytes, metrics and kinds from their lists, a
/// limit 1 to 500, points 0 to 360), and every operation that takes
/// parameters or a body documents its 400 — a value the document allows
/// may still be refused by a rule it cannot state (a `since` ahead of the
/// revision, a name of the wrong kind of record).
fn harden(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let mut path_level = false;
        if let Some(params) = item.get_mut("parameters").and_then(Value::as_array_mut) {
            path_level = !params.is_empty();
            params.iter_mut().for_each(shape);
        }
        for (verb, op) in item.iter_mut() {
            if !matches!(verb.as_str(), "get" | "put" | "post" | "delete") {
                continue;
            }
            let mut takes = path_level || op.get("requestBody").is_some();
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                takes |= !params.is_empty();
                params.iter_mut().for_each(shape);
            }
            if takes && op["responses"].get("400").is_none() {
                op["responses"]["400"] = json!({
                    "description": "`invalid` naming the field: a parameter or member the route refuses",
                    "content": { "application/json": { "schema": schema("Error") } }
                });
            }
            if takes && op["responses"].get("404").is_none() {
                op["responses"]["404"] = json!({
                    "description": "`not_found`, naming the field when there is one: a record the request names does not exist",
                    "content": { "application/json": { "schema": schema("Error") } }
                });
            }
        }
    }
    for (path, verb, why) in CONFLICTS {
        if let Some(op) = paths.get_mut(*path).and_then(|item| item.get_mut(*verb)) {
            let ours = format!("`conflict` naming the field: {why}");
            // An operation with other 409s (`already_exists`, …) keeps them.
            let description = match op["responses"]["409"]["description"].as_str() {
                Some(theirs) => format!("{theirs}; or {ours}"),
                None => ours,
            };
            op["responses"]["409"] = json!({
                "description": description,
                "content": { "application/json": { "schema": schema("Error") } }
            });
        }
    }
}

/// Requests the document allows that the cluster's state may refuse
/// (409 `conflict`): no document can say how far the revision is, which
/// node leads, or whether this node runs in a planet.
const CONFLICTS: &[(&str, &str, &str)] = &[
    (
        "/api/v1/watch",
        "get",
        "`since` is ahead of the current revision",
    ),
    (
        "/api/v1/cluster/nodes/{id}",
        "delete",
        "the membership refuses the removal (the node is no member, or the last voter)",
    ),
    (
        "/api/v1/backup",
        "get",
        "`tier` is `global` on a node that runs in no planet",
    ),
    (
        "/api/v1/tenants/{tenant}/apps",
        "post",
        "`host` another tenant serves, or a `route` equal to, under or above another tenant's on a host they share (`state::claims`)",
    ),
    (
        "/api/v1/tenants/{tenant}/apps/{app}/rollouts",
        "post",
        "`app` (no deployed version, or a rollout already running), `to` (the deployed version, or a rollout's baseline copy) or `plan` (a wave's region the app is not deployed in, or a blue-green preview route equal to, under or above another tenant's)",
    ),
    (
        "/api/v1/certify/policy",
        "put",
        "`production_apps[i]`: a new entry names no existing app",
    ),
    (
        "/api/v1/tokens",
        "post",
        "`name`: a token of that name exists",
    ),
    (
        "/api/v1/users/{name}/totp/confirm",
        "post",
        "`code`: the user has no TOTP secret to confirm (enroll first)",
    ),
];

/// The schema of a parameter given as a bare string, by its name.
fn shape(param: &mut Value) {
    if param["schema"] != json!({ "type": "string" }) {
        return;
    }
    let place = param["in"].as_str().unwrap_or_default();
    let shaped = match (place, param["name"].as_str().unwrap_or_default()) {
        (_, "tenant" | "app" | "region" | "user" | "node") | ("path", "name") => name_schema(),
        ("path", "digest") => json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" }),
        ("path", "id") => json!({ "type": "string", "pattern": "^[1-9][0-9]{0,18}$" }),
        ("path", "key") => json!({ "type": "string", "minLength": 1, "maxLength": 256 }),
        // `state::check_criterion_id`: 3-100 of a-z 0-9 . _ -, with a '.'.
        ("path", "criterion") => json!({
            "type": "string", "minLength": 3, "maxLength": 100,
            "pattern": "^[a-z0-9_-]*\\.[a-z0-9._-]*$"
        }),
        // `autopilot::parse_horizon` within 5 minutes and 24 hours, as
        // minutes (5m-1440m) or hours (1h-24h).
        ("query", "horizon") => json!({
            "type": "string",
            "pattern": "^(?:(?:[5-9]|[1-9][0-9]|[1-9][0-9]{2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|(?:[1-9]|1[0-9]|2[0-4])h)$"
        }),
        // `cluster::logs::Cursor`: NODE:BOOT:SEQ joined by ',', boot in hex.
        ("query", "after") => json!({
            "type": "string",
            "pattern": "^(?:[a-z0-9-]{1,63}:[0-9a-f]{1,16}:[0-9]{1,19}(?:,[a-z0-9-]{1,63}:[0-9a-f]{1,16}:[0-9]{1,19})*)?$"
        }),
        ("query", "metric") => json!({ "type": "string", "enum": [
            "request_rate", "error_ratio", "latency_p50_ms", "latency_p99_ms", "concurrency",
            "live_sandboxes", "memory_bytes", "disk_bytes", "silence_s", "reporting_nodes"
        ] }),
        ("query", "kind") => json!({ "type": "string", "enum": [
            "slot_exhaustion", "memory_exhaustion", "disk_full", "version_errors",
            "version_latency", "node_silent", "region_capacity", "load_past_capacity"
        ] }),
        ("query", "status") => json!({ "type": "string", "enum": ["open", "happened", "cleared"] }),
        ("query", "limit") => json!({ "type": "integer", "minimum": 1, "maximum": 500 }),
        ("query", "points") => json!({ "type": "integer", "minimum": 0, "maximum": 360 }),
        ("query", "page") => json!({ "type": "string", "enum": [
            "overview", "apps", "rollouts", "nodes", "incidents", "slos", "capacity", "costs", "audit"
        ] }),
        _ => return,
    };
    param["schema"] = shaped;
}

fn base_document() -> Value {
    let mut all_schemas = schemas();
    if let Value::Object(m) = &mut all_schemas {
        m.extend(slo_schemas());
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DWCP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The control plane of DWCP: tenants, apps, versions, deployments, artifacts, cluster membership and registers. JSON everywhere; errors are {\"error\": {\"code\", \"message\", \"field\"}}. Every response carries `dwcp-node`; every write `dwcp-revision`."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "an admin token; join tokens are refused with 403" }
            },
            "schemas": all_schemas
        }
    })
}

/// The document, encoded once.
pub(crate) fn encoded() -> Bytes {
    static ENCODED: OnceLock<Bytes> = OnceLock::new();
    ENCODED
        .get_or_init(|| Bytes::from(document().to_string()))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::super::router::TABLE;
    use super::*;

    #[test]
    fn describes_every_route_of_the_table() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), TABLE.len());
        for entry in TABLE {
            let item = &paths[&format!("{PREFIX}{}", entry.template)];
            for verb in entry.verbs {
                let op = &item[verb.as_str().to_ascii_lowercase()];
                assert!(op.is_object(), "{} {}", verb.as_str(), entry.template);
                assert!(op["responses"].is_object());
            }
        }
        // Every reference resolves.
        let text = doc.to_string();
        for reference in text.split("#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    fn matches(pattern: &Value, text: &str) -> bool {
        regex::Regex::new(pattern.as_str().unwrap())
            .unwrap()
            .is_match(text)
    }

    /// Schemathesis (issue 16) sent values the document allowed and the
    /// handlers refused (an empty route, host or name, a criterion `0`, a
    /// horizon ``): each pattern takes what its check takes.
    #[test]
    fn patterns_take_what_the_checks_take() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let route = &schemas["NewApp"]["properties"]["route"]["pattern"];
        let host = &schemas["NewApp"]["properties"]["host"]["pattern"];
        for text in [
            "/",
            "/hello",
            "/a/b.c/~d_e-f",
            "/.well-known",
            "/..x",
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/a/..",
            "/a/./b",
            "/é",
            "/a b",
        ] {
            assert_eq!(
                matches(route, text),
                state::check_route(text).is_ok(),
                "route {text:?}"
            );
        }
        for text in [
            "example.com",
            "a",
            "a-b.c1",
            "127.0.0.1",
            "",
            "-a",
            "a-",
            "A.com",
            "a..b",
            "a.",
            "a:80",
        ] {
            assert_eq!(
                matches(host, text),
                state::check_host(text).is_ok(),
                "host {text:?}"
            );
        }
        let waiver = &doc["paths"]["/api/v1/certify/waivers/{criterion}"];
        let criterion = &waiver["parameters"][0]["schema"];
        for text in [
            "security.webhooks.restricted",
            "a.b",
            "0",
            "abc",
            "a.B",
            "x.y z",
            "..._",
        ] {
            let fits = matches(&criterion["pattern"], text) && (3..=100).contains(&text.len());
            assert_eq!(
                fits,
                state::certification::check_criterion_id(text).is_ok(),
                "criterion {text:?}"
            );
        }
        let forecast = &doc["paths"]["/api/v1/autopilot/forecast"]["get"]["parameters"];
        let horizon = forecast
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "horizon")
            .unwrap();
        for (text, ok) in [
            ("5m", true),
            ("15m", true),
            ("1440m", true),
            ("1h", true),
            ("24h", true),
            ("4m", false),
            ("1441m", false),
            ("25h", false),
            ("0h", false),
            ("", false),
        ] {
            assert_eq!(matches(&horizon["schema"]["pattern"], text), ok, "{text:?}");
            let ms = crate::api::autopilot::parse_horizon(text);
            assert_eq!(
                ms.is_some_and(|ms| (300_000..=86_400_000).contains(&ms)),
                ok,
                "{text:?}"
            );
        }
        // A new user's roles: `*` or a tenant's name.
        let role_names = &schemas["NewUser"]["properties"]["roles"]["propertyNames"]["pattern"];
        for text in ["*", "acme", "a", "a-1", "860w", "-a", "a-", "A", "**", ""] {
            let roles = std::collections::BTreeMap::from([(text.to_string(), state::Role::Viewer)]);
            assert_eq!(
                matches(role_names, text),
                state::users::check_user_roles(&roles).is_ok(),
                "role name {text:?}"
            );
        }
        // Refusals that depend on the state are documented as 409.
        for (path, verb, _) in CONFLICTS {
            assert!(
                doc["paths"][*path][*verb]["responses"]["409"].is_object(),
                "{verb} {path}"
            );
        }
    }
}
