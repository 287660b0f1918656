//! Pooled microVMs of one template. Creating a VM costs about a
//! millisecond on PVM; resetting a used one costs what its last run
//! dirtied. A pool keeps VMs so that requests pay only the reset.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{MicroVmSandbox, MicroVmTemplate};
use crate::{Invocation, Output, Sandbox, SandboxError};

/// Up to `target` VMs of one template kept for reuse. Every invocation is
/// a cold start in the sense of [`crate::WarmPolicy::PerInvocation`]: it
/// runs on memory equal to the template's image (the VM's dirtied pages
/// are restored before it runs), with fresh registers, and shares nothing
/// with an earlier invocation but the VM's KVM objects.
pub struct MicroVmPool {
    template: Arc<MicroVmTemplate>,
    target: usize,
    ready: Mutex<Vec<MicroVmSandbox>>,
}

impl MicroVmPool {
    /// A pool that keeps up to `target` VMs of `template`.
    pub fn new(template: Arc<MicroVmTemplate>, target: usize) -> MicroVmPool {
        MicroVmPool {
            template,
            target,
            ready: Mutex::new(Vec::with_capacity(target)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<MicroVmSandbox>> {
        // Only push and pop happen under the lock: a poisoned Vec is intact.
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// VMs ready now.
    pub fn ready(&self) -> usize {
        self.lock().len()
    }

    /// Creates VMs until `target` are ready (outside the lock); returns how
    /// many it added.
    pub fn fill(&self) -> Result<usize, SandboxError> {
        let mut added = 0;
        while self.ready() < self.target {
            let vm = MicroVmSandbox::start(&self.template)?;
            self.lock().push(vm);
            added += 1;
        }
        Ok(added)
    }

    /// Takes a ready VM, or creates one when none is.
    pub fn take(&self) -> Result<MicroVmSandbox, SandboxError> {
        let taken = self.lock().pop();
        match taken {
            Some(vm) => Ok(vm),
            None => MicroVmSandbox::start(&self.template),
        }
    }

    /// Returns a VM to the pool if it is of this template, usable, and the
    /// pool has room; gives it back otherwise.
    pub fn put(&self, vm: MicroVmSandbox) -> Option<MicroVmSandbox> {
        if !Arc::ptr_eq(vm.template(), &self.template) || vm.is_broken() {
            return Some(vm);
        }
        let mut ready = self.lock();
        if ready.len() < self.target {
            ready.push(vm);
            None
        } else {
            Some(vm)
        }
    }

    /// Runs `invocation` on a pooled VM (reset first) and returns the VM to
    /// the pool, whatever the outcome, unless KVM left it unusable.
    pub fn invoke(&self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        let mut vm = self.take()?;
        let result = vm.invoke(invocation);
        let _ = self.put(vm);
        result
    }
}
