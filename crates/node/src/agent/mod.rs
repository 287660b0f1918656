//! The node agent: keeps the gateway's route table in step with the desired
//! state — prepares a template for every version the node should serve
//! (from the artifact in the node's blob store), drops the ones no longer
//! wanted, and swaps the new table in.
//!
//! `desired.rs` decides (pure); this module does the I/O.

mod desired;

pub use desired::{WantedRoute, WantedVersion, wanted_routes};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use control::Name;
use control::cluster::ClusterNode;
use sandbox::{Artifact, Engine, Limits, WasmEngine};

use crate::gateway::{Gateway, Route, RouteLimits, RouteTable, RouteVersion, VersionHandle};

/// How often the agent looks again when nothing changed (an artifact that
/// was missing may have arrived).
const RECHECK: Duration = Duration::from_secs(2);

/// Prepared versions, by artifact digest and the configuration that shapes
/// the template.
type Prepared = HashMap<(String, u64, u64), Arc<VersionHandle>>;
/// Versions whose artifact did not prepare (not a valid module): not tried
/// again, since the artifact cannot change under its digest.
type Failed = std::collections::HashSet<(String, u64, u64)>;

/// Runs the agent until the task is aborted.
pub async fn run(node: Arc<ClusterNode>, gateway: Arc<Gateway>, engine: Arc<WasmEngine>) {
    let region = match Name::new("region", &node.config().region) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dwcp agent: {e}; serving nothing");
            return;
        }
    };
    let mut prepared = Prepared::new();
    let mut failed = Failed::new();
    let mut last: Option<Vec<WantedRoute>> = None;
    let mut complete = true;
    loop {
        let (revision, wanted) = {
            let state = node.replica().read_local();
            (state.revision(), wanted_routes(&state, &region))
        };
        if last.as_ref() != Some(&wanted) || !complete {
            complete = reconcile(
                &node,
                &gateway,
                &engine,
                &wanted,
                &mut prepared,
                &mut failed,
            )
            .await;
            last = Some(wanted);
        }
        let _ = node.replica().watch(revision, RECHECK).await;
    }
}

/// Prepares what is missing and swaps the table in; false when some
/// version could not be served yet (its artifact has not arrived).
async fn reconcile(
    node: &ClusterNode,
    gateway: &Gateway,
    engine: &Arc<WasmEngine>,
    wanted: &[WantedRoute],
    prepared: &mut Prepared,
    failed: &mut Failed,
) -> bool {
    let mut complete = true;
    let mut routes = Vec::new();
    let mut keep = Prepared::new();
    for route in wanted {
        let mut versions = Vec::new();
        for v in &route.versions {
            let key = (v.digest.clone(), v.config.memory_bytes, v.config.timeout_ms);
            if failed.contains(&key) {
                continue;
            }
            let handle = match prepared.get(&key) {
                Some(h) => Ok(h.clone()),
                None => prepare(node, engine, v).await,
            };
            match handle {
                Ok(h) => {
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
        let config = &route.versions[0].config;
        routes.push(Route {
            host: None,
            prefix: route.prefix.clone(),
            app: route.app.clone(),
            versions,
            limits: RouteLimits {
                timeout: Duration::from_millis(config.timeout_ms),
                warm: config.warm,
                ..RouteLimits::default()
            },
        });
    }
    *prepared = keep;
    match RouteTable::new(routes) {
        Ok(table) => gateway.set_routes(table),
        Err(e) => eprintln!("dwcp agent: the route table is not valid: {e}"),
    }
    complete
}

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
) -> Result<Arc<VersionHandle>, Unready> {
    let bytes = match node.blobs().get(&version.digest) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "dwcp agent: version {} waits for its artifact: {e}",
                version.number
            );
            return Err(Unready::Missing);
        }
    };
    let limits = Limits {
        memory_bytes: version.config.memory_bytes,
        deadline: Duration::from_millis(version.config.timeout_ms),
        ..Limits::default()
    };
    let engine = engine.clone();
    let prepared =
        tokio::task::spawn_blocking(move || engine.prepare(&Artifact::new(bytes), limits)).await;
    match prepared {
        Ok(Ok(template)) => Ok(Arc::new(VersionHandle::new(template))),
        Ok(Err(e)) => {
            eprintln!(
                "dwcp agent: version {} (sha256 {}) cannot be prepared: {e}",
                version.number,
                &version.digest[..12]
            );
            Err(Unready::Invalid)
        }
        Err(e) => {
            eprintln!("dwcp agent: preparing version {}: {e}", version.number);
            Err(Unready::Invalid)
        }
    }
}
