//! Cold lanes: the fastest way to give every invocation a brand-new
//! instance, for one thread.

use std::sync::Arc;

use wasmtime::{Instance, Store};

use super::invoke;
use super::store::StoreState;
use super::template::{LiveSlots, WasmTemplate};
use crate::{Invocation, Output, SandboxError};

/// Instances prepared together in one wasmtime `Store`.
struct Batch {
    store: Store<StoreState>,
    instances: Vec<Instance>,
    next: usize,
    /// After the store: slots count as free only once the store is gone.
    _slots: LiveSlots,
}

impl Batch {
    fn prepare(template: &Arc<WasmTemplate>, size: usize) -> Result<Batch, SandboxError> {
        let slots = LiveSlots::acquire(template, size)?;
        let mut store = invoke::new_store(template)?;
        let mut instances = Vec::with_capacity(size);
        for _ in 0..size {
            instances.push(invoke::instantiate(&mut store, template)?);
        }
        Ok(Batch {
            store,
            instances,
            next: 0,
            _slots: slots,
        })
    }

    fn exhausted(&self) -> bool {
        self.next >= self.instances.len()
    }
}

/// Gives every invocation an instance that has never run one: the cold
/// start, at the lowest cost per sandbox.
///
/// A lane instantiates instances in batches that share one wasmtime
/// `Store` — the host-side container — so that creating, registering and
/// tearing down a store is paid once per batch rather than once per
/// sandbox. Instances in a batch share no WebAssembly state: each has its
/// own memory, tables and globals, and a command's WASI context is created
/// for its invocation and dropped after it. Each instance runs exactly one
/// invocation; a batch is torn down whole once all its instances have run.
///
/// A lane belongs to one thread (`&mut self`); a server runs one per worker.
/// [`ColdLane::prepare`] does the instantiation and teardown ahead of time,
/// off the request path; [`ColdLane::invoke`] prepares inline when nothing
/// is ready.
pub struct ColdLane {
    template: Arc<WasmTemplate>,
    batch_size: usize,
    current: Option<Batch>,
    ready: Option<Batch>,
}

impl ColdLane {
    /// The default number of instances per batch.
    pub const DEFAULT_BATCH: usize = 16;

    /// A lane for `template` preparing `batch_size` instances at a time (at
    /// least 1). It holds at most two batches' worth of pool slots.
    pub fn new(template: Arc<WasmTemplate>, batch_size: usize) -> ColdLane {
        ColdLane {
            template,
            batch_size: batch_size.max(1),
            current: None,
            ready: None,
        }
    }

    /// Never-used instances ready right now.
    pub fn ready(&self) -> usize {
        let left = |b: &Option<Batch>| b.as_ref().map_or(0, |b| b.instances.len() - b.next);
        left(&self.current) + left(&self.ready)
    }

    /// Tears down a used-up batch and prepares the next, if needed, so that
    /// the next [`ColdLane::invoke`] does neither.
    pub fn prepare(&mut self) -> Result<(), SandboxError> {
        if self.current.as_ref().is_some_and(Batch::exhausted) {
            self.current = None;
        }
        if self.current.is_none() {
            self.current = self.ready.take();
        }
        if self.ready.is_none() {
            self.ready = Some(Batch::prepare(&self.template, self.batch_size)?);
        }
        Ok(())
    }

    /// Runs `invocation` on an instance that has never run one. The
    /// instance is never used again.
    pub fn invoke(&mut self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        if self.current.as_ref().is_none_or(Batch::exhausted) {
            self.current = None;
            self.current = match self.ready.take() {
                Some(b) => Some(b),
                None => Some(Batch::prepare(&self.template, self.batch_size)?),
            };
        }
        let Some(batch) = self.current.as_mut() else {
            return Err(SandboxError::Engine("cold lane has no batch".into()));
        };
        let instance = batch.instances[batch.next];
        batch.next += 1;
        let mut cache = None;
        invoke::run(
            &mut batch.store,
            instance,
            &self.template,
            invocation,
            &mut cache,
        )
    }
}
