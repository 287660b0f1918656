//! People who log in: users with a password hash, roles per tenant and an
//! optional TOTP second factor, and their dashboard sessions.
//!
//! The state machine never hashes or verifies anything: the API hashes a
//! password (argon2id) and checks TOTP codes, then writes plain records.
//! What the state machine does enforce is what must hold across nodes: a
//! TOTP time step is accepted at most once per user (a compare-and-set on
//! the last accepted step), and sessions expire and are bounded in number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Role;
use crate::{Name, Rejection};

/// The key of a user's roles that means "every tenant".
pub const ALL_TENANTS: &str = "*";

/// Most roles one user may hold.
pub const MAX_USER_ROLES: usize = 1_000;

/// Most sessions one user keeps; a new one past it ends the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 20;

/// Most sessions the state keeps over all users.
pub const MAX_SESSIONS: usize = 100_000;

/// Login attempts one user may make in a [`LOGIN_WINDOW_MS`] over the
/// whole cluster: each is reserved ([`crate::Command::ReserveLogin`])
/// before its password is checked and counts as a failure until a login
/// succeeds, so neither parallel requests nor more nodes get more guesses.
pub const LOGIN_ATTEMPTS: u32 = 5;
/// The window login attempts are counted in, from the first one.
pub const LOGIN_WINDOW_MS: u64 = 300_000;
/// How long a one-time TOTP enrollment code made by an admin lasts.
pub const ENROLLMENT_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// A person who logs in to the API and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: Name,
    /// The password's argon2id hash as a PHC string (`$argon2id$...`).
    pub password_hash: String,
    /// Per tenant (or [`ALL_TENANTS`]), the user's role there: `admin`,
    /// `operator` or `viewer`.
    pub roles: BTreeMap<String, Role>,
    /// The TOTP secret, sealed by the API (AES-256-GCM under a key the
    /// cluster's nodes hold outside the replicated state); `None` until
    /// the user enrolls.
    pub totp_sealed: Option<String>,
    /// Whether the user proved, with a code, that their authenticator
    /// holds the secret. Only then is a code asked for at login.
    pub totp_confirmed: bool,
    /// The last TOTP time step (Unix seconds / 30) accepted for this user:
    /// a code of this step or an earlier one is refused as replayed.
    pub totp_last_step: u64,
    pub created: crate::Revision,
    /// Login attempts counted in the window that started at
    /// `login_window_ms` (ms since the Unix epoch); see [`LOGIN_ATTEMPTS`].
    #[serde(default)]
    pub login_attempts: u32,
    #[serde(default)]
    pub login_window_ms: u64,
    /// A one-time code an admin made so that this user may enroll a
    /// second factor on their own; `None` when there is none.
    #[serde(default)]
    pub totp_enrollment: Option<Enrollment>,
}

/// A one-time TOTP enrollment code, kept as its sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Lowercase hex sha256 of the code.
    pub sha256: String,
    pub expires_unix_ms: u64,
}

impl User {
    /// The user's role in `tenant`: their role there, else their role on
    /// every tenant, whichever is stronger.
    pub fn role_in(&self, tenant: &str) -> Option<Role> {
        let here = self.roles.get(tenant).copied();
        let all = self.roles.get(ALL_TENANTS).copied();
        match (here, all) {
            (Some(a), Some(b)) => Some(stronger(a, b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the user is an admin anywhere.
    pub fn is_admin_anywhere(&self) -> bool {
        self.roles.values().any(|r| *r == Role::Admin)
    }

    /// Seconds until another login may be tried at `now_unix_ms`, when the
    /// user has used up [`LOGIN_ATTEMPTS`] in the window.
    pub fn login_wait_secs(&self, now_unix_ms: u64) -> Option<u64> {
        let ends = self.login_window_ms.saturating_add(LOGIN_WINDOW_MS);
        (self.login_attempts >= LOGIN_ATTEMPTS && now_unix_ms < ends)
            .then(|| (ends - now_unix_ms).div_ceil(1000).max(1))
    }
}

/// The stronger of two roles (admin > operator > viewer > join).
pub fn stronger(a: Role, b: Role) -> Role {
    let rank = |r: Role| match r {
        Role::Admin => 3,
        Role::Operator => 2,
        Role::Viewer => 1,
        Role::Join => 0,
    };
    if rank(a) >= rank(b) { a } else { b }
}

/// A logged-in dashboard (or API) session, kept under the sha256 of its
/// cookie's token: the token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Lowercase hex sha256 of the session token.
    pub sha256: String,
    pub user: Name,
    /// Whether the login passed the TOTP second factor.
    pub mfa: bool,
    /// Lowercase hex sha256 of the session's CSRF token.
    pub csrf_sha256: String,
    pub created_unix_ms: u64,
    pub expires_unix_ms: u64,
}

/// Checks a user's roles: keys are tenant names or `*`, roles are admin,
/// operator or viewer, at least one and at most [`MAX_USER_ROLES`].
pub fn check_user_roles(roles: &BTreeMap<String, Role>) -> Result<(), Rejection> {
    if roles.is_empty() || roles.len() > MAX_USER_ROLES {
        return Err(Rejection::invalid(
            "roles",
            roles.len(),
            format!("1 to {MAX_USER_ROLES} roles, e.g. {{\"*\": \"viewer\"}}"),
        ));
    }
    for (tenant, role) in roles {
        if tenant != ALL_TENANTS {
            Name::new("roles", tenant).map_err(|_| {
                Rejection::invalid(
                    "roles",
                    tenant,
                    "tenant names (1-63 of a-z, 0-9 and '-') or `*` for every tenant",
                )
            })?;
        }
        if *role == Role::Join {
            return Err(Rejection::invalid(
                "roles",
                format!("{tenant}=join"),
                "admin, operator or viewer",
            ));
        }
    }
    Ok(())
}

/// Checks a password hash: a PHC string of argon2id, of sane length.
pub fn check_password_hash(hash: &str) -> Result<(), Rejection> {
    if !hash.starts_with("$argon2id$") || hash.len() > 512 || !hash.is_ascii() {
        return Err(Rejection::invalid(
            "password_hash",
            "(hidden)",
            "an argon2id PHC string (`$argon2id$...`), made by the API",
        ));
    }
    Ok(())
}

/// Checks a sealed TOTP secret: printable ASCII of sane length.
pub fn check_sealed(sealed: &str) -> Result<(), Rejection> {
    if sealed.is_empty() || sealed.len() > 512 || !sealed.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Rejection::invalid(
            "totp_sealed",
            "(hidden)",
            "a sealed secret made by the API",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(pairs: &[(&str, Role)]) -> BTreeMap<String, Role> {
        pairs.iter().map(|(t, r)| (t.to_string(), *r)).collect()
    }

    #[test]
    fn roles_are_checked() {
        assert!(check_user_roles(&roles(&[("*", Role::Viewer), ("acme", Role::Admin)])).is_ok());
        for bad in [
            roles(&[]),
            roles(&[("Acme", Role::Viewer)]),
            roles(&[("acme", Role::Join)]),
            roles(&[("**", Role::Viewer)]),
        ] {
            assert_eq!(check_user_roles(&bad).unwrap_err().field(), Some("roles"));
        }
    }

    #[test]
    fn the_stronger_of_a_tenant_role_and_the_every_tenant_role_wins() {
        let user = User {
            name: Name::new("user", "ann").unwrap(),
            password_hash: String::new(),
            roles: roles(&[("*", Role::Viewer), ("acme", Role::Operator)]),
            totp_sealed: None,
            totp_confirmed: false,
            totp_last_step: 0,
            created: crate::Revision(1),
            login_attempts: 0,
            login_window_ms: 0,
            totp_enrollment: None,
        };
        assert_eq!(user.role_in("acme"), Some(Role::Operator));
        assert_eq!(user.role_in("other"), Some(Role::Viewer));
        assert!(!user.is_admin_anywhere());
    }
}
