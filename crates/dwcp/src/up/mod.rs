//! `dwcp up`: the one place a node is wired together — the replicated
//! store and its peer port (`cluster`), the HTTP API (`ops`), the
//! controllers (`controllers`), the node agent and the gateway (`node`),
//! and, with `--topology`, its place in a planet (`place.rs`) — run until
//! interrupted. It decides nothing itself: it checks flags, starts the
//! parts and hands each what it needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use cluster::{ClusterNode, DataDir, JoinToken, StartOptions, Started};
use ops::slo::{Clock, ManualClock};
use replica::Timing;
use serde_json::Value;

mod backups;
mod place;

/// Run a DWCP node: the replicated store and the HTTP API.
///
/// The first `dwcp up` creates a cluster in ./dwcp-data and prints, once,
/// the admin token for the API and a join token for more nodes. A restart
/// resumes from the data directory. With --join, a new node joins the
/// cluster of the member at ADDR.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  dwcp up                                       # a one-node cluster in ./dwcp-data\n  \
  export DWCP_TOKEN=dwcp-admin.…                # the admin token it printed\n  \
  dwcp up --data-dir n2 --listen 127.0.0.2:7071 --api 127.0.0.2:7070 \\\n         \
  --gateway 127.0.0.2:8080 --join 127.0.0.1:7071 --token dwcp-join.…  # a second node\n  \
  dwcp cluster status\n  \
  dwcp up --backup-dir backups --backup-every 1h --backup-key-file backup.key\n  \
  dwcp up --topology planet.toml --node a-1 --global-listen 10.0.1.1:7072 …  # a planet: docs/planet.md")]
pub struct UpArgs {
    /// Where this node keeps its store, keys and artifacts.
    #[arg(
        long,
        value_name = "DIR",
        env = "DWCP_DATA_DIR",
        default_value = "dwcp-data"
    )]
    data_dir: PathBuf,
    /// The peer address other nodes reach this one at (a new node only;
    /// default 127.0.0.1:7071).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// Where the HTTP API listens.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:7070")]
    api: SocketAddr,
    /// Where the gateway serves the deployed apps over HTTP. By default on
    /// another loopback address than the API's (127.0.2.N for node N in
    /// the README's examples, apart from the 127.0.0.N the nodes' APIs
    /// use): a browser shares a host's cookies between its ports, so apps'
    /// pages must not share the dashboard's host (in production: separate
    /// host names, docs/security.md).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.2.1:8080")]
    gateway: SocketAddr,
    /// How long the gateway keeps a client connection with no request in
    /// flight and no byte either way (an idle keep-alive client, parked
    /// or not) before closing it; at least 1s.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_idle_timeout)]
    gateway_idle_timeout: std::time::Duration,
    /// The region of a new node (default `local`; with --topology, the
    /// region of --node).
    #[arg(long, value_name = "NAME")]
    region: Option<String>,
    /// Join the cluster of the member whose peer address this is.
    #[arg(long, value_name = "ADDR", requires = "token")]
    join: Option<String>,
    /// A join token: printed by the first node, or made by `dwcp cluster token`.
    #[arg(long, value_name = "TOKEN", requires = "join", hide_env_values = true)]
    token: Option<String>,
    /// How often the leader sends heartbeats.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = crate::units::parse_duration)]
    heartbeat: std::time::Duration,
    /// A follower that hears no leader for a random time between this and
    /// twice this starts an election; failover takes about 2-3 times it.
    /// Raise it (with --heartbeat) when nodes are far apart.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = crate::units::parse_duration)]
    election_timeout: std::time::Duration,
    /// How this node lays out sandbox memory: `fast` (each sandbox
    /// reserves 4 GiB of address space, compiled code needs no bounds
    /// checks; thousands per node) or `dense` (1 MiB slots, bounds checks,
    /// kept-alive sandboxes sharing stores in groups of 256; a million per
    /// node). Versions served by a dense node must ask for at most 1 MiB
    /// of memory (`dwcp deploy --memory 1MiB`).
    #[arg(long, value_enum, default_value_t = ProfileArg::Fast)]
    profile: ProfileArg,
    /// Most sandboxes alive at once on this node — the capacity the
    /// scheduler places against [default: 1000 with `fast`, 100000 with
    /// `dense`]. The node refuses to start when its memory (at least
    /// 8 KiB per live sandbox) or address space cannot hold them.
    #[arg(long, value_name = "N")]
    sandboxes: Option<u32>,
    /// With `--profile dense`: the memory slot of each sandbox, the most
    /// memory a version served here may ask for [default: 1MiB]. A slot
    /// as large as the apps' memory is one memory map for the whole pool;
    /// a larger one costs two maps per sandbox, and Linux's default
    /// `vm.max_map_count` (65,530) then caps the node near 30,000
    /// sandboxes: a node for a million one-page apps uses `64KiB`.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    slot_memory: Option<u64>,
    /// Back up this node's group (and a planet's global tier) into this
    /// directory on a schedule, sealed under --backup-key-file.
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// How often a scheduled backup is taken.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::units::parse_duration)]
    backup_every: std::time::Duration,
    /// How many scheduled backups of each group are kept (the newest).
    #[arg(long, value_name = "N", default_value_t = 24)]
    backup_keep: usize,
    /// The key scheduled backups are sealed under (`dwcp backup key`).
    #[arg(long, value_name = "FILE", env = "DWCP_BACKUP_KEY_FILE")]
    backup_key_file: Option<PathBuf>,
    /// How the node's own log lines look on stderr: `text` for people,
    /// `json` for collectors (one object a line, with `ts`, `level`,
    /// `node` and the component; the access log's with the request's
    /// fields). With `json`, the apps' log lines also go to stdout as
    /// JSON lines.
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "text")]
    log_format: LogFormatArg,
    /// Also append the apps' log lines (guests' stderr, their non-HTTP
    /// stdout, why requests failed) to FILE, one JSON object a line with
    /// Loki-friendly labels (node, tenant, app, version, stream).
    #[arg(long, value_name = "FILE")]
    app_log_file: Option<PathBuf>,
    #[command(flatten)]
    planet: place::PlanetArgs,
    /// Lets SLO notifications reach HOST (a name or an address, as written
    /// in webhook URLs) even though it is, or resolves to, a loopback,
    /// private or link-local address: without it such targets are refused
    /// (an Alertmanager on 127.0.0.1:9093 needs `--allow-webhook-host
    /// 127.0.0.1`). Repeat for more hosts; give every node the same list.
    #[arg(long, value_name = "HOST")]
    allow_webhook_host: Vec<String>,
    /// Tests only, hidden: the SLO evaluator's clock starts at the wall
    /// clock's time and moves only when an admin posts
    /// `{"advance_ms": N}` to `/api/v1/test/clock`, which also runs one
    /// evaluation round (there is no round on a timer). Incident steps
    /// are timed on the same clock.
    #[arg(long, hide = true)]
    manual_clock: bool,
    /// The memory this node may use, e.g. 8GiB: the autopilot predicts it
    /// running out. Default: the machine's (or its cgroup's limit).
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    memory_limit: Option<u64>,
    /// What the data directory may hold, e.g. 100GiB: the autopilot
    /// predicts it filling. Default: what it holds plus the free space of
    /// its file system.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    disk_limit: Option<u64>,
    /// How often the autopilot samples the cluster's signals and, on the
    /// leader, detects anomalies, predicts failures and ranks causes
    /// (docs/autopilot.md).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::units::parse_duration)]
    autopilot_every: std::time::Duration,
    /// Tests only, hidden: read `<data-dir>/test-faults.json` at every
    /// report (e.g. `{"request_delay_ms": 250}`: the gateway holds every
    /// request that long), to inject a slowing node.
    #[arg(long, hide = true)]
    test_faults: bool,
    /// The key file that seals this node's keys at rest (its TLS key, the
    /// CA key on the founder, the cluster secret): 64 hex digits, mode
    /// 0600, kept apart from the data directory and its backups. Default:
    /// DIR.key beside --data-dir, made (with a warning) on a first start.
    #[arg(long, value_name = "FILE", env = "DWCP_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Seal this node's keys anew under a new key written to the key file
    /// (the old one is kept as FILE.old until every file is sealed anew),
    /// then start as usual.
    #[arg(long)]
    rotate_keys: bool,
    /// Serve the HTTP API over TLS 1.3, with this node's certificate from
    /// the cluster CA (it names the peer and API IPs; clients trust
    /// DATA-DIR/tls/ca.pem with --ca-file) unless --api-cert and --api-key
    /// give another.
    #[arg(long)]
    api_tls: bool,
    /// With --api-tls: the API's certificate chain (PEM) instead of the
    /// node's own.
    #[arg(long, value_name = "FILE", requires_all = ["api_tls", "api_key"])]
    api_cert: Option<PathBuf>,
    /// With --api-cert: its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "api_cert")]
    api_key: Option<PathBuf>,
    /// Tests only, hidden: how long the node certificates this node signs
    /// are valid (default 30 days; each node renews its own when a third
    /// is left), so a test sees renewals within a minute.
    #[arg(long, hide = true, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    cert_lifetime: Option<std::time::Duration>,
    /// Tests only, hidden: lowers this process's open-file limit
    /// (RLIMIT_NOFILE) to N before anything is opened, so a test can run
    /// a node out of file descriptors with a modest number of sockets.
    /// Every server's connection cap follows from the limit.
    #[arg(long, hide = true, value_name = "N")]
    max_open_files: Option<u64>,
}

/// The memory layout of a node's sandboxes (`--profile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    Fast,
    Dense,
}

impl From<ProfileArg> for sandbox::Profile {
    fn from(p: ProfileArg) -> sandbox::Profile {
        match p {
            ProfileArg::Fast => sandbox::Profile::Fast,
            ProfileArg::Dense => sandbox::Profile::Dense,
        }
    }
}

/// The sandbox engine's configuration from `--profile` and `--sandboxes`,
/// refused when this machine's memory or address space cannot hold that
/// many live sandboxes.
fn engine_config(args: &UpArgs) -> Result<sandbox::WasmConfig> {
    let mut config = sandbox::WasmConfig::for_profile(args.profile.into());
    if let Some(slot) = args.slot_memory {
        anyhow::ensure!(
            args.profile == ProfileArg::Dense,
            "--slot-memory applies to --profile dense (a fast slot is always 4 GiB)"
        );
        config.slot_memory = slot;
    }
    if let Some(n) = args.sandboxes {
        anyhow::ensure!(n > 0, "--sandboxes 0: a node must hold at least 1 sandbox");
        config.max_live = n;
    }
    config.cache_dir = Some(args.data_dir.join("code"));
    let memory = match crate::procfs::memory_total_bytes() {
        // Unknown (no /proc): only the address space is checked.
        0 => u64::MAX,
        m => m,
    };
    config.check_room("--sandboxes", memory)?;
    Ok(config)
}

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormatArg {
    Text,
    Json,
}

/// `--gateway-idle-timeout`: a duration of at least a second.
fn parse_idle_timeout(s: &str) -> Result<std::time::Duration, String> {
    let idle = crate::units::parse_duration(s)?;
    if idle < std::time::Duration::from_secs(1) {
        return Err(format!("`{s}` is shorter than the least allowed, 1s"));
    }
    Ok(idle)
}

pub fn run(args: UpArgs) -> ExitCode {
    private_files();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// Everything a node writes — its store, keys, certificates, artifacts,
/// scheduled backups — is its user's alone: files 0600, directories 0700
/// (`dwcp certify`'s `security.data_dir.modes`; the first full certify run
/// found the store, the certificates and the blobs readable by everyone
/// under the usual umask 022).
pub(crate) fn private_files() {
    // SAFETY: umask only sets this process's file-mode creation mask; it
    // cannot fail and reads or writes no memory of ours.
    unsafe {
        libc::umask(0o077);
    }
}

/// The API's TLS settings: the operator's certificate and key, or the
/// node's own.
fn api_tls(node: &ClusterNode, args: &UpArgs) -> Result<cluster::serving::ServerTls> {
    match (&args.api_cert, &args.api_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf, flag: &str| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("{flag} {}: cannot read it", path.display()))
            };
            cluster::tls::api_server_config(&read(cert, "--api-cert")?, &read(key, "--api-key")?)
                .context("--api-cert/--api-key")
        }
        _ => node.api_tls().context("--api-tls"),
    }
}

/// The key file of `--key-file`, or DIR.key beside the data directory.
fn key_file_path(args: &UpArgs) -> PathBuf {
    args.key_file.clone().unwrap_or_else(|| {
        let mut name = args.data_dir.as_os_str().to_os_string();
        name.push(".key");
        PathBuf::from(name)
    })
}

/// Unlocks the data directory's sealed keys: the key file when it exists;
/// a new one when it does not and nothing is sealed yet (a new node, or a
/// data directory from before sealing, whose plain keys are sealed now);
/// a clear error when files are sealed and the key file is missing. With
/// `--rotate-keys`, seals everything anew under a new key first.
fn unlock(args: &UpArgs) -> Result<cluster::sealed::KeyRing> {
    use cluster::sealed::KeyRing;
    let path = key_file_path(args);
    let dirs = [args.data_dir.clone(), args.data_dir.join("global")];
    let mut keys = if path.exists() {
        KeyRing::open(&path)?
    } else if let Some(sealed) = dirs.iter().find(|d| DataDir::new(d).has_sealed_files()) {
        anyhow::bail!(
            "the keys in {} are sealed, and the key file {} does not exist: start with --key-file (or DWCP_KEY_FILE) naming the key they were sealed with",
            sealed.display(),
            path.display()
        );
    } else {
        let keys = KeyRing::create(&path)?;
        eprintln!(
            "dwcp: made a new key file {} (mode 0600): it seals this node's keys in {}; keep it apart from copies of that directory, or give --key-file",
            path.display(),
            args.data_dir.display()
        );
        keys
    };
    if args.rotate_keys {
        keys.rotate()?;
        for dir in dirs.iter().filter(|d| d.join("node.json").exists()) {
            let mut sealed = DataDir::sealed(dir, keys.clone());
            sealed
                .reseal()
                .with_context(|| format!("--rotate-keys: sealing {} anew", dir.display()))?;
        }
        keys.finish_rotation()?;
        eprintln!(
            "dwcp: sealed this node's keys anew under the new key in {}",
            path.display()
        );
    }
    Ok(keys)
}

fn serve(args: UpArgs) -> Result<()> {
    cluster::node_log::set_format(match args.log_format {
        LogFormatArg::Text => cluster::node_log::LogFormat::Text,
        LogFormatArg::Json => cluster::node_log::LogFormat::Json,
    });
    let app_log_file = match &args.app_log_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--app-log-file {}: cannot open", path.display()))?,
        ),
        None => None,
    };
    if let Some(lifetime) = args.cert_lifetime {
        cluster::tls::set_node_cert_lifetime(lifetime);
    }
    let place = place::place(&args.planet, args.region.as_deref())?;
    let global_join = match &place {
        Some(place) => place::preflight(&args.planet, place, &args.data_dir)?,
        None => None,
    };
    let region = match &place {
        Some(place) => place.region.name.to_string(),
        None => args.region.clone().unwrap_or_else(|| "local".into()),
    };
    let schedule = backups::schedule(
        args.backup_dir.as_ref(),
        args.backup_every,
        args.backup_keep,
        args.backup_key_file.as_ref(),
    )?;
    let join = match (&args.join, &args.token) {
        (Some(addr), Some(token)) => {
            Some((addr.clone(), JoinToken::parse(token).context("--token")?))
        }
        _ => None,
    };
    let engine_config = engine_config(&args)?;
    // Every client connection the gateway holds is a file descriptor (a
    // test lowers the limit instead, with --max-open-files). Before any
    // socket is opened: every server's connection cap follows from it.
    match args.max_open_files {
        Some(files) => {
            crate::fd_limit::lower_to(files).context("--max-open-files")?;
        }
        None => {
            crate::fd_limit::raise_to_hard();
        }
    }
    let keys = unlock(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // The dev build (tests, CI) keeps every future's locals on the
        // stack unoptimised: an API write's future (an audited command)
        // outgrew tokio's 2 MiB worker stacks. 8 MiB is a thread's usual.
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // Bind the API first: a busy port should fail before a cluster is made.
        let api = std::net::TcpListener::bind(args.api)
            .with_context(|| format!("--api {}: cannot listen", args.api))?;
        api.set_nonblocking(true)?;
        let api = tokio::net::TcpListener::from_std(api)?;
        let ingress = std::net::TcpListener::bind(args.gateway)
            .with_context(|| format!("--gateway {}: cannot listen", args.gateway))?;
        ingress.set_nonblocking(true)?;
        let ingress = tokio::net::TcpListener::from_std(ingress)?;
        let dir = DataDir::sealed(&args.data_dir, keys.clone());
        let engine = Arc::new(
            sandbox::WasmEngine::new(engine_config).context("starting the sandbox engine")?,
        );
        let capacity = engine.config().max_live;
        // Admission: an upload must prepare as a wasm template (its
        // compiled code is cached, so the agent's preparation is a hit) or
        // a wasi:http component, or
        // be a static x86-64 Linux program for the microvm tier (checked
        // without KVM: the node taking the upload need not run microVMs).
        let checker = engine.clone();
        // The upload is checked for validity, not a version's limits (its
        // version is made later): the engine's slot bounds the memory.
        let defaults = sandbox::Limits::default();
        let check_limits = node::agent::fitting_limits(
            engine.config(),
            &sandbox::Limits {
                memory_bytes: defaults.memory_bytes.min(engine.config().slot_memory),
                ..defaults
            },
        );
        let artifact_check: cluster::ArtifactCheck = Arc::new(move |bytes: &[u8]| {
            use sandbox::Engine;
            if sandbox::microvm::is_elf(bytes) {
                return sandbox::microvm::check_artifact(bytes).map_err(|e| e.to_string());
            }
            // A component must be a wasi:http app (detected from the bytes).
            if sandbox::wasm::is_component_artifact(bytes) {
                return checker
                    .prepare_http(&sandbox::Artifact::new(bytes.to_vec()), check_limits.clone())
                    .map(drop)
                    .map_err(|e| e.to_string());
            }
            checker
                .prepare(&sandbox::Artifact::new(bytes.to_vec()), check_limits.clone())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let options = StartOptions {
            region,
            peer_address: args.listen,
            api_address: args.api.to_string(),
            join,
            timing: timing(&args)?,
            artifact_check: Some(artifact_check),
            voter: true,
        };
        let global_timing = place.as_ref().map(|p| place::timing(&options.timing, p));
        let (node, started) = ClusterNode::start(&dir, options)
            .await
            .with_context(|| format!("starting the node in {}", args.data_dir.display()))?;
        cluster::node_log::set_node(node.name().as_str());
        if let Some(file) = app_log_file {
            node.app_log().ship_to(Box::new(file));
        }
        if args.log_format == LogFormatArg::Json {
            node.app_log().ship_to(Box::new(std::io::stdout()));
        }
        announce(&node, &started, &args);
        eprintln!(
            "dwcp: sandboxes: `{}` profile, room for {capacity} live sandboxes (the capacity the scheduler places against)",
            engine.config().profile.as_str()
        );
        let mut planet_tasks = Vec::new();
        if let (Some(place), Some(timing)) = (&place, global_timing) {
            let (global, joined) = place::start(
                place,
                global_join,
                args.planet.global_listen,
                &args.data_dir,
                &args.api.to_string(),
                timing,
                keys.clone(),
            )
            .await?;
            place::announce(&global, &joined, place);
            let (member, gossiping) = place::start_gossip(&global, place).await?;
            node.set_planet(cluster::Planet {
                global: global.clone(),
                gossip: member,
                topology: place.topology.clone(),
                model: place.model.clone(),
            })?;
            planet_tasks.push(gossiping);
            planet_tasks.push(tokio::spawn(advertise(
                global.clone(),
                args.api.to_string(),
                args.gateway.to_string(),
                capacity,
            )));
            planet_tasks.push(tokio::spawn(controllers::cell_report::run(node.clone())));
            planet_tasks.push(tokio::spawn(controllers::failover::run(
                node.clone(),
                controllers::failover::Policy {
                    per_hour: args.planet.failovers_per_hour,
                    failback: planet::failover::Failback {
                        steps: args.planet.failback_steps,
                        step_ms: args.planet.failback_step.as_millis() as u64,
                    },
                },
            )));
            planet_tasks.push(tokio::spawn(place::record_region(
                node.clone(),
                place.region.clone(),
            )));
            planet_tasks.push(tokio::spawn(controllers::mirror::run(node.clone(), global)));
        }
        if matches!(started, Started::Founded { .. }) {
            deploy_example(&node)
                .await
                .context("deploying the example app")?;
        }
        let conflicts = tokio::spawn(warn_route_conflicts(node.clone()));
        let advertising = tokio::spawn(advertise(
            node.clone(),
            args.api.to_string(),
            args.gateway.to_string(),
            capacity,
        ));
        let gateway = node::gateway::Gateway::new(
            node::gateway::RouteTable::empty(),
            node::gateway::AccessLog::stderr(),
        );
        let api_tls = if args.api_tls {
            Some(api_tls(&node, &args)?)
        } else {
            None
        };
        // Before the API serves: its SLO checks read the list too.
        ops::notify_guard::allow_hosts(args.allow_webhook_host.clone());
        let server = ops::api::serve_api(
            api,
            Arc::new(node.clone()),
            Some(gateway.clone() as _),
            ops::api::MAX_FAILED_AUTH,
            api_tls,
        );
        node::agent::connect(&node, &gateway);
        let ingress_limits = cluster::serving::ConnLimits {
            idle_timeout: args.gateway_idle_timeout,
            ..cluster::serving::ConnLimits::gateway()
        };
        let ingress = node::gateway::serve_with(ingress, gateway.clone(), ingress_limits);
        let resources = node::agent::Resources {
            data_dir: args.data_dir.clone(),
            memory_limit_bytes: args.memory_limit,
            disk_limit_bytes: args.disk_limit,
            sandbox_slots: u64::from(capacity),
            test_faults: args.test_faults,
        };
        let agent = tokio::spawn(node::agent::run(node.clone(), gateway, engine, resources));
        let scheduler = tokio::spawn(controllers::scheduling::run(node.clone()));
        let rollouts = tokio::spawn(controllers::delivery::run(node.clone()));
        let loops = start_clocked(&node, &args);
        let changes = tokio::spawn(report_changes(node.clone()));
        let backing_up = schedule.map(|s| tokio::spawn(backups::run(node.clone(), s)));
        wait_for_signal().await;
        changes.abort();
        if let Some(task) = backing_up {
            task.abort();
        }
        conflicts.abort();
        cluster::say!("", "stopping node {}", node.id());
        // A planned stop: leadership goes to the most up-to-date voter
        // first, while this node still serves, so the cluster (and the
        // global tier) is led again within a round trip instead of an
        // election timeout after the leader vanishes.
        hand_off("its cluster", &node).await;
        if let Some(global) = node.global() {
            hand_off("the global tier", global).await;
        }
        server.abort();
        ingress.abort();
        agent.abort();
        scheduler.abort();
        rollouts.abort();
        for task in loops {
            task.abort();
        }
        advertising.abort();
        for task in planet_tasks {
            task.abort();
        }
        if let Some(global) = node.global() {
            global.shutdown().await;
        }
        node.shutdown().await;
        Ok(())
    })
}

/// Starts the loops that run on a clock — the SLO evaluator and the
/// autopilot — on the wall clock (their tasks), or under `--manual-clock`
/// installs the API's test clock hook instead (a round of the evaluator
/// and of the autopilot's findings runs when the clock is advanced; the
/// autopilot's acting loop keeps running, reading the test clock). Either way the API gets the
/// autopilot's forecasts.
fn start_clocked(node: &Arc<ClusterNode>, args: &UpArgs) -> Vec<tokio::task::JoinHandle<()>> {
    use ops::slo::SystemClock;
    let external = format!("http://{}", args.api);
    let config = autopilot::pilot::AutopilotConfig::default();
    if args.manual_clock {
        let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
        let alerting = Arc::new(controllers::alerting::Alerting::new(
            node.clone(),
            clock.clone(),
            &external,
        ));
        let autopilot = Arc::new(controllers::autopilot::Autopilot::new(
            node.clone(),
            clock.clone(),
            config,
        ));
        ops::forecasts::install_autopilot(autopilot.clone());
        cluster::say!(
            "",
            "--manual-clock: the SLO evaluator and the autopilot run only on POST /api/v1/test/clock"
        );
        ops::api::install_clock_hook(Arc::new(ManualHook {
            alerting,
            autopilot,
            clock: clock.clone(),
        }));
        // The acting loop keeps its own pace; its time is the test clock.
        vec![
            tokio::spawn(controllers::act::run(node.clone(), clock)),
            tokio::spawn(controllers::reseal::run(node.clone())),
        ]
    } else {
        let alerting = Arc::new(controllers::alerting::Alerting::new(
            node.clone(),
            Arc::new(SystemClock),
            &external,
        ));
        let autopilot = Arc::new(controllers::autopilot::Autopilot::new(
            node.clone(),
            Arc::new(SystemClock),
            config,
        ));
        ops::forecasts::install_autopilot(autopilot.clone());
        vec![
            tokio::spawn(controllers::alerting::run(alerting)),
            tokio::spawn(controllers::autopilot::run(autopilot, args.autopilot_every)),
            tokio::spawn(controllers::act::run(node.clone(), Arc::new(SystemClock))),
            tokio::spawn(controllers::reseal::run(node.clone())),
        ]
    }
}

/// The API's hook under `--manual-clock`: advance, then one round of the
/// autopilot and one of the SLO evaluator (its answer, with the
/// autopilot's under `autopilot`).
struct ManualHook {
    alerting: Arc<controllers::alerting::Alerting>,
    autopilot: Arc<controllers::autopilot::Autopilot>,
    clock: Arc<ManualClock>,
}

impl ops::api::ClockHook for ManualHook {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn hand(&self, troubles: Vec<Value>) -> Result<(), String> {
        controllers::act::hand(troubles)
    }

    fn advance(
        &self,
        ms: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, String>> + Send + '_>>
    {
        Box::pin(async move {
            self.clock.advance(ms);
            let autopilot = self.autopilot.round().await;
            let mut answer = self.alerting.round(true).await?;
            if let Value::Object(fields) = &mut answer {
                fields.insert("autopilot".into(), autopilot);
            }
            Ok(answer)
        })
    }
}

/// Records where this node's API and gateway listen (other gateways
/// forward to it there) and how many sandboxes it holds (the scheduler's
/// capacity) in its node record, when they changed; retried until it is
/// done, since a node may start while the cluster has no quorum.
async fn advertise(node: Arc<ClusterNode>, api: String, gateway: String, capacity: u32) {
    until_done("recording this node's addresses and capacity", || {
        record_addresses(&node, &api, &gateway, capacity)
    })
    .await;
}

/// Runs `attempt` until it succeeds, waiting longer after each failure
/// (up to 5 s); says on stderr the first failure and, after one, the
/// success. For writes a node must make but that may have to wait for a
/// quorum.
pub async fn until_done<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut wait = std::time::Duration::from_millis(100);
    let mut said = false;
    loop {
        match attempt().await {
            Ok(()) => {
                if said {
                    cluster::say!("", "{what}: done");
                }
                return;
            }
            Err(e) if !said => {
                cluster::say!("", "{what} (will retry): {e:#}");
                said = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(5));
    }
}

async fn record_addresses(
    node: &ClusterNode,
    api: &str,
    gateway: &str,
    capacity: u32,
) -> Result<()> {
    let name = node.name();
    let Some(mut record) = node.read(|s| s.node(&name).cloned()).await? else {
        anyhow::bail!("the state has no record of node {name} yet");
    };
    if record.api.as_deref() == Some(api)
        && record.gateway.as_deref() == Some(gateway)
        && record.capacity == capacity
    {
        return Ok(());
    }
    record.api = Some(api.to_string());
    record.gateway = Some(gateway.to_string());
    record.capacity = capacity;
    node.write(state::Command::PutNode { node: record })
        .await?
        .result?;
    Ok(())
}

/// Checks the timing flags against each other.
fn timing(args: &UpArgs) -> Result<Timing> {
    let (heartbeat, election) = (args.heartbeat, args.election_timeout);
    if heartbeat.is_zero() || election < heartbeat * 3 {
        anyhow::bail!(
            "--election-timeout {election:?} must be at least 3 times --heartbeat {heartbeat:?} (and --heartbeat above zero), or followers start elections while the leader is fine"
        );
    }
    Ok(Timing {
        heartbeat,
        election: (election, election * 2),
        ..Timing::default()
    })
}

fn announce(node: &ClusterNode, started: &Started, args: &UpArgs) {
    let config = node.config();
    let what = match started {
        Started::Founded { .. } => format!("created cluster {}", config.cluster),
        Started::Joined { .. } => format!("joined cluster {}", config.cluster),
        Started::Resumed { .. } => format!("resumed in cluster {}", config.cluster),
    };
    cluster::say!(
        "",
        "{what} as node {} (peers reach it at {}, region {}, data in {})",
        config.id,
        config.peer_address,
        config.region,
        args.data_dir.display()
    );
    if matches!(started, Started::Resumed { .. }) && args.join.is_some() {
        cluster::say!("", "--join ignored: this node is already a member");
    }
    cluster::say!(
        "",
        "API at http://{} (OpenAPI document: /api/v1/openapi.json)",
        args.api
    );
    if shares_host(args.api, args.gateway) {
        cluster::say!(
            warn,
            "",
            "the API (and dashboard) at {} and the gateway at {} share a host: a browser sends the dashboard's cookie to apps' pages there (the gateway strips it before an app sees it), and the pages are same-site with the dashboard; give them separate host names (docs/security.md)",
            args.api,
            args.gateway
        );
    }
    cluster::say!(
        "",
        "apps served at http://{}{}",
        args.gateway,
        if matches!(started, Started::Founded { .. }) {
            " (try: curl http://".to_string() + &args.gateway.to_string() + "/hello)"
        } else {
            String::new()
        }
    );
    if let Started::Founded {
        admin_token,
        join_token,
    } = started
    {
        cluster::say!(
            "",
            "these tokens (on stdout) are shown once and stored only as hashes:"
        );
        // The tokens go to stdout, one per line, for scripts to read.
        println!("admin token: {admin_token}");
        println!("join token: {join_token}");
        cluster::say!(
            "",
            "use the API with: export DWCP_TOKEN=<the admin token above>"
        );
        cluster::say!(
            "",
            "add a node with: dwcp up --data-dir DIR --listen IP:PORT --api IP:PORT --gateway IP:PORT --join {} --token <the join token above> (each node needs its own three addresses)",
            config.peer_address
        );
    }
}

/// Whether a browser could reach the API and the gateway under one host
/// name (and so share cookies between them): the same address, or either
/// listening on every address.
fn shares_host(api: SocketAddr, gateway: SocketAddr) -> bool {
    api.ip() == gateway.ip() || api.ip().is_unspecified() || gateway.ip().is_unspecified()
}

/// The app a new cluster starts with, so that `curl 127.0.2.1:8080/hello`
/// answers at once: `examples/wagi/hello.wat`, deployed as `default/hello`.
const EXAMPLE_APP: &[u8] = include_bytes!("../../../../examples/wagi/hello.wat");

async fn deploy_example(node: &ClusterNode) -> Result<()> {
    use state::{Command, Name, VersionConfig};
    let name = |kind: &'static str, s: &str| Name::new(kind, s).context("a built-in name");
    let (tenant, app) = (name("tenant", "default")?, name("app", "hello")?);
    let region = name("region", &node.config().region)?;
    let (digest, _) = node
        .put_blob(bytes::Bytes::from_static(EXAMPLE_APP))
        .await?;
    let commands = [
        Command::CreateApp {
            tenant: tenant.clone(),
            name: app.clone(),
            route: "/hello".into(),
            host: None,
        },
        Command::AddVersion {
            tenant: tenant.clone(),
            app: app.clone(),
            digest,
            // One page is all it uses; 1 MiB fits a `dense` node's slots.
            config: VersionConfig {
                memory_bytes: 1 << 20,
                ..VersionConfig::default()
            },
        },
        Command::SetDeployment {
            tenant,
            app,
            version: 1,
            regions: [(region, 1)].into(),
        },
    ];
    for command in commands {
        match node.write(command.clone()).await?.result {
            // In a planet the example app is global: another region's
            // founder may have made it; this cell copies it at once.
            Err(state::Rejection::AlreadyExists { .. })
                if node.global().is_some() && matches!(command, Command::CreateApp { .. }) =>
            {
                match node.write_in_cell(command).await?.result {
                    Ok(_) | Err(state::Rejection::AlreadyExists { .. }) => {}
                    Err(other) => return Err(other.into()),
                }
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Warns on stderr, once the state can be read, of apps of different
/// tenants whose routes break the routing rules (a state written before
/// they were checked, `state::claims`); `GET /api/v1/route-conflicts`
/// lists the same.
async fn warn_route_conflicts(node: Arc<ClusterNode>) {
    // A node may start while the cluster has no quorum: try again until a
    // linearizable read answers.
    const RETRY: std::time::Duration = std::time::Duration::from_secs(1);
    let conflicts = loop {
        match node.read(|s| s.route_conflicts()).await {
            Ok(conflicts) => break conflicts,
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    for c in conflicts {
        let describe = |c: &state::claims::Claim| {
            format!(
                "{}/{} ({} {} on {})",
                c.tenant,
                c.app,
                c.kind,
                c.route,
                c.host.as_deref().unwrap_or("every host")
            )
        };
        cluster::say!(
            warn,
            "",
            "apps of two tenants break the routing rule on {}: {} and {}; move or delete one (GET /api/v1/route-conflicts lists them)",
            c.rule,
            describe(&c.first),
            describe(&c.second)
        );
    }
}

/// Says on stderr when this node's role, the leader or the membership
/// changes, so an operator can follow elections in the log. A restarted
/// node's idea of the leader is its saved vote, which may be stale: it is
/// said as "last known" until the node has heard from a leader (it leads,
/// or its log grew).
async fn report_changes(node: Arc<ClusterNode>) {
    let mut last = None;
    let at_start = node.replica().status().last_log_index;
    let mut heard = false;
    loop {
        let s = node.replica().status();
        heard |= s.role == "leader" || s.last_log_index > at_start;
        let seen = (s.role, s.leader, s.voters.clone(), s.members.len(), heard);
        if last.as_ref() != Some(&seen) {
            let leader = match s.leader {
                None => "none".to_string(),
                Some(l) if heard => format!("node {l}"),
                Some(l) => format!("not heard from yet (last known: node {l})"),
            };
            cluster::say!(
                "",
                "node {} is {} in term {}; leader {leader}; voters {:?}; {} members",
                s.id,
                s.role,
                s.term,
                s.voters,
                s.members.len()
            );
            last = Some(seen);
        }
        node.replica()
            .wait_for_change(std::time::Duration::from_secs(3600))
            .await;
    }
}

/// Hands `node`'s leadership of `what` over, if it leads; says what happened.
async fn hand_off(what: &str, node: &ClusterNode) {
    match node.hand_off().await {
        Ok(Some(to)) => cluster::say!("", "handed the leadership of {what} to node {to}"),
        Ok(None) => {}
        Err(e) => cluster::say!("", "could not hand the leadership of {what} over: {e}"),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_api_and_gateway_are_on_separate_hosts() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            up: UpArgs,
        }
        let args = Cli::parse_from(["dwcp"]).up;
        assert!(!shares_host(args.api, args.gateway), "{args:?}");
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(shares_host(at("127.0.0.1:7070"), at("127.0.0.1:8080")));
        assert!(shares_host(at("10.0.0.1:7070"), at("0.0.0.0:8080")));
        assert!(!shares_host(at("10.0.0.1:7070"), at("10.0.0.2:8080")));
    }

    #[test]
    fn the_gateway_idle_timeout_is_five_minutes_unless_set_and_at_least_a_second() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            up: UpArgs,
        }
        let idle = |argv: &[&str]| Cli::try_parse_from(argv).map(|c| c.up.gateway_idle_timeout);
        let minutes = |n: u64| std::time::Duration::from_secs(60 * n);
        assert_eq!(idle(&["dwcp"]).unwrap(), minutes(5));
        assert_eq!(
            idle(&["dwcp", "--gateway-idle-timeout", "30m"]).unwrap(),
            minutes(30)
        );
        let refused = idle(&["dwcp", "--gateway-idle-timeout", "500ms"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--gateway-idle-timeout") && refused.contains("1s"),
            "{refused}"
        );
    }
}
