//! Passwords: argon2id with the argon2 crate's default cost (19 MiB,
//! two passes, one lane — OWASP's recommendation), as PHC strings. Both
//! hashing and checking are slow on purpose: call them on the blocking
//! pool.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted.
pub(crate) const MIN_LEN: usize = 12;
/// Longest password accepted (bytes): hashing cost must not be the
/// caller's to choose.
pub(crate) const MAX_LEN: usize = 1024;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PasswordError {
    #[error("no random salt: {0}")]
    Random(getrandom::Error),
    #[error("argon2: {0}")]
    Hash(argon2::password_hash::Error),
}

/// The argon2id PHC string of `password` with a fresh random salt.
pub(crate) fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches the PHC string `phc` (false for a string
/// that does not parse).
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password is known for, checked against when the user does not
/// exist, so that a login for an unknown user takes as long as one with a
/// wrong password (and user names cannot be found by timing).
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // A random password hashed with the same cost; if the system has
        // no randomness the fixed fallback costs the same to check.
        let mut secret = [0u8; 24];
        let password = match getrandom::fill(&mut secret) {
            Ok(()) => secret.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => "dwcp-dummy-password-nobody-knows".to_string(),
        };
        hash(&password).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$ZHdjcGR1bW15c2FsdA$e3YQm6PZ1T9YMvAz1x0JmAxvGG1o3bH3X7W1Cq0hS0I".to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_and_differ_by_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse battery!", &a));
        assert!(!verify("x", "not a phc string"));
        assert!(!verify("", dummy_hash()));
        state::users::check_password_hash(&a).unwrap();
    }
}
