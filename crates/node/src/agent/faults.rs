//! Faults injected into a node for tests, `dwcp bench predict` and
//! `dwcp chaos` only: with the hidden `dwcp up --test-faults`, the agent
//! reads `<data-dir>/test-faults.json` at every report, e.g.
//! `{"request_delay_ms": 250, "memory_ballast_bytes": 536870912}`: the
//! gateway holds every request it serves `request_delay_ms` before running
//! it (a node that slows down, as a failing disk or a starved CPU would
//! make it), and the agent holds `memory_ballast_bytes` of resident memory
//! (written, so every page is real: memory pressure in the node's own
//! process, at most 4 GiB). Without the flag the file is never read. A
//! missing or unreadable file is no fault.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The file's name in the data directory.
pub const FAULTS_FILE: &str = "test-faults.json";

/// The faults in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestFaults {
    pub request_delay: Duration,
    /// Resident memory the agent holds on purpose.
    pub memory_ballast_bytes: u64,
}

/// The most ballast a file may ask for.
const MAX_BALLAST_BYTES: u64 = 4 << 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    request_delay_ms: u64,
    #[serde(default)]
    memory_ballast_bytes: u64,
}

/// The faults `data_dir`'s file asks for (none when it is missing or
/// does not parse).
pub fn read(data_dir: &Path) -> TestFaults {
    let Ok(text) = std::fs::read_to_string(data_dir.join(FAULTS_FILE)) else {
        return TestFaults::default();
    };
    match serde_json::from_str::<File>(&text) {
        Ok(f) => TestFaults {
            request_delay: Duration::from_millis(f.request_delay_ms.min(600_000)),
            memory_ballast_bytes: f.memory_ballast_bytes.min(MAX_BALLAST_BYTES),
        },
        Err(_) => TestFaults::default(),
    }
}

/// Memory held on purpose ([`TestFaults::memory_ballast_bytes`]).
#[derive(Default)]
pub struct Ballast(Vec<u8>);

impl Ballast {
    /// Holds `bytes` of written memory (all of it released at 0).
    pub fn hold(&mut self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        if bytes == self.0.len() {
            return;
        }
        if bytes == 0 {
            self.0 = Vec::new();
            return;
        }
        // Non-zero bytes: the kernel's shared zero page would not count.
        self.0.resize(bytes, 0xa5);
        self.0.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sets_the_delay_and_its_absence_clears_it() {
        let dir = std::env::temp_dir().join(format!("dwcp-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), TestFaults::default());
        std::fs::write(dir.join(FAULTS_FILE), r#"{"request_delay_ms": 250}"#).unwrap();
        assert_eq!(read(&dir).request_delay, Duration::from_millis(250));
        std::fs::write(dir.join(FAULTS_FILE), r#"{"memory_ballast_bytes": 4096}"#).unwrap();
        assert_eq!(read(&dir).memory_ballast_bytes, 4096);
        std::fs::write(dir.join(FAULTS_FILE), "{").unwrap();
        assert_eq!(read(&dir), TestFaults::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod ballast_tests {
    use super::*;

    #[test]
    fn ballast_grows_shrinks_and_lets_go() {
        let mut b = Ballast::default();
        b.hold(1 << 20);
        assert_eq!(b.0.len(), 1 << 20);
        b.hold(4096);
        assert_eq!(b.0.len(), 4096);
        b.hold(0);
        assert_eq!(b.0.len(), 0);
    }
}
