//! Warm pools: kept-alive instances of one template, held in groups that
//! share a store, for keep-alive apps (the gateway's warm routes).
//!
//! A warm pool keeps up to its capacity of live instances, in
//! [`SandboxGroup`]s of the engine's [`WasmConfig::group`] size: one per
//! store in the `fast` profile, hundreds per store in the `dense` one, so
//! that a node holds a million of them ([`super::config`] explains the
//! store's cost). A request leases an idle group, runs on its next member
//! (round robin) and hands the group back; members keep their memory,
//! globals and tables from one invocation to the next
//! ([`crate::WarmPolicy::KeepAlive`]), a command's WASI context is made for
//! each invocation. A member whose invocation failed (or was stopped by
//! dropping its future) is never used again; its group goes once all of
//! its members have failed.
//!
//! [`WasmConfig::group`]: super::WasmConfig::group

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::SandboxGroup;
use super::sync::block_on;
use super::template::WasmTemplate;
use crate::{Invocation, Output, SandboxError};

/// A group and where its round robin stands.
struct Kept {
    group: SandboxGroup,
    next: usize,
}

impl Kept {
    /// The next member that has not failed, if any.
    fn pick(&mut self) -> Option<usize> {
        let len = self.group.len();
        for step in 0..len {
            let index = (self.next + step) % len;
            if !self.group.has_failed(index) {
                self.next = (index + 1) % len;
                return Some(index);
            }
        }
        None
    }
}

/// Kept-alive instances of one template, in groups; see the module
/// documentation.
///
/// ```
/// use sandbox::{Artifact, Engine, Invocation, Limits, Template, WarmPool, WasmConfig, WasmEngine};
/// let engine = WasmEngine::new(WasmConfig { max_live: 64, ..WasmConfig::dense() }).unwrap();
/// let wat = r#"(module (memory 1) (func (export "run")))"#;
/// let limits = Limits { memory_bytes: 1 << 16, table_elements: 100, ..Limits::default() };
/// let template = engine.prepare(&Artifact::new(wat.into()), limits).unwrap();
/// let pool = WarmPool::new(template.clone(), 40);
/// assert_eq!(pool.fill().unwrap(), 40);
/// assert_eq!(engine.live(), 40);
/// pool.invoke_blocking(Invocation::Call { entry: template.entry("run").unwrap(), input: b"" }).unwrap();
/// ```
pub struct WarmPool {
    template: Arc<WasmTemplate>,
    capacity: usize,
    /// Idle groups; leased ones are out with their request.
    idle: Mutex<Vec<Kept>>,
    /// Members of every group of the pool, idle or leased.
    kept: AtomicUsize,
}

impl WarmPool {
    /// A pool that keeps up to `capacity` live instances of `template`.
    /// It holds none until [`WarmPool::fill`] or its first invocations.
    pub fn new(template: Arc<WasmTemplate>, capacity: usize) -> WarmPool {
        WarmPool {
            template,
            capacity,
            idle: Mutex::new(Vec::new()),
            kept: AtomicUsize::new(0),
        }
    }

    /// Live instances the pool keeps now.
    pub fn ready(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }

    /// Most live instances the pool keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Kept>> {
        // Only push and pop happen under the lock.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts groups until the pool keeps its capacity; returns how many
    /// instances it started. Blocks this thread.
    pub fn fill(&self) -> Result<usize, SandboxError> {
        let group = self.template.shared.config.group as usize;
        let mut added = 0;
        loop {
            let size = group.min(self.capacity.saturating_sub(self.ready()));
            if size == 0 {
                return Ok(added);
            }
            let started = SandboxGroup::start(&self.template, size)?;
            self.kept.fetch_add(size, Ordering::Relaxed);
            self.lock().push(Kept {
                group: started,
                next: 0,
            });
            added += size;
        }
    }

    /// Runs `invocation` on a kept instance: a member of an idle group, or
    /// of a group started now when none is idle (kept if the pool has
    /// room, else dropped after this one invocation). Dropping the future
    /// stops the guest; that member is then never used again.
    pub async fn invoke(&self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        let mut lease = self.lease().await?;
        let Some(index) = lease.kept_mut().pick() else {
            return Err(SandboxError::Stopped);
        };
        lease
            .kept_mut()
            .group
            .invoke_async(index, invocation, &mut || {})
            .await
    }

    /// [`WarmPool::invoke`] on this thread, blocking it.
    pub fn invoke_blocking(&self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        block_on(self.invoke(invocation))
    }

    async fn lease(&self) -> Result<Lease<'_>, SandboxError> {
        let idle = self.lock().pop();
        if let Some(kept) = idle {
            return Ok(Lease {
                pool: self,
                kept: Some(kept),
                keep: true,
            });
        }
        let room = self.capacity.saturating_sub(self.ready());
        let size = (self.template.shared.config.group as usize)
            .min(room)
            .max(1);
        let group = SandboxGroup::start_async(&self.template, size).await?;
        let keep = room > 0;
        if keep {
            self.kept.fetch_add(size, Ordering::Relaxed);
        }
        Ok(Lease {
            pool: self,
            kept: Some(Kept { group, next: 0 }),
            keep,
        })
    }
}

/// A group out of the pool for one invocation; dropped, it goes back to
/// the idle groups while it has a member that has not failed.
struct Lease<'p> {
    pool: &'p WarmPool,
    kept: Option<Kept>,
    /// False for a group started past the pool's capacity: dropped after
    /// its one invocation.
    keep: bool,
}

impl Lease<'_> {
    fn kept_mut(&mut self) -> &mut Kept {
        self.kept
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its group until dropped"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(kept) = self.kept.take() else {
            return;
        };
        if !self.keep {
            return;
        }
        let alive = (0..kept.group.len()).any(|i| !kept.group.has_failed(i));
        if alive {
            self.pool.lock().push(kept);
        } else {
            self.pool
                .kept
                .fetch_sub(kept.group.len(), Ordering::Relaxed);
        }
    }
}
