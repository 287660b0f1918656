//! The operator's backup key: 32 random bytes, kept in a file as 64 hex
//! digits, readable by its owner only. Backups name the key they were
//! sealed under by a key id (a hash of the key, which reveals nothing of
//! it), so a wrong key is told apart from a damaged file.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::BackupError;

/// A key backups are sealed under.
#[derive(Clone)]
pub struct BackupKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKey({})", self.id())
    }
}

impl BackupKey {
    /// A new random key.
    pub fn generate() -> Result<BackupKey, BackupError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| BackupError::Key(format!("no randomness: {e}")))?;
        Ok(BackupKey { bytes })
    }

    /// The key in `text`: 64 hex digits, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<BackupKey, BackupError> {
        let text = text.trim();
        let bad = || {
            BackupError::Key(format!(
                "a backup key is 64 hex digits (32 bytes; `dwcp backup key --out FILE` makes one), not {} characters{}",
                text.len(),
                if text.chars().all(|c| c.is_ascii_hexdigit()) {
                    ""
                } else {
                    " with non-hex ones"
                }
            ))
        };
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(BackupKey { bytes })
    }

    /// The key in the file at `path`, which only its owner may read or
    /// write: a key others can read is no key.
    pub fn load(path: &Path) -> Result<BackupKey, BackupError> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|e| BackupError::Key(format!("--key-file {shown}: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(BackupError::Key(format!(
                "--key-file {shown} has mode {mode:04o}: others may read it; allowed: readable by its owner only (chmod 600 {shown})"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| BackupError::Key(format!("--key-file {shown}: {e}")))?;
        BackupKey::parse(&text).map_err(|e| BackupError::Key(format!("--key-file {shown}: {e}")))
    }

    /// Writes the key to a new file at `path` (mode 0600); an existing
    /// file is never overwritten.
    pub fn save(&self, path: &Path) -> Result<(), BackupError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let shown = path.display();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| BackupError::Key(format!("{shown}: {e}")))?;
        file.write_all(format!("{}\n", self.hex()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| BackupError::Key(format!("{shown}: {e}")))
    }

    fn hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key's id: 16 hex digits of the sha256 of a label and the key.
    pub fn id(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"dwcp backup key id v1\0");
        hash.update(self.bytes);
        hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_save_and_load_only_when_private() {
        let key = BackupKey::generate().unwrap();
        let again = BackupKey::parse(&format!(" {}\n", key.hex())).unwrap();
        assert_eq!(again.id(), key.id());
        assert_ne!(BackupKey::generate().unwrap().id(), key.id());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.key");
        key.save(&path).unwrap();
        assert_eq!(BackupKey::load(&path).unwrap().id(), key.id());
        let e = key.save(&path).unwrap_err().to_string();
        assert!(e.contains("exists"), "never overwritten: {e}");

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = BackupKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn bad_keys_say_what_a_key_is() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65), &"é".repeat(32)] {
            let e = BackupKey::parse(bad).unwrap_err().to_string();
            assert!(e.contains("64 hex digits"), "{bad}: {e}");
        }
    }
}
