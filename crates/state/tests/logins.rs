//! Logins and second factors in the state machine: attempts reserved
//! cluster-wide before a password is checked, and enrolling a second
//! factor only with an admin's one-time code (or by an admin).

use state::users::{LOGIN_ATTEMPTS, LOGIN_WINDOW_MS, Session};
use state::{Command, Name, Role, State};

fn name(v: &str) -> Name {
    Name::new("user", v).unwrap()
}

fn with_user() -> State {
    let mut s = State::default();
    s.apply(&Command::PutUser {
        name: name("ann"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        roles: [("*".to_string(), Role::Admin)].into(),
    })
    .unwrap();
    s
}

fn reserve(now: u64) -> Command {
    Command::ReserveLogin {
        name: name("ann"),
        now_unix_ms: now,
    }
}

fn login(token: char, now: u64) -> Command {
    Command::CreateSession {
        session: Session {
            sha256: token.to_string().repeat(64),
            user: name("ann"),
            mfa: false,
            csrf_sha256: "c".repeat(64),
            created_unix_ms: now,
            expires_unix_ms: now + 1_000_000,
        },
        totp_step: None,
        now_unix_ms: now,
    }
}

#[test]
fn a_user_gets_a_few_attempts_per_window_whatever_asks() {
    let mut s = with_user();
    let t0 = 1_000_000;
    // However many ask at once (on however many nodes), the log orders
    // them: the first LOGIN_ATTEMPTS are reserved, the rest refused.
    let granted = (0..50)
        .filter(|i| s.apply(&reserve(t0 + i)).is_ok())
        .count();
    assert_eq!(granted, LOGIN_ATTEMPTS as usize);
    let refused = s.apply(&reserve(t0 + 1000)).unwrap_err();
    assert_eq!(refused.field(), Some("login"), "{refused}");
    assert!(
        refused.to_string().contains("try again in 299 s"),
        "{refused}"
    );
    let user = s.user(&name("ann")).unwrap();
    assert_eq!(user.login_wait_secs(t0 + 1000), Some(299));
    // The window ends: attempts again.
    s.apply(&reserve(t0 + LOGIN_WINDOW_MS)).unwrap();
    // A login that succeeds clears the count.
    s.apply(&login('a', t0 + LOGIN_WINDOW_MS + 1)).unwrap();
    assert_eq!(s.user(&name("ann")).unwrap().login_attempts, 0);
    // A name that is no user changes nothing (and is not refused).
    let before = s.revision();
    for _ in 0..10 {
        s.apply(&Command::ReserveLogin {
            name: name("nobody"),
            now_unix_ms: t0,
        })
        .unwrap();
    }
    assert_eq!(s.revision(), before);
}

#[test]
fn enrolling_needs_the_admin_s_one_time_code_and_confirming_ends_sessions() {
    let mut s = with_user();
    s.apply(&login('a', 1_000)).unwrap();
    let code = "d".repeat(64);
    let enroll = |code: Option<&str>, now| Command::SetUserTotp {
        name: name("ann"),
        sealed: "v1:secret".into(),
        code_sha256: code.map(Into::into),
        now_unix_ms: now,
    };
    // No code made yet: refused, naming the field.
    let e = s.apply(&enroll(Some(&code), 2_000)).unwrap_err();
    assert_eq!(e.field(), Some("enrollment_code"));
    s.apply(&Command::AllowTotpEnrollment {
        name: name("ann"),
        code_sha256: code.clone(),
        expires_unix_ms: 10_000,
    })
    .unwrap();
    for (wrong, now) in [("e".repeat(64), 2_000), (code.clone(), 10_000)] {
        let e = s.apply(&enroll(Some(&wrong), now)).unwrap_err();
        assert_eq!(e.field(), Some("enrollment_code"), "{now}");
    }
    s.apply(&enroll(Some(&code), 2_000)).unwrap();
    // Used once.
    let e = s.apply(&enroll(Some(&code), 2_001)).unwrap_err();
    assert_eq!(e.field(), Some("enrollment_code"));
    assert!(s.session(&"a".repeat(64)).is_some());
    s.apply(&Command::ConfirmUserTotp {
        name: name("ann"),
        step: 7,
    })
    .unwrap();
    assert!(
        s.sessions_of(&name("ann")).next().is_none(),
        "the session made before the second factor ended"
    );
}
