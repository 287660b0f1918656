//! The microVM tier: static x86-64 Linux programs in KVM virtual machines
//! that have no guest kernel.
//!
//! # Isolation model
//! The host is the program's kernel. It builds the VM's page tables, GDT,
//! TSS and IDT in the template's memory image ([`layout`]), starts the vCPU
//! directly in ring 3 at the ELF's entry point with a System V initial
//! stack, and answers every system call on a VM exit ([`syscall`]). The
//! program's memory is the VM's memory and nothing else: no host file,
//! socket or descriptor is reachable, every guest pointer a system call
//! passes is checked against the program's region before the host touches
//! it, and the system area (page tables and descriptor tables) is mapped
//! kernel-only, so a program that writes it page-faults. Any CPU exception
//! (page fault, #GP from a privileged instruction, #UD, ...) reaches an IDT
//! stub that halts, and the host ends the invocation with a
//! [`SandboxError::Trap`] naming what happened.
//!
//! # How a system call reaches the host on PVM
//! This machine's `/dev/kvm` is PVM. Measured on it (see `docs/microvm.md`):
//! `syscall` from guest user mode jumps to `LSTAR` *without* entering
//! guest kernel mode, and guest kernel instructions are emulated (slow).
//! So the `LSTAR` target is a user-mode stub that stores one byte to a
//! doorbell page whose guest-physical address has no memory: the store
//! exits to the host as MMIO, the host reads the registers, answers, and
//! sets `rax`, `rip = rcx`, `rflags = r11` itself — no guest kernel code
//! runs on the path. Engine creation checks this behaviour on a probe VM
//! and refuses to run (not supported) where it differs.
//!
//! # Cold starts and pools
//! A template's image lives in a memfd; each VM maps it copy-on-write.
//! Before each invocation after the first, the VM's dirtied pages (the
//! kernel reports them with `PAGEMAP_SCAN`) are copied back from the image,
//! registers are reset and x87/SSE state cleared, so an invocation never
//! sees an earlier one's memory. [`MicroVmPool`] keeps such VMs.
//!
//! # Limits
//! Memory (the VM's size; `mmap` past it ends the run with
//! [`SandboxError::MemoryLimit`]), a wall-clock deadline enforced by a
//! watchdog thread that kicks the vCPU out of `KVM_RUN`, and output caps.

mod elf;
mod kvm;
mod layout;
mod memory;
mod pool;
mod sandbox;
mod stack;
mod syscall;
mod template;
mod watchdog;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

pub use pool::MicroVmPool;
pub use sandbox::MicroVmSandbox;
pub use template::MicroVmTemplate;

use crate::{Artifact, Engine, Limits, SandboxError, Tier};

/// Configuration of a [`MicroVmEngine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicroVmConfig {
    /// Most VMs alive on the node at once.
    pub max_live: usize,
}

impl Default for MicroVmConfig {
    fn default() -> Self {
        MicroVmConfig { max_live: 1024 }
    }
}

/// What every template of one engine shares.
pub(crate) struct Shared {
    pub(crate) host: kvm::Host,
    pub(crate) watchdog: watchdog::Watchdog,
    pub(crate) config: MicroVmConfig,
    /// VMs alive on this engine.
    pub(crate) live: AtomicUsize,
}

/// Checks that this machine can run microVMs, or says why not.
pub fn available() -> Result<(), SandboxError> {
    kvm::Host::open().map(|_| ())
}

/// Checks that `bytes` are a program this tier runs (a static x86-64 Linux
/// ELF whose segments fit in the largest microVM) without KVM: what a
/// control plane runs on an upload. [`SandboxError::InvalidArtifact`] says
/// why not. Preparing a template checks the same, against its memory.
///
/// ```
/// let elf = sandbox::microvm::tiny_elf(0x40_1000, &[0x0f, 0x05]);
/// assert!(sandbox::microvm::check_artifact(&elf).is_ok());
/// let err = sandbox::microvm::check_artifact(b"\0asm\x01\0\0\0").unwrap_err();
/// assert!(err.to_string().contains("WebAssembly"));
/// ```
pub fn check_artifact(bytes: &[u8]) -> Result<(), SandboxError> {
    elf::plan(bytes, layout::MAX_MEMORY_BYTES).map(drop)
}

/// Whether `bytes` start as an ELF file does (the tier an upload is meant
/// for, before it is checked).
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// The microVM isolation engine.
pub struct MicroVmEngine {
    shared: Arc<Shared>,
}

impl MicroVmEngine {
    /// Opens `/dev/kvm` and starts the deadline watchdog; answers
    /// [`SandboxError::NotSupported`] where KVM is missing or behaves
    /// differently from what the tier is built for.
    pub fn new(config: MicroVmConfig) -> Result<MicroVmEngine, SandboxError> {
        let host = kvm::Host::open()?;
        let watchdog = watchdog::Watchdog::start()?;
        let engine = MicroVmEngine {
            shared: Arc::new(Shared {
                host,
                watchdog,
                config,
                live: AtomicUsize::new(0),
            }),
        };
        engine.probe()?;
        Ok(engine)
    }

    /// Runs a 3-instruction program that makes one system call and checks
    /// it arrives as this tier expects (see the module docs).
    fn probe(&self) -> Result<(), SandboxError> {
        let template = self.prepare(
            &Artifact::new(probe_elf()),
            Limits {
                memory_bytes: layout::MIN_MEMORY_BYTES,
                ..Limits::default()
            },
        )?;
        let mut vm = MicroVmSandbox::start(&template)?;
        let out = crate::Sandbox::invoke(&mut vm, crate::Invocation::Command {
            args: &[],
            env: &[],
            stdin: &[],
            dirs: &[],
        })
        .map_err(|e| SandboxError::NotSupported {
            what: format!(
                "the microvm tier is not supported here: this KVM does not deliver a guest's system call as the tier needs (syscall from ring 3 to a ring-3 LSTAR stub, as PVM does): {e}"
            ),
        })?;
        if out.exit_code != PROBE_EXIT {
            return Err(SandboxError::NotSupported {
                what: format!(
                    "the microvm tier is not supported here: the probe program exited {} instead of {PROBE_EXIT}",
                    out.exit_code
                ),
            });
        }
        Ok(())
    }

    /// VMs alive on this engine now.
    pub fn live(&self) -> usize {
        self.shared.live.load(std::sync::atomic::Ordering::Relaxed)
    }
}

const PROBE_EXIT: i32 = 42;

/// A minimal static ELF: `mov eax, 231; mov edi, 42; syscall` at 0x401000.
fn probe_elf() -> Vec<u8> {
    let code: [u8; 12] = [
        0xb8,
        231,
        0,
        0,
        0,
        0xbf,
        PROBE_EXIT as u8,
        0,
        0,
        0,
        0x0f,
        0x05,
    ];
    tiny_elf(0x40_1000, &code)
}

/// A static ELF with one read+execute segment holding `code` at `entry`;
/// also used by tests and benchmarks for tiny guests.
pub fn tiny_elf(entry: u64, code: &[u8]) -> Vec<u8> {
    let mut elf = vec![0u8; 64 + 56];
    elf[..16].copy_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    let mut put = |at: usize, bytes: &[u8]| elf[at..at + bytes.len()].copy_from_slice(bytes);
    put(16, &2u16.to_le_bytes()); // ET_EXEC
    put(18, &62u16.to_le_bytes()); // EM_X86_64
    put(20, &1u32.to_le_bytes());
    put(24, &entry.to_le_bytes());
    put(32, &64u64.to_le_bytes()); // e_phoff
    put(52, &64u16.to_le_bytes()); // e_ehsize
    put(54, &56u16.to_le_bytes()); // e_phentsize
    put(56, &1u16.to_le_bytes()); // e_phnum
    let offset = 0x1000u64;
    put(64, &1u32.to_le_bytes()); // PT_LOAD
    put(68, &5u32.to_le_bytes()); // PF_R | PF_X
    put(72, &offset.to_le_bytes());
    put(80, &entry.to_le_bytes());
    put(88, &entry.to_le_bytes());
    put(96, &(code.len() as u64).to_le_bytes());
    put(104, &(code.len() as u64).to_le_bytes());
    put(112, &0x1000u64.to_le_bytes());
    elf.resize(offset as usize, 0);
    elf.extend_from_slice(code);
    elf
}

impl Engine for MicroVmEngine {
    type Template = MicroVmTemplate;
    type Sandbox = MicroVmSandbox;

    fn tier(&self) -> Tier {
        Tier::MicroVm
    }

    fn prepare(
        &self,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<Arc<MicroVmTemplate>, SandboxError> {
        MicroVmTemplate::prepare(&self.shared, artifact, limits).map(Arc::new)
    }

    fn start(&self, template: &Arc<MicroVmTemplate>) -> Result<MicroVmSandbox, SandboxError> {
        MicroVmSandbox::start(template)
    }
}
