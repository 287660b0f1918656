//! `/users[/{name}[/totp[/confirm]]]`: people who log in. An admin (on
//! every tenant, `*`) makes users with a password (hashed here with
//! argon2id; the state keeps only the PHC string) and roles per tenant,
//! lists and deletes them; a user enrolls in TOTP (a new secret, shown
//! once, sealed at rest) and confirms it with a code.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::users::{ALL_TENANTS, check_user_roles};
use state::{Command, Name, Revision, Role, User};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
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
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::internal(format!("hashing the password: {e}")))?
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

/// `POST /users/{name}/totp`: a new TOTP secret for the user, pending
/// until confirmed with a code. Replacing a confirmed secret needs a
/// login that passed TOTP (or a token).
pub(crate) async fn enroll<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    name: &str,
) -> Result<Reply, ApiError> {
    let name = validate::name("name", name)?;
    let n = name.clone();
    let confirmed = plane
        .read(move |s| s.user(&n).map(|u| u.totp_confirmed))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named `{name}`")))?;
    if confirmed && caller.lacks_mfa() {
        return Err(ApiError::forbidden(
            "this user's TOTP is confirmed: replacing it needs a login that passed TOTP",
        ));
    }
    let key = at_rest_key(plane)?;
    let secret = totp::new_secret().map_err(|e| ApiError::internal(e.to_string()))?;
    let sealed = seal::seal(&key, &context(&name), &secret)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (revision, _) = commit(
        plane,
        Command::SetUserTotp {
            name: name.clone(),
            sealed,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

/// `POST /users/{name}/totp/confirm`: a code from the authenticator proves
/// it holds the secret; from then on logins need a code.
pub(crate) async fn confirm<P: ControlPlane>(
    plane: &P,
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
        .ok_or_else(|| {
            ApiError::invalid(
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
    Ok(with_revision(json(StatusCode::OK, &shown)?, revision))
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
