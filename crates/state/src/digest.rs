//! The one form of every digest in DWCP: lowercase hex sha256. Pure, so
//! the state's checks, the blob store, the API's token hashes and the
//! cluster's PKI all agree on it.

use sha2::{Digest as _, Sha256};

/// Lowercase hex sha256 of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True for 64 lowercase hex digits: the form of every digest in DWCP.
pub fn is_sha256_hex(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
