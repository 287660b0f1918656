//! Versions on the microvm tier, and the one handle the route table keeps
//! for a version of either tier.
//!
//! A microvm version runs each request on a pooled VM of its template
//! ([`MicroVmPool`]): the VM's dirtied pages and registers are restored
//! before it runs, so every request is a cold start in the wasm tier's
//! sense whether or not its route says `warm` — a pooled VM only saves
//! creating the VM. The guest blocks its thread in `KVM_RUN`, so it runs
//! on tokio's blocking pool, not on the gateway's worker as a wasm guest.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::wagi::WagiRequest;
use sandbox::{
    HttpTemplate, Invocation, Limits, MicroVmPool, MicroVmTemplate, Output, SandboxError, Template,
    Tier,
};

use super::VersionHandle;

/// A microvm version prepared on this node: its template and its pool of
/// VMs.
pub struct MicroVmVersion {
    template: Arc<MicroVmTemplate>,
    pool: MicroVmPool,
}

impl MicroVmVersion {
    /// VMs a version's pool keeps by default (each holds its memory's
    /// dirtied pages and a KVM VM; creating one costs about a millisecond).
    pub const DEFAULT_POOL: usize = 8;

    /// A version on `template` whose pool keeps up to `pool` VMs, created
    /// on demand (requests beyond that many at once get a VM created for
    /// them, dropped afterwards).
    pub fn new(template: Arc<MicroVmTemplate>, pool: usize) -> MicroVmVersion {
        MicroVmVersion {
            pool: MicroVmPool::new(template.clone(), pool.max(1)),
            template,
        }
    }

    /// The template requests run on.
    pub fn template(&self) -> &Arc<MicroVmTemplate> {
        &self.template
    }

    /// Creates VMs until the pool holds its capacity; returns how many.
    pub fn warm_up(&self) -> Result<usize, SandboxError> {
        self.pool.fill()
    }

    /// Creates VMs until the pool holds `n` (at most its capacity), so the
    /// first requests pay only a reset; returns how many it created.
    pub fn warm_up_to(&self, n: usize) -> Result<usize, SandboxError> {
        let missing = n.saturating_sub(self.pool.ready());
        let vms = (0..missing)
            .map(|_| self.pool.take())
            .collect::<Result<Vec<_>, _>>()?;
        for vm in vms {
            let _ = self.pool.put(vm);
        }
        Ok(missing)
    }

    /// VMs waiting in the pool right now.
    pub fn ready(&self) -> usize {
        self.pool.ready()
    }

    /// Runs `request` as a command on a pooled VM, reset first. Blocks
    /// until the program exits or is stopped by its deadline. `started` is
    /// told how long taking (or creating) the VM took.
    pub fn run(
        &self,
        request: &WagiRequest,
        started: impl FnOnce(Duration),
    ) -> Result<Output, SandboxError> {
        let env = request.env();
        let args = request.args();
        let invocation = Invocation::Command {
            args: &args,
            env: &env,
            stdin: &request.body,
            dirs: &[],
        };
        let begun = Instant::now();
        let mut vm = self.pool.take()?;
        started(begun.elapsed());
        let result = sandbox::Sandbox::invoke(&mut vm, invocation);
        // Back to the pool whatever the outcome (the next run resets it),
        // unless KVM left it unusable.
        let _ = self.pool.put(vm);
        result
    }
}

impl fmt::Debug for MicroVmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicroVmVersion")
            .field("memory_bytes", &self.template.memory_bytes())
            .field("ready", &self.pool.ready())
            .finish()
    }
}

/// A version prepared on this node, on its tier.
#[derive(Clone, Debug)]
pub enum PreparedVersion {
    /// A WebAssembly module.
    Wasm(Arc<VersionHandle>),
    /// A static Linux program in microVMs.
    MicroVm(Arc<MicroVmVersion>),
    /// A wasi:http component (WASI 0.2, exporting
    /// `wasi:http/incoming-handler`): each request runs in a fresh
    /// instance, with the request and response as HTTP, not CGI.
    Http(Arc<HttpTemplate>),
}

impl PreparedVersion {
    /// The version's isolation tier.
    pub fn tier(&self) -> Tier {
        match self {
            PreparedVersion::Wasm(_) | PreparedVersion::Http(_) => Tier::Wasm,
            PreparedVersion::MicroVm(_) => Tier::MicroVm,
        }
    }

    /// The limits each request runs under.
    pub fn limits(&self) -> &Limits {
        match self {
            PreparedVersion::Wasm(h) => h.template().limits(),
            PreparedVersion::MicroVm(v) => v.template().limits(),
            PreparedVersion::Http(t) => t.limits(),
        }
    }

    /// The version's app format, as metrics and logs name it: `wagi` (a
    /// WASI command answering in CGI) or `wasi-http` (a component).
    pub fn format(&self) -> &'static str {
        match self {
            PreparedVersion::Http(_) => "wasi-http",
            PreparedVersion::Wasm(_) | PreparedVersion::MicroVm(_) => "wagi",
        }
    }

    /// Whether it can answer requests: a wasm module must export `_start`
    /// (WAGI's convention); a Linux program always does, and a component
    /// was checked to export `wasi:http/incoming-handler` when prepared.
    pub(crate) fn is_command(&self) -> bool {
        match self {
            PreparedVersion::Wasm(h) => h.template().is_command(),
            PreparedVersion::MicroVm(_) | PreparedVersion::Http(_) => true,
        }
    }

    /// Tells a wasm version's cold pool how many sandboxes the scheduler
    /// placed on this node (see [`VersionHandle::set_placed`]); a microvm
    /// version's pool was sized when it was prepared.
    pub fn set_placed(&self, placed: usize) {
        if let PreparedVersion::Wasm(h) = self {
            h.set_placed(placed);
        }
    }

    /// Fills the version's pool (a warm route's instances, or a microvm
    /// version's VMs); returns how many it started. Blocks.
    pub fn warm_up(&self) -> Result<usize, SandboxError> {
        match self {
            PreparedVersion::Wasm(h) => h.warm_up(),
            PreparedVersion::MicroVm(v) => v.warm_up(),
            // Every request gets a fresh instance: nothing to keep warm.
            PreparedVersion::Http(_) => Ok(0),
        }
    }

    /// Runs one request (see [`VersionHandle::run`] and
    /// [`MicroVmVersion::run`]). A wasm guest runs on the polling worker
    /// (it yields at every epoch tick); a microVM's vCPU blocks its thread
    /// in `KVM_RUN`, so it runs on tokio's blocking pool and stops at its
    /// own deadline (the watchdog) even when this future is dropped first.
    pub async fn run(
        &self,
        request: &WagiRequest,
        warm: bool,
        started: impl FnOnce(Duration) + Send,
    ) -> Result<Output, SandboxError> {
        match self {
            PreparedVersion::Wasm(h) => h.run(request, warm, started).await,
            PreparedVersion::MicroVm(v) => {
                let (v, request) = (v.clone(), request.clone());
                let (result, took) = tokio::task::spawn_blocking(move || {
                    let mut took = None;
                    let result = v.run(&request, |t| took = Some(t));
                    (result, took)
                })
                .await
                .map_err(|e| SandboxError::Engine(format!("the microVM's thread failed: {e}")))?;
                if let Some(took) = took {
                    started(took);
                }
                result
            }
            PreparedVersion::Http(_) => Err(SandboxError::NotSupported {
                what: "a wasi:http component answers HTTP, not a WAGI command (the gateway calls HttpTemplate::handle)".into(),
            }),
        }
    }
}

impl From<Arc<VersionHandle>> for PreparedVersion {
    fn from(handle: Arc<VersionHandle>) -> PreparedVersion {
        PreparedVersion::Wasm(handle)
    }
}

impl From<Arc<HttpTemplate>> for PreparedVersion {
    fn from(template: Arc<HttpTemplate>) -> PreparedVersion {
        PreparedVersion::Http(template)
    }
}

impl From<Arc<MicroVmVersion>> for PreparedVersion {
    fn from(version: Arc<MicroVmVersion>) -> PreparedVersion {
        PreparedVersion::MicroVm(version)
    }
}
