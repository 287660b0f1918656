//! The OpenAPI description of users, TOTP and sessions (`users.rs`,
//! `session.rs`), merged into the document by [`merge`].

use serde_json::{Value, json};

use super::{BAD_JSON, MEDIA, PREFIX, TOO_LARGE, body, empty, ok, responses, schema, written};

fn name_param() -> Value {
    json!([{ "name": "name", "in": "path", "required": true, "description": "the user's name", "schema": { "type": "string" } }])
}

const MFA: (&str, &str) = (
    "403",
    "`forbidden`: a join token; a role that does not allow this; a session cookie without `x-csrf-token`; or, for a user's session, a login that did not pass TOTP",
);

fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/users",
            json!({
                "get": {
                    "summary": "Users: names, roles per tenant and TOTP state (admin on every tenant)",
                    "operationId": "listUsers",
                    "responses": responses(&[("200", ok("the users", schema("UserList")))], &[MFA])
                },
                "post": {
                    "summary": "Make a user with a password (12 characters or more; stored as an argon2id hash) and roles per tenant (`*`: every tenant). Admin on every tenant; a user's session needs a login that passed TOTP",
                    "operationId": "createUser",
                    "requestBody": body("NewUser"),
                    "responses": responses(&[("201", written("made", schema("User")))], &[
                        ("400", "`invalid` with field `name`, `password` (too short or long) or `roles`; or `malformed_json`"),
                        ("409", "`already_exists`: a user with that name"),
                        MFA, MEDIA, TOO_LARGE,
                    ])
                }
            }),
        ),
        (
            "/users/{name}",
            json!({
                "parameters": name_param(),
                "delete": {
                    "summary": "Delete a user; their sessions end (admin on every tenant, with TOTP for sessions; the last admin is kept while there is no admin token)",
                    "operationId": "deleteUser",
                    "responses": responses(&[("204", super::written_empty("deleted"))], &[
                        ("400", "`invalid` with field `name`: the last admin"),
                        ("404", "`not_found`: no such user"),
                        MFA,
                    ])
                }
            }),
        ),
        (
            "/users/{name}/totp",
            json!({
                "parameters": name_param(),
                "post": {
                    "summary": "Enroll in TOTP: a new secret (base32, and an otpauth:// URI), shown once and sealed at rest; pending until confirmed. An admin on every tenant who logged in with TOTP (or an admin token) enrolls anyone; a user enrolls themself with `enrollment_code` (a one-time code an admin made), or replaces a confirmed second factor after a login that passed it",
                    "operationId": "enrollTotp",
                    "requestBody": { "required": false, "content": { "application/json": { "schema": schema("TotpEnroll") } } },
                    "responses": responses(&[("201", written("enrolled", schema("TotpEnrolled")))], &[
                        ("400", "`invalid` with field `enrollment_code` (not the user's unused, unexpired code) or `name`; or `malformed_json`"),
                        ("404", "`not_found`: no such user"),
                        MFA, MEDIA, TOO_LARGE,
                    ])
                }
            }),
        ),
        (
            "/users/{name}/totp/enrollment-code",
            json!({
                "parameters": name_param(),
                "post": {
                    "summary": "Make a one-time code (valid for a day, shown once, kept as its sha256) with which the user enrolls a second factor on their own; a new code replaces an unused one. Admin on every tenant, with TOTP for sessions",
                    "operationId": "makeTotpEnrollmentCode",
                    "responses": responses(&[("201", written("made", schema("TotpEnrollmentCode")))], &[
                        ("400", "`invalid` with field `name`"),
                        ("404", "`not_found`: no such user"),
                        MFA,
                    ])
                }
            }),
        ),
        (
            "/users/{name}/totp/confirm",
            json!({
                "parameters": name_param(),
                "post": {
                    "summary": "Confirm TOTP with a current code; from then on logging in needs a code",
                    "operationId": "confirmTotp",
                    "requestBody": body("TotpCode"),
                    "responses": responses(&[("200", written("confirmed", schema("User")))], &[
                        ("400", "`invalid` with field `code`: not six digits, wrong (`totp code is wrong`) or already used"),
                        ("404", "`not_found`: no such user"),
                        MFA, MEDIA, TOO_LARGE,
                    ])
                }
            }),
        ),
        (
            "/session",
            json!({
                "get": {
                    "summary": "Who is calling: user or token name, roles, whether TOTP was passed, and a session's CSRF token",
                    "operationId": "whoami",
                    "responses": responses(&[("200", ok("the caller", schema("Session")))], &[])
                },
                "post": {
                    "summary": "Log in (no credentials needed): password, and a TOTP code for users who confirmed TOTP. Answers the `__Host-dwcp_session` cookie (HttpOnly, Secure, SameSite=Strict, Path=/) and the CSRF token that changes made with the cookie must carry in `x-csrf-token`. Five attempts per user (counted across the cluster before the password is checked; a successful login clears them) or five failures per address in five minutes: 429",
                    "operationId": "login",
                    "security": [],
                    "requestBody": body("Login"),
                    "responses": responses(&[("201", written("logged in; `Set-Cookie` carries the session", schema("Session")))], &[
                        ("401", "`unauthorized` with field `password` (unknown user or wrong password) or `totp` (a code is needed, `totp code is wrong`, or `already used`)"),
                        ("429", "`too_many_requests`: too many failed logins for the user or from the address; `Retry-After` says when to retry"),
                        BAD_JSON, MEDIA, TOO_LARGE,
                    ])
                },
                "delete": {
                    "summary": "Log out: the session ends and the cookie is cleared (needs `x-csrf-token`)",
                    "operationId": "logout",
                    "responses": responses(&[("204", empty("logged out"))], &[
                        ("404", "`not_found` with field `cookie`: no session to end (the request used a token)"),
                    ])
                }
            }),
        ),
    ]
}

fn schemas() -> Value {
    let roles = json!({ "type": "object", "description": "tenant name, or `*` for every tenant → role", "additionalProperties": { "type": "string", "enum": ["admin", "operator", "viewer"] } });
    let mut new_roles = roles.clone();
    new_roles["minProperties"] = json!(1);
    new_roles["maxProperties"] = json!(1000);
    // `state::users::check_user_roles`: `*` or a tenant's name (a DNS label).
    new_roles["propertyNames"] =
        json!({ "pattern": "^(?:\\*|[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)$" });
    json!({
        "NewUser": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "password", "roles"],
            "properties": { "name": super::name_schema(), "password": { "type": "string", "minLength": 12 }, "roles": new_roles }
        },
        "User": {
            "type": "object",
            "required": ["name", "roles", "totp", "created"],
            "properties": {
                "name": { "type": "string" },
                "roles": roles,
                "totp": { "type": "string", "enum": ["none", "pending", "confirmed"] },
                "created": { "type": "integer" }
            }
        },
        "UserList": {
            "type": "object",
            "required": ["users"],
            "properties": { "users": { "type": "array", "items": schema("User") } }
        },
        "TotpEnrolled": {
            "type": "object",
            "required": ["user", "secret", "uri"],
            "properties": { "user": { "type": "string" }, "secret": { "type": "string", "description": "base32, shown once" }, "uri": { "type": "string", "description": "otpauth://totp/..." } }
        },
        "TotpEnroll": {
            "type": "object",
            "additionalProperties": false,
            "properties": { "enrollment_code": { "type": ["string", "null"], "description": "the one-time code an admin made for this user; null or absent: none" } }
        },
        "TotpEnrollmentCode": {
            "type": "object",
            "required": ["user", "enrollment_code", "expires_unix_ms"],
            "properties": { "user": { "type": "string" }, "enrollment_code": { "type": "string", "description": "shown once" }, "expires_unix_ms": { "type": "integer" } }
        },
        "TotpCode": {
            "type": "object",
            "required": ["code"],
            "additionalProperties": false,
            "properties": { "code": { "type": "string", "pattern": "^[0-9]{6}$" } }
        },
        "Login": {
            "type": "object",
            "required": ["user", "password"],
            "additionalProperties": false,
            "properties": { "user": super::name_schema(), "password": { "type": "string" }, "totp": { "type": "string", "pattern": "^[0-9]{6}$" } }
        },
        "Session": {
            "type": "object",
            "required": ["user", "via", "roles", "mfa", "csrf", "expires_unix_ms"],
            "properties": {
                "user": { "type": "string" },
                "via": { "type": "string", "enum": ["session", "token"] },
                "roles": roles,
                "mfa": { "type": "boolean", "description": "the login passed TOTP (always true for tokens, which TOTP does not apply to)" },
                "csrf": { "type": ["string", "null"], "description": "send in `x-csrf-token` with every change made with the cookie" },
                "expires_unix_ms": { "type": ["integer", "null"] }
            }
        }
    })
}

/// Adds the paths and schemas, the session cookie as a security scheme.
pub(super) fn merge(doc: &mut Value) {
    for (path, item) in paths() {
        doc["paths"][format!("{PREFIX}{path}")] = item;
    }
    if let (Some(target), Value::Object(extra)) =
        (doc["components"]["schemas"].as_object_mut(), schemas())
    {
        target.extend(extra);
    }
    doc["components"]["securitySchemes"]["session"] = json!({
        "type": "apiKey", "in": "cookie", "name": "__Host-dwcp_session",
        "description": "a user's session from POST /api/v1/session; changes also need the header `x-csrf-token`"
    });
    doc["security"] = json!([{ "bearer": [] }, { "session": [] }]);
}
