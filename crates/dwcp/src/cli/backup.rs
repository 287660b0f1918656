//! `dwcp backup` (a consistent point of a cluster through its API, sealed
//! here under the operator's key: the key never reaches the node), `dwcp
//! backup key` (a new key file), `dwcp backup inspect` (what a backup file
//! is, and with the key whether it is whole) and `dwcp restore` (a new
//! cluster founded from a backup). The format, the sealing and the
//! restore's rules are `cluster::backup`'s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cluster::backup::{BackupKey, BackupPoint, BackupReader, Header, PendingFile, Restored};
use cluster::{DataDir, StartOptions};

use crate::cli::client::{self, ApiArgs, Client};

/// Back up a cluster: its state at one revision and every artifact its
/// versions name, sealed with AES-256-GCM under the key in --key-file.
///
/// The node gives a consistent point (one linearizable read: every write
/// acknowledged before the backup began is in it); this command fetches
/// the artifacts and seals the file here, so the key never leaves this
/// machine. In a planet, back up the global tier once (--tier global) and
/// each region's cell through one of its nodes. `dwcp up --backup-dir`
/// takes backups on a schedule instead. See docs/backup.md.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  dwcp backup key --out ~/.dwcp/backup.key\n  dwcp backup --out cluster.dwcpbak --key-file ~/.dwcp/backup.key\n  dwcp backup --tier global --out global.dwcpbak --key-file ~/.dwcp/backup.key\n  dwcp backup inspect cluster.dwcpbak --key-file ~/.dwcp/backup.key\n  dwcp restore cluster.dwcpbak --data-dir restored --key-file ~/.dwcp/backup.key"
)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    #[command(flatten)]
    take: TakeArgs,
}

#[derive(clap::Subcommand)]
enum BackupCommand {
    Key(KeyArgs),
    Inspect(InspectArgs),
}

#[derive(clap::Args)]
struct TakeArgs {
    /// The backup file to write (never overwritten).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The operator's key (64 hex digits, mode 0600; `dwcp backup key`).
    #[arg(long, value_name = "FILE", env = "DWCP_BACKUP_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// `cell`: the node's own group (a cluster, or a planet's region
    /// cell); `global`: the planet's global tier.
    #[arg(long, value_enum, default_value = "cell")]
    tier: TierArg,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TierArg {
    Cell,
    Global,
}

/// Make a new backup key (32 random bytes as hex) in a new file, mode 0600.
#[derive(clap::Args)]
struct KeyArgs {
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Show a backup's header (cluster, tier, revision, when, key id); with
/// --key-file, also read it whole and check every byte.
#[derive(clap::Args)]
struct InspectArgs {
    file: PathBuf,
    #[arg(long, value_name = "FILE", env = "DWCP_BACKUP_KEY_FILE")]
    key_file: Option<PathBuf>,
}

pub fn run(args: BackupArgs) -> Result<()> {
    match args.command {
        Some(BackupCommand::Key(k)) => {
            let key = BackupKey::generate()?;
            key.save(&k.out)?;
            println!("backup key {} written to {}", key.id(), k.out.display());
            Ok(())
        }
        Some(BackupCommand::Inspect(i)) => inspect(&i),
        None => {
            let t = args.take;
            let out = t
                .out
                .context("--out FILE is required: where to write the backup")?;
            let key = load_key(t.key_file.as_deref())?;
            let client = Client::new(&t.api)?;
            let global = matches!(t.tier, TierArg::Global);
            let taken = client::block_on(take(&client, global, &out, &key))?;
            println!("{}", taken.summary());
            Ok(())
        }
    }
}

fn load_key(path: Option<&Path>) -> Result<BackupKey> {
    let path = path.context(
        "--key-file FILE (or DWCP_BACKUP_KEY_FILE) is required: the key backups are sealed under (`dwcp backup key --out FILE` makes one)",
    )?;
    Ok(BackupKey::load(path)?)
}

/// What [`take`] wrote.
pub(crate) struct Taken {
    pub header: Header,
    pub log_index: u64,
    pub path: PathBuf,
    pub artifacts: usize,
    pub artifact_bytes: u64,
    pub file_bytes: u64,
    pub elapsed: Duration,
}

impl Taken {
    fn summary(&self) -> String {
        format!(
            "backup of cluster {} ({} {}) at revision {} (log index {}): {} artifacts ({}), sealed under key {} in {} ({}) in {:.1} s",
            self.header.cluster,
            self.header.tier.as_str(),
            self.header.region,
            self.header.revision,
            self.log_index,
            self.artifacts,
            mib(self.artifact_bytes),
            self.header.key_id,
            self.path.display(),
            mib(self.file_bytes),
            self.elapsed.as_secs_f64()
        )
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Takes a backup through `client`'s API into `out`, sealed under `key`.
pub(crate) async fn take(
    client: &Client,
    global: bool,
    out: &Path,
    key: &BackupKey,
) -> Result<Taken> {
    let started = Instant::now();
    let tier = if global { "global" } else { "cell" };
    let point: BackupPoint = client
        .download_json(&format!("/backup?tier={tier}"))
        .await
        .context("asking the node for a consistent point")?;
    let log_index = point.log_index;
    let artifact_bytes = point.artifacts.iter().map(|a| a.size_bytes).sum();
    let (mut pending, header) = PendingFile::create(out, key, &point)?;
    // A byte bar over the artifacts, on a terminal.
    let progress = crate::cli::progress::Progress::bytes("backup", artifact_bytes, false);
    while let Some(next) = pending.next_artifact() {
        let digest = next.digest.clone();
        let bytes = client
            .download(&format!("/blobs/{digest}/content"))
            .await
            .with_context(|| format!("fetching artifact {digest}"))?;
        pending.artifact(&bytes)?;
        progress.inc(bytes.len() as u64);
    }
    drop(progress);
    let path = pending.commit()?;
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Taken {
        header,
        log_index,
        path,
        artifacts: point.artifacts.len(),
        artifact_bytes,
        file_bytes,
        elapsed: started.elapsed(),
    })
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let open = || {
        std::fs::File::open(&args.file)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", args.file.display()))
    };
    let (header, _) = cluster::backup::read_header(&mut open()?)
        .with_context(|| format!("reading {}", args.file.display()))?;
    println!("{}", serde_json::to_string_pretty(&header)?);
    let Some(key_file) = &args.key_file else {
        eprintln!("(give --key-file to check the whole file)");
        return Ok(());
    };
    let key = BackupKey::load(key_file)?;
    let mut reader = BackupReader::open(open()?, &key)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let state = reader.state()?;
    let mut artifacts = 0;
    while reader.next_artifact()?.is_some() {
        artifacts += 1;
    }
    let manifest = reader.manifest().clone();
    reader.finish()?;
    println!(
        "intact: revision {}, log index {}, {} apps, {} registers, {artifacts} artifacts, written by dwcp {}",
        state.revision().0,
        manifest.log_index,
        state.apps().count(),
        state.register_count(),
        manifest.dwcp_version
    );
    Ok(())
}

/// Found a new cluster from a backup, in a new data directory.
///
/// The new cluster has its own identity (a new CA, cluster name, node
/// certificate and join token) and the backup's state and artifacts: its
/// tenants, apps, versions and deployments, API tokens, users and their
/// passwords (TOTP enrolments are cleared: they were sealed under the old
/// cluster's secret; users enrol again), SLOs, incidents, runbooks, audit
/// log and registers. The backed-up cluster's nodes are not members: start
/// this one with `dwcp up --data-dir DIR` (same --listen and --api) and
/// join new nodes with the join token printed here. The backup is read and
/// checked whole before anything is founded; a failure leaves no directory.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp restore cluster.dwcpbak --data-dir restored --key-file ~/.dwcp/backup.key\n  dwcp up --data-dir restored"
)]
pub struct RestoreArgs {
    /// The backup file.
    file: PathBuf,
    /// The new node's data directory: must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The key the backup is sealed under.
    #[arg(long, value_name = "FILE", env = "DWCP_BACKUP_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The new node's peer address (as `dwcp up --listen`).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:7071")]
    listen: std::net::SocketAddr,
    /// Where the new node's API will listen (as `dwcp up --api`).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:7070")]
    api: std::net::SocketAddr,
    /// The new node's region [default: the backup's].
    #[arg(long, value_name = "NAME")]
    region: Option<String>,
}

pub fn restore(args: RestoreArgs) -> Result<()> {
    // The new data directory is private, as `dwcp up` keeps it.
    crate::up::private_files();
    let key = load_key(args.key_file.as_deref())?;
    let started = Instant::now();
    let restored = restore_file(
        &args.file,
        &args.data_dir,
        &key,
        args.listen,
        args.api,
        args.region,
    )?;
    eprintln!(
        "dwcp: restored cluster {} (tier {}, region {}) at revision {} (log index {}), taken {} ms after the epoch, with {} artifacts, as new cluster {} at revision {} in {} ({:.1} s)",
        restored.header.cluster,
        restored.header.tier.as_str(),
        restored.header.region,
        restored.header.revision,
        restored.manifest.log_index,
        restored.header.taken_unix_ms,
        restored.artifacts,
        restored.cluster,
        restored.revision,
        args.data_dir.display(),
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "dwcp: start it with: dwcp up --data-dir {} --listen {} --api {}",
        args.data_dir.display(),
        args.listen,
        args.api
    );
    eprintln!("dwcp: the backup's API tokens work; users enrol in TOTP again");
    println!("join token: {}", restored.join_token);
    Ok(())
}

/// Restores `file` into a new data directory `dir`.
pub(crate) fn restore_file(
    file: &Path,
    dir: &Path,
    key: &BackupKey,
    listen: std::net::SocketAddr,
    api: std::net::SocketAddr,
    region: Option<String>,
) -> Result<Restored> {
    let input = std::fs::File::open(file)
        .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
        .with_context(|| format!("opening {}", file.display()))?;
    let reader =
        BackupReader::open(input, key).with_context(|| format!("reading {}", file.display()))?;
    let options = StartOptions {
        region: region.unwrap_or_else(|| reader.header().region.clone()),
        peer_address: Some(listen),
        api_address: api.to_string(),
        join: None,
        timing: replica::Timing::default(),
        artifact_check: None,
        voter: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let restored = runtime
        .block_on(cluster::backup::restore(
            &DataDir::new(dir),
            reader,
            options,
            "dwcp restore",
        ))
        .with_context(|| format!("restoring {} into {}", file.display(), dir.display()))?;
    Ok(restored)
}
