//! The WebAssembly tier, on wasmtime.
//!
//! # How a sandbox starts fast
//! Every [`WasmEngine`] uses wasmtime's pooling instance allocator: memory
//! and table slots are reserved once at start-up, a module's initial memory
//! is mapped copy-on-write from a prepared image, and the linker's work is
//! done once per template ([`wasmtime::InstancePre`]). A slot released by a
//! sandbox is reset by rewriting only the pages it dirtied (found with
//! Linux's `PAGEMAP_SCAN`, up to a keep-resident size) rather than by
//! `madvise`, so the next sandbox in that slot takes no page faults.
//!
//! Three ways to hold instances, by what they are for: a [`WasmSandbox`] is
//! one instance in its own store; a [`SandboxGroup`] keeps many live
//! instances in one store (density); a [`ColdPool`] hands out never-used
//! instances that the engine's preparer thread made ahead of time in groups
//! (the cold path the gateway runs per request); a [`WarmPool`] keeps
//! instances alive in groups for keep-alive apps (the gateway's warm
//! path). A [`SandboxPool`] keeps sandboxes with stores of their own ready
//! under a [`crate::WarmPolicy`].
//!
//! # Guests as futures
//! Guest code runs through wasmtime's async entry points, on a fiber stack
//! from the pool (a store keeps the last one it used; at most
//! [`MAX_FIBER_STACKS`] per engine). Polled by a
//! server's worker thread, a guest that returns quickly is done in the
//! first poll, without leaving the thread; one that runs past an epoch tick
//! yields to the executor at every tick (the worker serves other requests
//! meanwhile) and is stopped at its deadline; one that sleeps awaits the
//! executor's timer. Dropping the future stops the guest. The synchronous
//! methods ([`crate::Sandbox::invoke`], [`WasmSandbox::start`]) drive the
//! same futures on the calling thread.
//!
//! # Profiles
//! - [`Profile::Fast`]: each memory slot reserves 4 GiB of address space
//!   plus guard pages, so compiled code needs no bounds checks. Few
//!   thousand slots per node.
//! - [`Profile::Dense`]: each slot reserves only the memory limit (1 MiB by
//!   default) with no guard pages; compiled code checks bounds. Hundreds of
//!   thousands of slots per node.
//!
//! # The raw interface
//! A raw entry point is an exported function of one of two types:
//! - `() -> ()`: no input, no output;
//! - `(i32 ptr, i32 len) -> i64`: the input bytes are at `ptr..ptr+len` in
//!   the exported `memory`, written there by the host into a buffer that the
//!   module returns from its exported `dwcp_alloc(len: i32) -> i32` (needed
//!   only when the input is not empty; with empty input `ptr` and `len` are
//!   0). The result packs the output as `(out_ptr << 32) | out_len`.
//!
//! # Commands and WAGI
//! A module exporting `_start` runs as a WASI preview 1 command: its
//! arguments, environment and stdin are exactly what the invocation grants,
//! stdout and stderr are captured up to the output cap, and `proc_exit`
//! sets the exit code. No sockets or host environment are reachable, and no
//! files but the directories the invocation grants ([`crate::DirGrant`]);
//! at most 128 files and streams may be open at once. A sleep in
//! `poll_oneoff` that would pass the deadline ends the invocation as timed
//! out. [`crate::wagi`] maps HTTP requests onto this.
//!
//! # wasi:http components
//! A WASI 0.2 component exporting `wasi:http/incoming-handler` is prepared
//! with [`WasmEngine::prepare_http`] into an [`HttpTemplate`] on the same
//! engine (pool, epoch deadlines, limits); each request runs in a fresh
//! instance of it, never reused.

mod blocking;
mod cache;
mod cold;
mod config;
mod epoch;
mod group;
mod http;
mod invoke;
mod pool;
mod preparer;
mod sandbox;
mod store;
mod sync;
mod template;
mod trap;
mod warm;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use cold::{BATCH, ColdPool, ColdStats, READY_SHARE, REFILL_HORIZON, ready_target};
pub use config::{
    MAX_FIBER_STACKS, MIN_RESIDENT_BYTES, Profile, SLOT_ADDRESS_SPACE_BYTES, WasmConfig,
};
pub use group::SandboxGroup;
pub use http::{HttpAnswer, HttpTemplate, INCOMING_HANDLER, is_component_artifact};
pub use pool::SandboxPool;
pub use sandbox::WasmSandbox;
pub use template::{WasmTemplate, not_webassembly};
pub use warm::WarmPool;

use crate::{Artifact, Engine, Limits, SandboxError, Tier};
use blocking::DeadlineClock;
use cache::CodeCache;
use epoch::EpochTicker;
use preparer::Preparer;
use store::StoreState;

/// The only import module a sandbox may use.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// What every template of one engine shares.
pub(crate) struct Shared {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) linker: wasmtime::Linker<StoreState>,
    /// `(module, name)` of every import the linker grants.
    pub(crate) granted: HashSet<(String, String)>,
    pub(crate) config: WasmConfig,
    pub(crate) cache: Option<CodeCache>,
    /// Sandboxes alive on this engine (the node's limit is `config.max_live`).
    pub(crate) live: AtomicUsize,
    /// Where host code reads the deadline clock.
    pub(crate) clock: DeadlineClock,
    pub(crate) _ticker: EpochTicker,
    /// Fills the engine's cold pools.
    pub(crate) preparer: Preparer,
}

impl Shared {
    /// Reserves one live slot on the node, or says why not.
    pub(crate) fn acquire_live(&self, count: usize) -> Result<(), SandboxError> {
        let limit = self.config.max_live as usize;
        let prev = self.live.fetch_add(count, Ordering::Relaxed);
        if prev + count > limit {
            self.live.fetch_sub(count, Ordering::Relaxed);
            return Err(SandboxError::LiveLimit {
                scope: "node",
                limit,
            });
        }
        Ok(())
    }

    pub(crate) fn release_live(&self, count: usize) {
        self.live.fetch_sub(count, Ordering::Relaxed);
    }
}

/// The WebAssembly isolation engine.
///
/// ```
/// use sandbox::{Artifact, Engine, Invocation, Limits, Sandbox, Template, WasmConfig, WasmEngine};
/// let engine = WasmEngine::new(WasmConfig::default()).unwrap();
/// let wat = r#"(module (memory (export "memory") 1)
///     (data (i32.const 0) "hi")
///     (func (export "greet") (param i32 i32) (result i64) (i64.const 2)))"#;
/// let template = engine.prepare(&Artifact::new(wat.into()), Limits::default()).unwrap();
/// let entry = template.entry("greet").unwrap();
/// let mut sandbox = engine.start(&template).unwrap();
/// let out = sandbox.invoke(Invocation::Call { entry, input: b"" }).unwrap();
/// assert_eq!(out.returned, b"hi");
/// ```
pub struct WasmEngine {
    shared: Arc<Shared>,
}

impl WasmEngine {
    /// Builds an engine: reserves the pool, starts the epoch ticker, opens
    /// the compiled-code cache.
    pub fn new(config: WasmConfig) -> Result<WasmEngine, SandboxError> {
        config.validate()?;
        let engine = wasmtime::Engine::new(&config.wasmtime_config())
            .map_err(|e| SandboxError::Engine(format!("cannot configure wasmtime: {e:#}")))?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        let clock = DeadlineClock {
            ticks: ticker.ticks.clone(),
            tick: config.epoch_tick,
        };
        let mut linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, StoreState::wasi_mut)
            .and_then(|()| blocking::link_poll_oneoff(&mut linker, clock.clone()))
            .map_err(|e| SandboxError::Engine(format!("cannot link WASI: {e:#}")))?;
        let granted = granted_imports(&engine, &linker);
        let cache = match &config.cache_dir {
            Some(dir) => Some(CodeCache::open(dir, &engine)?),
            None => None,
        };
        Ok(WasmEngine {
            shared: Arc::new(Shared {
                engine,
                linker,
                granted,
                config,
                cache,
                live: AtomicUsize::new(0),
                clock,
                _ticker: ticker,
                preparer: Preparer::start()?,
            }),
        })
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &WasmConfig {
        &self.shared.config
    }

    /// Validates, compiles and links a wasi:http component (binary or
    /// text) under `limits`: each request then runs in a fresh instance of
    /// it ([`HttpTemplate::handle`]).
    pub fn prepare_http(
        &self,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<Arc<HttpTemplate>, SandboxError> {
        HttpTemplate::prepare(&self.shared, artifact, limits).map(Arc::new)
    }

    /// Sandboxes alive on this engine right now.
    pub fn live(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }
}

impl Engine for WasmEngine {
    type Template = WasmTemplate;
    type Sandbox = WasmSandbox;

    fn tier(&self) -> Tier {
        Tier::Wasm
    }

    fn prepare(
        &self,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<Arc<WasmTemplate>, SandboxError> {
        WasmTemplate::prepare(&self.shared, artifact, limits).map(Arc::new)
    }

    fn start(&self, template: &Arc<WasmTemplate>) -> Result<WasmSandbox, SandboxError> {
        WasmSandbox::start(template)
    }
}

/// Lists what the linker defines, once, so that templates can name an
/// ungranted import precisely instead of relaying the linker's message.
fn granted_imports(
    engine: &wasmtime::Engine,
    linker: &wasmtime::Linker<StoreState>,
) -> HashSet<(String, String)> {
    let mut store = wasmtime::Store::new(engine, StoreState::new(&Limits::default()));
    linker
        .iter(&mut store)
        .map(|(module, name, _)| (module.to_string(), name.to_string()))
        .collect()
}
