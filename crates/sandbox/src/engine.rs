//! The tier-independent surface: engines prepare templates, templates start
//! sandboxes, sandboxes run invocations.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{Artifact, Limits, SandboxError};

/// The isolation tier of a sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// WebAssembly in-process isolation (wasmtime).
    Wasm,
    /// A KVM microVM running a static Linux program with no guest kernel.
    MicroVm,
    /// A verified eBPF program (not implemented yet).
    Ebpf,
}

impl Tier {
    /// Checks that this build and machine have an engine for the tier: wasm
    /// always; microvm where `/dev/kvm` can be opened (else
    /// [`SandboxError::NotSupported`] says why); ebpf not yet.
    ///
    /// ```
    /// use sandbox::Tier;
    /// assert!(Tier::Wasm.available().is_ok());
    /// assert_eq!(Tier::Ebpf.available().unwrap_err().code(), "not_supported");
    /// ```
    pub fn available(self) -> Result<(), SandboxError> {
        match self {
            Tier::Wasm => Ok(()),
            Tier::MicroVm => crate::microvm::available(),
            Tier::Ebpf => Err(SandboxError::NotSupported {
                what: format!(
                    "the `{}` tier is not implemented yet; use the `wasm` tier",
                    self.as_str()
                ),
            }),
        }
    }

    /// The tier's name as used in configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Wasm => "wasm",
            Tier::MicroVm => "microvm",
            Tier::Ebpf => "ebpf",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wasm" => Ok(Tier::Wasm),
            "microvm" => Ok(Tier::MicroVm),
            "ebpf" => Ok(Tier::Ebpf),
            other => Err(format!(
                "unknown tier `{other}`; allowed: wasm, microvm, ebpf"
            )),
        }
    }
}

/// A prepared entry point of a template, resolved and type-checked once so
/// that invoking it does no lookup by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryId(pub(crate) usize);

/// One run of a sandbox.
#[derive(Clone, Copy, Debug)]
pub enum Invocation<'a> {
    /// Call a raw entry point with bytes in and bytes out (see
    /// [`crate::wasm`] for the memory convention).
    Call { entry: EntryId, input: &'a [u8] },
    /// Run the module as a command (WASI `_start`): `args`, `env`, `stdin`
    /// and the `dirs` are the only things granted; stdout and stderr are
    /// captured.
    Command {
        args: &'a [String],
        env: &'a [(String, String)],
        stdin: &'a [u8],
        dirs: &'a [DirGrant],
    },
}

/// A host directory granted to a command, which sees it at `guest`. The
/// command reaches nothing outside it: paths that escape it (`..`,
/// symbolic links pointing out) are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the command sees it, e.g. `/data`.
    pub guest: String,
    /// Whether the command may create, change and remove files in it.
    pub writable: bool,
}

/// What an invocation produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Bytes returned by a raw entry point (empty for commands).
    pub returned: Vec<u8>,
    /// Captured standard output, at most the output cap.
    pub stdout: Vec<u8>,
    /// Captured standard error, at most the output cap.
    pub stderr: Vec<u8>,
    /// The exit status passed to `proc_exit`, or 0 when the entry returned.
    pub exit_code: i32,
    /// True when some output went past the cap and was dropped.
    pub truncated: bool,
    /// Fuel consumed, when fuel metering is on.
    pub fuel_used: Option<u64>,
}

/// A prepared artifact from which sandboxes start.
pub trait Template: Send + Sync {
    /// Resolves the raw entry point `name`, checking its signature.
    fn entry(&self, name: &str) -> Result<EntryId, SandboxError>;
    /// The limits every sandbox of this template runs under.
    fn limits(&self) -> &Limits;
}

/// One isolated instance.
pub trait Sandbox: Send {
    /// Runs one invocation to completion, a trap, or a limit.
    fn invoke(&mut self, invocation: Invocation<'_>) -> Result<Output, SandboxError>;
    /// Stops the sandbox and releases everything it holds.
    fn stop(self)
    where
        Self: Sized,
    {
    }
}

/// An isolation engine: prepares artifacts into templates and starts
/// sandboxes from them.
pub trait Engine: Send + Sync {
    /// The engine's prepared artifact.
    type Template: Template;
    /// The engine's isolated instance.
    type Sandbox: Sandbox;

    /// The tier this engine implements.
    fn tier(&self) -> Tier;

    /// Validates and compiles `artifact` under `limits`.
    fn prepare(
        &self,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<Arc<Self::Template>, SandboxError>;

    /// Starts a fresh sandbox from `template`.
    fn start(&self, template: &Arc<Self::Template>) -> Result<Self::Sandbox, SandboxError>;
}
