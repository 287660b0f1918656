//! The KVM side of a microVM: one VM with one vCPU, its CPU set up by the
//! host (long mode, paging, descriptor tables, `LSTAR`) so that the program
//! starts in ring 3 with no guest kernel; exits decoded into [`Exit`]; and
//! [`Kick`], which stops a running vCPU from another thread.
//!
//! This module and [`super::memory`] are the only ones with `unsafe`.

use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use kvm_bindings::{
    CpuId, KVM_MAX_CPUID_ENTRIES, Msrs, kvm_dtable, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment,
    kvm_userspace_memory_region,
};
use kvm_ioctls::{Cap, Kvm, SyncReg, VcpuExit, VcpuFd, VmFd};

use super::layout;
use super::memory::GuestRam;
use super::syscall::Call;
use crate::SandboxError;

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
/// `RFLAGS` at the start: only the always-one bit; interrupts off.
const RFLAGS_START: u64 = 0x2;

/// What every VM of an engine shares: `/dev/kvm` and the CPUID to offer.
pub(crate) struct Host {
    kvm: Kvm,
    cpuid: CpuId,
    /// CPUID leaf 1's EDX, for `AT_HWCAP`.
    pub(crate) hwcap: u64,
}

fn not_here(reason: impl std::fmt::Display) -> SandboxError {
    SandboxError::NotSupported {
        what: format!("the microvm tier is not supported here: {reason}"),
    }
}

impl Host {
    /// Opens `/dev/kvm` and checks what the tier needs, or says why it
    /// cannot run here.
    pub(crate) fn open() -> Result<Host, SandboxError> {
        let kvm = Kvm::new().map_err(|e| {
            not_here(format!(
                "cannot open /dev/kvm ({e}); it needs Linux KVM and read-write access to /dev/kvm"
            ))
        })?;
        // KVM_GET_API_VERSION is 12 on every KVM since Linux 2.6.22.
        const KVM_API_VERSION: i32 = 12;
        if kvm.get_api_version() != KVM_API_VERSION {
            return Err(not_here(
                "/dev/kvm does not answer as a KVM device (KVM_GET_API_VERSION)",
            ));
        }
        for (cap, name) in [
            (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
            (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
            (Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
        ] {
            if !kvm.check_extension(cap) {
                return Err(not_here(format!("this KVM lacks {name}")));
            }
        }
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| not_here(format!("KVM_GET_SUPPORTED_CPUID failed: {e}")))?;
        let hwcap = cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == 1)
            .map_or(0, |e| u64::from(e.edx));
        install_kick_handler()?;
        Ok(Host { kvm, cpuid, hwcap })
    }
}

/// Why the vCPU stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// A store to the doorbell; `rip` is where the CPU stopped.
    Doorbell { rip: u64 },
    /// A store to guest-physical memory that does not exist, other than the
    /// doorbell's (only the doorbell page maps any).
    Mmio { addr: u64 },
    /// An exception reached the IDT: the CPU halted in its stub.
    Vector(u8),
    /// The vCPU halted somewhere else.
    Halted { rip: u64 },
    /// The run was interrupted by a [`Kick`] (or another signal).
    Interrupted,
    /// A triple fault: the VM is unusable.
    Shutdown,
    /// Anything else KVM reported; the VM is unusable.
    Other(String),
}

/// Where an exception happened, read after [`Exit::Vector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) vector: u8,
    pub(crate) error_code: Option<u64>,
    /// The faulting instruction.
    pub(crate) rip: u64,
    /// The faulting address, for a page fault.
    pub(crate) cr2: u64,
}

/// A VM with one vCPU over a [`GuestRam`].
pub(crate) struct Machine {
    vcpu: VcpuFd,
    /// Declared after the vCPU: it is closed first.
    _vm: VmFd,
    /// Registers as of the last exit; written back through the shared
    /// `kvm_run` page (sync regs), which saves two ioctls per system call.
    regs: kvm_regs,
    /// The FS and GS bases the guest last set (0 after [`Machine::start`]).
    fs_base: u64,
    gs_base: u64,
}

impl Machine {
    /// Creates the VM, maps `ram` at guest-physical 0 and sets up the CPU.
    pub(crate) fn new(host: &Host, ram: &GuestRam) -> Result<Machine, SandboxError> {
        let fail = |what: &str, e: kvm_ioctls::Error| {
            SandboxError::Engine(format!("microvm: {what}: {e}"))
        };
        let vm = host.kvm.create_vm().map_err(|e| fail("KVM_CREATE_VM", e))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: ram.size_bytes(),
            userspace_addr: ram.host_base(),
        };
        // SAFETY: the region is `ram`'s mapping, which lives as long as the
        // sandbox that owns both this machine and `ram` (the sandbox drops
        // the machine first: see its field order), so KVM never maps freed
        // memory. Guest writes can only change guest memory.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| fail("KVM_SET_USER_MEMORY_REGION", e))?;
        let mut vcpu = vm.create_vcpu(0).map_err(|e| fail("KVM_CREATE_VCPU", e))?;
        vcpu.set_sync_valid_reg(SyncReg::Register);
        vcpu.set_cpuid2(&host.cpuid)
            .map_err(|e| fail("KVM_SET_CPUID2", e))?;
        vcpu.set_sregs(&initial_sregs(
            vcpu.get_sregs().map_err(|e| fail("KVM_GET_SREGS", e))?,
        ))
        .map_err(|e| fail("KVM_SET_SREGS", e))?;
        let msrs = Msrs::from_entries(&[
            msr(
                MSR_STAR,
                (u64::from(layout::KERNEL_DS) << 48) | (u64::from(layout::KERNEL_CS) << 32),
            ),
            msr(MSR_LSTAR, layout::STUB),
            msr(MSR_SYSCALL_MASK, 0),
        ])
        .map_err(|e| SandboxError::Engine(format!("microvm: MSR list: {e:?}")))?;
        let set = vcpu.set_msrs(&msrs).map_err(|e| fail("KVM_SET_MSRS", e))?;
        if set != msrs.as_slice().len() {
            return Err(not_here(format!(
                "KVM accepted {set} of the {} syscall MSRs",
                msrs.as_slice().len()
            )));
        }
        Ok(Machine {
            vcpu,
            _vm: vm,
            regs: kvm_regs::default(),
            fs_base: 0,
            gs_base: 0,
        })
    }

    /// Puts the CPU at the program's entry: registers cleared, `rsp` at the
    /// initial stack, x87/SSE state as after reset, FS and GS bases 0, and
    /// no pending kick.
    pub(crate) fn start(&mut self, entry: u64, rsp: u64) -> Result<(), SandboxError> {
        let fail = |what: &str, e: kvm_ioctls::Error| {
            SandboxError::Engine(format!("microvm: {what}: {e}"))
        };
        self.vcpu.set_kvm_immediate_exit(0);
        self.regs = kvm_regs {
            rip: entry,
            rsp,
            rflags: RFLAGS_START,
            ..kvm_regs::default()
        };
        self.write_regs();
        let fpu = kvm_fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..kvm_fpu::default()
        };
        self.vcpu
            .set_fpu(&fpu)
            .map_err(|e| fail("KVM_SET_FPU", e))?;
        if self.fs_base != 0 {
            self.set_fs_base(0)?;
        }
        if self.gs_base != 0 {
            self.set_gs_base(0)?;
        }
        Ok(())
    }

    /// Hands `self.regs` to KVM for the next run.
    fn write_regs(&mut self) {
        self.vcpu.sync_regs_mut().regs = self.regs;
        self.vcpu.set_sync_dirty_reg(SyncReg::Register);
    }

    fn set_base(&mut self, index: u32, value: u64) -> Result<(), SandboxError> {
        let msrs = Msrs::from_entries(&[msr(index, value)])
            .map_err(|e| SandboxError::Engine(format!("microvm: MSR list: {e:?}")))?;
        match self.vcpu.set_msrs(&msrs) {
            Ok(1) => Ok(()),
            Ok(_) => Err(SandboxError::Engine(format!(
                "microvm: KVM refused MSR {index:#x} = {value:#x}"
            ))),
            Err(e) => Err(SandboxError::Engine(format!("microvm: KVM_SET_MSRS: {e}"))),
        }
    }

    /// Sets the FS base (the thread pointer), as `arch_prctl` asks.
    pub(crate) fn set_fs_base(&mut self, value: u64) -> Result<(), SandboxError> {
        self.set_base(MSR_FS_BASE, value)?;
        self.fs_base = value;
        Ok(())
    }

    /// Sets the GS base, as `arch_prctl` asks.
    pub(crate) fn set_gs_base(&mut self, value: u64) -> Result<(), SandboxError> {
        self.set_base(MSR_GS_BASE, value)?;
        self.gs_base = value;
        Ok(())
    }

    /// Runs the vCPU until it exits.
    pub(crate) fn run(&mut self) -> Exit {
        match self.vcpu.run() {
            Ok(VcpuExit::MmioWrite(addr, _)) if addr == layout::DOORBELL_GPA => {
                self.regs = self.vcpu.sync_regs().regs;
                Exit::Doorbell { rip: self.regs.rip }
            }
            Ok(VcpuExit::MmioWrite(addr, _)) | Ok(VcpuExit::MmioRead(addr, _)) => {
                Exit::Mmio { addr }
            }
            Ok(VcpuExit::Hlt) => {
                self.regs = self.vcpu.sync_regs().regs;
                match layout::vector_at(self.regs.rip) {
                    Some(v) => Exit::Vector(v),
                    None => Exit::Halted { rip: self.regs.rip },
                }
            }
            Ok(VcpuExit::Shutdown) => Exit::Shutdown,
            Ok(other) => Exit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.vcpu.set_kvm_immediate_exit(0);
                Exit::Interrupted
            }
            Err(e) => Exit::Other(format!("KVM_RUN: {e}")),
        }
    }

    /// The system call the program made, after [`Exit::Doorbell`].
    pub(crate) fn call(&self) -> Call {
        let r = &self.regs;
        Call {
            nr: r.rax,
            args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
        }
    }

    /// Returns `value` from the system call: `rax` set, the CPU back at the
    /// instruction after `syscall` (`rcx`) with its flags (`r11`), as
    /// `sysret` would.
    pub(crate) fn finish_call(&mut self, value: u64) {
        self.regs.rax = value;
        self.regs.rip = self.regs.rcx;
        self.regs.rflags = (self.regs.r11 & USER_FLAGS) | RFLAGS_START;
        self.write_regs();
    }

    /// Where the exception behind [`Exit::Vector`] happened: the frame the
    /// CPU pushed on the exception stack, and CR2.
    pub(crate) fn fault(&self, vector: u8, ram: &GuestRam) -> Fault {
        let has_code = matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30);
        let mut frame = [0u8; 16];
        let rsp = self.regs.rsp;
        let word = |i: u64, frame: &mut [u8; 16]| {
            ram.read(rsp + i * 8, &mut frame[..8])
                .map(|()| u64::from_le_bytes(frame[..8].try_into().unwrap_or([0; 8])))
                .unwrap_or(0)
        };
        let (error_code, rip) = if has_code {
            (Some(word(0, &mut frame)), word(1, &mut frame))
        } else {
            (None, word(0, &mut frame))
        };
        let cr2 = self.vcpu.get_sregs().map_or(0, |s| s.cr2);
        Fault {
            vector,
            error_code,
            rip,
            cr2,
        }
    }

    /// A handle that stops this vCPU's current or next run from another
    /// thread; valid while the calling thread drives this machine.
    pub(crate) fn kick(&mut self) -> Kick {
        let run = self.vcpu.get_kvm_run();
        Kick {
            immediate_exit: &mut run.immediate_exit as *mut u8,
            // SAFETY: pthread_self has no preconditions.
            thread: unsafe { libc::pthread_self() },
        }
    }
}

/// Flags a program may set (arithmetic, direction, trap, alignment check
/// and ID); never IOPL or the interrupt flag.
const USER_FLAGS: u64 = 0x0000_0cd5 | (1 << 8) | (1 << 18) | (1 << 21);

fn msr(index: u32, data: u64) -> kvm_msr_entry {
    kvm_msr_entry {
        index,
        data,
        ..kvm_msr_entry::default()
    }
}

fn initial_sregs(mut s: kvm_bindings::kvm_sregs) -> kvm_bindings::kvm_sregs {
    let seg = |selector: u16, type_: u8, l: u8, db: u8| kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 3,
        db,
        s: 1,
        l,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    s.cs = seg(layout::USER_CS, 0xb, 1, 0);
    let data = seg(layout::USER_DS, 0x3, 0, 1);
    (s.ss, s.ds, s.es, s.fs, s.gs) = (data, data, data, data, data);
    s.tr = kvm_segment {
        base: layout::TSS_BASE,
        limit: (layout::TSS_BYTES - 1) as u32,
        selector: layout::TSS_SELECTOR,
        type_: 0xb, // busy 64-bit TSS
        present: 1,
        ..kvm_segment::default()
    };
    s.ldt = kvm_segment {
        unusable: 1,
        ..kvm_segment::default()
    };
    s.gdt = kvm_dtable {
        base: layout::GDT_BASE,
        limit: (layout::GDT_BYTES - 1) as u16,
        padding: [0; 3],
    };
    s.idt = kvm_dtable {
        base: layout::IDT_BASE,
        limit: (layout::IDT_BYTES - 1) as u16,
        padding: [0; 3],
    };
    s.cr0 = layout::CR0;
    s.cr3 = layout::CR3;
    s.cr4 = layout::CR4_PAE | layout::CR4_OSFXSR | layout::CR4_OSXMMEXCPT;
    s.efer = layout::EFER;
    s
}

/// Stops a vCPU's run from another thread: sets `immediate_exit` (so a run
/// about to start returns at once) and signals the thread (so a run under
/// way returns `EINTR`).
pub(crate) struct Kick {
    immediate_exit: *mut u8,
    thread: libc::pthread_t,
}

// SAFETY: a Kick is only used through `Kick::kick`, whose contract (the
// machine and the thread are alive) its holder, the watchdog, upholds by
// removing it under the same lock before the run ends.
unsafe impl Send for Kick {}

impl Kick {
    /// Interrupts the vCPU.
    ///
    /// # Safety contract (upheld by the watchdog, not the type system)
    /// The machine this came from is alive and the thread that made it is
    /// still driving it: the watchdog only kicks entries that are armed,
    /// and a run disarms (under the watchdog's lock) before it returns.
    pub(crate) fn kick(&self) {
        // SAFETY: per the contract above, `immediate_exit` points into the
        // vCPU's live kvm_run mapping; a volatile byte store is what KVM
        // reads at the next KVM_RUN entry.
        unsafe { std::ptr::write_volatile(self.immediate_exit, 1) };
        // SAFETY: per the contract, `thread` is alive; the signal's handler
        // (installed by `Host::open`) does nothing, so delivering it only
        // interrupts the KVM_RUN ioctl.
        unsafe { libc::pthread_kill(self.thread, kick_signal()) };
    }
}

fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

extern "C" fn on_kick(_: libc::c_int) {}

fn install_kick_handler() -> Result<(), SandboxError> {
    static INSTALL: Once = Once::new();
    static FAILED: AtomicI32 = AtomicI32::new(0);
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; we set a handler that does
        // nothing (async-signal-safe) and no SA_RESTART, so a blocked
        // KVM_RUN returns EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(kick_signal(), &action, std::ptr::null_mut()) != 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
                FAILED.store(errno, Ordering::Relaxed);
            }
        }
    });
    let failed = FAILED.load(Ordering::Relaxed);
    if failed != 0 {
        return Err(SandboxError::Engine(format!(
            "microvm: cannot install the deadline signal handler (errno {failed})"
        )));
    }
    Ok(())
}
