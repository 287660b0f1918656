//! Faults injected into a node for tests and `dwcp bench predict` only:
//! with the hidden `dwcp up --test-faults`, the agent reads
//! `<data-dir>/test-faults.json` at every report, e.g.
//! `{"request_delay_ms": 250}`, and the gateway holds every request it
//! serves that long before running it (a node that slows down, as a
//! failing disk or a starved CPU would make it). Without the flag the
//! file is never read. A missing or unreadable file is no fault.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The file's name in the data directory.
pub const FAULTS_FILE: &str = "test-faults.json";

/// The faults in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestFaults {
    pub request_delay: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    request_delay_ms: u64,
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
        },
        Err(_) => TestFaults::default(),
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
        std::fs::write(dir.join(FAULTS_FILE), "{").unwrap();
        assert_eq!(read(&dir), TestFaults::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
