//! What each sandbox's wasmtime `Store` carries: its limiter and, for
//! modules that use WASI, the WASI context of the current invocation.

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::Limits;

/// Raised by [`Limiter`] when a memory or table would outgrow its limit;
/// [`super::trap::classify`] turns it into a typed error.
#[derive(Debug)]
pub(crate) enum LimitHit {
    Memory { limit: u64, wanted: u64 },
    Table { limit: u32, wanted: u64 },
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Memory { limit, wanted } => {
                write!(
                    f,
                    "memory limit of {limit} bytes exceeded (wanted {wanted})"
                )
            }
            LimitHit::Table { limit, wanted } => {
                write!(
                    f,
                    "table limit of {limit} elements exceeded (wanted {wanted})"
                )
            }
        }
    }
}

impl std::error::Error for LimitHit {}

/// Enforces one sandbox's memory and table limits. Growth past a limit is a
/// trap, not a silent `-1`, so that a module cannot spin on failed growth.
pub(crate) struct Limiter {
    memory_bytes: u64,
    table_elements: u32,
}

impl Limiter {
    /// The limiter of a sandbox under `limits`.
    pub(crate) fn new(limits: &Limits) -> Limiter {
        Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            return Err(wasmtime::Error::new(LimitHit::Memory {
                limit: self.memory_bytes,
                wanted: desired as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > u64::from(self.table_elements) {
            return Err(wasmtime::Error::new(LimitHit::Table {
                limit: self.table_elements,
                wanted: desired as u64,
            }));
        }
        Ok(true)
    }
}

pub(crate) struct StoreState {
    pub(crate) limiter: Limiter,
    wasi: Option<WasiP1Ctx>,
    /// The epoch tick at which the current invocation's deadline falls.
    pub(crate) deadline_tick: u64,
}

impl StoreState {
    pub(crate) fn new(limits: &Limits) -> StoreState {
        StoreState {
            limiter: Limiter::new(limits),
            wasi: None,
            deadline_tick: u64::MAX,
        }
    }

    /// The WASI context the linker's functions use. A module that calls WASI
    /// before any invocation granted one (from its start function) gets an
    /// empty context: no args, no env, empty stdin, stdout dropped.
    pub(crate) fn wasi_mut(&mut self) -> &mut WasiP1Ctx {
        self.wasi
            .get_or_insert_with(|| wasmtime_wasi::WasiCtxBuilder::new().build_p1())
    }

    pub(crate) fn set_wasi(&mut self, ctx: WasiP1Ctx) {
        self.wasi = Some(ctx);
    }

    pub(crate) fn clear_wasi(&mut self) {
        self.wasi = None;
    }
}
