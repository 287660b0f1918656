//! Compiled code cached on disk, by artifact digest and engine
//! configuration, so that a restarted node does not recompile.
//!
//! File layout: `<dir>/<artifact sha256>-<engine fingerprint>.cwasm`, each
//! file the serialized module followed by the sha256 of those bytes. The
//! fingerprint hashes wasmtime's own compatibility hash (version, target,
//! and every setting that changes generated code), so a changed profile or
//! fuel setting never loads code compiled for another.
//!
//! Trust: loading compiled code means running it, so the directory must be
//! writable only by DWCP. The trailing digest catches torn or corrupted
//! files, which are removed and recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Module;

use crate::{Digest, SandboxError};

pub(crate) struct CodeCache {
    dir: PathBuf,
    fingerprint: String,
}

impl CodeCache {
    pub(crate) fn open(dir: &Path, engine: &wasmtime::Engine) -> Result<CodeCache, SandboxError> {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::Cache {
            path: dir.display().to_string(),
            source,
        })?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CodeCache {
            dir: dir.to_path_buf(),
            fingerprint: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.to_hex(), self.fingerprint))
    }

    /// The cached module for `digest`, or `None` when absent or unusable
    /// (an unusable file is removed).
    pub(crate) fn load(&self, engine: &wasmtime::Engine, digest: &Digest) -> Option<Module> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        let module = bytes
            .len()
            .checked_sub(32)
            .map(|n| bytes.split_at(n))
            .filter(|(code, sum)| Sha256::digest(code).as_slice() == *sum)
            .and_then(|(code, _)| {
                // SAFETY: `code` was produced by `Module::serialize` in
                // `store` below (its sha256 trailer matches, so it is the
                // exact bytes written), in a directory only DWCP writes, and
                // `deserialize` itself rejects code from an incompatible
                // wasmtime version or configuration.
                unsafe { Module::deserialize(engine, code) }.ok()
            });
        if module.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        module
    }

    /// Writes `module`'s code for `digest`, atomically (write, then rename).
    /// Best effort: a failure here costs a recompile later, nothing else.
    pub(crate) fn store(&self, digest: &Digest, module: &Module) {
        let Ok(mut code) = module.serialize() else {
            return;
        };
        let sum = Sha256::digest(&code);
        code.extend_from_slice(&sum);
        let path = self.path(digest);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(&code)?;
            f.sync_all()
        });
        if written.and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
