//! What one sandbox may use, and what a warm pool keeps between invocations.

use std::time::Duration;

/// Limits on one sandbox, fixed when its template is prepared.
///
/// ```
/// use std::time::Duration;
/// let limits = sandbox::Limits {
///     memory_bytes: 16 << 20,
///     deadline: Duration::from_millis(250),
///     ..sandbox::Limits::default()
/// };
/// assert_eq!(limits.output_bytes, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes. Growth past it traps with
    /// [`SandboxError::MemoryLimit`](crate::SandboxError::MemoryLimit).
    pub memory_bytes: u64,
    /// Largest table, in elements.
    pub table_elements: u32,
    /// Wall-clock time one invocation may run, the start function included.
    pub deadline: Duration,
    /// Deterministic CPU budget per invocation in fuel units (about one per
    /// wasm instruction); `None` for no fuel metering.
    pub fuel: Option<u64>,
    /// Cap on each of stdout, stderr and a raw call's returned bytes. Output
    /// beyond it is dropped and the result is flagged `truncated`.
    pub output_bytes: usize,
    /// Most sandboxes of this template alive at once; `None` for no limit
    /// beyond the node's.
    pub max_live: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            table_elements: 10_000,
            deadline: Duration::from_secs(10),
            fuel: None,
            output_bytes: 1 << 20,
            max_live: None,
        }
    }
}

/// What survives between invocations of instances kept in a warm pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarmPolicy {
    /// Nothing survives: every invocation runs on an instance that has never
    /// run one before (memory, tables and globals as the module's initial
    /// image and start function left them). The pool keeps such instances
    /// instantiated ahead of time and discards each after one use.
    PerInvocation,
    /// Memory, globals and tables survive from one invocation to the next, on
    /// the same instance of the same template. A template belongs to exactly
    /// one version of one tenant, so state never crosses tenants or
    /// versions. An instance whose invocation failed (trap, timeout, limit)
    /// is discarded, not reused.
    KeepAlive,
}
