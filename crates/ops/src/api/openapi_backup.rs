//! The OpenAPI description of backups (`backup.rs`), merged into the
//! document by [`merge`].

use serde_json::{Value, json};

use super::{PREFIX, ok, responses, schema};

const ADMIN: (&str, &str) = (
    "403",
    "`forbidden`: not an admin (a backup holds every credential's and password's hash)",
);

fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/backup",
            json!({ "get": {
                "summary": "A consistent point of this node's group for `dwcp backup`: the state at one revision (base64 of its binary form), the log index of the linearizable read, and the artifacts it names (admin). The client seals it; taking one is audited",
                "operationId": "backupPoint",
                "parameters": [{ "name": "tier", "in": "query", "required": false, "description": "`cell` (this node's group, the default) or `global` (the planet's global tier)", "schema": { "type": "string", "enum": ["cell", "global"] } }],
                "responses": responses(&[("200", ok("the point", schema("BackupPoint")))], &[
                    ("400", "`invalid` with field `tier`"), ADMIN,
                ])
            }}),
        ),
        (
            "/backups",
            json!({ "get": {
                "summary": "Each node's latest scheduled backup per tier (`dwcp up --backup-dir`)",
                "operationId": "scheduledBackups",
                "responses": responses(&[("200", ok("the latest scheduled backups", schema("ScheduledBackups")))], &[])
            }}),
        ),
        (
            "/blobs/{digest}/content",
            json!({
                "parameters": [{ "name": "digest", "in": "path", "required": true, "description": "lowercase hex sha256 of the artifact", "schema": { "type": "string" } }],
                "get": {
                    "summary": "An artifact's bytes, checked against its digest (admin)",
                    "operationId": "getBlobContent",
                    "responses": responses(&[("200", json!({ "description": "the bytes", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } }))], &[
                        ("400", "`invalid` with field `digest`"),
                        ("404", "`not_found`: not stored on this node"),
                        ADMIN,
                    ])
                }
            }),
        ),
    ]
}

fn schemas() -> Value {
    let uint = json!({ "type": "integer", "minimum": 0 });
    let digest = json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" });
    let tier = json!({ "type": "string", "enum": ["cluster", "cell", "global"] });
    json!({
        "BackupPoint": {
            "type": "object",
            "required": ["cluster", "tier", "region", "revision", "log_index", "taken_unix_ms", "state", "artifacts"],
            "properties": {
                "cluster": { "type": "string" }, "tier": tier, "region": { "type": "string" },
                "revision": uint, "log_index": uint, "taken_unix_ms": uint,
                "state": { "type": "string", "contentEncoding": "base64" },
                "artifacts": { "type": "array", "items": {
                    "type": "object", "required": ["digest", "size_bytes"],
                    "properties": { "digest": digest, "size_bytes": uint }
                }}
            }
        },
        "ScheduledBackups": {
            "type": "object",
            "required": ["backups"],
            "properties": { "backups": { "type": "array", "items": {
                "type": "object",
                "required": ["node", "tier", "file", "revision", "taken_unix_ms", "size_bytes", "every_ms", "keep"],
                "properties": {
                    "node": { "type": "string" }, "tier": tier, "file": { "type": "string" },
                    "revision": uint, "taken_unix_ms": uint, "size_bytes": uint, "every_ms": uint, "keep": uint
                }
            }}}
        }
    })
}

/// Adds the backup routes and schemas to `doc`.
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
