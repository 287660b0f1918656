//! The state's binary form: what a backup holds and what a
//! [`Command::Restore`](crate::Command::Restore) carries (as base64 text,
//! since the log is JSON and the state has maps keyed by tuples, which
//! JSON cannot key by).
//!
//! The form is postcard, which is compact and not self-describing: bytes
//! made by one version of DWCP's `State` are read by the same version. A
//! reader that cannot decode them says so; it never guesses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::State;

/// Why bytes are not a state.
#[derive(Debug, thiserror::Error)]
#[error("not a DWCP state of this version: {0}")]
pub struct SnapshotError(String);

/// The state as bytes.
pub fn to_bytes(state: &State) -> Vec<u8> {
    // A `State` is plain maps, strings and numbers: postcard cannot fail
    // on it (it fails only on types it does not support, which would be a
    // bug caught by every test that round-trips a state).
    postcard::to_allocvec(state).unwrap_or_default()
}

/// The state back from [`to_bytes`]'s bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<State, SnapshotError> {
    postcard::from_bytes(bytes).map_err(|e| SnapshotError(e.to_string()))
}

/// Serde for a state inside a command: base64 text of [`to_bytes`].
#[allow(clippy::borrowed_box)] // serde hands the field as it is declared
pub(crate) fn serialize<S: serde::Serializer>(state: &Box<State>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&STANDARD.encode(to_bytes(state)))
}

pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<State>, D::Error> {
    let text: String = serde::Deserialize::deserialize(d)?;
    let bytes = STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)?;
    from_bytes(&bytes)
        .map(Box::new)
        .map_err(serde::de::Error::custom)
}
