//! Warm pools: instances of one template kept ready for invocations.

use std::sync::{Arc, Mutex, MutexGuard};

use super::sync::block_on;
use super::{WasmSandbox, WasmTemplate};
use crate::{Invocation, Output, SandboxError, WarmPolicy};

/// Instances of one template kept ready, with an explicit [`WarmPolicy`] of
/// what survives between invocations.
///
/// With [`WarmPolicy::PerInvocation`] every invocation takes an instance
/// that has never run one and discards it afterwards; [`SandboxPool::fill`]
/// (from a background thread, typically) instantiates replacements ahead of
/// time. With [`WarmPolicy::KeepAlive`] an instance returns to the pool after
/// a successful invocation, its state intact.
pub struct SandboxPool {
    template: Arc<WasmTemplate>,
    policy: WarmPolicy,
    target: usize,
    ready: Mutex<Vec<WasmSandbox>>,
}

impl SandboxPool {
    /// A pool that keeps up to `target` instances of `template` ready.
    pub fn new(template: Arc<WasmTemplate>, policy: WarmPolicy, target: usize) -> SandboxPool {
        SandboxPool {
            template,
            policy,
            target,
            ready: Mutex::new(Vec::with_capacity(target)),
        }
    }

    /// The pool's policy.
    pub fn policy(&self) -> WarmPolicy {
        self.policy
    }

    /// Instances ready right now.
    pub fn ready(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<WasmSandbox>> {
        // A panic while holding the lock cannot leave the Vec inconsistent
        // (only push/pop happen under it), so a poisoned lock is usable.
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Instantiates instances until `target` are ready; returns how many it
    /// added. Instantiation happens outside the lock.
    pub fn fill(&self) -> Result<usize, SandboxError> {
        let mut added = 0;
        while self.ready() < self.target {
            let sandbox = WasmSandbox::start(&self.template)?;
            self.lock().push(sandbox);
            added += 1;
        }
        Ok(added)
    }

    /// Takes a ready instance, or starts a fresh one when none is ready.
    pub fn take(&self) -> Result<WasmSandbox, SandboxError> {
        block_on(self.take_async())
    }

    /// [`SandboxPool::take`] as a future.
    pub async fn take_async(&self) -> Result<WasmSandbox, SandboxError> {
        let taken = self.lock().pop();
        match taken {
            Some(s) => Ok(s),
            None => WasmSandbox::start_async(&self.template).await,
        }
    }

    /// Adds an instance (from [`SandboxPool::take`] or
    /// [`WasmSandbox::start`] of the same template) if the pool has room and
    /// its policy allows it; returns it back otherwise. A
    /// [`WarmPolicy::PerInvocation`] pool takes only never-used instances;
    /// no pool takes one whose invocation failed.
    pub fn put(&self, sandbox: WasmSandbox) -> Option<WasmSandbox> {
        let refused = !Arc::ptr_eq(sandbox.template(), &self.template)
            || sandbox.has_failed()
            || (self.policy == WarmPolicy::PerInvocation && sandbox.has_run());
        if refused {
            return Some(sandbox);
        }
        let mut ready = self.lock();
        if ready.len() < self.target {
            ready.push(sandbox);
            None
        } else {
            Some(sandbox)
        }
    }

    /// Runs `invocation` on a ready instance (or a fresh one when none is
    /// ready), then keeps or discards the instance as the policy says.
    /// Blocks this thread.
    pub fn invoke(&self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        block_on(self.invoke_async(invocation))
    }

    /// [`SandboxPool::invoke`] as a future. Dropping it stops the guest
    /// and discards its instance.
    pub async fn invoke_async(&self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        let mut sandbox = self.take_async().await?;
        let result = sandbox.invoke_async(invocation).await;
        if self.policy == WarmPolicy::KeepAlive && result.is_ok() {
            // A full pool drops the instance here.
            let _ = self.put(sandbox);
        }
        result
    }
}
