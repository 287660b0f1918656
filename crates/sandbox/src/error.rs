//! The one error type of this crate.

use std::time::Duration;

/// Why preparing, starting or invoking a sandbox failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The artifact is not a valid module (bad magic, malformed or invalid
    /// WebAssembly, unparsable text format).
    #[error("invalid module: {reason}")]
    InvalidArtifact { reason: String },

    /// The module needs an import that this sandbox does not grant.
    #[error("import `{module}::{name}` is not granted; sandboxes may import only {allowed}")]
    ImportNotGranted {
        module: String,
        name: String,
        allowed: &'static str,
    },

    /// The requested entry point is not exported.
    #[error("no exported function `{name}`; exported functions: {available}")]
    MissingExport { name: String, available: String },

    /// The entry point exists but its signature does not fit the interface.
    #[error("export `{name}` has type {found}; {expected}")]
    ExportType {
        name: String,
        found: String,
        expected: &'static str,
    },

    /// A granted resource cannot be provided (e.g. a directory to preopen
    /// does not exist).
    #[error("cannot grant {resource}: {reason}")]
    Grant { resource: String, reason: String },

    /// A limit was set to a value the engine cannot honour.
    #[error("limit `{field}` = {value} is not allowed: {allowed}")]
    InvalidLimit {
        field: &'static str,
        value: String,
        allowed: String,
    },

    /// Memory growth (or the initial memory) went past the memory limit.
    #[error("memory limit of {limit_bytes} bytes exceeded (wanted {wanted_bytes} bytes)")]
    MemoryLimit { limit_bytes: u64, wanted_bytes: u64 },

    /// Table growth (or the initial table) went past the table limit.
    #[error("table limit of {limit} elements exceeded (wanted {wanted})")]
    TableLimit { limit: u32, wanted: u64 },

    /// The command held too many open files and streams at once.
    #[error("resource limit reached: at most {limit} open files and streams at once")]
    ResourceLimit { limit: usize },

    /// The invocation ran past its wall-clock deadline and was stopped.
    #[error("timed out: ran past its deadline of {deadline:?} and was stopped")]
    Timeout { deadline: Duration },

    /// The invocation used all of its fuel.
    #[error("out of fuel: used its budget of {fuel} units")]
    FuelExhausted { fuel: u64 },

    /// The module's call stack overflowed (for example, deep recursion).
    #[error("stack overflow: the wasm call stack is exhausted")]
    StackOverflow,

    /// The module trapped (`unreachable`, division by zero, out-of-bounds
    /// access, ...).
    #[error("trapped: {message}")]
    Trap { message: String },

    /// The raw interface's returned pointer and length do not lie in memory.
    #[error("bad output from `{entry}`: {reason}")]
    BadOutput { entry: String, reason: String },

    /// An earlier invocation of this sandbox failed; it runs no more.
    #[error("sandbox stopped: an earlier invocation failed, so its state is unknown")]
    Stopped,

    /// Too many sandboxes are alive, for this template or for the node.
    #[error("live sandbox limit reached: {limit} per {scope}")]
    LiveLimit { scope: &'static str, limit: usize },

    /// The compiled-code cache could not be read or written.
    #[error("compiled-code cache at {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// What was asked for is not implemented (yet) by this engine.
    #[error("not supported: {what}")]
    NotSupported { what: String },

    /// An engine failure that fits none of the above.
    #[error("engine error: {0}")]
    Engine(String),
}

impl SandboxError {
    /// A short, stable code for APIs and metrics, e.g. `timeout`.
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::InvalidArtifact { .. } => "invalid_module",
            SandboxError::ImportNotGranted { .. } => "import_not_granted",
            SandboxError::MissingExport { .. } => "missing_export",
            SandboxError::ExportType { .. } => "export_type",
            SandboxError::Grant { .. } => "grant",
            SandboxError::InvalidLimit { .. } => "invalid_limit",
            SandboxError::MemoryLimit { .. } => "memory_limit",
            SandboxError::TableLimit { .. } => "table_limit",
            SandboxError::ResourceLimit { .. } => "resource_limit",
            SandboxError::Timeout { .. } => "timeout",
            SandboxError::FuelExhausted { .. } => "out_of_fuel",
            SandboxError::StackOverflow => "stack_overflow",
            SandboxError::Trap { .. } => "trap",
            SandboxError::BadOutput { .. } => "bad_output",
            SandboxError::Stopped => "stopped",
            SandboxError::LiveLimit { .. } => "live_limit",
            SandboxError::Cache { .. } => "cache",
            SandboxError::NotSupported { .. } => "not_supported",
            SandboxError::Engine(_) => "engine",
        }
    }
}
