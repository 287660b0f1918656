//! `/users[/{name}[/totp[/confirm]]]`: people who log in. An admin (on
//! every tenant, `*`) makes users with a password (hashed here with
//! argon2id; the state keeps only the PHC string) and roles per tenant,
//! lists and deletes them; a user enrolls in TOTP (a new secret, shown
//! once, sealed at rest) — with an admin's one-time enrollment code, or an
//! admin who passed TOTP enrolls them — and confirms it with a code, which
//! ends the user's earlier sessions.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::users::{ALL_TENANTS, check_user_roles};
use state::{Command, Name, Revision, Role, User};

use super::auth::Caller;
use super::body::{JSON_LIMIT, decode, read_json, read_limited};
use super::error::ApiError;
use super::hash_pool::HashPool;
use super::reply::{Reply, commit, json, no_content, now_unix_ms, with_revision};
use super::{password, seal, validate};
use crate::{ControlPlane, totp};

/// The issuer shown in authenticator apps.
const ISSUER: &str = "DWCP";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    /// Tenant (or `*`) → `admin`, `operator` or `viewer`.
    roles: BTreeMap<String, String>,
}

/// A user as the API shows them (never the hash or the secret).
#[derive(Serialize)]
pub(crate) struct Shown {
    name: Name,
    roles: BTreeMap<String, Role>,
    /// `none`, `pending` (enrolled, not confirmed) or `confirmed`.
    totp: &'static str,
    created: Revision,
}

impl Shown {
    fn of(u: &User) -> Shown {
        Shown {
            name: u.name.clone(),
            roles: u.roles.clone(),
            totp: match (&u.totp_sealed, u.totp_confirmed) {
                (None, _) => "none",
                (Some(_), false) => "pending",
                (Some(_), true) => "confirmed",
            },
            created: u.created,
        }
    }
}

#[derive(Serialize)]
struct List {
    users: Vec<Shown>,
}

/// A role named in a request.
pub(crate) fn parse_role(field: &str, text: &str) -> Result<Role, ApiError> {
    match text {
        "admin" => Ok(Role::Admin),
        "operator" => Ok(Role::Operator),
        "viewer" => Ok(Role::Viewer),
        other => Err(ApiError::invalid(
            field.to_string(),
            format!(
                "`{}` is not a role; use admin, operator or viewer",
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// `GET /users`: names, roles and TOTP state.
pub(crate) async fn list<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let list = plane
        .read(|state| List {
            users: state.users().map(Shown::of).collect(),
        })
        .await?;
    json(StatusCode::OK, &list)
}

/// `POST /users`: a new user with a password of at least 12 characters
/// and roles per tenant.
pub(crate) async fn create<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let wanted: NewUser = read_json(&parts.headers, body).await?;
    let name = validate::name("name", &wanted.name)?;
    let chars = wanted.password.chars().count();
    if chars < password::MIN_LEN || wanted.password.len() > password::MAX_LEN {
        return Err(ApiError::invalid(
            "password",
            format!(
                "a password of {chars} characters is not allowed: use {} characters or more, at most {} bytes",
                password::MIN_LEN,
                password::MAX_LEN
            ),
        ));
    }
    let mut roles = BTreeMap::new();
    for (tenant, role) in &wanted.roles {
        roles.insert(tenant.clone(), parse_role("roles", role)?);
    }
    check_user_roles(&roles).map_err(ApiError::from)?;
    let n = name.clone();
    if plane.read(move |s| s.user(&n).is_some()).await? {
        return Err(ApiError::from(state::Rejection::AlreadyExists {
            kind: "user".into(),
            name: name.to_string(),
        }));
    }
    let password = wanted.password;
    let password_hash = HashPool::global()
        .run(move || password::hash(&password))
        .await
        .map_err(|busy| ApiError::unavailable(busy.to_string()))?
        .map_err(|e| ApiError::internal(format!("hashing the password: {e}")))?;
    let command = Command::PutUser {
        name: name.clone(),
        password_hash,
        roles,
    };
    let (revision, _) = commit(plane, command).await?;
    let n = name.clone();
    let shown = plane
        .read(move |s| s.user(&n).map(Shown::of))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user `{name}` was deleted meanwhile")))?;
    Ok(with_revision(json(StatusCode::CREATED, &shown)?, revision))
}

/// `DELETE /users/{name}`: the user and their sessions go. The last user
/// with admin on every tenant stays while no admin token exists.
pub(crate) async fn delete<P: ControlPlane>(plane: &P, name: &str) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let n = name.clone();
    let (found, other_admins) = plane
        .read(move |s| {
            let admin_users = s
                .users()
                .filter(|u| u.name != n && u.roles.get(ALL_TENANTS) == Some(&Role::Admin))
                .count();
            let admin_tokens = s.credentials().filter(|c| c.role == Role::Admin).count();
            (
                s.user(&n)
                    .map(|u| u.roles.get(ALL_TENANTS) == Some(&Role::Admin)),
                admin_users + admin_tokens,
            )
        })
        .await?;
    match found {
        None => return Err(ApiError::not_found(format!("no user named `{name}`"))),
        Some(true) if other_admins == 0 => {
            return Err(ApiError::invalid(
                "name",
                format!("`{name}` is the last admin: make another admin user or token first"),
            ));
        }
        Some(_) => {}
    }
    let (revision, _) = commit(plane, Command::DeleteUser { name }).await?;
    Ok(with_revision(no_content(), revision))
}

#[derive(Serialize)]
struct Enrolled {
    user: Name,
    /// The secret in base32, shown once: type it into an authenticator.
    secret: String,
    /// The same as an `otpauth://` URI (for a QR code).
    uri: String,
}

/// The optional body of `POST /users/{name}/totp`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Enroll {
    /// The one-time code an admin made for this user.
    #[serde(default)]
    enrollment_code: Option<String>,
}

/// Who may give user `name` a new TOTP secret, and how.
#[derive(Debug, PartialEq, Eq)]
enum EnrollAs {
    /// An admin on every tenant who passed TOTP (or an admin token).
    Admin,
    /// The user, replacing a confirmed second factor after a login that
    /// passed it.
    Replacing,
    /// The user, with an admin's one-time code.
    WithCode(String),
}

/// The pure rule of enrolling: a second factor on an account that has
/// none needs an admin who passed TOTP or that admin's one-time code, so a
/// stolen password alone never makes an MFA account.
fn enroll_as(
    caller: &Caller,
    name: &str,
    confirmed: bool,
    code: Option<String>,
) -> Result<EnrollAs, ApiError> {
    let strong_admin = caller.role_in(ALL_TENANTS) == Some(Role::Admin) && !caller.lacks_mfa();
    if strong_admin {
        return Ok(EnrollAs::Admin);
    }
    if !caller.is_user(name) {
        return Err(ApiError::forbidden(
            "enrolling another user's second factor needs the admin role on every tenant and a login that passed TOTP",
        ));
    }
    if let Some(code) = code {
        return Ok(EnrollAs::WithCode(code));
    }
    if confirmed && !caller.lacks_mfa() {
        return Ok(EnrollAs::Replacing);
    }
    Err(ApiError::forbidden(if confirmed {
        "this user's TOTP is confirmed: replacing it needs a login that passed TOTP".to_string()
    } else {
        format!(
            "enrolling a second factor needs `enrollment_code`, a one-time code an admin makes with POST /api/v1/users/{name}/totp/enrollment-code (or an admin who logged in with TOTP enrolls you)"
        )
    }))
}

/// `POST /users/{name}/totp`: a new TOTP secret for the user, pending
/// until confirmed with a code. Allowed to an admin who passed TOTP (or an
/// admin token), to the user with an admin's one-time `enrollment_code`,
/// and to the user replacing a confirmed second factor after a login that
/// passed it ([`enroll_as`]).
pub(crate) async fn enroll<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    name: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, JSON_LIMIT, "the JSON body").await?;
    let wanted: Enroll = if bytes.iter().all(u8::is_ascii_whitespace) {
        Enroll::default()
    } else {
        decode(&bytes)?
    };
    let n = name.clone();
    let confirmed = plane
        .read(move |s| s.user(&n).map(|u| u.totp_confirmed))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named `{name}`")))?;
    let code_sha256 = match enroll_as(caller, name.as_str(), confirmed, wanted.enrollment_code)? {
        EnrollAs::WithCode(code) => Some(state::digest_of(code.as_bytes())),
        EnrollAs::Admin | EnrollAs::Replacing => None,
    };
    let key = at_rest_key(plane)?;
    let secret = totp::new_secret().map_err(|e| ApiError::internal(e.to_string()))?;
    let sealed = seal::seal(&key, &context(&name), &secret)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (revision, _) = commit(
        plane,
        Command::SetUserTotp {
            name: name.clone(),
            sealed,
            code_sha256,
            now_unix_ms: now_unix_ms(),
        },
    )
    .await?;
    let secret = totp::encode_base32(&secret);
    let uri = totp::otpauth_uri(ISSUER, name.as_str(), &secret);
    Ok(with_revision(
        json(
            StatusCode::CREATED,
            &Enrolled {
                user: name,
                secret,
                uri,
            },
        )?,
        revision,
    ))
}

#[derive(Serialize)]
struct EnrollmentCode {
    user: Name,
    /// Shown once: the user sends it as `enrollment_code` to enroll.
    enrollment_code: String,
    expires_unix_ms: u64,
}

/// `POST /users/{name}/totp/enrollment-code`: a one-time code (valid for
/// a day, kept as its sha256) with which the user enrolls a second factor
/// on their own; for an admin who passed TOTP (`auth::needs_mfa`).
pub(crate) async fn enrollment_code<P: ControlPlane>(
    plane: &P,
    name: &str,
) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let code = ::cluster::token::random_hex().map_err(|e| ApiError::internal(e.to_string()))?;
    let expires_unix_ms = now_unix_ms() + state::users::ENROLLMENT_TTL_MS;
    let (revision, _) = commit(
        plane,
        Command::AllowTotpEnrollment {
            name: name.clone(),
            code_sha256: state::digest_of(code.as_bytes()),
            expires_unix_ms,
        },
    )
    .await?;
    Ok(with_revision(
        json(
            StatusCode::CREATED,
            &EnrollmentCode {
                user: name,
                enrollment_code: code,
                expires_unix_ms,
            },
        )?,
        revision,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

/// `POST /users/{name}/totp/confirm`: a code from the authenticator proves
/// it holds the secret; from then on logins need a code. The user's
/// sessions end (the caller's too, when it is theirs: its cookie is
/// cleared), so none made before the second factor outlives it.
pub(crate) async fn confirm<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    name: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let (parts, body) = req.into_parts();
    let Code { code } = read_json(&parts.headers, body).await?;
    check_code("code", &code)?;
    let n = name.clone();
    let sealed = plane
        .read(move |s| s.user(&n).map(|u| u.totp_sealed.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named `{name}`")))?
        // A well-formed code for a user who has not enrolled: the state
        // refuses it (409), not the code's shape.
        .ok_or_else(|| {
            ApiError::conflict(
                "code",
                format!("user `{name}` has no TOTP secret: POST /api/v1/users/{name}/totp first"),
            )
        })?;
    let secret = open_secret(plane, &name, &sealed)?;
    let step = totp::matching_step(&secret, &code, now_unix_ms() / 1000)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::invalid("code", "totp code is wrong"))?;
    let (revision, _) = commit(
        plane,
        Command::ConfirmUserTotp {
            name: name.clone(),
            step,
        },
    )
    .await
    .map_err(|e| {
        if e.field.as_deref() == Some("totp") {
            ApiError::invalid("code", "totp code already used: wait for the next one")
        } else {
            e
        }
    })?;
    let n = name.clone();
    let shown = plane.read(move |s| s.user(&n).map(Shown::of)).await?;
    let mut response = with_revision(json(StatusCode::OK, &shown)?, revision);
    if caller.is_user(name.as_str()) {
        super::session::clear_cookie(&mut response);
    }
    Ok(response)
}

/// A code in a request: six ASCII digits.
pub(crate) fn check_code(field: &str, code: &str) -> Result<(), ApiError> {
    if code.len() != totp::DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            field.to_string(),
            format!("a TOTP code is {} digits", totp::DIGITS),
        ));
    }
    Ok(())
}

/// The associated data a user's TOTP secret is sealed with.
fn context(name: &Name) -> String {
    format!("totp:{name}")
}

fn at_rest_key<P: ControlPlane>(plane: &P) -> Result<[u8; 32], ApiError> {
    plane.at_rest_key().ok_or_else(|| {
        ApiError::internal("this node has no at-rest key, so TOTP secrets cannot be sealed here")
    })
}

/// The TOTP secret of user `name`, unsealed.
pub(crate) fn open_secret<P: ControlPlane>(
    plane: &P,
    name: &Name,
    sealed: &str,
) -> Result<Vec<u8>, ApiError> {
    seal::open(&at_rest_key(plane)?, &context(name), sealed)
        .map_err(|e| ApiError::internal(format!("the TOTP secret of `{name}`: {e}")))
}
