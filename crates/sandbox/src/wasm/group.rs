//! Sandbox groups: many live instances of one template in one store.

use std::sync::Arc;

use wasmtime::{Instance, Store};

use super::invoke::{self, EntryCache};
use super::store::StoreState;
use super::sync::block_on;
use super::template::{LiveSlots, WasmTemplate};
use crate::{Invocation, Output, SandboxError};

struct Member {
    instance: Instance,
    failed: bool,
    cache: EntryCache,
}

/// Many live sandboxes of one template sharing one wasmtime `Store`, the
/// host-side container, so that its bookkeeping is paid once per group
/// instead of once per sandbox: the densest way to keep sandboxes alive,
/// and the unit in which a [`super::ColdPool`] prepares cold instances.
///
/// Members share no WebAssembly state: each has its own memory, tables and
/// globals, which persist across that member's invocations (as in a
/// keep-alive pool); a command's WASI context is created for one invocation
/// and dropped after it. A member whose invocation failed refuses further
/// invocations; the others are unaffected. Memory is returned when the
/// whole group is dropped. A group is used by one thread at a time.
///
/// ```
/// use sandbox::{Artifact, Engine, Invocation, Limits, SandboxGroup, Template, WasmConfig, WasmEngine};
/// let engine = WasmEngine::new(WasmConfig { max_live: 8, ..WasmConfig::dense() }).unwrap();
/// let wat = r#"(module (memory 1) (func (export "run")))"#;
/// let template = engine
///     .prepare(&Artifact::new(wat.into()), Limits { memory_bytes: 1 << 20, table_elements: 100, ..Limits::default() })
///     .unwrap();
/// let entry = template.entry("run").unwrap();
/// let mut group = SandboxGroup::start(&template, 4).unwrap();
/// assert_eq!(engine.live(), 4);
/// group.invoke(3, Invocation::Call { entry, input: b"" }).unwrap();
/// ```
pub struct SandboxGroup {
    store: Store<StoreState>,
    members: Vec<Member>,
    template: Arc<WasmTemplate>,
    /// After the store: slots count as free only once the store is gone.
    _slots: LiveSlots,
}

impl SandboxGroup {
    /// Starts `size` fresh instances of `template` in one store, reserving
    /// their live slots (on the template and the node) up front. Blocks
    /// this thread while the instances' start functions run.
    pub fn start(template: &Arc<WasmTemplate>, size: usize) -> Result<SandboxGroup, SandboxError> {
        block_on(SandboxGroup::start_async(template, size))
    }

    /// [`SandboxGroup::start`] as a future.
    pub async fn start_async(
        template: &Arc<WasmTemplate>,
        size: usize,
    ) -> Result<SandboxGroup, SandboxError> {
        let slots = LiveSlots::acquire(template, size)?;
        let mut store = invoke::new_store(template)?;
        let mut members = Vec::with_capacity(size);
        for _ in 0..size {
            members.push(Member {
                instance: invoke::instantiate(&mut store, template).await?,
                failed: false,
                cache: None,
            });
        }
        Ok(SandboxGroup {
            store,
            members,
            template: template.clone(),
            _slots: slots,
        })
    }

    /// How many members the group has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when member `index`'s last invocation failed (it refuses
    /// more), or there is no such member.
    pub fn has_failed(&self, index: usize) -> bool {
        self.members.get(index).is_none_or(|m| m.failed)
    }

    /// True for a group of no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Runs `invocation` on member `index`, blocking this thread.
    pub fn invoke(
        &mut self,
        index: usize,
        invocation: Invocation<'_>,
    ) -> Result<Output, SandboxError> {
        block_on(self.invoke_async(index, invocation, &mut || {}))
    }

    /// Runs `invocation` on member `index` as a future (see
    /// [`super::WasmSandbox::invoke_async`]); `entering` is called right
    /// before the guest's entry point is. Dropping the future stops the
    /// guest and leaves that member failed.
    pub async fn invoke_async(
        &mut self,
        index: usize,
        invocation: Invocation<'_>,
        entering: &mut (dyn FnMut() + Send),
    ) -> Result<Output, SandboxError> {
        let len = self.members.len();
        let member = self
            .members
            .get_mut(index)
            .ok_or_else(|| SandboxError::InvalidLimit {
                field: "member",
                value: index.to_string(),
                allowed: format!("a member index below {len}"),
            })?;
        if member.failed {
            return Err(SandboxError::Stopped);
        }
        // Failed until the guest returns: a dropped future leaves it so.
        member.failed = true;
        let result = invoke::run(
            &mut self.store,
            member.instance,
            &self.template,
            invocation,
            &mut member.cache,
            entering,
        )
        .await;
        member.failed = result.is_err();
        result
    }
}
