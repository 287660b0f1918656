//! Users and sessions in the state machine: checks and changes. No
//! hashing and no clock here — times come in the commands.

use super::{Change, Record, Revision, State, revalidate};
use crate::command::check_digest;
use crate::users::{
    Enrollment, LOGIN_ATTEMPTS, LOGIN_WINDOW_MS, MAX_SESSIONS, MAX_SESSIONS_PER_USER, Session,
    User, check_password_hash, check_sealed, check_user_roles,
};
use crate::{Command, Name, Outcome, Rejection};

/// What is allowed for a TOTP step, in a replay refusal.
const REPLAYED: &str = "a code not used before: this code (or a later one) was already used";

impl State {
    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn user(&self, name: &Name) -> Option<&User> {
        self.users.get(name)
    }

    /// The session whose token hashes to `sha256`, if any (expired ones
    /// included until a later login prunes them: check the expiry).
    pub fn session(&self, sha256: &str) -> Option<&Session> {
        self.sessions.get(sha256)
    }

    /// The sessions of one user, in no particular order.
    pub fn sessions_of<'a>(&'a self, user: &'a Name) -> impl Iterator<Item = &'a Session> + 'a {
        self.sessions.values().filter(move |s| &s.user == user)
    }

    fn existing_user(&self, name: &Name) -> Result<&User, Rejection> {
        self.users
            .get(name)
            .ok_or_else(|| Rejection::not_found("user", name))
    }

    pub(super) fn plan_user(&self, command: &Command) -> Result<(Outcome, Vec<Change>), Rejection> {
        let change = |record, key: &Name, deleted| Change {
            record,
            key: key.to_string(),
            deleted,
        };
        let mut changes = Vec::new();
        match command {
            Command::PutUser {
                name,
                password_hash,
                roles,
            } => {
                revalidate(name, "user")?;
                check_password_hash(password_hash)?;
                check_user_roles(roles)?;
                changes.push(change(Record::User, name, false));
                if self.sessions_of(name).next().is_some() {
                    changes.push(change(Record::Session, name, true));
                }
            }
            Command::DeleteUser { name } => {
                self.existing_user(name)?;
                changes.push(change(Record::User, name, true));
                if self.sessions_of(name).next().is_some() {
                    changes.push(change(Record::Session, name, true));
                }
            }
            Command::SetUserTotp {
                name,
                sealed,
                code_sha256,
                now_unix_ms,
            } => {
                let user = self.existing_user(name)?;
                check_sealed(sealed)?;
                if let Some(code) = code_sha256 {
                    let valid = user
                        .totp_enrollment
                        .as_ref()
                        .is_some_and(|e| &e.sha256 == code && e.expires_unix_ms > *now_unix_ms);
                    if !valid {
                        return Err(Rejection::invalid(
                            "enrollment_code",
                            "(hidden)",
                            "the one-time enrollment code an admin made for this user, not used and not expired",
                        ));
                    }
                }
                changes.push(change(Record::User, name, false));
            }
            Command::AllowTotpEnrollment {
                name, code_sha256, ..
            } => {
                self.existing_user(name)?;
                check_digest(code_sha256).map_err(|_| {
                    Rejection::invalid(
                        "code_sha256",
                        code_sha256,
                        "64 lowercase hex digits (a sha256)",
                    )
                })?;
                changes.push(change(Record::User, name, false));
            }
            Command::ReserveLogin { name, now_unix_ms } => {
                // Not a user: nothing to count (and nothing that tells a
                // guesser so).
                let Some(user) = self.users.get(name) else {
                    return Ok((Outcome::Applied, changes));
                };
                if let Some(wait) = user.login_wait_secs(*now_unix_ms) {
                    return Err(Rejection::invalid(
                        "login",
                        name,
                        format!(
                            "at most {LOGIN_ATTEMPTS} login attempts in {} minutes; try again in {wait} s",
                            LOGIN_WINDOW_MS / 60_000
                        ),
                    ));
                }
                changes.push(change(Record::User, name, false));
            }
            Command::ConfirmUserTotp { name, step } | Command::AcceptTotpStep { name, step } => {
                let user = self.existing_user(name)?;
                if user.totp_sealed.is_none() {
                    return Err(Rejection::invalid(
                        "totp",
                        name,
                        "a user enrolled in TOTP (POST /api/v1/users/{name}/totp first)",
                    ));
                }
                if matches!(command, Command::AcceptTotpStep { .. }) && !user.totp_confirmed {
                    return Err(Rejection::invalid(
                        "totp",
                        name,
                        "a user whose TOTP is confirmed",
                    ));
                }
                check_step(user, *step)?;
                changes.push(change(Record::User, name, false));
                if matches!(command, Command::ConfirmUserTotp { .. })
                    && self.sessions_of(name).next().is_some()
                {
                    changes.push(change(Record::Session, name, true));
                }
            }
            Command::CreateSession {
                session,
                totp_step,
                now_unix_ms,
            } => {
                let user = self.existing_user(&session.user)?;
                for (field, digest) in [
                    ("sha256", &session.sha256),
                    ("csrf_sha256", &session.csrf_sha256),
                ] {
                    check_digest(digest).map_err(|_| {
                        Rejection::invalid(field, digest, "64 lowercase hex digits (a sha256)")
                    })?;
                }
                if session.expires_unix_ms <= *now_unix_ms {
                    return Err(Rejection::invalid(
                        "expires_unix_ms",
                        session.expires_unix_ms,
                        "a time after now",
                    ));
                }
                if session.mfa != totp_step.is_some() {
                    return Err(Rejection::invalid(
                        "mfa",
                        session.mfa,
                        "true exactly when the login's TOTP step is accepted with it",
                    ));
                }
                if user.login_attempts > 0 && totp_step.is_none() {
                    changes.push(change(Record::User, &session.user, false));
                }
                if let Some(step) = totp_step {
                    if !user.totp_confirmed {
                        return Err(Rejection::invalid(
                            "totp",
                            &session.user,
                            "a user whose TOTP is confirmed",
                        ));
                    }
                    check_step(user, *step)?;
                    changes.push(change(Record::User, &session.user, false));
                }
                if self.sessions.contains_key(&session.sha256) {
                    return Err(Rejection::AlreadyExists {
                        kind: "session".into(),
                        name: format!("of {}", session.user),
                    });
                }
                let live = self
                    .sessions
                    .values()
                    .filter(|s| s.expires_unix_ms > *now_unix_ms)
                    .count();
                if live >= MAX_SESSIONS {
                    return Err(Rejection::invalid(
                        "session",
                        live,
                        format!("at most {MAX_SESSIONS} sessions at once; try again later"),
                    ));
                }
                changes.push(change(Record::Session, &session.user, false));
            }
            Command::DeleteSession { sha256 } => {
                let found = self
                    .sessions
                    .get(sha256)
                    .ok_or_else(|| Rejection::not_found("session", "(this one)"))?;
                changes.push(change(Record::Session, &found.user, true));
            }
            _ => {
                return Err(Rejection::invalid(
                    "command",
                    "not a user command",
                    "a user command",
                ));
            }
        }
        Ok((Outcome::Applied, changes))
    }

    pub(super) fn commit_user(&mut self, command: &Command, revision: Revision) {
        match command {
            Command::PutUser {
                name,
                password_hash,
                roles,
            } => {
                self.sessions.retain(|_, s| &s.user != name);
                let user = self.users.entry(name.clone()).or_insert_with(|| User {
                    name: name.clone(),
                    password_hash: String::new(),
                    roles: Default::default(),
                    totp_sealed: None,
                    totp_confirmed: false,
                    totp_last_step: 0,
                    created: revision,
                    login_attempts: 0,
                    login_window_ms: 0,
                    totp_enrollment: None,
                });
                user.password_hash = password_hash.clone();
                user.roles = roles.clone();
            }
            Command::DeleteUser { name } => {
                self.sessions.retain(|_, s| &s.user != name);
                self.users.remove(name);
            }
            Command::SetUserTotp { name, sealed, .. } => {
                if let Some(user) = self.users.get_mut(name) {
                    user.totp_sealed = Some(sealed.clone());
                    user.totp_confirmed = false;
                    user.totp_enrollment = None;
                }
            }
            Command::AllowTotpEnrollment {
                name,
                code_sha256,
                expires_unix_ms,
            } => {
                if let Some(user) = self.users.get_mut(name) {
                    user.totp_enrollment = Some(Enrollment {
                        sha256: code_sha256.clone(),
                        expires_unix_ms: *expires_unix_ms,
                    });
                }
            }
            Command::ReserveLogin { name, now_unix_ms } => {
                if let Some(user) = self.users.get_mut(name) {
                    let window_over =
                        *now_unix_ms >= user.login_window_ms.saturating_add(LOGIN_WINDOW_MS);
                    if window_over || user.login_attempts == 0 {
                        user.login_attempts = 0;
                        user.login_window_ms = *now_unix_ms;
                    }
                    user.login_attempts += 1;
                }
            }
            Command::ConfirmUserTotp { name, step } => {
                // Sessions made before the second factor end with it.
                self.sessions.retain(|_, s| &s.user != name);
                if let Some(user) = self.users.get_mut(name) {
                    user.totp_confirmed = true;
                    user.totp_last_step = *step;
                }
            }
            Command::AcceptTotpStep { name, step } => {
                if let Some(user) = self.users.get_mut(name) {
                    user.totp_last_step = *step;
                }
            }
            Command::CreateSession {
                session,
                totp_step,
                now_unix_ms,
            } => {
                self.sessions
                    .retain(|_, s| s.expires_unix_ms > *now_unix_ms);
                let mut mine: Vec<(u64, String)> = self
                    .sessions_of(&session.user)
                    .map(|s| (s.created_unix_ms, s.sha256.clone()))
                    .collect();
                mine.sort();
                let excess = (mine.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
                for (_, old) in mine.into_iter().take(excess) {
                    self.sessions.remove(&old);
                }
                self.sessions
                    .insert(session.sha256.clone(), session.clone());
                if let Some(user) = self.users.get_mut(&session.user) {
                    user.login_attempts = 0;
                    if let Some(step) = totp_step {
                        user.totp_last_step = *step;
                    }
                }
            }
            Command::DeleteSession { sha256 } => {
                self.sessions.remove(sha256);
            }
            _ => {}
        }
    }
}

/// Refuses a TOTP step that is not after the user's last accepted one.
fn check_step(user: &User, step: u64) -> Result<(), Rejection> {
    if step <= user.totp_last_step {
        return Err(Rejection::invalid("totp", step, REPLAYED));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::Role;
    use crate::users::Session;
    use crate::{Command, Name, Rejection, State};

    fn name(v: &str) -> Name {
        Name::new("user", v).unwrap()
    }

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn with_user() -> State {
        let mut state = State::default();
        state
            .apply(&Command::PutUser {
                name: name("ann"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                roles: [("*".to_string(), Role::Admin)].into(),
            })
            .unwrap();
        state
            .apply(&Command::SetUserTotp {
                name: name("ann"),
                sealed: "v1:abc".into(),
                code_sha256: None,
                now_unix_ms: 0,
            })
            .unwrap();
        state
    }

    fn session(token: char, mfa: bool) -> Session {
        Session {
            sha256: hash(token),
            user: name("ann"),
            mfa,
            csrf_sha256: hash('c'),
            created_unix_ms: 1_000,
            expires_unix_ms: 10_000,
        }
    }

    #[test]
    fn a_totp_step_is_accepted_once() {
        let mut state = with_user();
        // Not confirmed yet: no code is accepted for a login.
        assert!(
            state
                .apply(&Command::AcceptTotpStep {
                    name: name("ann"),
                    step: 5
                })
                .is_err()
        );
        state
            .apply(&Command::ConfirmUserTotp {
                name: name("ann"),
                step: 5,
            })
            .unwrap();
        let before = state.clone();
        for step in [5, 4] {
            let err = state
                .apply(&Command::AcceptTotpStep {
                    name: name("ann"),
                    step,
                })
                .unwrap_err();
            assert_eq!(err.field(), Some("totp"), "{err}");
            assert!(err.to_string().contains("already used"), "{err}");
        }
        assert_eq!(state, before, "a refused step changes nothing");
        // A login carries its step; the same step again is a replay.
        let login = |token, step| Command::CreateSession {
            session: session(token, true),
            totp_step: Some(step),
            now_unix_ms: 2_000,
        };
        state.apply(&login('a', 6)).unwrap();
        assert_eq!(state.user(&name("ann")).unwrap().totp_last_step, 6);
        assert!(matches!(
            state.apply(&login('b', 6)),
            Err(Rejection::Invalid { field, .. }) if field == "totp"
        ));
        assert!(state.session(&hash('b')).is_none(), "nothing half-saved");
        state.apply(&login('b', 7)).unwrap();
    }

    #[test]
    fn sessions_expire_end_and_go_with_their_user() {
        let mut state = with_user();
        let create = |token, now| Command::CreateSession {
            session: session(token, false),
            totp_step: None,
            now_unix_ms: now,
        };
        // mfa without a step is refused.
        assert!(
            state
                .apply(&Command::CreateSession {
                    session: session('a', true),
                    totp_step: None,
                    now_unix_ms: 2_000,
                })
                .is_err()
        );
        state.apply(&create('a', 2_000)).unwrap();
        assert!(state.session(&hash('a')).is_some());
        // Expired at 10 000: a later login prunes it.
        let mut later = session('b', false);
        later.expires_unix_ms = 30_000;
        state
            .apply(&Command::CreateSession {
                session: later,
                totp_step: None,
                now_unix_ms: 20_000,
            })
            .unwrap();
        assert!(state.session(&hash('a')).is_none());
        assert!(
            state.apply(&create('d', 10_000)).is_err(),
            "already expired"
        );
        state
            .apply(&Command::DeleteSession { sha256: hash('b') })
            .unwrap();
        assert!(state.session(&hash('b')).is_none());
        state.apply(&create('e', 2_000)).unwrap();
        state
            .apply(&Command::DeleteUser { name: name("ann") })
            .unwrap();
        assert!(state.session(&hash('e')).is_none());
        assert!(state.users().next().is_none());
    }

    #[test]
    fn a_user_keeps_a_bounded_number_of_sessions() {
        let mut state = with_user();
        for i in 0..super::MAX_SESSIONS_PER_USER as u64 + 5 {
            let mut s = session('a', false);
            s.sha256 = format!("{i:064x}");
            s.created_unix_ms = i;
            state
                .apply(&Command::CreateSession {
                    session: s,
                    totp_step: None,
                    now_unix_ms: 100,
                })
                .unwrap();
        }
        assert_eq!(
            state.sessions_of(&name("ann")).count(),
            super::MAX_SESSIONS_PER_USER
        );
        assert!(
            state.session(&format!("{:064x}", 0)).is_none(),
            "oldest gone"
        );
    }

    #[test]
    fn bad_users_are_refused() {
        let mut state = State::default();
        for (hash, roles) in [
            ("plain", [("*".to_string(), Role::Admin)].into()),
            ("$argon2id$x", Default::default()),
        ] {
            assert!(
                state
                    .apply(&Command::PutUser {
                        name: name("bob"),
                        password_hash: hash.into(),
                        roles,
                    })
                    .is_err()
            );
        }
        assert_eq!(state.revision().0, 0);
    }
}
