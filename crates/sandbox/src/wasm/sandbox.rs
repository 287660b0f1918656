//! One live WebAssembly instance in a store of its own.

use std::sync::Arc;

use wasmtime::{Instance, Store};

use super::invoke::{self, EntryCache};
use super::store::StoreState;
use super::template::{LiveSlots, WasmTemplate};
use crate::{Invocation, Output, Sandbox, SandboxError};

/// A live instance of a [`WasmTemplate`], alone in its store. Dropping it
/// (or [`Sandbox::stop`]) releases its pool slot.
pub struct WasmSandbox {
    store: Store<StoreState>,
    instance: Instance,
    /// Set when an invocation failed: the instance's state is then unknown,
    /// and it refuses further invocations.
    failed: bool,
    /// Set once the sandbox has run an invocation.
    used: bool,
    cache: EntryCache,
    /// Declared after the store so that the pool slot is free before the
    /// live count says so.
    slot: LiveSlots,
}

impl WasmSandbox {
    /// Starts a fresh instance of `template`, running the module's start
    /// function under the template's deadline and limits.
    pub fn start(template: &Arc<WasmTemplate>) -> Result<WasmSandbox, SandboxError> {
        let slot = LiveSlots::acquire(template, 1)?;
        let mut store = invoke::new_store(template)?;
        let instance = invoke::instantiate(&mut store, template)?;
        Ok(WasmSandbox {
            store,
            instance,
            failed: false,
            used: false,
            cache: None,
            slot,
        })
    }

    /// The template this sandbox was started from.
    pub fn template(&self) -> &Arc<WasmTemplate> {
        self.slot.template()
    }

    /// True when an earlier invocation failed and this sandbox refuses more.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// True once the sandbox has run an invocation (it is no longer cold).
    pub fn has_run(&self) -> bool {
        self.used
    }
}

impl Sandbox for WasmSandbox {
    fn invoke(&mut self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        if self.failed {
            return Err(SandboxError::Stopped);
        }
        self.used = true;
        let result = invoke::run(
            &mut self.store,
            self.instance,
            self.slot.template(),
            invocation,
            &mut self.cache,
        );
        self.failed = result.is_err();
        result
    }
}
