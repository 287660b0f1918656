//! A backup file: what it holds and its layout.
//!
//! ```text
//! "DWCPBAK\n"                      8 bytes: what the file is
//! header length (u32, LE)
//! header (JSON, plain)             format, key id, nonce prefix, cluster,
//!                                  tier, region, revision, when taken
//! frames (sealed.rs), opening to:
//!   manifest length (u32, LE)
//!   manifest (JSON)                log index, dwcp version, the state's
//!                                  size and sha256, the artifacts' digests
//!                                  and sizes
//!   the state (state::snapshot)
//!   each artifact's bytes, in the manifest's order
//! ```
//!
//! The header can be read without the key (to list and prune backups) and
//! is authenticated by every frame, so no field of it can be changed
//! unnoticed. Everything else is sealed. A reader checks the state and
//! every artifact against the sha256 the manifest gives.

use std::collections::VecDeque;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sealed::{OpenReader, PREFIX_BYTES, SealWriter};
use super::{BackupError, BackupKey};
use state::State;

/// What every backup file starts with.
const MAGIC: &[u8; 8] = b"DWCPBAK\n";
/// The layout this code writes and reads.
pub const FORMAT: u32 = 1;
/// Largest header or manifest read (a manifest lists every artifact).
const MAX_JSON_BYTES: usize = 64 << 20;

/// Which replicated group a backup is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// A cluster outside a planet.
    Cluster,
    /// A region cell of a planet.
    Cell,
    /// A planet's global tier.
    Global,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Cluster => "cluster",
            Tier::Cell => "cell",
            Tier::Global => "global",
        }
    }
}

/// What anyone can read of a backup: enough to list and prune backups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    /// The id of the key it is sealed under ([`BackupKey::id`]).
    pub key_id: String,
    /// Hex of the frames' nonce prefix (random per file).
    pub nonce_prefix: String,
    /// The cluster's name (its CA's subject).
    pub cluster: String,
    pub tier: Tier,
    /// The node's region (the cell's, in a planet).
    pub region: String,
    /// The state's revision: every change up to it is in the backup.
    pub revision: u64,
    pub taken_unix_ms: u64,
}

/// One artifact a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactEntry {
    /// Lowercase hex sha256 of its bytes.
    pub digest: String,
    pub size_bytes: u64,
}

/// The sealed table of contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The Raft log index the state was read at (a linearizable read: the
    /// state holds every entry committed up to it, and maybe a few after).
    pub log_index: u64,
    /// The `dwcp` that wrote it: the state's binary form is this
    /// version's (see `state::snapshot`).
    pub dwcp_version: String,
    pub state_bytes: u64,
    pub state_sha256: String,
    pub artifacts: Vec<ArtifactEntry>,
}

/// A consistent point of one group's state, and what a backup of it
/// holds besides the artifacts' bytes. In JSON (`GET /api/v1/backup`)
/// the state is base64 text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPoint {
    pub cluster: String,
    pub tier: Tier,
    pub region: String,
    pub revision: u64,
    pub log_index: u64,
    pub taken_unix_ms: u64,
    /// The state in `state::snapshot`'s form.
    #[serde(with = "base64_text")]
    pub state: Vec<u8>,
    /// The artifacts the state's versions name, sorted by digest.
    pub artifacts: Vec<ArtifactEntry>,
}

/// Bytes as base64 text in JSON.
mod base64_text {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The additional data every frame authenticates: the file's start, up
/// to the end of the header.
fn header_aad(start: &[u8]) -> [u8; 32] {
    Sha256::digest(start).into()
}

/// Writes a backup of `point`: its header, manifest and state now, then
/// each artifact through [`BackupWriter::artifact`], in order.
pub struct BackupWriter<W: Write> {
    sealed: SealWriter<W>,
    expected: VecDeque<ArtifactEntry>,
}

impl<W: Write> BackupWriter<W> {
    pub fn create(
        mut out: W,
        key: &BackupKey,
        point: &BackupPoint,
    ) -> Result<(BackupWriter<W>, Header), BackupError> {
        let mut prefix = [0u8; PREFIX_BYTES];
        getrandom::fill(&mut prefix)
            .map_err(|e| BackupError::Seal(format!("no randomness: {e}")))?;
        let header = Header {
            format: FORMAT,
            key_id: key.id(),
            nonce_prefix: hex(&prefix),
            cluster: point.cluster.clone(),
            tier: point.tier,
            region: point.region.clone(),
            revision: point.revision,
            taken_unix_ms: point.taken_unix_ms,
        };
        let header_json = serde_json::to_vec(&header).expect("a header serializes");
        let mut start = MAGIC.to_vec();
        start.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
        start.extend_from_slice(&header_json);
        out.write_all(&start)
            .map_err(|e| BackupError::io("writing the backup", e))?;
        let mut sealed = SealWriter::new(out, key.bytes(), prefix, header_aad(&start));
        let manifest = Manifest {
            log_index: point.log_index,
            dwcp_version: env!("CARGO_PKG_VERSION").into(),
            state_bytes: point.state.len() as u64,
            state_sha256: hex(&Sha256::digest(&point.state)),
            artifacts: point.artifacts.clone(),
        };
        let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serializes");
        sealed.write(&(manifest_json.len() as u32).to_le_bytes())?;
        sealed.write(&manifest_json)?;
        sealed.write(&point.state)?;
        Ok((
            BackupWriter {
                sealed,
                expected: point.artifacts.iter().cloned().collect(),
            },
            header,
        ))
    }

    /// The next artifact's bytes, which must be the one the manifest lists
    /// next.
    pub fn artifact(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        let Some(next) = self.expected.pop_front() else {
            return Err(BackupError::Seal(
                "an artifact beyond those the manifest lists".into(),
            ));
        };
        let digest = hex(&Sha256::digest(bytes));
        if digest != next.digest || bytes.len() as u64 != next.size_bytes {
            return Err(BackupError::Seal(format!(
                "artifact {} changed while it was backed up: its bytes hash to {digest}",
                next.digest
            )));
        }
        self.sealed.write(bytes)
    }

    /// The digest of the artifact to write next, if any.
    pub fn next_artifact(&self) -> Option<&ArtifactEntry> {
        self.expected.front()
    }

    /// Seals the end; every listed artifact must have been written.
    pub fn finish(self) -> Result<W, BackupError> {
        if let Some(missing) = self.expected.front() {
            return Err(BackupError::Seal(format!(
                "artifact {} (and {} more) was never written",
                missing.digest,
                self.expected.len() - 1
            )));
        }
        self.sealed.finish()
    }
}

/// Reads the header of a backup, without its key.
pub fn read_header(input: &mut impl Read) -> Result<(Header, Vec<u8>), BackupError> {
    let foreign = |why: String| BackupError::Foreign(why);
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| foreign("it is shorter than a backup's first 8 bytes".into()))?;
    if &magic != MAGIC {
        return Err(foreign(
            "it does not start with a DWCP backup's mark (`DWCPBAK`); `dwcp backup` makes backups"
                .into(),
        ));
    }
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|_| BackupError::Damaged("truncated within its header".into()))?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_JSON_BYTES {
        return Err(BackupError::Damaged(format!(
            "its header claims {len} bytes (at most {MAX_JSON_BYTES})"
        )));
    }
    let mut json = vec![0u8; len];
    input
        .read_exact(&mut json)
        .map_err(|_| BackupError::Damaged("truncated within its header".into()))?;
    // The format first, so a newer layout is named as such rather than as
    // damage.
    let loose: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| BackupError::Damaged(format!("its header is not JSON: {e}")))?;
    match loose.get("format").and_then(serde_json::Value::as_u64) {
        Some(f) if f == u64::from(FORMAT) => {}
        Some(f) => {
            return Err(BackupError::Unsupported(format!(
                "it is in backup format {f}; this dwcp reads format {FORMAT}"
            )));
        }
        None => {
            return Err(BackupError::Damaged(
                "its header has no `format` number".into(),
            ));
        }
    }
    let header: Header = serde_json::from_value(loose)
        .map_err(|e| BackupError::Damaged(format!("its header: {e}")))?;
    let mut start = magic.to_vec();
    start.extend_from_slice(&(len as u32).to_le_bytes());
    start.extend_from_slice(&json);
    Ok((header, start))
}

/// Reads a backup: its manifest, then its state, then its artifacts one by
/// one, each checked; [`BackupReader::finish`] checks the end.
pub struct BackupReader<R: Read> {
    opened: OpenReader<R>,
    header: Header,
    manifest: Manifest,
    remaining: VecDeque<ArtifactEntry>,
    state_read: bool,
}

impl<R: Read> BackupReader<R> {
    /// Opens a backup with `key`: refused, naming why, when it is not a
    /// backup, is damaged, or is sealed under another key.
    pub fn open(mut input: R, key: &BackupKey) -> Result<BackupReader<R>, BackupError> {
        let (header, start) = read_header(&mut input)?;
        if header.key_id != key.id() {
            return Err(BackupError::WrongKey {
                backup: header.key_id.clone(),
                given: key.id(),
            });
        }
        let prefix = unhex::<PREFIX_BYTES>(&header.nonce_prefix).ok_or_else(|| {
            BackupError::Damaged("its header's nonce prefix is not 14 hex digits".into())
        })?;
        let mut opened = OpenReader::new(
            input,
            key.bytes(),
            prefix,
            header_aad(&start),
            start.len() as u64,
        );
        let mut len = [0u8; 4];
        opened.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_JSON_BYTES {
            return Err(BackupError::Damaged(format!(
                "its manifest claims {len} bytes (at most {MAX_JSON_BYTES})"
            )));
        }
        let mut json = vec![0u8; len];
        opened.read_exact(&mut json)?;
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|e| BackupError::Damaged(format!("its manifest: {e}")))?;
        Ok(BackupReader {
            opened,
            remaining: manifest.artifacts.iter().cloned().collect(),
            header,
            manifest,
            state_read: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The state, checked against the manifest's sha256. Read it first.
    pub fn state(&mut self) -> Result<State, BackupError> {
        if self.state_read {
            return Err(BackupError::Seal("the state was read already".into()));
        }
        let size = usize::try_from(self.manifest.state_bytes)
            .map_err(|_| BackupError::Damaged("its state's size does not fit in memory".into()))?;
        let mut bytes = vec![0u8; size];
        self.opened.read_exact(&mut bytes)?;
        self.state_read = true;
        let digest = hex(&Sha256::digest(&bytes));
        if digest != self.manifest.state_sha256 {
            return Err(BackupError::Damaged(format!(
                "its state hashes to {digest}, not the manifest's {}",
                self.manifest.state_sha256
            )));
        }
        state::snapshot::from_bytes(&bytes).map_err(|e| {
            BackupError::Unsupported(format!(
                "its state was written by dwcp {} and this dwcp {} cannot read it: {e}",
                self.manifest.dwcp_version,
                env!("CARGO_PKG_VERSION")
            ))
        })
    }

    /// The next artifact and its bytes (checked against its digest), or
    /// `None` after the last.
    pub fn next_artifact(&mut self) -> Result<Option<(ArtifactEntry, Vec<u8>)>, BackupError> {
        if !self.state_read {
            return Err(BackupError::Seal("read the state first".into()));
        }
        let Some(entry) = self.remaining.pop_front() else {
            return Ok(None);
        };
        let size = usize::try_from(entry.size_bytes).map_err(|_| {
            BackupError::Damaged("an artifact's size does not fit in memory".into())
        })?;
        let mut bytes = vec![0u8; size];
        self.opened.read_exact(&mut bytes)?;
        let digest = hex(&Sha256::digest(&bytes));
        if digest != entry.digest {
            return Err(BackupError::Damaged(format!(
                "artifact {} hashes to {digest}",
                entry.digest
            )));
        }
        Ok(Some((entry, bytes)))
    }

    /// Checks that everything was read and the file ends where it should.
    pub fn finish(self) -> Result<(), BackupError> {
        if !self.state_read || !self.remaining.is_empty() {
            return Err(BackupError::Seal(format!(
                "{} artifacts were not read",
                self.remaining.len()
            )));
        }
        self.opened.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(artifacts: &[&[u8]]) -> BackupPoint {
        let mut state = State::default();
        state
            .apply(&state::Command::Put {
                key: "k".into(),
                value: b"v".to_vec(),
            })
            .unwrap();
        BackupPoint {
            cluster: "dwcp-test".into(),
            tier: Tier::Cluster,
            region: "local".into(),
            revision: state.revision().0,
            log_index: 7,
            taken_unix_ms: 1_700_000_000_000,
            state: state::snapshot::to_bytes(&state),
            artifacts: artifacts
                .iter()
                .map(|a| ArtifactEntry {
                    digest: hex(&Sha256::digest(a)),
                    size_bytes: a.len() as u64,
                })
                .collect(),
        }
    }

    fn write(key: &BackupKey, artifacts: &[&[u8]]) -> Vec<u8> {
        let p = point(artifacts);
        let (mut w, header) = BackupWriter::create(Vec::new(), key, &p).unwrap();
        assert_eq!(header.revision, 1);
        for a in artifacts {
            w.artifact(a).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8], key: &BackupKey) -> Result<(State, Vec<Vec<u8>>), BackupError> {
        let mut r = BackupReader::open(bytes, key)?;
        let state = r.state()?;
        let mut artifacts = Vec::new();
        while let Some((_, a)) = r.next_artifact()? {
            artifacts.push(a);
        }
        r.finish()?;
        Ok((state, artifacts))
    }

    #[test]
    fn a_backup_reads_back_whole() {
        let key = BackupKey::generate().unwrap();
        let big = vec![42u8; 3 << 20];
        let bytes = write(&key, &[b"one", &big]);
        let (state, artifacts) = read_all(&bytes, &key).unwrap();
        assert_eq!(state.register("k"), Some(&b"v"[..]));
        assert_eq!(artifacts, vec![b"one".to_vec(), big]);
        let (header, _) = read_header(&mut &bytes[..]).unwrap();
        assert_eq!(
            (header.tier, header.cluster.as_str()),
            (Tier::Cluster, "dwcp-test")
        );
    }

    #[test]
    fn foreign_damaged_and_wrong_key_backups_are_refused_naming_why() {
        let key = BackupKey::generate().unwrap();
        let bytes = write(&key, &[b"one"]);
        let refused = |b: &[u8], k: &BackupKey| read_all(b, k).unwrap_err();

        let e = refused(b"PK\x03\x04 a zip file", &key);
        assert!(matches!(e, BackupError::Foreign(_)), "{e}");
        assert!(e.to_string().contains("not a DWCP backup"), "{e}");

        let other = BackupKey::generate().unwrap();
        let e = refused(&bytes, &other);
        assert!(matches!(e, BackupError::WrongKey { .. }), "{e}");
        assert!(e.to_string().contains(&key.id()), "{e}");

        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        let e = refused(&flipped, &key);
        assert!(matches!(e, BackupError::Damaged(_)), "{e}");

        // The header is authenticated: a changed revision is damage.
        // (Searched in the bytes: the header's binary length comes first.)
        let at = bytes
            .windows(12)
            .position(|w| w == b"\"revision\":1")
            .unwrap()
            + "\"revision\":".len();
        let mut edited = bytes.clone();
        edited[at] = b'9';
        let e = refused(&edited, &key);
        assert!(e.to_string().contains("fails authentication"), "{e}");

        let newer = bytes
            .windows(10)
            .position(|w| w == b"\"format\":1")
            .unwrap();
        let mut future = bytes.clone();
        future[newer + 9] = b'2';
        let e = refused(&future, &key);
        assert!(matches!(e, BackupError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("format 2"), "{e}");

        let e = refused(&bytes[..bytes.len() / 2], &key);
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn the_writer_refuses_artifacts_that_do_not_match_the_manifest() {
        let key = BackupKey::generate().unwrap();
        let p = point(&[b"one"]);
        let (mut w, _) = BackupWriter::create(Vec::new(), &key, &p).unwrap();
        assert!(
            w.artifact(b"two")
                .unwrap_err()
                .to_string()
                .contains("changed")
        );
        let (w, _) = BackupWriter::create(Vec::new(), &key, &p).unwrap();
        assert!(
            w.finish()
                .unwrap_err()
                .to_string()
                .contains("never written")
        );
    }
}
