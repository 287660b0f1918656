//! The node agent: keeps the gateway's route table in step with the desired
//! state — prepares a template for every version the node should serve
//! (from the artifact in the node's blob store), fills warm pools to the
//! size the scheduler placed, routes what other nodes hold to them (over
//! the peer port's mutual TLS, `peers.rs`), drops what is no longer wanted and swaps the new table in —
//! and reports the node's heartbeat and observed state to the store
//! (`report.rs`), once a second, never once per request.
//!
//! `desired.rs` decides (pure); this module does the I/O.

mod desired;
mod faults;
mod peers;
mod report;
mod usage;

pub use desired::{Serving, WantedRoute, WantedVersion, host_owners, wanted_routes};
pub use faults::{FAULTS_FILE, TestFaults};
pub use peers::{ClusterPeers, GatewayIngress, connect};
pub use report::{Observed, REPORT_EVERY, REPORT_EVERY_DURING_ROLLOUTS, node_report};
pub use usage::{Resources, UsageProbe, dir_bytes, machine_memory_bytes, resident_bytes};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cluster::ClusterNode;
use sandbox::{Artifact, Engine, Limits, SandboxError, WasmEngine};
use state::Name;

use crate::gateway::{
    AppKey, Gateway, MicroVmVersion, PreparedVersion, Route, RouteLimits, RouteTable, RouteVersion,
    VersionHandle,
};

/// How often the agent looks again when nothing changed (an artifact that
/// was missing may have arrived).
const RECHECK: Duration = Duration::from_secs(2);

/// What a prepared version is known by: its app (two apps never share a
/// handle, so never a kept-alive instance, even when they run the same
/// module), its artifact digest and tier, the configuration that shapes its
/// template (memory, timeout, response size), and its warm pool's size (0
/// for a cold route, whose pool is unused: a placement change then needs
/// no new template), and how many times the autopilot restarted its pool
/// on this node (a new count: a fresh pool replaces the old one).
type VersionKey = (AppKey, String, state::Tier, u64, u64, u64, u32, u64);
/// Prepared versions.
type Prepared = HashMap<VersionKey, PreparedVersion>;
/// Versions whose artifact did not prepare (not a valid module): not tried
/// again, since the artifact cannot change under its digest.
type Failed = std::collections::HashSet<VersionKey>;

/// Runs the agent (reconciling and reporting) until the task is aborted.
pub async fn run(
    node: Arc<ClusterNode>,
    gateway: Arc<Gateway>,
    engine: Arc<WasmEngine>,
    resources: Resources,
) {
    let region = match Name::new("region", &node.config().region) {
        Ok(r) => r,
        Err(e) => {
            cluster::say!("agent", "{e}; serving nothing");
            return;
        }
    };
    let ready = Arc::new(AtomicU32::new(0));
    let reporting = report::run(
        node.clone(),
        gateway.clone(),
        engine.clone(),
        ready.clone(),
        UsageProbe::new(resources),
    );
    let reconciling = async {
        let name = node.name();
        let mut prepared = Prepared::new();
        let mut failed = Failed::new();
        let mut last: Option<(Vec<WantedRoute>, HashMap<String, Name>)> = None;
        let mut complete = true;
        loop {
            let (revision, wanted) = {
                let state = node.replica().read_local();
                (
                    state.revision(),
                    (wanted_routes(&state, &name, &region), host_owners(&state)),
                )
            };
            if last.as_ref() != Some(&wanted) || !complete {
                complete = reconcile(
                    &node,
                    &gateway,
                    &engine,
                    &wanted.0,
                    &wanted.1,
                    &mut prepared,
                    &mut failed,
                )
                .await;
                ready.store(prepared.len() as u32, Ordering::Relaxed);
                last = Some(wanted);
            }
            let _ = node.replica().watch(revision, RECHECK).await;
        }
    };
    tokio::join!(reporting, reconciling);
}

/// Prepares what is missing and swaps the table in; false when some
/// version could not be served yet (its artifact has not arrived).
async fn reconcile(
    node: &ClusterNode,
    gateway: &Gateway,
    engine: &Arc<WasmEngine>,
    wanted: &[WantedRoute],
    owners: &HashMap<String, Name>,
    prepared: &mut Prepared,
    failed: &mut Failed,
) -> bool {
    let mut complete = true;
    let mut routes = Vec::new();
    let mut keep = Prepared::new();
    for route in wanted {
        let mut versions = Vec::new();
        let mut forward = Vec::new();
        match &route.serving {
            Serving::Forward(peers) => forward = peers.clone(),
            Serving::Local(wanted_versions) => {
                for v in wanted_versions {
                    let key = (
                        route.app.clone(),
                        v.digest.clone(),
                        v.config.tier,
                        v.config.memory_bytes,
                        v.config.timeout_ms,
                        v.config.max_response_bytes,
                        v.warm_pool(),
                        v.restarts,
                    );
                    if failed.contains(&key) {
                        continue;
                    }
                    let handle = match prepared.get(&key) {
                        Some(h) => Ok(h.clone()),
                        None => prepare(node, engine, v).await,
                    };
                    match handle {
                        Ok(h) => {
                            if !v.config.warm {
                                // The cold pool keeps the placed count ready.
                                h.set_placed(v.placed as usize);
                            }
                            keep.insert(key, h.clone());
                            versions.push(RouteVersion {
                                number: v.number,
                                weight: v.weight,
                                handle: h,
                            });
                        }
                        Err(Unready::Missing) => complete = false,
                        Err(Unready::Invalid) => {
                            failed.insert(key);
                        }
                    }
                }
                if versions.is_empty() {
                    continue;
                }
            }
        }
        routes.push(Route {
            host: route.host.clone(),
            prefix: route.prefix.clone(),
            app: route.app.clone(),
            versions,
            forward,
            limits: route_limits(&route.config),
        });
    }
    *prepared = keep;
    match RouteTable::new(routes) {
        Ok(table) => gateway.set_routes(table.with_owners(owners.clone())),
        Err(e) => cluster::say!("agent", "the route table is not valid: {e}"),
    }
    complete
}

/// What the gateway allows a route whose deployed version has `config`.
fn route_limits(config: &state::VersionConfig) -> RouteLimits {
    RouteLimits {
        max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
        max_response_bytes: usize::try_from(config.max_response_bytes).unwrap_or(usize::MAX),
        max_concurrency: config.max_concurrency as usize,
        timeout: Duration::from_millis(config.timeout_ms),
        warm: config.warm,
    }
}

/// `limits` with the table size no version chooses brought within the
/// engine's slot (a `dense` node's slots hold fewer table elements than
/// the default). The memory limit, which the version chose, is kept: a
/// version asking for more than the node's slot is refused when prepared,
/// with an error naming the slot size.
pub fn fitting_limits(config: &sandbox::WasmConfig, limits: &Limits) -> Limits {
    Limits {
        table_elements: limits.table_elements.min(config.slot_table_elements),
        ..limits.clone()
    }
}

/// Room for a CGI response's header lines beyond its body, in the output a
/// sandbox may write.
const CGI_HEAD_ROOM: usize = 64 << 10;

/// Why a version cannot be served yet.
enum Unready {
    /// Its artifact is not on this node yet: try again later.
    Missing,
    /// Its artifact does not prepare: never will.
    Invalid,
}

/// Prepares one version's template from the artifact on this node (what
/// went wrong is said on stderr).
async fn prepare(
    node: &ClusterNode,
    engine: &Arc<WasmEngine>,
    version: &WantedVersion,
) -> Result<PreparedVersion, Unready> {
    let bytes = match node.blobs().get(&version.digest) {
        Ok(b) => b,
        Err(e) => {
            cluster::say!(
                "agent",
                "version {} waits for its artifact: {e}",
                version.number
            );
            return Err(Unready::Missing);
        }
    };
    let limits = Limits {
        memory_bytes: version.config.memory_bytes,
        deadline: Duration::from_millis(version.config.timeout_ms),
        output_bytes: usize::try_from(version.config.max_response_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(CGI_HEAD_ROOM),
        ..Limits::default()
    };
    if version.config.tier == state::Tier::Microvm {
        return prepare_microvm(version, bytes, limits).await;
    }
    let limits = fitting_limits(engine.config(), &limits);
    let engine = engine.clone();
    if sandbox::wasm::is_component_artifact(&bytes) {
        // A wasi:http component: every request gets a fresh instance, so
        // there is no pool to fill.
        let prepared =
            tokio::task::spawn_blocking(move || engine.prepare_http(&Artifact::new(bytes), limits))
                .await;
        return match prepared {
            Ok(Ok(template)) => Ok(PreparedVersion::Http(template)),
            Ok(Err(e)) => {
                cluster::say!(
                    "agent",
                    "version {} (sha256 {}, a wasi:http component) cannot be prepared: {e}",
                    version.number,
                    &version.digest[..12.min(version.digest.len())]
                );
                Err(Unready::Invalid)
            }
            Err(e) => {
                cluster::say!("agent", "preparing version {}: {e}", version.number);
                Err(Unready::Invalid)
            }
        };
    }
    let prepared =
        tokio::task::spawn_blocking(move || engine.prepare(&Artifact::new(bytes), limits)).await;
    match prepared {
        Ok(Ok(template)) => {
            let handle = Arc::new(match version.warm_pool() {
                0 => VersionHandle::new(template),
                size => VersionHandle::with_warm_capacity(template, size as usize),
            });
            if version.warm_pool() > 0 {
                // Placed sandboxes wait warm, so the first requests find them.
                let pool = handle.clone();
                let filled = tokio::task::spawn_blocking(move || pool.warm_up()).await;
                if let Ok(Err(e)) = filled {
                    cluster::say!("agent", "warming version {}'s pool: {e}", version.number);
                }
            }
            Ok(handle.into())
        }
        Ok(Err(e)) => {
            cluster::say!(
                "agent",
                "version {} (sha256 {}) cannot be prepared: {e}",
                version.number,
                &version.digest[..12]
            );
            Err(Unready::Invalid)
        }
        Err(e) => {
            cluster::say!("agent", "preparing version {}: {e}", version.number);
            Err(Unready::Invalid)
        }
    }
}

/// The node's microVM engine, made on first use (KVM opened, the probe VM
/// run); what it answered is kept, so a node without KVM says why once per
/// version and never retries.
fn microvm_engine() -> Result<Arc<sandbox::MicroVmEngine>, SandboxError> {
    static ENGINE: OnceLock<Result<Arc<sandbox::MicroVmEngine>, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            sandbox::MicroVmEngine::new(sandbox::MicroVmConfig::default())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|what| SandboxError::NotSupported { what })
}

/// Prepares a microvm version: its template from the program's bytes, and
/// its pool of VMs, which keeps as many as the app may run at once (its
/// concurrency limit; a request past the pool would create a VM, about a
/// millisecond) and starts with [`MicroVmVersion::DEFAULT_POOL`] ready, or
/// the placed count on a warm route.
async fn prepare_microvm(
    version: &WantedVersion,
    bytes: Vec<u8>,
    limits: Limits,
) -> Result<PreparedVersion, Unready> {
    let ready = (version.warm_pool() as usize).max(MicroVmVersion::DEFAULT_POOL);
    let pool = ready.max(version.config.max_concurrency as usize);
    let prepared = tokio::task::spawn_blocking(move || {
        let engine = microvm_engine()?;
        let template = engine.prepare(&Artifact::new(bytes), limits)?;
        let prepared = MicroVmVersion::new(template, pool);
        // VMs wait ready, so the first requests pay only a reset.
        prepared.warm_up_to(ready)?;
        Ok::<_, SandboxError>(prepared)
    })
    .await;
    match prepared {
        Ok(Ok(prepared)) => Ok(PreparedVersion::MicroVm(Arc::new(prepared))),
        Ok(Err(e)) => {
            eprintln!(
                "dwcp agent: version {} (sha256 {}, microvm tier) cannot be prepared: {e}",
                version.number,
                &version.digest[..12.min(version.digest.len())]
            );
            Err(Unready::Invalid)
        }
        Err(e) => {
            eprintln!("dwcp agent: preparing version {}: {e}", version.number);
            Err(Unready::Invalid)
        }
    }
}
