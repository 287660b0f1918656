//! Running one request of an app's version in a sandbox, WAGI style.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sandbox::wagi::WagiRequest;
use sandbox::{ColdPool, ColdStats, Invocation, Output, SandboxError, WarmPool, WasmTemplate};

/// A version prepared on this node: its template, the cold pool of
/// never-used instances that cold routes take one of per request, and the
/// warm pool of kept-alive instances (in groups sharing a store, in the
/// `dense` profile) that routes with `warm` set serve it from.
pub struct VersionHandle {
    template: Arc<WasmTemplate>,
    /// Made when the handle is (cold routes) or on the first cold request.
    cold: OnceLock<ColdPool>,
    warm: WarmPool,
}

impl VersionHandle {
    /// Instances a warm pool keeps by default.
    pub const DEFAULT_WARM_CAPACITY: usize = 8;

    /// A handle on `template` for a cold route: its cold pool starts
    /// filling at once (off the request path, on the engine's preparer
    /// thread); its warm pool keeps up to [`Self::DEFAULT_WARM_CAPACITY`]
    /// instances once used.
    pub fn new(template: Arc<WasmTemplate>) -> VersionHandle {
        let handle = VersionHandle::with_warm_capacity(template, Self::DEFAULT_WARM_CAPACITY);
        handle.cold();
        handle
    }

    /// A handle on `template` for a warm route, whose warm pool keeps up to
    /// `capacity` instances. Instances are created on demand; the pool
    /// holds none until a warm route has served a request or
    /// [`Self::warm_up`] filled it.
    pub fn with_warm_capacity(template: Arc<WasmTemplate>, capacity: usize) -> VersionHandle {
        let warm = WarmPool::new(template.clone(), capacity);
        VersionHandle {
            template,
            cold: OnceLock::new(),
            warm,
        }
    }

    /// The template requests run on.
    pub fn template(&self) -> &Arc<WasmTemplate> {
        &self.template
    }

    fn cold(&self) -> &ColdPool {
        self.cold
            .get_or_init(|| ColdPool::new(self.template.clone(), 0))
    }

    /// Tells the cold pool how many sandboxes the scheduler placed on this
    /// node: it keeps at least that many never-used instances ready.
    pub fn set_placed(&self, placed: usize) {
        self.cold().set_placed(placed);
    }

    /// What the cold pool did so far (zero before its first use).
    pub fn cold_stats(&self) -> ColdStats {
        self.cold.get().map(ColdPool::stats).unwrap_or_default()
    }

    /// Starts instances until the warm pool holds its capacity; returns
    /// how many it started. Blocks while instantiating.
    pub fn warm_up(&self) -> Result<usize, SandboxError> {
        self.warm.fill()
    }

    /// Instances waiting in the warm pool right now.
    pub fn warm_ready(&self) -> usize {
        self.warm.ready()
    }

    /// Runs `request` as a WASI command: on a never-used instance of the
    /// cold pool, discarded afterwards, or (when `warm`) on an instance of
    /// the warm pool that returns to it if the request succeeded.
    ///
    /// The future runs the guest on the polling thread: a short guest is
    /// done in the first poll, a long one yields at every epoch tick until
    /// its deadline. Dropping the future stops the guest.
    /// `started` is told how long the fresh sandbox took to start, up to
    /// the call into the guest (not called for a warm pool's instance).
    pub async fn run(
        &self,
        request: &WagiRequest,
        warm: bool,
        started: impl FnOnce(Duration) + Send,
    ) -> Result<Output, SandboxError> {
        let env = request.env();
        let args = request.args();
        let invocation = Invocation::Command {
            args: &args,
            env: &env,
            stdin: &request.body,
            dirs: &[],
        };
        if warm {
            self.warm.invoke(invocation).await
        } else {
            self.cold().invoke(invocation, started).await
        }
    }
}

impl fmt::Debug for VersionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionHandle")
            .field("digest", &self.template.digest().to_string())
            .field("cold", &self.cold_stats())
            .field("warm_ready", &self.warm.ready())
            .finish()
    }
}
