//! Scheduled backups, decided: the name of each file, when the next one
//! is due, and which old ones retention removes. Pure: `dwcp up
//! --backup-dir` lists the directory, asks, and acts.
//!
//! A scheduled backup is named
//! `<cluster>_<tier>_<region>_<taken unix ms>_r<revision>.dwcpbak`.
//! Retention keeps the newest `keep` backups of each cluster, tier and
//! region, and never touches a file whose name is not of that form.

use super::file::{BackupPoint, Tier};

/// The extension of a backup file.
const EXTENSION: &str = ".dwcpbak";

/// A scheduled backup, as its file name describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupFile {
    pub name: String,
    pub cluster: String,
    pub tier: Tier,
    pub region: String,
    pub taken_unix_ms: u64,
    pub revision: u64,
}

/// The file name of a scheduled backup of `point`.
pub fn file_name(point: &BackupPoint) -> String {
    format!(
        "{}_{}_{}_{}_r{}{EXTENSION}",
        point.cluster,
        point.tier.as_str(),
        point.region,
        point.taken_unix_ms,
        point.revision
    )
}

/// The backup a file name describes, if it is one of [`file_name`]'s.
pub fn parse_file_name(name: &str) -> Option<BackupFile> {
    let stem = name.strip_suffix(EXTENSION)?;
    let parts: Vec<&str> = stem.split('_').collect();
    let [cluster, tier, region, taken, revision] = parts.as_slice() else {
        return None;
    };
    let tier = match *tier {
        "cluster" => Tier::Cluster,
        "cell" => Tier::Cell,
        "global" => Tier::Global,
        _ => return None,
    };
    if cluster.is_empty() || region.is_empty() {
        return None;
    }
    Some(BackupFile {
        name: name.to_string(),
        cluster: cluster.to_string(),
        tier,
        region: region.to_string(),
        taken_unix_ms: taken.parse().ok()?,
        revision: revision.strip_prefix('r')?.parse().ok()?,
    })
}

/// The backups retention removes: all but the newest `keep` of each
/// cluster, tier and region (`keep` of 0 is taken as 1: the newest backup
/// is never removed).
pub fn to_prune(files: &[BackupFile], keep: usize) -> Vec<BackupFile> {
    let keep = keep.max(1);
    let mut sorted: Vec<&BackupFile> = files.iter().collect();
    // Newest first within each group.
    sorted.sort_by(|a, b| {
        (&a.cluster, a.tier.as_str(), &a.region)
            .cmp(&(&b.cluster, b.tier.as_str(), &b.region))
            .then(b.taken_unix_ms.cmp(&a.taken_unix_ms))
            .then(b.name.cmp(&a.name))
    });
    let mut pruned = Vec::new();
    let mut group: Option<(&str, Tier, &str)> = None;
    let mut kept = 0;
    for file in sorted {
        let this = (file.cluster.as_str(), file.tier, file.region.as_str());
        if group != Some(this) {
            group = Some(this);
            kept = 0;
        }
        if kept < keep {
            kept += 1;
        } else {
            pruned.push(file.clone());
        }
    }
    pruned
}

/// Registers recording each node's latest scheduled backup start with
/// this (a cluster's own records: `state::IDENTITY_REGISTERS`).
pub const RECORD_PREFIX: &str = "cluster/backup/";

/// A node's latest scheduled backup of one tier, as recorded in the
/// register `cluster/backup/<node>/<tier>` (JSON), so that every node's
/// API, and `dwcp certify`, can tell how recent the backups are.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduledBackup {
    pub node: String,
    pub tier: Tier,
    /// The file's name in the node's backup directory.
    pub file: String,
    pub revision: u64,
    pub taken_unix_ms: u64,
    pub size_bytes: u64,
    /// The schedule: one backup per this many ms, the newest `keep` kept.
    pub every_ms: u64,
    pub keep: usize,
}

impl ScheduledBackup {
    /// The register this record is kept in.
    pub fn key(&self) -> String {
        format!("{RECORD_PREFIX}{}/{}", self.node, self.tier.as_str())
    }
}

/// How long to wait before the next backup, given when the newest one
/// was taken (`None`: there is none yet, so at once).
pub fn wait_ms(newest_unix_ms: Option<u64>, every_ms: u64, now_unix_ms: u64) -> u64 {
    match newest_unix_ms {
        None => 0,
        Some(newest) => newest.saturating_add(every_ms).saturating_sub(now_unix_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tier: Tier, region: &str, taken: u64) -> BackupPoint {
        BackupPoint {
            cluster: "dwcp-1a2b3c4d".into(),
            tier,
            region: region.into(),
            revision: taken / 10,
            log_index: 1,
            taken_unix_ms: taken,
            state: vec![],
            artifacts: vec![],
        }
    }

    fn file(tier: Tier, region: &str, taken: u64) -> BackupFile {
        parse_file_name(&file_name(&header(tier, region, taken))).unwrap()
    }

    #[test]
    fn names_round_trip_and_strangers_are_not_backups() {
        let h = header(Tier::Cell, "eu-west", 1_700_000_000_000);
        let name = file_name(&h);
        assert_eq!(
            name,
            "dwcp-1a2b3c4d_cell_eu-west_1700000000000_r170000000000.dwcpbak"
        );
        let f = parse_file_name(&name).unwrap();
        assert_eq!((f.tier, f.revision), (Tier::Cell, 170_000_000_000));
        for stranger in [
            "notes.txt",
            "x.dwcpbak",
            "a_b_c_d_e.dwcpbak",
            "a_cell_r_12_3.dwcpbak",
            ".dwcp-1_cell_eu_1_r1.dwcpbak.123.partial",
        ] {
            assert_eq!(parse_file_name(stranger), None, "{stranger}");
        }
    }

    #[test]
    fn retention_keeps_the_newest_of_each_group() {
        let files = vec![
            file(Tier::Cell, "eu", 1000),
            file(Tier::Cell, "eu", 3000),
            file(Tier::Cell, "eu", 2000),
            file(Tier::Global, "eu", 1000),
            file(Tier::Cell, "us", 500),
        ];
        let pruned: Vec<u64> = to_prune(&files, 2)
            .iter()
            .map(|f| f.taken_unix_ms)
            .collect();
        assert_eq!(pruned, [1000], "only the oldest eu cell backup");
        assert_eq!(to_prune(&files, 0).len(), 2, "keep 0 keeps the newest");
        assert!(to_prune(&files, 10).is_empty());
    }

    #[test]
    fn the_next_backup_is_due_one_interval_after_the_newest() {
        assert_eq!(wait_ms(None, 60_000, 5), 0);
        assert_eq!(wait_ms(Some(1_000), 60_000, 31_000), 30_000);
        assert_eq!(wait_ms(Some(1_000), 60_000, 99_000), 0, "overdue");
    }
}
