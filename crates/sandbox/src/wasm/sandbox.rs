//! One live WebAssembly instance and its invocations.

use std::sync::Arc;

use wasmtime::{Extern, Func, Instance, Memory, ModuleExport, Store};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use super::store::StoreState;
use super::template::{EntryKind, WasmTemplate};
use super::trap::classify;
use crate::{EntryId, Invocation, Output, Sandbox, SandboxError};

/// Gives a template's live slot back when the sandbox is gone. Declared
/// after the store in [`WasmSandbox`] so that the pool slot is free before
/// the count says so.
struct LiveSlot(Arc<WasmTemplate>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.release_live();
    }
}

/// A live instance of a [`WasmTemplate`]. Dropping it (or
/// [`Sandbox::stop`]) releases its pool slot.
pub struct WasmSandbox {
    store: Store<StoreState>,
    instance: Instance,
    /// Set when an invocation failed: the instance's state is then unknown,
    /// and it refuses further invocations.
    failed: bool,
    slot: LiveSlot,
}

impl WasmSandbox {
    /// Starts a fresh instance of `template`, running the module's start
    /// function under the template's deadline and limits.
    pub fn start(template: &Arc<WasmTemplate>) -> Result<WasmSandbox, SandboxError> {
        template.acquire_live()?;
        let slot = LiveSlot(template.clone());
        let limits = &template.limits;
        let mut store = Store::new(&template.shared.engine, StoreState::new(limits));
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(template.deadline_ticks);
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        }
        let instance = template
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, limits))?;
        Ok(WasmSandbox {
            store,
            instance,
            failed: false,
            slot,
        })
    }

    /// The template this sandbox was started from.
    pub fn template(&self) -> &Arc<WasmTemplate> {
        &self.slot.0
    }

    /// True when an earlier invocation failed and this sandbox refuses more.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    fn func(&mut self, export: &ModuleExport) -> Result<Func, SandboxError> {
        match self.instance.get_module_export(&mut self.store, export) {
            Some(Extern::Func(f)) => Ok(f),
            _ => Err(SandboxError::Engine(
                "a resolved export is missing from its instance".into(),
            )),
        }
    }

    fn memory(&mut self) -> Option<Memory> {
        let export = self.slot.0.memory.as_ref()?;
        match self.instance.get_module_export(&mut self.store, export) {
            Some(Extern::Memory(m)) => Some(m),
            _ => None,
        }
    }

    fn call(&mut self, entry: EntryId, input: &[u8]) -> Result<Output, SandboxError> {
        let template = self.slot.0.clone();
        let spec = template.entry_spec(entry);
        let func = self.func(&spec.export)?;
        let limits = &template.limits;
        let fail = |e| classify(e, limits);
        match spec.kind {
            EntryKind::Unit => {
                if !input.is_empty() {
                    return Err(SandboxError::ExportType {
                        name: spec.name.clone(),
                        found: "() -> ()".into(),
                        expected: "an entry point that takes input must be `(i32, i32) -> i64`",
                    });
                }
                let typed = func
                    .typed::<(), ()>(&self.store)
                    .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
                typed.call(&mut self.store, ()).map_err(fail)?;
                Ok(Output::default())
            }
            EntryKind::Bytes => {
                let memory = self.memory().ok_or_else(|| SandboxError::ExportType {
                    name: spec.name.clone(),
                    found: "(i32, i32) -> i64".into(),
                    expected: "a bytes entry point needs an exported `memory`",
                })?;
                let (ptr, len) = if input.is_empty() {
                    (0, 0)
                } else {
                    let alloc = template.alloc.as_ref().ok_or_else(|| {
                        SandboxError::MissingExport {
                            name: "dwcp_alloc".into(),
                            available: "(needed to pass input to a bytes entry point)".into(),
                        }
                    })?;
                    let len = i32::try_from(input.len()).map_err(|_| SandboxError::BadOutput {
                        entry: spec.name.clone(),
                        reason: format!("input of {} bytes does not fit in i32", input.len()),
                    })?;
                    let alloc = self
                        .func(alloc)?
                        .typed::<i32, i32>(&self.store)
                        .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
                    let ptr = alloc.call(&mut self.store, len).map_err(fail)?;
                    memory
                        .write(&mut self.store, ptr as u32 as usize, input)
                        .map_err(|_| SandboxError::BadOutput {
                            entry: "dwcp_alloc".into(),
                            reason: format!(
                                "returned {ptr:#x}, where {len} bytes do not fit in memory"
                            ),
                        })?;
                    (ptr, len)
                };
                let typed = func
                    .typed::<(i32, i32), i64>(&self.store)
                    .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
                let packed = typed.call(&mut self.store, (ptr, len)).map_err(fail)?;
                let out_ptr = (packed as u64 >> 32) as usize;
                let out_len = (packed as u64 & 0xffff_ffff) as usize;
                let data = memory.data(&self.store);
                let Some(bytes) = data.get(out_ptr..out_ptr.saturating_add(out_len)) else {
                    return Err(SandboxError::BadOutput {
                        entry: spec.name.clone(),
                        reason: format!(
                            "returned {out_len} bytes at {out_ptr:#x}, outside its {} byte memory",
                            data.len()
                        ),
                    });
                };
                let cap = limits.output_bytes;
                Ok(Output {
                    returned: bytes[..bytes.len().min(cap)].to_vec(),
                    truncated: bytes.len() > cap,
                    ..Output::default()
                })
            }
        }
    }

    fn command(
        &mut self,
        args: &[String],
        env: &[(String, String)],
        stdin: &[u8],
    ) -> Result<Output, SandboxError> {
        let template = self.slot.0.clone();
        let Some(start) = template.start.as_ref() else {
            return Err(SandboxError::MissingExport {
                name: "_start".into(),
                available: "(a command must export `_start: () -> ()`)".into(),
            });
        };
        let func = self.func(start)?;
        let cap = template.limits.output_bytes;
        // One byte over the cap tells a full buffer from a truncated one.
        let stdout = MemoryOutputPipe::new(cap.saturating_add(1));
        let stderr = MemoryOutputPipe::new(cap.saturating_add(1));
        let ctx = wasmtime_wasi::WasiCtxBuilder::new()
            .args(args)
            .envs(env)
            .stdin(MemoryInputPipe::new(stdin.to_vec()))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        self.store.data_mut().set_wasi(ctx);
        let typed = func
            .typed::<(), ()>(&self.store)
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let exit_code = match typed.call(&mut self.store, ()) {
            Ok(()) => 0,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => exit.0,
                None => return Err(classify(e, &template.limits)),
            },
        };
        let (stdout, cut_out) = capped(&stdout, cap);
        let (stderr, cut_err) = capped(&stderr, cap);
        Ok(Output {
            stdout,
            stderr,
            exit_code,
            truncated: cut_out || cut_err,
            ..Output::default()
        })
    }
}

fn capped(pipe: &MemoryOutputPipe, cap: usize) -> (Vec<u8>, bool) {
    let bytes = pipe.contents();
    (bytes[..bytes.len().min(cap)].to_vec(), bytes.len() > cap)
}

impl Sandbox for WasmSandbox {
    fn invoke(&mut self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        if self.failed {
            return Err(SandboxError::Stopped);
        }
        let template = self.slot.0.clone();
        self.store.set_epoch_deadline(template.deadline_ticks);
        if let Some(fuel) = template.limits.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        }
        let result = match invocation {
            Invocation::Call { entry, input } => self.call(entry, input),
            Invocation::Command { args, env, stdin } => self.command(args, env, stdin),
        };
        match result {
            Ok(mut out) => {
                if let Some(fuel) = template.limits.fuel {
                    out.fuel_used = Some(fuel - self.store.get_fuel().unwrap_or(0));
                }
                Ok(out)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}
