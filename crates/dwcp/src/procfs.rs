//! What Linux's `/proc` says about this machine and its processes: total
//! memory, a process's resident memory and memory maps.

use anyhow::{Context, Result};

/// The machine's memory (`MemTotal`), in bytes; 0 when unknown.
pub fn memory_total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| kib_field(&s, "MemTotal:"))
        .unwrap_or(0)
        * 1024
}

/// The resident memory (`VmRSS`) of process `pid` (`self` for this one),
/// in bytes.
pub fn rss_bytes(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = kib_field(&status, "VmRSS:").with_context(|| format!("no VmRSS in {path}"))?;
    Ok(kib * 1024)
}

/// Memory maps of process `pid` (`self` for this one); 0 when unknown.
pub fn count_maps(pid: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |s| s.lines().count())
}

/// A `/proc` file's contents, trimmed, or `unknown`.
pub fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The `key: N kB` figure of a `/proc` file's text.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_in_kib() {
        let text = "MemTotal:       24576000 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(kib_field(text, "MemTotal:"), Some(24_576_000));
        assert_eq!(kib_field(text, "VmRSS:"), Some(1024));
        assert_eq!(kib_field(text, "Nope:"), None);
        assert!(memory_total_bytes() > 0);
        assert!(rss_bytes("self").unwrap() > 0);
    }
}
