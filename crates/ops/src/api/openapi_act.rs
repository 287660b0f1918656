//! The OpenAPI description of the autopilot's acting routes
//! (`autopilot_act.rs`), merged into the document by [`merge`].

use serde_json::{Value, json};

use super::{PREFIX, body, ok, responses, schema};

fn id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "description": "the decision's number (an approval has its decision's)", "schema": { "type": "integer", "minimum": 1 } })
}

const ADMIN_TOTP: (&str, &str) = (
    "403",
    "`forbidden`: not an admin on every tenant, or a user's session that did not pass TOTP",
);
const CLUSTER_WIDE: (&str, &str) = (
    "403",
    "`forbidden`: a join token, or a user without a role on every tenant (`*`): GET /tenants/{tenant}/autopilot/decisions shows one tenant's",
);

fn paths() -> Vec<(&'static str, Value)> {
    let limit = json!({ "name": "limit", "in": "query", "required": false, "description": "at most this many, newest first, 1 to 500 (default 50)", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } });
    vec![
        (
            "/autopilot/controls",
            json!({
                "get": {
                    "summary": "The autopilot's switches: the kill switch (`paused`), whether destructive actions are applied (`destructive_enabled`; off: only proposed, a dry run), and the nodes it cordoned or drained",
                    "operationId": "autopilotControls",
                    "responses": responses(&[("200", ok("the switches", schema("AutopilotControls")))], &[])
                },
                "put": {
                    "summary": "Pause or resume the autopilot (the kill switch: nothing more is applied, at once), or enable or disable destructive actions",
                    "operationId": "setAutopilotControls",
                    "requestBody": body("AutopilotControlsChange"),
                    "responses": responses(&[("200", ok("the switches now", schema("AutopilotControls")))], &[
                        ("400", "`invalid`: neither `paused` nor `destructive_enabled` given, or an unknown field"),
                        ADMIN_TOTP,
                    ])
                }
            }),
        ),
        (
            "/autopilot/policy",
            json!({
                "get": {
                    "summary": "The policy in force: `source` (`defaults` or `custom`) and its rules",
                    "operationId": "autopilotPolicy",
                    "responses": responses(&[("200", ok("the policy", schema("AutopilotPolicy")))], &[])
                },
                "put": {
                    "summary": "Replace the policy with a TOML file (the body), checked whole; an empty body goes back to the defaults",
                    "operationId": "putAutopilotPolicy",
                    "requestBody": { "required": false, "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "responses": responses(&[("200", ok("the policy now", schema("AutopilotPolicy")))], &[
                        ("400", "`invalid` with `field` naming the rule and field (`rule[2].actions[0]`), nothing of the file used"),
                        ADMIN_TOTP,
                    ])
                }
            }),
        ),
        (
            "/autopilot/decisions",
            json!({ "get": {
                "summary": "The autopilot's decisions, newest first: acted, proposed, refused or declined, with the action and why",
                "operationId": "autopilotDecisions",
                "parameters": [limit.clone()],
                "responses": responses(&[("200", ok("the decisions", schema("AutopilotDecisionList")))], &[
                    ("400", "`invalid`: an unknown parameter or a limit outside 1..500"),
                    CLUSTER_WIDE,
                ])
            }}),
        ),
        (
            "/tenants/{tenant}/autopilot/decisions",
            json!({ "get": {
                "summary": "The decisions about one tenant's apps and versions, newest first",
                "operationId": "tenantAutopilotDecisions",
                "parameters": [
                    { "name": "tenant", "in": "path", "required": true, "description": "the tenant's name", "schema": { "type": "string" } },
                    limit
                ],
                "responses": responses(&[("200", ok("the decisions", schema("AutopilotDecisionList")))], &[
                    ("400", "`invalid`: an unknown parameter or a limit outside 1..500"),
                    ("403", "`forbidden`: a join token, or a user without a role in the tenant"),
                    ("404", "`not_found`: no such tenant"),
                ])
            }}),
        ),
        (
            "/autopilot/decisions/{id}",
            json!({ "get": {
                "summary": "One decision explained: its evidence (the trouble and its signal, the rule, the cluster's view, the ledger, the switches and limits, the time), every action considered with the guardrails' checks and values, the counterfactual, its approval and the actions it applied",
                "operationId": "autopilotDecision",
                "parameters": [id_param()],
                "responses": responses(&[("200", ok("the decision", schema("AutopilotDecision")))], &[
                    ("400", "`invalid`: `id` is not a decision's number"),
                    ("404", "`not_found`: no such decision (the last 500 are kept)"),
                    CLUSTER_WIDE,
                ])
            }}),
        ),
        (
            "/autopilot/decisions/{id}/undo",
            json!({ "post": {
                "summary": "Take back the action decision `id` applied: its undo begins (drain or cordon: uncordon; scale: back to the replicas before; rollback: roll forward; failover: failback), checked against the guardrails",
                "operationId": "undoAutopilotDecision",
                "parameters": [id_param()],
                "responses": responses(&[("200", ok("the decision with its actions", schema("AutopilotDecision")))], &[
                    ("400", "`invalid` (`field` is `decision`): its action has no undo, still runs, is undone already, or a guardrail refuses the undo (named)"),
                    ("404", "`not_found`: the decision applied nothing the ledger still holds (an hour)"),
                    ADMIN_TOTP,
                ])
            }}),
        ),
        (
            "/autopilot/approvals",
            json!({ "get": {
                "summary": "Critical actions waiting for a person (asked, reminded, paged), then the answered ones (approved, rejected, expired into their safe default)",
                "operationId": "autopilotApprovals",
                "responses": responses(&[("200", ok("the approvals", schema("AutopilotApprovalList")))], &[CLUSTER_WIDE])
            }}),
        ),
        (
            "/autopilot/approvals/{id}/approve",
            json!({ "post": {
                "summary": "Approve an action waiting for a person: it begins at the autopilot's next round, after the guardrails are checked again",
                "operationId": "approveAutopilotAction",
                "parameters": [id_param()],
                "responses": responses(&[("200", ok("the decision with its approval", schema("AutopilotDecision")))], &[
                    ("400", "`invalid` (`field` is `id`): already answered, or expired (its safe default applied)"),
                    ("404", "`not_found`: no such approval"),
                    ADMIN_TOTP,
                ])
            }}),
        ),
        (
            "/autopilot/approvals/{id}/reject",
            json!({ "post": {
                "summary": "Reject an action waiting for a person: nothing is done",
                "operationId": "rejectAutopilotAction",
                "parameters": [id_param()],
                "responses": responses(&[("200", ok("the decision with its approval", schema("AutopilotDecision")))], &[
                    ("400", "`invalid` (`field` is `id`): already answered, or expired"),
                    ("404", "`not_found`: no such approval"),
                    ADMIN_TOTP,
                ])
            }}),
        ),
    ]
}

fn schemas() -> Value {
    json!({
        "AutopilotControls": {
            "type": "object",
            "required": ["paused", "destructive_enabled", "schedules"],
            "properties": {
                "paused": { "type": "boolean" },
                "destructive_enabled": { "type": "boolean" },
                "schedules": { "type": "object", "additionalProperties": { "type": "string", "enum": ["cordoned", "drained"] } }
            }
        },
        "AutopilotControlsChange": {
            "type": "object",
            "description": "at least one of the two; a member left out is unchanged",
            "minProperties": 1,
            "additionalProperties": false,
            "properties": {
                "paused": { "type": "boolean" },
                "destructive_enabled": { "type": "boolean" }
            }
        },
        "AutopilotPolicy": {
            "type": "object",
            "required": ["source", "policy"],
            "description": "source (defaults|custom), policy {rules [{name, on (a fault class), basis (observed|forecast), actions [kinds], min_score, cooldown_s, dry_run, scale_step, throttle_percent}]}"
        },
        "AutopilotDecisionSummary": {
            "type": "object",
            "description": "id, at_ms, outcome (acted|proposed|refused|declined), class (the fault class), place, action (or null), why"
        },
        "AutopilotDecisionList": {
            "type": "object",
            "required": ["decisions"],
            "properties": { "decisions": { "type": "array", "items": schema("AutopilotDecisionSummary") } }
        },
        "AutopilotDecision": {
            "type": "object",
            "description": "summary, decision {id, evidence {trouble, rule, view, ledger, controls, limits, now_ms}, outcome, considered [{kind, action, checks [{guardrail, value, soft, limit, verdict}], note}], counterfactual, refused_at_commit}, approval (or null) {approval {decision, action, reasons, safe_default, asked_ms, state}, cooldown_ms, applied}, applied [ledger entries]"
        },
        "AutopilotApprovalList": {
            "type": "object",
            "required": ["approvals"],
            "properties": { "approvals": { "type": "array", "items": { "type": "object" } } }
        }
    })
}

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
