//! `dwcp up --backup-dir DIR --backup-every DUR`: this node backs up its
//! group (and, in a planet, the global tier) into DIR on a schedule,
//! sealed under `--backup-key-file`, keeping the newest `--backup-keep` of
//! each, and records each backup in the register
//! `cluster/backup/<node>/<tier>` (`GET /api/v1/backups`). When a backup is
//! due, which files retention removes and the names are decided by
//! `cluster::backup`'s pure functions; this loop lists, asks and acts.
//!
//! Every node given a directory backs up on its own (from a linearizable
//! read), so a cluster's backups do not depend on any one node's disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cluster::ClusterNode;
use cluster::backup::{self, BackupKey, ScheduledBackup, Tier};

/// How long to wait after a failed backup before trying again.
const RETRY: Duration = Duration::from_secs(10);

/// The schedule, from `dwcp up`'s flags.
pub struct Schedule {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
    pub key: BackupKey,
}

/// Checks the flags: a directory needs a key; the directory is made (0700).
pub fn schedule(
    dir: Option<&PathBuf>,
    every: Duration,
    keep: usize,
    key_file: Option<&PathBuf>,
) -> Result<Option<Schedule>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let key_file = key_file.context(
        "--backup-dir needs --backup-key-file FILE (or DWCP_BACKUP_KEY_FILE): the key backups are sealed under (`dwcp backup key --out FILE` makes one)",
    )?;
    if every < Duration::from_secs(1) {
        anyhow::bail!("--backup-every {every:?} is too short: at least 1s");
    }
    let key = BackupKey::load(key_file)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("--backup-dir {}", dir.display()))?;
    }
    Ok(Some(Schedule {
        dir: dir.clone(),
        every,
        keep,
        key,
    }))
}

/// Backs up on `schedule` until aborted.
pub async fn run(node: Arc<ClusterNode>, schedule: Schedule) {
    let every_ms = schedule.every.as_millis() as u64;
    loop {
        let newest = newest_of(&schedule, &node);
        let wait = backup::wait_ms(newest, every_ms, cluster::unix_now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let mut groups = vec![(node.clone(), own_tier(&node))];
        if let Some(global) = node.global() {
            groups.push((global.clone(), Tier::Global));
        }
        for (group, tier) in groups {
            match once(&node, group, tier, &schedule).await {
                Ok(record) => eprintln!(
                    "dwcp: backed up the {} at revision {} into {}",
                    tier.as_str(),
                    record.revision,
                    schedule.dir.join(&record.file).display()
                ),
                Err(e) => {
                    eprintln!(
                        "dwcp: the scheduled backup of the {} failed (will retry in {} s): {e:#}",
                        tier.as_str(),
                        RETRY.as_secs()
                    );
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        prune(&schedule);
    }
}

/// What this node's own group is.
fn own_tier(node: &ClusterNode) -> Tier {
    if node.global().is_some() {
        Tier::Cell
    } else {
        Tier::Cluster
    }
}

/// One backup of `group` into the directory, recorded in the store.
async fn once(
    node: &ClusterNode,
    group: Arc<ClusterNode>,
    tier: Tier,
    schedule: &Schedule,
) -> Result<ScheduledBackup> {
    let point = group.backup_point(tier).await?;
    let path = schedule.dir.join(backup::file_name(&point));
    let key = schedule.key.clone();
    let (revision, taken_unix_ms) = (point.revision, point.taken_unix_ms);
    let written = path.clone();
    tokio::task::spawn_blocking(move || backup::save(&group, &written, &key, &point))
        .await
        .context("the backup's writer stopped")??;
    let record = ScheduledBackup {
        node: node.name().to_string(),
        tier,
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        revision,
        taken_unix_ms,
        size_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        every_ms: schedule.every.as_millis() as u64,
        keep: schedule.keep,
    };
    node.write_in_cell(state::Command::Put {
        key: record.key(),
        value: serde_json::to_vec(&record)?,
    })
    .await?
    .result?;
    Ok(record)
}

/// The backups in the directory, as their names describe them.
fn listed(schedule: &Schedule) -> Vec<backup::BackupFile> {
    std::fs::read_dir(&schedule.dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| backup::parse_file_name(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

/// When this node's cluster was last backed up into the directory.
fn newest_of(schedule: &Schedule, node: &ClusterNode) -> Option<u64> {
    let cluster = &node.config().cluster;
    listed(schedule)
        .into_iter()
        .filter(|f| &f.cluster == cluster && f.tier == own_tier(node))
        .map(|f| f.taken_unix_ms)
        .max()
}

/// Removes what retention says to.
fn prune(schedule: &Schedule) {
    for old in backup::to_prune(&listed(schedule), schedule.keep) {
        let path = schedule.dir.join(&old.name);
        if let Err(e) = std::fs::remove_file(&path) {
            eprintln!("dwcp: removing the old backup {}: {e}", path.display());
        }
    }
}
