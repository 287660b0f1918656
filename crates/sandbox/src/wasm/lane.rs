//! Cold lanes: the fastest way to give every invocation a brand-new
//! instance, for one thread.

use std::sync::Arc;

use super::SandboxGroup;
use super::template::WasmTemplate;
use crate::{Invocation, Output, SandboxError};

/// A group of never-used instances and how many of them have run.
struct Batch {
    group: SandboxGroup,
    next: usize,
}

impl Batch {
    fn prepare(template: &Arc<WasmTemplate>, size: usize) -> Result<Batch, SandboxError> {
        Ok(Batch {
            group: SandboxGroup::start(template, size)?,
            next: 0,
        })
    }

    fn exhausted(&self) -> bool {
        self.next >= self.group.len()
    }
}

/// Gives every invocation an instance that has never run one: the cold
/// start, at the lowest cost per sandbox.
///
/// A lane instantiates instances in batches, each a [`SandboxGroup`] whose
/// members share one wasmtime `Store` — the host-side container — so that
/// creating, registering and tearing down a store is paid once per batch
/// rather than once per sandbox. Members share no WebAssembly state: each
/// has its own memory, tables and globals, and a command's WASI context is
/// created for its invocation and dropped after it. Each instance runs
/// exactly one invocation; a batch is torn down whole once all of its
/// instances have run.
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
        let left = |b: &Option<Batch>| b.as_ref().map_or(0, |b| b.group.len() - b.next);
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
        let batch = match self.current.take() {
            Some(b) if !b.exhausted() => self.current.insert(b),
            // A used-up batch is dropped here, releasing its slots first.
            _ => {
                let next = match self.ready.take() {
                    Some(b) => b,
                    None => Batch::prepare(&self.template, self.batch_size)?,
                };
                self.current.insert(next)
            }
        };
        let index = batch.next;
        batch.next += 1;
        batch.group.invoke(index, invocation)
    }
}
