//! TOTP (RFC 6238): 6-digit codes from a shared secret and the time, with
//! SHA-1 and 30-second steps — what authenticator apps use by default.
//!
//! Public so tests elsewhere (the dashboard's headless-browser test, the
//! CLI tests) can compute the code a user's authenticator would show:
//! [`code_at`].

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Steps either side of now a code is still accepted for (clock skew).
pub const SKEW_STEPS: u64 = 1;

/// Why a code could not be computed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the TOTP secret is not base32 (RFC 4648, A-Z and 2-7)")]
    NotBase32,
    #[error("the TOTP secret is too short: {0} bytes, at least 16 are needed")]
    TooShort(usize),
}

/// A secret's TOTP generator (SHA-1, [`DIGITS`] digits, [`STEP_SECONDS`]).
fn generator(secret: &[u8]) -> Result<TOTP, TotpError> {
    if secret.len() < 16 {
        return Err(TotpError::TooShort(secret.len()));
    }
    Ok(TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECONDS,
        secret.to_vec(),
    ))
}

/// The bytes of a base32 secret (spaces and case ignored, no padding).
pub fn decode_base32(secret: &str) -> Result<Vec<u8>, TotpError> {
    let cleaned: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Secret::Encoded(cleaned)
        .to_bytes()
        .map_err(|_| TotpError::NotBase32)
}

/// `secret` in base32 without padding, as authenticator apps take it.
pub fn encode_base32(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        // `to_encoded` of a raw secret is always `Encoded`.
        Secret::Raw(_) => String::new(),
    }
}

/// The time step of a Unix time in seconds.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECONDS
}

/// The code for the base32 `secret` at `unix_secs`: what an authenticator
/// app shows then.
///
/// ```
/// // RFC 6238's SHA-1 secret, "12345678901234567890", at T = 59 s.
/// let secret = ops::totp::encode_base32(b"12345678901234567890");
/// assert_eq!(ops::totp::code_at(&secret, 59).unwrap(), "287082");
/// ```
pub fn code_at(secret_base32: &str, unix_secs: u64) -> Result<String, TotpError> {
    Ok(generator(&decode_base32(secret_base32)?)?.generate(unix_secs))
}

/// The step within [`SKEW_STEPS`] of `unix_secs` whose code is `code`, if
/// any (compared in constant time).
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Result<Option<u64>, TotpError> {
    let totp = generator(secret)?;
    let now = step_of(unix_secs);
    let mut found = None;
    for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
        let expected = totp.generate(step * STEP_SECONDS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// A new random secret of [`SECRET_BYTES`].
pub fn new_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

/// The `otpauth://` URI authenticator apps read (usually from a QR code).
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    let issuer = percent(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={secret_base32}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent(account)
    )
}

/// Percent-encodes everything but unreserved characters.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows, with 8 digits as in the RFC.
    #[test]
    fn rfc_6238_test_vectors() {
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 8, 0, 30, b"12345678901234567890".to_vec());
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), code, "T = {time}");
        }
        // Our 6-digit codes are the last six digits of the RFC's.
        let secret = encode_base32(b"12345678901234567890");
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(code_at(&secret, 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(&secret.to_lowercase(), 59).unwrap(), "287082");
    }

    #[test]
    fn codes_match_within_one_step_either_side() {
        let secret = b"12345678901234567890";
        let b32 = encode_base32(secret);
        let t = 1_111_111_109;
        let code = code_at(&b32, t).unwrap();
        assert_eq!(matching_step(secret, &code, t).unwrap(), Some(step_of(t)));
        assert_eq!(
            matching_step(secret, &code, t + 30).unwrap(),
            Some(step_of(t))
        );
        assert_eq!(matching_step(secret, &code, t + 90).unwrap(), None);
        assert_eq!(matching_step(secret, "000000x", t).unwrap(), None);
        assert_eq!(code_at("not base32!", t), Err(TotpError::NotBase32));
        assert_eq!(code_at("GEZA", t), Err(TotpError::TooShort(2)));
    }

    #[test]
    fn uris_and_secrets() {
        let s = new_secret().unwrap();
        assert_eq!(s.len(), SECRET_BYTES);
        let b32 = encode_base32(&s);
        assert_eq!(decode_base32(&b32).unwrap(), s);
        assert_eq!(
            otpauth_uri("DWCP", "ann smith", "ABC"),
            "otpauth://totp/DWCP:ann%20smith?secret=ABC&issuer=DWCP&algorithm=SHA1&digits=6&period=30"
        );
    }
}
