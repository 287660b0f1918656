//! Secrets sealed at rest: AES-256-GCM under the node's at-rest key
//! ([`crate::ControlPlane::at_rest_key`]), a random 96-bit nonce per
//! seal, and the secret's purpose and owner as associated data, so a
//! sealed value copied onto another user does not open. Format:
//! `v1:<nonce hex>:<ciphertext+tag hex>`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error("no randomness for a nonce: {0}")]
    Random(getrandom::Error),
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error(
        "the sealed secret does not open with this cluster's key (tampered, or sealed elsewhere)"
    )]
    Open,
}

/// Seals `secret` for `context` (e.g. `totp:ann`).
pub(crate) fn seal(key: &[u8; 32], context: &str, secret: &[u8]) -> Result<String, SealError> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(SealError::Random)?;
    let cipher = Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| SealError::Open)?;
    Ok(format!("v1:{}:{}", hex(&nonce), hex(&sealed)))
}

/// Opens what [`seal`] made for the same `context`.
pub(crate) fn open(key: &[u8; 32], context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
    let mut parts = sealed.split(':');
    let (Some("v1"), Some(nonce), Some(body), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SealError::Malformed);
    };
    let nonce = unhex(nonce)
        .filter(|n| n.len() == 12)
        .ok_or(SealError::Malformed)?;
    let body = unhex(body).ok_or(SealError::Malformed)?;
    Aes256Gcm::new(key.into())
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &body,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| SealError::Open)
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_key_and_context() {
        let key = [7u8; 32];
        let sealed = seal(&key, "totp:ann", b"secret bytes").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("secret"));
        assert_eq!(open(&key, "totp:ann", &sealed).unwrap(), b"secret bytes");
        assert_ne!(sealed, seal(&key, "totp:ann", b"secret bytes").unwrap());
        assert!(matches!(
            open(&key, "totp:bob", &sealed),
            Err(SealError::Open)
        ));
        assert!(matches!(
            open(&[8u8; 32], "totp:ann", &sealed),
            Err(SealError::Open)
        ));
        for bad in ["", "v2:00:00", "v1:zz:00", "v1:00:00", "v1:a:b:c"] {
            assert!(open(&key, "totp:ann", bad).is_err(), "{bad}");
        }
    }
}
