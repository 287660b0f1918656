//! What the node has used of what it can hold, for its report: its
//! uptime (the node's monotonic clock, which rates are measured on), its
//! engine's sandbox slots, the process's resident memory against its
//! memory limit, and the bytes in its data directory against its disk
//! limit. Read from `/proc` and the file system; a value that cannot be
//! read is reported as 0 (unknown), never guessed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use state::NodeUsage;

/// How often the data directory is walked again (walking it every report
/// would cost more than the report on a large store).
const DISK_EVERY: Duration = Duration::from_secs(5);

/// The limits a node is started with, and where its data is.
#[derive(Clone, Debug)]
pub struct Resources {
    /// The data directory whose bytes are reported.
    pub data_dir: PathBuf,
    /// The memory the node may use (`None`: the machine's, or its
    /// cgroup's limit when lower).
    pub memory_limit_bytes: Option<u64>,
    /// What the data directory may hold (`None`: what it holds plus its
    /// file system's free space).
    pub disk_limit_bytes: Option<u64>,
    /// Sandboxes the engine can hold at once.
    pub sandbox_slots: u64,
    /// Read `<data_dir>/test-faults.json` at every report (tests only;
    /// see `faults.rs`).
    pub test_faults: bool,
}

/// Reads [`NodeUsage`] for each report.
#[derive(Debug)]
pub struct UsageProbe {
    resources: Resources,
    started: Instant,
    /// The data directory's bytes and its limit, and when they were read.
    disk: Option<(Instant, u64, u64)>,
}

impl UsageProbe {
    /// A probe whose uptime counts from now.
    pub fn new(resources: Resources) -> UsageProbe {
        UsageProbe {
            resources,
            started: Instant::now(),
            disk: None,
        }
    }

    /// The faults injected for tests, when they are enabled.
    pub fn test_faults(&self) -> Option<super::faults::TestFaults> {
        self.resources
            .test_faults
            .then(|| super::faults::read(&self.resources.data_dir))
    }

    /// The usage now.
    pub fn read(&mut self) -> NodeUsage {
        let now = Instant::now();
        if self
            .disk
            .is_none_or(|(at, _, _)| now.duration_since(at) >= DISK_EVERY)
        {
            let dir = &self.resources.data_dir;
            let used = dir_bytes(dir);
            let limit = self
                .resources
                .disk_limit_bytes
                .or_else(|| free_bytes(dir).map(|free| free.saturating_add(used)))
                .unwrap_or(0);
            self.disk = Some((now, used, limit));
        }
        let (_, disk_bytes, disk_limit_bytes) = self.disk.unwrap_or((now, 0, 0));
        NodeUsage {
            uptime_ms: now.duration_since(self.started).as_millis() as u64,
            sandbox_slots: self.resources.sandbox_slots,
            memory_bytes: resident_bytes().unwrap_or(0),
            memory_limit_bytes: self
                .resources
                .memory_limit_bytes
                .or_else(machine_memory_bytes)
                .unwrap_or(0),
            disk_bytes,
            disk_limit_bytes,
        }
    }
}

/// The process's resident memory (`VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, "VmRSS:")
}

/// The machine's memory (`MemTotal`), or the cgroup's limit when lower.
pub fn machine_memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| kib_field(&m, "MemTotal:"));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// A `Name:   1234 kB` line's value, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The bytes the files under `dir` take on disk (their allocated blocks),
/// not following symbolic links; what cannot be read counts as 0.
pub fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total = total.saturating_add(meta.blocks().saturating_mul(512));
            }
        }
    }
    total
}

/// The bytes free for an unprivileged user on the file system of `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path that outlives the call, and
    // `stats` is a writable buffer of the struct's size; statvfs writes it
    // whole when it returns 0, and we read it only then.
    let rc = unsafe { libc::statvfs(c.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `stats`.
    let stats = unsafe { stats.assume_init() };
    // The fields' types differ between targets (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    let (blocks, block_bytes) = (stats.f_bavail as u64, stats.f_frsize as u64);
    Some(blocks.saturating_mul(block_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_is_counted_and_memory_read() {
        let dir = std::env::temp_dir().join(format!("dwcp-usage-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub").join("f"), vec![7u8; 256 * 1024]).unwrap();
        let used = dir_bytes(&dir);
        assert!(used >= 256 * 1024, "{used}");
        let mut probe = UsageProbe::new(Resources {
            data_dir: dir.clone(),
            memory_limit_bytes: Some(1 << 30),
            disk_limit_bytes: None,
            sandbox_slots: 10,
            test_faults: false,
        });
        let u = probe.read();
        assert_eq!((u.sandbox_slots, u.memory_limit_bytes), (10, 1 << 30));
        assert!(u.memory_bytes > 0 && u.disk_bytes == used);
        assert!(u.disk_limit_bytes > used, "free space counts in");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(kib_field("VmRSS:\t  2048 kB\n", "VmRSS:"), Some(2 << 20));
    }
}
