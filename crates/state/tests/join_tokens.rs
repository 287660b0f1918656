//! Join tokens expire, are spent one join at a time, and can be revoked;
//! two joins racing for a single-use token: one wins.

use state::{Command, Name, Rejection, Role, State};

const NOW: u64 = 1_800_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn hash(secret: &str) -> String {
    state::digest_of(secret.as_bytes())
}

fn make(s: &mut State, name: &str, secret: &str, ttl_ms: u64, uses: Option<u32>) {
    s.apply(&Command::PutJoinToken {
        name: Name::new("credential", name).unwrap(),
        sha256: hash(secret),
        now_unix_ms: NOW,
        ttl_ms,
        uses,
    })
    .unwrap();
}

fn spend(s: &mut State, secret: &str, at: u64) -> Result<(), Rejection> {
    s.apply(&Command::UseJoinToken {
        sha256: hash(secret),
        now_unix_ms: at,
    })
    .map(drop)
}

#[test]
fn a_single_use_token_admits_one_join_and_is_gone() {
    let mut s = State::default();
    make(&mut s, "join-a", "a", HOUR_MS, Some(1));
    assert_eq!(s.join_tokens().count(), 1);
    spend(&mut s, "a", NOW + 1).unwrap();
    let e = spend(&mut s, "a", NOW + 2).unwrap_err();
    assert!(matches!(e, Rejection::NotFound { .. }), "{e}");
    assert_eq!(s.join_tokens().count(), 0);
}

#[test]
fn a_token_with_uses_admits_that_many_joins_within_its_time() {
    let mut s = State::default();
    make(&mut s, "join-b", "b", HOUR_MS, Some(3));
    for i in 0..3 {
        spend(&mut s, "b", NOW + i).unwrap();
    }
    assert!(spend(&mut s, "b", NOW + 4).is_err());
    make(&mut s, "join-c", "c", HOUR_MS, None);
    for i in 0..10 {
        spend(&mut s, "c", NOW + i).unwrap();
    }
    let e = spend(&mut s, "c", NOW + HOUR_MS).unwrap_err();
    assert_eq!(e.field(), Some("token"), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn expired_tokens_are_dropped_by_the_next_join_token_command() {
    let mut s = State::default();
    make(&mut s, "join-old", "old", 1_000, Some(5));
    s.apply(&Command::PutJoinToken {
        name: Name::new("credential", "join-new").unwrap(),
        sha256: hash("new"),
        now_unix_ms: NOW + 2_000,
        ttl_ms: HOUR_MS,
        uses: Some(1),
    })
    .unwrap();
    let names: Vec<String> = s.join_tokens().map(|c| c.name.to_string()).collect();
    assert_eq!(names, ["join-new"]);
}

#[test]
fn revoking_a_token_refuses_it_and_bad_limits_name_their_field() {
    let mut s = State::default();
    make(&mut s, "join-r", "r", HOUR_MS, Some(2));
    s.apply(&Command::DeleteCredential {
        name: Name::new("credential", "join-r").unwrap(),
    })
    .unwrap();
    assert!(spend(&mut s, "r", NOW).is_err());
    let bad = |ttl_ms, uses| {
        State::default()
            .apply(&Command::PutJoinToken {
                name: Name::new("credential", "join-x").unwrap(),
                sha256: hash("x"),
                now_unix_ms: NOW,
                ttl_ms,
                uses,
            })
            .unwrap_err()
    };
    assert_eq!(bad(0, Some(1)).field(), Some("ttl_ms"));
    assert_eq!(
        bad(state::MAX_JOIN_TTL_MS + 1, None).field(),
        Some("ttl_ms")
    );
    assert_eq!(bad(HOUR_MS, Some(0)).field(), Some("uses"));
    // An API token's hash is not a join token.
    let mut s = State::default();
    s.apply(&Command::PutCredential {
        name: Name::new("credential", "ops").unwrap(),
        role: Role::Operator,
        sha256: hash("ops"),
    })
    .unwrap();
    assert!(spend(&mut s, "ops", NOW).is_err());
}
