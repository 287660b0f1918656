//! `/session`: logging in and out. `POST` (no credentials needed) checks
//! a user's password (argon2id) and, when they have confirmed TOTP, a
//! code; it answers the session cookie
//! (`__Host-dwcp_session=…; Path=/; HttpOnly; Secure; SameSite=Strict`: a
//! `__Host-` cookie a browser keeps to this host alone) and the
//! session's CSRF token. `GET` says who the caller is; `DELETE` ends the
//! session. Login attempts are limited per address and, cluster-wide, per
//! user, each counted before its password is checked (`login_limit.rs`);
//! the argon2 check runs on its own small pool (`hash_pool.rs`).

use std::collections::BTreeMap;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::users::Session;
use state::{Command, Name, Role};

use super::auth::{Caller, SESSION_COOKIE, Via, csrf_of};
use super::body::read_json;
use super::error::ApiError;
use super::hash_pool::HashPool;
use super::login_limit::LoginLimiter;
use super::reply::{self, AUDIT, AuditContext, Reply, commit, json, now_unix_ms};
use super::seal::hex;
use super::users::{check_code, open_secret};
use super::{password, validate};
use crate::{ControlPlane, totp};

/// How long a session lasts.
pub(crate) const SESSION_TTL_SECS: u64 = 12 * 60 * 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

/// Who the caller is, as `POST` and `GET /session` answer.
#[derive(Serialize)]
struct Whoami {
    user: String,
    /// `session` or `token`.
    via: &'static str,
    roles: BTreeMap<String, Role>,
    /// Whether the login passed TOTP (`true` for tokens, which TOTP does
    /// not apply to).
    mfa: bool,
    /// The CSRF token to send in `x-csrf-token` with changes (sessions).
    csrf: Option<String>,
    expires_unix_ms: Option<u64>,
}

/// What a login needs of the user's record.
struct Stored {
    hash: String,
    roles: BTreeMap<String, Role>,
    totp: Option<(String, u64)>,
}

/// `POST /session`: a login.
pub(crate) async fn login<P: ControlPlane>(
    plane: &P,
    limiter: &LoginLimiter,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let ip = req
        .extensions()
        .get::<cluster::serving::PeerAddr>()
        .map(|p| p.0.ip());
    let (parts, body) = req.into_parts();
    let wanted: Login = read_json(&parts.headers, body).await?;
    let user = validate::name("user", &wanted.user)?;
    if wanted.password.len() > password::MAX_LEN {
        return Err(ApiError::invalid(
            "password",
            format!("at most {} bytes", password::MAX_LEN),
        ));
    }
    if let Some(code) = &wanted.totp {
        check_code("totp", code)?;
    }
    // Counted before anything costs: per address on this node, then per
    // user in the replicated state, so that a burst of attempts (at one
    // node or many) gets no more guesses than one at a time would.
    let attempt = limiter.reserve(ip, Instant::now()).map_err(|wait| {
        ApiError::too_many_requests(
            format!("too many failed logins from this address; try again in {wait} s"),
            wait,
        )
    })?;
    reserve_attempt(plane, &user).await?;
    let u = user.clone();
    let stored = plane
        .read(move |s| {
            s.user(&u).map(|u| Stored {
                hash: u.password_hash.clone(),
                roles: u.roles.clone(),
                totp: u
                    .totp_sealed
                    .clone()
                    .filter(|_| u.totp_confirmed)
                    .map(|sealed| (sealed, u.totp_last_step)),
            })
        })
        .await?;
    // An unknown user costs the same argon2 check as a wrong password.
    let hash = stored
        .as_ref()
        .map_or_else(|| password::dummy_hash().to_string(), |s| s.hash.clone());
    let password = wanted.password;
    let matches = HashPool::global()
        .run(move || password::verify(&password, &hash))
        .await
        .map_err(|busy| ApiError::unavailable(busy.to_string()))?;
    let stored = match stored {
        Some(stored) if matches => stored,
        _ => {
            return Err(ApiError::unauthorized_field(
                "password",
                "the user name or the password is wrong",
            ));
        }
    };
    let totp_step = match (&stored.totp, &wanted.totp) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ApiError::unauthorized_field(
                "totp",
                "this user has a TOTP second factor: send the current 6-digit code in `totp`",
            ));
        }
        (Some((sealed, last)), Some(code)) => {
            let secret = open_secret(plane, &user, sealed)?;
            let step = totp::matching_step(&secret, code, now_unix_ms() / 1000)
                .map_err(|e| ApiError::internal(e.to_string()))?
                .ok_or_else(|| ApiError::unauthorized_field("totp", "totp code is wrong"))?;
            if step <= *last {
                return Err(replayed());
            }
            Some(step)
        }
    };
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| ApiError::internal(e.to_string()))?;
    let token = hex(&token);
    let csrf = csrf_of(&token);
    let now = now_unix_ms();
    let session = Session {
        sha256: state::digest_of(token.as_bytes()),
        user: user.clone(),
        mfa: totp_step.is_some(),
        csrf_sha256: state::digest_of(csrf.as_bytes()),
        created_unix_ms: now,
        expires_unix_ms: now + SESSION_TTL_SECS * 1000,
    };
    let expires_unix_ms = session.expires_unix_ms;
    let mfa = session.mfa;
    let audit = AuditContext {
        who: format!("user:{user}"),
        from: ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string()),
        what: "POST /api/v1/session".into(),
        scope: None,
    };
    let command = Command::CreateSession {
        session,
        totp_step,
        now_unix_ms: now,
    };
    let (revision, _) = AUDIT
        .scope(audit, commit(plane, command))
        .await
        .map_err(|e| {
            // Another node accepted this code first.
            if e.field.as_deref() == Some("totp") {
                replayed()
            } else {
                e
            }
        })?;
    attempt.succeeded();
    let mut response = json(
        StatusCode::CREATED,
        &Whoami {
            user: user.to_string(),
            via: "session",
            roles: stored.roles,
            mfa,
            csrf: Some(csrf),
            expires_unix_ms: Some(expires_unix_ms),
        },
    )?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={SESSION_TTL_SECS}"
    );
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(reply::with_revision(response, revision))
}

/// Reserves a login attempt of `user` in the replicated state (not
/// audited: the audit log records logins, not attempts); 429 with the
/// wait when the user has none left.
async fn reserve_attempt<P: ControlPlane>(plane: &P, user: &Name) -> Result<(), ApiError> {
    let now = now_unix_ms();
    let command = Command::ReserveLogin {
        name: user.clone(),
        now_unix_ms: now,
    };
    match plane.write(command).await?.result {
        Ok(_) => Ok(()),
        Err(e) if e.field() == Some("login") => {
            let u = user.clone();
            let wait = plane
                .read(move |s| s.user(&u).and_then(|u| u.login_wait_secs(now)))
                .await?
                .unwrap_or(1);
            Err(ApiError::too_many_requests(
                format!("too many failed logins for this user; try again in {wait} s"),
                wait,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn replayed() -> ApiError {
    ApiError::unauthorized_field(
        "totp",
        "totp code already used: wait for the next code of your authenticator",
    )
}

/// `GET /session`: who the caller is.
pub(crate) fn show(caller: &Caller) -> Result<Reply, ApiError> {
    let (via, mfa, csrf, expires_unix_ms) = match &caller.via {
        Via::Token => ("token", true, None, None),
        Via::Session {
            mfa,
            csrf,
            expires_unix_ms,
            ..
        } => ("session", *mfa, Some(csrf.clone()), Some(*expires_unix_ms)),
    };
    json(
        StatusCode::OK,
        &Whoami {
            user: caller.name.clone(),
            via,
            roles: caller.roles.clone(),
            mfa,
            csrf,
            expires_unix_ms,
        },
    )
}

/// `DELETE /session`: the session ends; the cookie is cleared.
pub(crate) async fn logout<P: ControlPlane>(plane: &P, caller: &Caller) -> Result<Reply, ApiError> {
    let Via::Session { sha256, .. } = &caller.via else {
        return Err(ApiError::not_found_field(
            "cookie",
            "no session to end: DELETE /api/v1/session ends the session of a session cookie; this request used a token",
        ));
    };
    let (revision, _) = commit(
        plane,
        Command::DeleteSession {
            sha256: sha256.clone(),
        },
    )
    .await?;
    let mut response = reply::with_revision(reply::no_content(), revision);
    clear_cookie(&mut response);
    Ok(response)
}

/// Tells the browser to drop the session cookie.
pub(crate) fn clear_cookie(response: &mut Reply) {
    const CLEARED: &str = "=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0";
    // The cookie's name and these attributes are valid header text.
    if let Ok(value) = HeaderValue::from_str(&format!("{SESSION_COOKIE}{CLEARED}")) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
}
