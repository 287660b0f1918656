//! Running one invocation on an instance: arming its limits, resolving the
//! entry point, moving bytes across the raw interface, capturing a
//! command's output. Shared by [`super::WasmSandbox`] and
//! [`super::SandboxGroup`] (and through it [`super::ColdPool`]), which
//! differ only in how they own their store.
//!
//! Guest code always runs through wasmtime's async entry points, on a
//! fiber: polled by a server's worker thread, a short guest finishes in
//! the first poll and a long one yields at each epoch tick
//! ([`super::epoch::at_tick`]); synchronous callers drive the same futures
//! with [`super::sync::block_on`].

use wasmtime::{Extern, Func, Instance, Memory, ModuleExport, Store, TypedFunc};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiView};

use super::store::StoreState;
use super::template::{EntryKind, WasmTemplate};
use super::trap::classify;
use crate::{DirGrant, EntryId, Invocation, Output, SandboxError};

/// Most WASI resources (open files, streams) one command may hold at once.
pub(crate) const MAX_RESOURCES: usize = 128;

/// A resolved, type-checked raw entry point of one instance.
pub(crate) enum Typed {
    Unit(TypedFunc<(), ()>),
    Bytes(TypedFunc<(i32, i32), i64>),
}

/// The entry point an instance resolved last, kept so that a warm instance
/// calls straight into it.
pub(crate) type EntryCache = Option<(EntryId, Typed)>;

/// A fresh store for sandboxes of `template`, with its limits armed.
pub(crate) fn new_store(template: &WasmTemplate) -> Result<Store<StoreState>, SandboxError> {
    let mut store = Store::new(&template.shared.engine, StoreState::new(&template.limits));
    store.limiter(|s| &mut s.limiter);
    let clock = template.shared.clock.clone();
    store.epoch_deadline_callback(move |ctx| {
        let tick = super::epoch::at_tick(clock.now(), ctx.data().deadline_tick);
        Ok(super::epoch::update(tick))
    });
    arm(&mut store, template)?;
    Ok(store)
}

/// Instantiates `template` in `store`; the start function runs under the
/// template's deadline and fuel.
pub(crate) async fn instantiate(
    store: &mut Store<StoreState>,
    template: &WasmTemplate,
) -> Result<Instance, SandboxError> {
    arm(store, template)?;
    template
        .pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| classify(e, &template.limits))
}

/// Re-arms the deadline (and fuel) for the next piece of guest code: the
/// guest is checked at the next tick (and yields there, see
/// [`super::epoch::at_tick`]), and stopped once the deadline's tick has
/// come.
fn arm(store: &mut Store<StoreState>, template: &WasmTemplate) -> Result<(), SandboxError> {
    store.set_epoch_deadline(template.deadline_ticks.min(super::epoch::YIELD_EVERY_TICKS));
    store.data_mut().deadline_tick = template
        .shared
        .clock
        .now()
        .saturating_add(template.deadline_ticks);
    if template.shared.config.fuel {
        // On a metering engine, no budget means an unlimited one.
        store
            .set_fuel(template.limits.fuel.unwrap_or(u64::MAX))
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
    }
    Ok(())
}

/// Runs `invocation` on `instance`. `entering` is called once, right
/// before the call into the guest's entry point: what came before it is
/// the sandbox's start (callers time it).
pub(crate) async fn run(
    store: &mut Store<StoreState>,
    instance: Instance,
    template: &WasmTemplate,
    invocation: Invocation<'_>,
    cache: &mut EntryCache,
    entering: &mut (dyn FnMut() + Send),
) -> Result<Output, SandboxError> {
    arm(store, template)?;
    // A WASI context left by an invocation that was stopped mid-call (its
    // future dropped) must not reach the next one: a raw call gets an
    // empty one if it uses WASI at all.
    store.data_mut().clear_wasi();
    let mut out = match invocation {
        Invocation::Call { entry, input } => {
            if !matches!(cache, Some((id, _)) if *id == entry) {
                *cache = Some((entry, resolve(store, instance, template, entry)?));
            }
            let Some((_, typed)) = cache.as_ref() else {
                return Err(SandboxError::Engine("entry cache is empty".into()));
            };
            call(store, instance, template, entry, typed, input, entering).await?
        }
        Invocation::Command {
            args,
            env,
            stdin,
            dirs,
        } => {
            let grants = Command {
                args,
                env,
                stdin,
                dirs,
            };
            command(store, instance, template, &grants, entering).await?
        }
    };
    if let Some(fuel) = template.limits.fuel {
        out.fuel_used = Some(fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
    }
    Ok(out)
}

fn func(
    store: &mut Store<StoreState>,
    instance: Instance,
    export: &ModuleExport,
) -> Result<Func, SandboxError> {
    match instance.get_module_export(&mut *store, export) {
        Some(Extern::Func(f)) => Ok(f),
        _ => Err(SandboxError::Engine(
            "a resolved export is missing from its instance".into(),
        )),
    }
}

fn engine_err(e: wasmtime::Error) -> SandboxError {
    SandboxError::Engine(format!("{e:#}"))
}

fn resolve(
    store: &mut Store<StoreState>,
    instance: Instance,
    template: &WasmTemplate,
    entry: EntryId,
) -> Result<Typed, SandboxError> {
    let spec = template.entry_spec(entry);
    let f = func(store, instance, &spec.export)?;
    Ok(match spec.kind {
        EntryKind::Unit => Typed::Unit(f.typed(&*store).map_err(engine_err)?),
        EntryKind::Bytes => Typed::Bytes(f.typed(&*store).map_err(engine_err)?),
    })
}

fn memory(
    store: &mut Store<StoreState>,
    instance: Instance,
    template: &WasmTemplate,
) -> Option<Memory> {
    let export = template.memory.as_ref()?;
    match instance.get_module_export(&mut *store, export) {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

async fn call(
    store: &mut Store<StoreState>,
    instance: Instance,
    template: &WasmTemplate,
    entry: EntryId,
    typed: &Typed,
    input: &[u8],
    entering: &mut (dyn FnMut() + Send),
) -> Result<Output, SandboxError> {
    let limits = &template.limits;
    let fail = |e| classify(e, limits);
    let name = || template.entry_spec(entry).name.clone();
    let f = match typed {
        Typed::Unit(f) => {
            if !input.is_empty() {
                return Err(SandboxError::ExportType {
                    name: name(),
                    found: "() -> ()".into(),
                    expected: "an entry point that takes input must be `(i32, i32) -> i64`",
                });
            }
            entering();
            f.call_async(&mut *store, ()).await.map_err(fail)?;
            return Ok(Output::default());
        }
        Typed::Bytes(f) => f,
    };
    let memory = memory(store, instance, template).ok_or_else(|| SandboxError::ExportType {
        name: name(),
        found: "(i32, i32) -> i64".into(),
        expected: "a bytes entry point needs an exported `memory`",
    })?;
    let (ptr, len) = if input.is_empty() {
        (0, 0)
    } else {
        let alloc = template
            .alloc
            .as_ref()
            .ok_or_else(|| SandboxError::MissingExport {
                name: "dwcp_alloc".into(),
                available: "(needed to pass input to a bytes entry point)".into(),
            })?;
        let len = i32::try_from(input.len()).map_err(|_| SandboxError::BadOutput {
            entry: name(),
            reason: format!("input of {} bytes does not fit in i32", input.len()),
        })?;
        let alloc = func(store, instance, alloc)?
            .typed::<i32, i32>(&*store)
            .map_err(engine_err)?;
        entering();
        let ptr = alloc.call_async(&mut *store, len).await.map_err(fail)?;
        memory
            .write(&mut *store, ptr as u32 as usize, input)
            .map_err(|_| SandboxError::BadOutput {
                entry: "dwcp_alloc".into(),
                reason: format!("returned {ptr:#x}, where {len} bytes do not fit in memory"),
            })?;
        (ptr, len)
    };
    if input.is_empty() {
        entering();
    }
    let packed = f.call_async(&mut *store, (ptr, len)).await.map_err(fail)?;
    let out_ptr = (packed as u64 >> 32) as usize;
    let out_len = (packed as u64 & 0xffff_ffff) as usize;
    let data = memory.data(&*store);
    let Some(bytes) = data.get(out_ptr..out_ptr.saturating_add(out_len)) else {
        return Err(SandboxError::BadOutput {
            entry: name(),
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

/// A WASI command's grants.
struct Command<'a> {
    args: &'a [String],
    env: &'a [(String, String)],
    stdin: &'a [u8],
    dirs: &'a [DirGrant],
}

async fn command(
    store: &mut Store<StoreState>,
    instance: Instance,
    template: &WasmTemplate,
    grants: &Command<'_>,
    entering: &mut (dyn FnMut() + Send),
) -> Result<Output, SandboxError> {
    let Command {
        args,
        env,
        stdin,
        dirs,
    } = *grants;
    let Some(start) = template.start.as_ref() else {
        return Err(SandboxError::MissingExport {
            name: "_start".into(),
            available: template.function_exports(),
        });
    };
    let start = func(store, instance, start)?
        .typed::<(), ()>(&*store)
        .map_err(engine_err)?;
    let cap = template.limits.output_bytes;
    // One byte over the cap tells a full buffer from a truncated one.
    let stdout = MemoryOutputPipe::new(cap.saturating_add(1));
    let stderr = MemoryOutputPipe::new(cap.saturating_add(1));
    let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
    builder
        .args(args)
        .envs(env)
        .stdin(MemoryInputPipe::new(stdin.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for dir in dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| SandboxError::Grant {
                resource: format!("directory {} as {}", dir.host.display(), dir.guest),
                reason: format!("{e:#}"),
            })?;
    }
    let mut ctx = builder.build_p1();
    // Every open file or stream is a host resource (files hold a host file
    // descriptor): cap them so a guest cannot exhaust the host's.
    ctx.ctx().table.set_max_capacity(MAX_RESOURCES);
    store.data_mut().set_wasi(ctx);
    entering();
    let result = start.call_async(&mut *store, ()).await;
    // Nothing of this invocation's context outlives it.
    store.data_mut().clear_wasi();
    let exit_code = match result {
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

fn capped(pipe: &MemoryOutputPipe, cap: usize) -> (Vec<u8>, bool) {
    let bytes = pipe.contents();
    (bytes[..bytes.len().min(cap)].to_vec(), bytes.len() > cap)
}
