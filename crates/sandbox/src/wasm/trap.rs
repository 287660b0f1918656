//! Turns wasmtime's errors into [`SandboxError`]s that say what happened.

use std::fmt::Write as _;

use wasmtime::{Trap, WasmBacktrace};

use super::store::LimitHit;
use crate::{Limits, SandboxError};

/// Classifies a failed instantiation or call of a sandbox under `limits`.
pub(crate) fn classify(err: wasmtime::Error, limits: &Limits) -> SandboxError {
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return match *hit {
            LimitHit::Memory { limit, wanted } => SandboxError::MemoryLimit {
                limit_bytes: limit,
                wanted_bytes: wanted,
            },
            LimitHit::Table { limit, wanted } => SandboxError::TableLimit { limit, wanted },
        };
    }
    if let Some(limit) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        // Only fiber stacks can run out here: the other pools are sized to
        // `max_live`, which the live count checks before wasmtime is asked.
        return SandboxError::LiveLimit {
            scope: "node's fiber stacks (stores that ran guest code)",
            limit: limit_of(limit),
        };
    }
    if let Some(wasmtime::component::ResourceTableError::Full) = err.downcast_ref() {
        return SandboxError::ResourceLimit {
            limit: super::invoke::MAX_RESOURCES,
        };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => SandboxError::Timeout {
                deadline: limits.deadline,
            },
            Trap::OutOfFuel => SandboxError::FuelExhausted {
                fuel: limits.fuel.unwrap_or(0),
            },
            Trap::StackOverflow => SandboxError::StackOverflow,
            other => {
                let mut message = other.to_string();
                if let Some(bt) = err.downcast_ref::<WasmBacktrace>()
                    && let Some(frame) = bt.frames().first()
                {
                    let name = frame.func_name().unwrap_or("<unnamed>");
                    let _ = write!(message, " in function {} `{name}`", frame.func_index());
                    if let Some(offset) = frame.module_offset() {
                        let _ = write!(message, " at offset {offset:#x}");
                    }
                }
                SandboxError::Trap { message }
            }
        };
    }
    SandboxError::Engine(format!("{err:#}"))
}

/// The limit a pool error names (wasmtime keeps the field private; its
/// message is "maximum concurrent limit of N for KIND reached").
fn limit_of(err: &wasmtime::PoolConcurrencyLimitError) -> usize {
    err.to_string()
        .split_whitespace()
        .find_map(|word| word.parse().ok())
        .unwrap_or(0)
}
