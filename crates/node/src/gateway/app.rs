//! Running one request of an app's version in a sandbox, WAGI style.

use std::fmt;
use std::sync::Arc;

use sandbox::wagi::WagiRequest;
use sandbox::{
    Invocation, Output, Sandbox, SandboxError, SandboxPool, WarmPolicy, WasmSandbox, WasmTemplate,
};

/// A version prepared on this node: its template, and the warm pool that
/// routes with `warm` set serve it from.
pub struct VersionHandle {
    template: Arc<WasmTemplate>,
    pool: SandboxPool,
}

impl VersionHandle {
    /// Instances a warm pool keeps by default.
    pub const DEFAULT_WARM_CAPACITY: usize = 8;

    /// A handle on `template` whose warm pool keeps up to
    /// [`Self::DEFAULT_WARM_CAPACITY`] instances.
    pub fn new(template: Arc<WasmTemplate>) -> VersionHandle {
        VersionHandle::with_warm_capacity(template, Self::DEFAULT_WARM_CAPACITY)
    }

    /// A handle on `template` whose warm pool keeps up to `capacity`
    /// instances. Instances are created on demand; the pool holds none
    /// until a warm route has served a request.
    pub fn with_warm_capacity(template: Arc<WasmTemplate>, capacity: usize) -> VersionHandle {
        let pool = SandboxPool::new(template.clone(), WarmPolicy::KeepAlive, capacity);
        VersionHandle { template, pool }
    }

    /// The template requests run on.
    pub fn template(&self) -> &Arc<WasmTemplate> {
        &self.template
    }

    /// Starts instances until the warm pool holds its capacity; returns
    /// how many it started. Blocks while instantiating.
    pub fn warm_up(&self) -> Result<usize, SandboxError> {
        self.pool.fill()
    }

    /// Instances waiting in the warm pool right now.
    pub fn warm_ready(&self) -> usize {
        self.pool.ready()
    }

    /// Runs `request` as a WASI command: a fresh sandbox that is discarded
    /// afterwards, or (when `warm`) an instance from the pool that returns
    /// to it if the request succeeded. Blocks until the guest is done or
    /// stopped by its deadline.
    /// `started` is told how long a fresh sandbox took to start (not
    /// called for a warm pool's instance).
    pub fn run(
        &self,
        request: &WagiRequest,
        warm: bool,
        started: impl FnOnce(std::time::Duration),
    ) -> Result<Output, SandboxError> {
        let env = request.env();
        let args = [if request.route.is_empty() {
            "/".to_string()
        } else {
            request.route.clone()
        }];
        let invocation = Invocation::Command {
            args: &args,
            env: &env,
            stdin: &request.body,
            dirs: &[],
        };
        if warm {
            self.pool.invoke(invocation)
        } else {
            let begun = std::time::Instant::now();
            let mut sandbox = WasmSandbox::start(&self.template)?;
            started(begun.elapsed());
            sandbox.invoke(invocation)
        }
    }
}

impl fmt::Debug for VersionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionHandle")
            .field("digest", &self.template.digest().to_string())
            .field("warm_ready", &self.pool.ready())
            .finish()
    }
}
