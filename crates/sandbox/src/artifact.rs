//! Artifacts: the immutable bytes of a version, named by their sha256 digest.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

/// A sha256 digest, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// Lowercase hex, as used in file names and the API.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
        }
        s
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The bytes of a workload, as uploaded: a WebAssembly binary or its text
/// format (WAT). The digest is over the bytes as given.
///
/// ```
/// let a = sandbox::Artifact::new(b"(module)".to_vec());
/// assert!(a.digest().to_string().starts_with("sha256:"));
/// ```
#[derive(Clone)]
pub struct Artifact {
    bytes: Arc<[u8]>,
    digest: Digest,
}

impl Artifact {
    /// Wraps `bytes`, computing their digest.
    pub fn new(bytes: Vec<u8>) -> Artifact {
        let digest = Digest::of(&bytes);
        Artifact {
            bytes: bytes.into(),
            digest,
        }
    }

    /// The artifact's content digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The artifact's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Artifact({}, {} bytes)", self.digest, self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_sha256_of_empty_input() {
        assert_eq!(
            Digest::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
