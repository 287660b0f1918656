//! The records of the desired state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Name;
use crate::rollout;
use crate::state::Revision;

/// How much a tenant may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Most apps the tenant may have.
    pub max_apps: u32,
    /// Most sandbox replicas over all of the tenant's deployments.
    pub max_replicas: u32,
    /// Most memory one sandbox of the tenant's versions may have
    /// (`config.memory_bytes`).
    #[serde(default = "Quotas::default_max_memory_bytes")]
    pub max_memory_bytes: u64,
    /// Longest deadline of one request (`config.timeout_ms`).
    #[serde(default = "Quotas::default_max_timeout_ms")]
    pub max_timeout_ms: u64,
    /// Most requests of one app a gateway serves at once
    /// (`config.max_concurrency`).
    #[serde(default = "Quotas::default_max_concurrency")]
    pub max_concurrency: u32,
    /// Largest request or response body (`config.max_request_bytes`,
    /// `config.max_response_bytes`).
    #[serde(default = "Quotas::default_max_body_bytes")]
    pub max_body_bytes: u64,
}

impl Quotas {
    /// Largest sandbox memory a version may ask for at all (4 GiB).
    pub const MEMORY_BYTES_LIMIT: u64 = 4 << 30;
    /// Longest request deadline at all (10 minutes).
    pub const TIMEOUT_MS_LIMIT: u64 = 600_000;
    /// Most concurrent requests of one app at all.
    pub const CONCURRENCY_LIMIT: u32 = 100_000;
    /// Largest body at all (64 MiB).
    pub const BODY_BYTES_LIMIT: u64 = 64 << 20;

    fn default_max_memory_bytes() -> u64 {
        Quotas::MEMORY_BYTES_LIMIT
    }
    fn default_max_timeout_ms() -> u64 {
        Quotas::TIMEOUT_MS_LIMIT
    }
    fn default_max_concurrency() -> u32 {
        Quotas::CONCURRENCY_LIMIT
    }
    fn default_max_body_bytes() -> u64 {
        Quotas::BODY_BYTES_LIMIT
    }
}

/// The defaults: 100 apps, 1,000 replicas, and the global maxima of a
/// version's limits (an admin lowers them per tenant).
impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_apps: 100,
            max_replicas: 1_000,
            max_memory_bytes: Quotas::MEMORY_BYTES_LIMIT,
            max_timeout_ms: Quotas::TIMEOUT_MS_LIMIT,
            max_concurrency: Quotas::CONCURRENCY_LIMIT,
            max_body_bytes: Quotas::BODY_BYTES_LIMIT,
        }
    }
}

/// Owns apps; has quotas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: Name,
    pub quotas: Quotas,
    pub created: Revision,
}

/// A named workload of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub tenant: Name,
    pub name: Name,
    /// The HTTP path prefix the gateway serves it at, e.g. `/hello`.
    pub route: String,
    /// Only requests for this host (e.g. `shop.example.com`) reach it;
    /// `None`: any host (after the apps that name the request's host).
    #[serde(default)]
    pub host: Option<String>,
    /// The number the next version will get.
    pub next_version: u64,
    pub created: Revision,
}

/// How a version runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionConfig {
    /// Memory limit per sandbox, in bytes.
    pub memory_bytes: u64,
    /// Deadline per request, in milliseconds.
    pub timeout_ms: u64,
    /// Serve from a warm pool instead of a fresh sandbox per request.
    pub warm: bool,
    /// Requests of the app a gateway serves at once; more are answered 503.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: u32,
    /// Largest request body, in bytes; a larger one is answered 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_request_bytes: u64,
    /// Largest response body the app may send, in bytes; a larger one is
    /// answered 500.
    #[serde(default = "default_max_body_bytes")]
    pub max_response_bytes: u64,
    /// The isolation tier the artifact runs in: a WebAssembly module
    /// (`wasm`) or a static x86-64 Linux program in a KVM microVM
    /// (`microvm`).
    #[serde(default)]
    pub tier: Tier,
}

/// The isolation tier of a version (the sandbox crate's `Tier`, less the
/// tiers that cannot be deployed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// A WebAssembly module (WASI command, WAGI convention).
    #[default]
    Wasm,
    /// A static x86-64 Linux ELF run in a KVM microVM with no guest kernel.
    Microvm,
}

impl Tier {
    /// The name used in the API, flags and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Wasm => "wasm",
            Tier::Microvm => "microvm",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Tier, String> {
        match s {
            "wasm" => Ok(Tier::Wasm),
            "microvm" => Ok(Tier::Microvm),
            other => Err(format!(
                "unknown tier `{}`; allowed: wasm, microvm",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

fn default_max_concurrency() -> u32 {
    64
}

fn default_max_body_bytes() -> u64 {
    1 << 20
}

impl Default for VersionConfig {
    fn default() -> Self {
        VersionConfig {
            memory_bytes: 64 << 20,
            timeout_ms: 10_000,
            warm: false,
            max_concurrency: default_max_concurrency(),
            max_request_bytes: default_max_body_bytes(),
            max_response_bytes: default_max_body_bytes(),
            tier: Tier::Wasm,
        }
    }
}

/// An immutable artifact, by sha256 digest, plus its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub tenant: Name,
    pub app: Name,
    /// 1, 2, 3, ... per app.
    pub number: u64,
    /// Lowercase hex sha256 of the artifact.
    pub digest: String,
    pub config: VersionConfig,
    pub created: Revision,
    /// Set on a copy of a stable version made as the baseline of a
    /// rollout: the version it copies.
    #[serde(default)]
    pub baseline_of: Option<u64>,
}

/// Desired capacity of one version of an app, per region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub tenant: Name,
    pub app: Name,
    pub version: u64,
    /// Replicas wanted in each region.
    pub regions: BTreeMap<Name, u32>,
    pub updated: Revision,
}

impl Deployment {
    /// Replicas over all regions.
    pub fn replicas(&self) -> u64 {
        self.regions.values().map(|&r| u64::from(r)).sum()
    }
}

/// What a credential lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything through the API.
    Admin,
    /// Only joining a node to the cluster.
    Join,
    /// Reads, and changes to apps: tenants' apps, versions, deployments,
    /// rollouts, artifacts and runbooks — not tenants, tokens or the
    /// cluster's membership.
    Operator,
    /// Reads only.
    Viewer,
}

/// A bearer token, kept only as its sha256: the token itself is shown once
/// when made and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub name: Name,
    pub role: Role,
    /// Lowercase hex sha256 of the token.
    pub sha256: String,
    pub created: Revision,
    /// A join token's expiry and remaining uses; `None` for other tokens
    /// (and for join tokens made before tokens expired, which never do).
    #[serde(default)]
    pub join: Option<JoinLimits>,
}

/// How long and how often a join token admits nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinLimits {
    /// Wall-clock time (Unix ms) from which the token is refused.
    pub expires_unix_ms: u64,
    /// Joins it still admits; `None`: any number until it expires.
    pub uses_left: Option<u32>,
}

/// Sandboxes of one version of an app that one node should hold ready:
/// what the scheduler decided and the node agent carries out.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Placement {
    pub tenant: Name,
    pub app: Name,
    pub version: u64,
    pub node: Name,
    /// Sandboxes (replicas) on that node.
    pub count: u32,
}

/// A region the global tier judged failed, and where its load went: a
/// global record, committed by the global tier's leader when gossip
/// holds every member of the region down, mirrored into every cell
/// (whose leaders then move their share of its load).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionFailover {
    pub region: Name,
    /// When it was declared failed, ms since the Unix epoch (the
    /// proposer's clock).
    pub declared_ms: u64,
    /// The regions taking its load, with their shares in thousandths
    /// (summing to 1000).
    pub targets: Vec<(Name, u32)>,
    /// False while it waits for an operator: the automatic failovers of
    /// the last hour were spent (`planet::topology::guard`).
    pub approved: bool,
    /// When gossip saw it back, ms since the epoch; from then its load
    /// returns in steps.
    pub recovered_ms: Option<u64>,
    /// When this region's earlier failovers of the hour before this one
    /// were declared (the record keeps only the latest failover of a
    /// region, and these still count against the guardrail).
    #[serde(default)]
    pub earlier_ms: Vec<u64>,
}

/// A region and where it sits in the topology tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub name: Name,
    pub metro: String,
    pub country: String,
    pub continent: String,
}

impl Region {
    /// A region known only by name (its place in the topology unset).
    pub fn named(name: Name) -> Region {
        Region {
            name,
            metro: String::new(),
            country: String::new(),
            continent: String::new(),
        }
    }
}

/// A machine running the agent, in exactly one region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Name,
    pub region: Name,
    /// Where its peers and the API reach it, `host:port`.
    pub address: String,
    pub labels: BTreeMap<String, String>,
    /// Sandboxes it can hold.
    pub capacity: u32,
    /// Where its HTTP API listens, `host:port`, when it serves one.
    #[serde(default)]
    pub api: Option<String>,
    /// Where its gateway serves apps, `host:port`, when it runs one: other
    /// gateways of its region forward requests for the apps placed on it
    /// there.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Lowercase hex sha256 of the public key (SubjectPublicKeyInfo) of
    /// the certificate it was admitted with: the peer port serves a
    /// certificate for this node only with this key. `None` for a record
    /// written without one; a `PutNode` without one keeps the pin it had.
    #[serde(default)]
    pub peer_key: Option<String>,
}

/// What a node last told the store about itself: a heartbeat carrying its
/// observed state. Counters are totals since the node's process started
/// (`boot`), so a reader takes differences between two reports of one boot
/// for rates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: Name,
    /// Chosen at random when the node's process starts.
    pub boot: u64,
    /// 1 for the first report of a boot, then one more for each.
    pub sequence: u64,
    /// Templates prepared and serving.
    pub templates_ready: u32,
    /// Sandboxes alive on the node right now (running or waiting warm).
    pub live_sandboxes: u64,
    /// Sandboxes started since the node's process started (the dashboard
    /// shows starts per second from its differences).
    #[serde(default)]
    pub sandbox_starts: u64,
    /// Per version the node served, its counters.
    pub versions: Vec<VersionReport>,
    /// The node's clock and what it has used of what it can hold:
    /// sandbox slots, memory, disk.
    #[serde(default)]
    pub usage: NodeUsage,
}

/// A node's clock and resources, as its report carries them. Zero means
/// unknown (an older node that does not say).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// Milliseconds since the node's process started, on its monotonic
    /// clock: a reader divides counter differences by its difference for
    /// rates (0: an older node that does not say).
    pub uptime_ms: u64,
    /// Sandboxes the node's engine can hold at once: past it a new one is
    /// refused (0: unknown).
    pub sandbox_slots: u64,
    /// The node process's resident memory, in bytes (0: unknown).
    pub memory_bytes: u64,
    /// The memory the node may use, in bytes: its `--memory-limit`, else
    /// the machine's (0: unknown).
    pub memory_limit_bytes: u64,
    /// Bytes in the node's data directory.
    pub disk_bytes: u64,
    /// What the data directory may hold, in bytes: its `--disk-limit`,
    /// else what it holds plus its file system's free space (0: unknown).
    pub disk_limit_bytes: u64,
}

/// One version's requests on one node, since the node's process started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReport {
    pub tenant: Name,
    pub app: Name,
    pub version: u64,
    pub requests: u64,
    /// 5xx answers, 504s included.
    pub errors: u64,
    /// 504 answers.
    pub timeouts: u64,
    /// Request latency in microseconds.
    pub latency_us: LatencySummary,
    /// The sum of its requests' latencies, in µs: how long they kept
    /// sandboxes busy (the sandbox-seconds costs are counted in).
    #[serde(default)]
    pub busy_us: u64,
    /// A sample of the latencies (µs) of the requests answered since the
    /// node's previous report: what a rollout's judge compares.
    #[serde(default)]
    pub recent_latencies_us: Vec<u32>,
    /// Every request's latency (µs) since the node's process started, in
    /// a mergeable histogram: the difference between two reports is what
    /// came between them, and the histograms of many versions or nodes
    /// add up exactly.
    #[serde(default)]
    pub latency_histogram_us: crate::LogHistogram,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// A progressive rollout of an app from its stable version to a new one:
/// the plan, where it stands, and its audit trail. The gateways derive
/// their weights from it (see [`Rollout::weights_in`]), so changing it
/// (an abort) is one write that every gateway applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub tenant: Name,
    pub app: Name,
    /// 1, 2, 3, ... per app.
    pub id: u64,
    /// The stable version.
    pub from: u64,
    /// The new version (the canary).
    pub to: u64,
    /// A copy of `from` started with the canary and given the same share
    /// of the traffic, which the canary is judged against; `None` in a
    /// blue-green rollout.
    pub baseline: Option<u64>,
    pub plan: rollout::Plan,
    pub progress: rollout::Progress,
    /// An operator asked to skip the current pause or analysis; the
    /// controller clears it as it acts on it.
    pub promote: bool,
    /// Wall-clock times, in ms since the Unix epoch (as the writer saw
    /// them).
    pub started_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    /// Every step, verdict and weight change, oldest first.
    pub trail: Vec<TrailEntry>,
    pub updated: Revision,
}

/// One entry of a rollout's audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEntry {
    pub unix_ms: u64,
    /// Who wrote it: `controller`, or the operator's credential.
    pub by: String,
    pub text: String,
}

/// The shares of the traffic of one app in one region during a rollout, in
/// %, summing to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub stable: u32,
    pub baseline: u32,
    pub canary: u32,
}

impl Rollout {
    /// Whether it still runs (neither succeeded nor aborted).
    pub fn active(&self) -> bool {
        self.finished_unix_ms.is_none()
    }

    /// The weights in `region` now: the canary's share from the plan's
    /// wave of the region, the baseline as much (at most what is left),
    /// stable the rest.
    pub fn weights_in(&self, region: &str) -> Weights {
        let canary =
            rollout::weight_in_wave(&self.progress, rollout::wave_of(&self.plan, region)).min(100);
        let baseline = if self.baseline.is_some() {
            canary.min(100 - canary)
        } else {
            0
        };
        Weights {
            stable: 100 - canary - baseline,
            baseline,
            canary,
        }
    }
}

/// What operators do when an alert fires: a Markdown text whose front
/// matter names the alerts it answers (parsed and checked by the API, see
/// `ops::runbook`); shown on the incidents those alerts open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runbook {
    pub name: Name,
    pub title: String,
    /// The alerts it answers, by name.
    pub alerts: Vec<String>,
    /// The whole file as uploaded, front matter included.
    pub text: String,
    pub updated: Revision,
}

/// What running apps costs, set by an admin: the ops center's cost pages
/// multiply usage by these. Amounts are in `currency` (ISO 4217 code).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub currency: String,
    /// Per second a sandbox is busy with a request.
    pub per_sandbox_second: f64,
    /// Per second a sandbox is busy, per GiB of its memory limit.
    pub per_gb_second: f64,
    /// Per million requests.
    pub per_million_requests: f64,
}

/// Who changed the desired state, what, when and from where: one entry per
/// change made through the API, written in the same log entry as the
/// change ([`crate::Command::Audited`]), so a change is never made without
/// its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The revision of the change.
    pub revision: Revision,
    pub unix_ms: u64,
    /// The credential's name.
    pub who: String,
    /// The client's address, as the API node saw it.
    pub from: String,
    /// The request, e.g. `PUT /api/v1/tenants/acme/apps/shop/deployment`.
    pub what: String,
}
