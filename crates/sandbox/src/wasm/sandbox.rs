//! One live WebAssembly instance in a store of its own.

use std::sync::Arc;

use wasmtime::{Instance, Store};

use super::invoke::{self, EntryCache};
use super::store::StoreState;
use super::sync::block_on;
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
    /// function under the template's deadline and limits. Blocks this
    /// thread; [`WasmSandbox::start_async`] is the same as a future.
    pub fn start(template: &Arc<WasmTemplate>) -> Result<WasmSandbox, SandboxError> {
        block_on(WasmSandbox::start_async(template))
    }

    /// [`WasmSandbox::start`] as a future: a start function that runs
    /// long yields to the executor at every epoch tick.
    pub async fn start_async(template: &Arc<WasmTemplate>) -> Result<WasmSandbox, SandboxError> {
        let slot = LiveSlots::acquire(template, 1)?;
        let mut store = invoke::new_store(template)?;
        let instance = invoke::instantiate(&mut store, template).await?;
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

    /// Runs `invocation` as a future: a short guest is done in the first
    /// poll, a long one yields to the executor at every epoch tick and is
    /// stopped at its deadline. Dropping the future stops the guest; the
    /// sandbox then refuses further invocations.
    pub async fn invoke_async(
        &mut self,
        invocation: Invocation<'_>,
    ) -> Result<Output, SandboxError> {
        if self.failed {
            return Err(SandboxError::Stopped);
        }
        self.used = true;
        // Until the guest returns, its state is unknown: a dropped future
        // leaves the sandbox failed.
        self.failed = true;
        let result = invoke::run(
            &mut self.store,
            self.instance,
            self.slot.template(),
            invocation,
            &mut self.cache,
            &mut || {},
        )
        .await;
        self.failed = result.is_err();
        result
    }
}

impl Sandbox for WasmSandbox {
    fn invoke(&mut self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        block_on(self.invoke_async(invocation))
    }
}
