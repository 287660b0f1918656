//! One microVM: its memory, its vCPU, and the run loop that answers the
//! program's system calls until it exits, faults or runs out of time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::MicroVmTemplate;
use super::kvm::{Exit, Fault, Machine};
use super::layout;
use super::memory::GuestRam;
use super::stack::{self, StartInfo};
use super::syscall::{Guest, Next, Process};
use crate::{Invocation, Output, Sandbox, SandboxError};

/// A VM started from a [`MicroVmTemplate`]. Every invocation runs the
/// program from its entry point on memory equal to the template's image:
/// the pages the previous invocation dirtied are restored first.
pub struct MicroVmSandbox {
    /// Declared before `ram`: the VM (which maps `ram`) closes first.
    machine: Machine,
    ram: GuestRam,
    template: Arc<MicroVmTemplate>,
    /// Set once an invocation ran: the next one resets memory first.
    used: bool,
    /// Set when KVM reported something that leaves the VM unusable.
    broken: bool,
    _live: LiveSlot,
}

/// Counts a sandbox as alive on its engine and template until dropped.
struct LiveSlot(Arc<MicroVmTemplate>);

impl LiveSlot {
    fn acquire(template: &Arc<MicroVmTemplate>) -> Result<LiveSlot, SandboxError> {
        let shared = &template.shared;
        let node = shared.live.fetch_add(1, Ordering::Relaxed);
        let mine = template.live.fetch_add(1, Ordering::Relaxed);
        let slot = LiveSlot(template.clone());
        if node >= shared.config.max_live {
            return Err(SandboxError::LiveLimit {
                scope: "node",
                limit: shared.config.max_live,
            });
        }
        if let Some(limit) = crate::Template::limits(&**template).max_live
            && mine >= limit
        {
            return Err(SandboxError::LiveLimit {
                scope: "template",
                limit,
            });
        }
        Ok(slot)
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
        self.0.shared.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl MicroVmSandbox {
    /// Creates a VM for `template` (about a millisecond on PVM: most of it
    /// is KVM creating the VM).
    pub fn start(template: &Arc<MicroVmTemplate>) -> Result<MicroVmSandbox, SandboxError> {
        let live = LiveSlot::acquire(template)?;
        let ram = GuestRam::map(&template.image)?;
        let machine = Machine::new(&template.shared.host, &ram)?;
        Ok(MicroVmSandbox {
            machine,
            ram,
            template: template.clone(),
            used: false,
            broken: false,
            _live: live,
        })
    }

    /// The template this sandbox runs.
    pub fn template(&self) -> &Arc<MicroVmTemplate> {
        &self.template
    }

    /// True when the VM can run no more (KVM reported a fatal exit).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Restores the memory the last invocation dirtied; returns the pages
    /// restored. [`Sandbox::invoke`] does this itself before each run after
    /// the first; a pool may call it earlier, off the request path.
    pub fn reset(&mut self) -> Result<u64, SandboxError> {
        let pages = self.ram.reset(&self.template.image)?;
        self.used = false;
        Ok(pages)
    }

    fn run(
        &mut self,
        args: &[String],
        env: &[(String, String)],
        stdin: &[u8],
    ) -> Result<Output, SandboxError> {
        let t = &*self.template;
        let started = Instant::now();
        let limits = crate::Template::limits(t);
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| SandboxError::Engine(format!("getrandom: {e}")))?;
        let info = StartInfo {
            args,
            env,
            random,
            hwcap: t.shared.host.hwcap,
        };
        let (stack_bytes, rsp) = stack::build(&t.plan, &info, t.layout.memory_bytes);
        let stack_room = (t.layout.memory_bytes - t.layout.stack_bottom) / 2;
        if stack_bytes.len() as u64 > stack_room {
            return Err(SandboxError::Grant {
                resource: "arguments and environment".into(),
                reason: format!(
                    "{} bytes do not fit in half of the {} byte stack",
                    stack_bytes.len(),
                    stack_room * 2
                ),
            });
        }
        self.ram.write(rsp, &stack_bytes)?;
        self.machine.start(t.plan.entry, rsp)?;
        let mut process = Process::new(
            &t.layout,
            &t.readonly,
            stdin,
            limits.output_bytes,
            limits.deadline,
            started,
        );
        let kick = self.machine.kick();
        let armed = t.shared.watchdog.arm(started + limits.deadline, kick);
        let mut guest = RamGuest(&self.ram);
        let exit_code = loop {
            match self.machine.run() {
                Exit::Doorbell { rip } if rip == layout::STUB_AFTER_STORE => {
                    let call = self.machine.call();
                    match process.call(&mut guest, call)? {
                        Next::Return(v) => self.machine.finish_call(v),
                        Next::Exit(code) => break code,
                        Next::SetFsBase(v) => {
                            self.machine.set_fs_base(v)?;
                            self.machine.finish_call(0);
                        }
                        Next::SetGsBase(v) => {
                            self.machine.set_gs_base(v)?;
                            self.machine.finish_call(0);
                        }
                    }
                }
                Exit::Doorbell { rip } => {
                    return Err(SandboxError::Trap {
                        message: format!(
                            "store to address {:#x} at rip {rip:#x}: outside the program's memory",
                            layout::DOORBELL
                        ),
                    });
                }
                Exit::Mmio { addr } => {
                    return Err(SandboxError::Trap {
                        message: format!(
                            "access to guest-physical {addr:#x}: outside the program's memory"
                        ),
                    });
                }
                Exit::Vector(v) => {
                    return Err(describe(self.machine.fault(v, &self.ram), &t.layout));
                }
                Exit::Interrupted => {
                    if armed.fired() {
                        return Err(SandboxError::Timeout {
                            deadline: limits.deadline,
                        });
                    }
                }
                Exit::Halted { rip } => {
                    self.broken = true;
                    return Err(SandboxError::Trap {
                        message: format!("the vCPU halted at {rip:#x}"),
                    });
                }
                Exit::Shutdown => {
                    self.broken = true;
                    return Err(SandboxError::Trap {
                        message: "triple fault: the CPU could not deliver an exception".into(),
                    });
                }
                Exit::Other(what) => {
                    self.broken = true;
                    return Err(SandboxError::Engine(format!("microvm exit: {what}")));
                }
            }
        };
        drop(armed);
        Ok(Output {
            returned: Vec::new(),
            stdout: std::mem::take(&mut process.stdout),
            stderr: std::mem::take(&mut process.stderr),
            exit_code,
            truncated: process.truncated,
            fuel_used: None,
        })
    }
}

impl Sandbox for MicroVmSandbox {
    fn invoke(&mut self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        let (args, env, stdin) = match invocation {
            Invocation::Command { dirs, .. } if !dirs.is_empty() => {
                return Err(SandboxError::NotSupported {
                    what: "directory grants in the microvm tier: its programs see no file system"
                        .into(),
                });
            }
            Invocation::Command {
                args, env, stdin, ..
            } => (args, env, stdin),
            Invocation::Call { .. } => {
                return Err(SandboxError::NotSupported {
                    what: "raw entry points in the microvm tier: its programs run as commands"
                        .into(),
                });
            }
        };
        if self.broken {
            return Err(SandboxError::Stopped);
        }
        if self.used {
            self.reset()?;
        }
        self.used = true;
        self.run(args, env, stdin)
    }
}

struct RamGuest<'a>(&'a GuestRam);

impl Guest for RamGuest<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), SandboxError> {
        self.0.read(addr, buf)
    }
    fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), SandboxError> {
        self.0.write(addr, bytes)
    }
    fn zero(&mut self, addr: u64, len: u64) -> Result<(), SandboxError> {
        self.0.zero(addr, len)
    }
}

/// A trap message that says what the program did, in its own terms.
fn describe(f: Fault, layout: &layout::Layout) -> SandboxError {
    let message = match f.vector {
        0 => format!("division error at rip {:#x}", f.rip),
        1 | 3 => format!("debug trap or breakpoint (int3) at rip {:#x}", f.rip),
        6 => format!("invalid opcode at rip {:#x}", f.rip),
        13 => format!(
            "general protection fault at rip {:#x}: a privileged instruction (hlt, cli, in/out, wrmsr, mov to a control register, ...) or a bad segment",
            f.rip
        ),
        14 => {
            let code = f.error_code.unwrap_or(0);
            let action = if code & 0x10 != 0 {
                "instruction fetch"
            } else if code & 0x2 != 0 {
                "write"
            } else {
                "read"
            };
            let what = if f.cr2 < 0x1000 {
                "a null pointer".to_string()
            } else if f.cr2 >= layout.guard_page && f.cr2 < layout.guard_page + 0x1000 {
                "the stack's guard page: stack overflow".to_string()
            } else if f.cr2 < layout::USER_BASE {
                "the VM's system area (page tables, descriptor tables), which the program may not touch".to_string()
            } else if f.cr2 >= layout.memory_bytes {
                format!(
                    "past the end of the sandbox's {} MiB of memory",
                    layout.memory_bytes >> 20
                )
            } else if code & 0x1 != 0 {
                "a page whose protection forbids it".to_string()
            } else {
                "an unmapped page".to_string()
            };
            format!(
                "page fault: {action} at {:#x} ({what}) at rip {:#x}",
                f.cr2, f.rip
            )
        }
        v => format!("CPU exception {v} at rip {:#x}", f.rip),
    };
    SandboxError::Trap { message }
}
