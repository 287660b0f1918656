//! The OpenAPI description of certification in the store (`certify.rs`),
//! merged into the document by [`merge`].

use serde_json::{Value, json};

use super::{
    BAD_JSON, CONFLICT, MEDIA, PREFIX, TOO_LARGE, body, ok, param, responses, schema, written,
    written_empty,
};

const ADMIN: (&str, &str) = (
    "403",
    "`forbidden`: not an admin on every tenant, or a user's login that did not pass TOTP",
);

fn paths() -> Vec<(&'static str, Value)> {
    let criterion = param(
        "criterion",
        "a criterion's id, e.g. `security.webhooks.restricted` (`dwcp certify list`)",
    );
    vec![
        (
            "/certify",
            json!({ "get": {
                "summary": "Certification status: the latest report's summary, the go-live policy, the latest report's sign-offs and the roles missing, why it may not be signed now (if so), the waivers (in force or lapsed)",
                "operationId": "certifyStatus",
                "responses": responses(&[("200", ok("the status", schema("CertifyStatus")))], &[])
            }}),
        ),
        (
            "/certify/reports",
            json!({
                "get": {
                    "summary": "The reports recorded (the latest 10), newest first, without their criteria",
                    "operationId": "listCertifyReports",
                    "responses": responses(&[("200", ok("the reports", json!({ "type": "object", "required": ["reports"], "properties": { "reports": { "type": "array", "items": schema("CertifyReportSummary") } } })))], &[])
                },
                "post": {
                    "summary": "Record a report `dwcp certify` wrote (schema 1, docs/certify.md): its sha256 is checked against its content; recording it again changes nothing (admin)",
                    "operationId": "recordCertifyReport",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "description": "a certification report, schema 1" } } } },
                    "responses": responses(&[("201", written("recorded", json!({ "type": "object", "required": ["sha256", "revision"], "properties": { "sha256": { "type": "string" }, "revision": { "type": "integer" } } })))], &[
                        ("400", "`invalid` with field `report` (not a report, another schema, or content that does not match its sha256) or `malformed_json`"),
                        TOO_LARGE, MEDIA, ADMIN,
                    ])
                }
            }),
        ),
        (
            "/certify/reports/{sha256}",
            json!({
                "parameters": [param("sha256", "the report's sha256")],
                "get": {
                    "summary": "One recorded report, as `dwcp certify` wrote it",
                    "operationId": "getCertifyReport",
                    "responses": responses(&[("200", ok("the report (schema 1)", json!({ "type": "object" })))], &[("404", "`not_found`: no report with this sha256 is recorded")])
                }
            }),
        ),
        (
            "/certify/waivers",
            json!({ "get": {
                "summary": "Every waiver, with whether it is in force now",
                "operationId": "listWaivers",
                "responses": responses(&[("200", ok("the waivers", json!({ "type": "object", "required": ["waivers"], "properties": { "waivers": { "type": "array", "items": schema("Waiver") } } })))], &[])
            }}),
        ),
        (
            "/certify/waivers/{criterion}",
            json!({
                "parameters": [criterion],
                "put": {
                    "summary": "Waive a criterion until a time at most 90 days away, with a reason; the caller is recorded as who (admin; a user's session needs TOTP). A waived criterion shows as `waived`, never as passed",
                    "operationId": "putWaiver",
                    "requestBody": body("NewWaiver"),
                    "responses": responses(&[("204", written_empty("waived"))], &[BAD_JSON, TOO_LARGE, MEDIA, ADMIN])
                },
                "delete": {
                    "summary": "End a criterion's waiver (admin)",
                    "operationId": "deleteWaiver",
                    "responses": responses(&[("204", written_empty("unwaived"))], &[("400", "`invalid` with field `criterion`"), ("404", "`not_found`: the criterion has no waiver"), ADMIN])
                }
            }),
        ),
        (
            "/certify/sign-offs",
            json!({ "post": {
                "summary": "Sign the latest report as one of the go-live policy's roles: only a user's session that passed TOTP, as an admin on every tenant (a token is refused). Refused for a report that is not the latest, is partial (`--quick`, `--only`), is older than the policy allows, or has a criterion not passed without a waiver in force; one sign-off per role and per person",
                "operationId": "signOff",
                "requestBody": body("NewSignOff"),
                "responses": responses(&[("204", written_empty("signed"))], &[
                    ("400", "`invalid` with field `sha256` (stale, partial, or failures not waived: the message lists them) or `role` (not one of the policy's)"),
                    ("404", "`not_found`: no report with this sha256 is recorded"),
                    CONFLICT, MEDIA,
                    ("403", "`forbidden`: a token, a user who is not an admin on every tenant, or a login without TOTP"),
                ])
            }}),
        ),
        (
            "/certify/policy",
            json!({ "put": {
                "summary": "Replace the go-live policy: the roles that must each sign, and the oldest report they may sign (admin)",
                "operationId": "setGoLivePolicy",
                "requestBody": body("GoLivePolicy"),
                "responses": responses(&[("204", written_empty("replaced"))], &[BAD_JSON, TOO_LARGE, MEDIA, ADMIN])
            }}),
        ),
    ]
}

fn schemas() -> Value {
    let uint = json!({ "type": "integer", "minimum": 0 });
    let text = json!({ "type": "string" });
    let texts = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "CertifyReportSummary": {
            "type": "object",
            "required": ["sha256", "target", "partial", "started_unix_ms", "recorded_unix_ms", "by", "revision", "score", "criteria", "not_passed"],
            "properties": {
                "sha256": text, "target": text, "partial": { "type": "boolean" },
                "started_unix_ms": uint, "recorded_unix_ms": uint, "by": text, "revision": uint,
                "score": { "type": ["number", "null"] }, "criteria": uint, "not_passed": texts
            }
        },
        "Waiver": {
            "type": "object",
            "required": ["criterion", "reason", "by", "created_unix_ms", "expires_unix_ms", "revision", "in_force"],
            "properties": {
                "criterion": text, "reason": text, "by": text, "created_unix_ms": uint,
                "expires_unix_ms": uint, "revision": uint, "in_force": { "type": "boolean" }
            }
        },
        "NewWaiver": {
            "type": "object",
            "required": ["reason", "expires_unix_ms"],
            "additionalProperties": false,
            "properties": { "reason": { "type": "string", "minLength": 1, "maxLength": 1000 }, "expires_unix_ms": uint }
        },
        "NewSignOff": {
            "type": "object",
            "required": ["sha256", "role"],
            "additionalProperties": false,
            "properties": { "sha256": text, "role": text }
        },
        "SignOff": {
            "type": "object",
            "required": ["sha256", "role", "by", "unix_ms", "revision"],
            "properties": { "sha256": text, "role": text, "by": text, "unix_ms": uint, "revision": uint }
        },
        "GoLivePolicy": {
            "type": "object",
            "required": ["approvers", "max_report_age_ms"],
            "properties": {
                "approvers": { "type": "array", "minItems": 1, "maxItems": 20, "uniqueItems": true, "items": { "type": "string", "pattern": "^[a-z0-9-]{1,63}$" }, "description": "the roles that must sign, 1 to 20" },
                "max_report_age_ms": { "type": "integer", "minimum": 1, "maximum": 7_776_000_000_u64, "description": "1 ms to 90 days" },
                "production": { "type": "boolean", "description": "the cluster runs production: rollouts and deployment changes through the API need a current signed certification (default false)" },
                "production_apps": { "type": "array", "maxItems": 1000, "uniqueItems": true, "items": { "type": "string", "pattern": "^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?/[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$" }, "description": "apps marked production one by one (`tenant/app`, each an existing app when added, at most 1000): rollouts and deployment changes of these apps need a current signed certification (default none)" }
            }
        },
        "CertifyStatus": {
            "type": "object",
            "required": ["latest", "policy", "sign_offs", "missing", "refusal", "waivers", "lapsed", "gate", "now_unix_ms"],
            "properties": {
                "latest": { "oneOf": [schema("CertifyReportSummary"), { "type": "null" }] },
                "policy": schema("GoLivePolicy"),
                "sign_offs": { "type": "array", "items": schema("SignOff") },
                "missing": texts,
                "refusal": { "type": ["string", "null"] },
                "waivers": { "type": "array", "items": schema("Waiver") },
                "lapsed": texts,
                "gate": { "type": ["string", "null"], "description": "why the go-live gate refuses rollouts and deployment changes now (null: it does not)" },
                "now_unix_ms": uint
            }
        }
    })
}

/// Adds the certification routes and schemas to `doc`.
pub(super) fn merge(doc: &mut Value) {
    for (path, item) in paths() {
        doc["paths"][format!("{PREFIX}{path}")] = item;
    }
    if let (Some(target), Value::Object(extra)) =
        (doc["components"]["schemas"].as_object_mut(), schemas())
    {
        target.extend(extra);
    }
}
