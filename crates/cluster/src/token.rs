//! Secrets handed to people: the admin token and join tokens.
//!
//! A token is 32 random bytes in hex behind a prefix that says what it is.
//! Only its sha256 is ever stored (as a [`Credential`](state::Credential)
//! in the replicated state); the token itself is shown once.
//!
//! A join token also carries the fingerprint of the cluster's CA, so the
//! joining node can check it is talking to the right cluster before it
//! sends the secret: `dwcp-join.<ca sha256>.<secret>`.

use std::fmt;

use state::{digest_of, is_sha256_hex};

/// Why a token could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error(
        "the join token is not valid: {0}; it looks like dwcp-join.<64 hex digits>.<64 hex digits>, as printed by the first `dwcp up`"
    )]
    Malformed(&'static str),
}

/// 32 random bytes from the operating system.
pub fn random_bytes() -> Result<[u8; 32], TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(bytes)
}

/// 32 random bytes from the operating system, in lowercase hex.
pub fn random_hex() -> Result<String, TokenError> {
    Ok(random_bytes()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new admin token: `dwcp-admin.<64 hex digits>`.
pub fn new_admin_token() -> Result<String, TokenError> {
    Ok(format!("dwcp-admin.{}", random_hex()?))
}

/// A new API token for `role` (`admin`, `operator`, `viewer`):
/// `dwcp-<role>.<64 hex digits>`.
pub fn new_api_token(role: &str) -> Result<String, TokenError> {
    Ok(format!("dwcp-{role}.{}", random_hex()?))
}

/// The sha256 under which a token is stored.
pub fn token_hash(token: &str) -> String {
    digest_of(token.as_bytes())
}

/// A token that lets a new node join the cluster whose CA has
/// `ca_fingerprint`.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_fingerprint: String,
    pub secret: String,
}

impl JoinToken {
    /// A new join token for the cluster whose CA has this fingerprint.
    pub fn generate(ca_fingerprint: &str) -> Result<JoinToken, TokenError> {
        Ok(JoinToken {
            ca_fingerprint: ca_fingerprint.to_string(),
            secret: random_hex()?,
        })
    }

    /// Reads a token as printed by [`JoinToken`]'s `Display`.
    pub fn parse(text: &str) -> Result<JoinToken, TokenError> {
        let mut parts = text.trim().split('.');
        if parts.next() != Some("dwcp-join") {
            return Err(TokenError::Malformed("it does not start with `dwcp-join.`"));
        }
        let (Some(fp), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed("it does not have three parts"));
        };
        if !is_sha256_hex(fp) {
            return Err(TokenError::Malformed(
                "the CA fingerprint is not 64 hex digits",
            ));
        }
        if !is_sha256_hex(secret) {
            return Err(TokenError::Malformed("the secret is not 64 hex digits"));
        }
        Ok(JoinToken {
            ca_fingerprint: fp.into(),
            secret: secret.into(),
        })
    }

    /// The sha256 under which the secret is stored.
    pub fn secret_hash(&self) -> String {
        token_hash(&self.secret)
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dwcp-join.{}.{}", self.ca_fingerprint, self.secret)
    }
}

// The secret stays out of debug output and logs.
impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinToken(ca {}, secret …)", &self.ca_fingerprint[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_round_trip_and_bad_ones_are_named() {
        let t = JoinToken::generate(&"ab".repeat(32)).unwrap();
        assert_eq!(JoinToken::parse(&t.to_string()).unwrap(), t);
        assert_ne!(
            t.secret,
            JoinToken::generate(&t.ca_fingerprint).unwrap().secret
        );
        for bad in [
            "",
            "dwcp-join",
            "dwcp-admin.x.y",
            "dwcp-join.abc.def",
            &format!("dwcp-join.{}.{}.x", "a".repeat(64), "b".repeat(64)),
        ] {
            let e = JoinToken::parse(bad).unwrap_err().to_string();
            assert!(e.contains("join token is not valid"), "{bad}: {e}");
        }
        assert!(!format!("{t:?}").contains(&t.secret));
    }

    #[test]
    fn admin_tokens_are_random_and_hash_to_hex() {
        let a = new_admin_token().unwrap();
        assert!(a.starts_with("dwcp-admin."));
        assert_ne!(a, new_admin_token().unwrap());
        assert!(is_sha256_hex(&token_hash(&a)));
    }
}
