//! `dwcp bench microvm`: the microVM tier's start, system call and compute
//! costs, each beside the same work done by a native Linux process in the
//! same run.
//!
//! The guests are tiny static ELFs assembled here (no libc), so the
//! figures measure the tier, not a libc's start-up:
//! - `microvm-cold`: the product's request path, [`MicroVmPool::invoke`]:
//!   restore the pages the last run dirtied, build the initial stack, reset
//!   the registers, run the guest (`exit_group(0)`: one system call) to its
//!   exit. Baseline `native-process`: `fork`+`exec`+`wait` of the same ELF.
//! - `lab-microvm-reset` and `lab-microvm-run`: the two halves of
//!   `microvm-cold` timed apart on one VM (the page restore; then stack,
//!   registers and `KVM_RUN` to the exit).
//! - `lab-microvm-exit-doorbell` and `lab-microvm-exit-fault`: a run
//!   whose one exit is the doorbell store made by the program itself (no
//!   `syscall`), or a fault in ring 3 (`hlt`: #GP through the guest IDT to
//!   a halting stub): what `microvm-cold`'s exit costs without the system
//!   call, and what the other exit the tier has costs.
//! - `microvm-fresh-vm`: a VM created from nothing (KVM VM and vCPU,
//!   memory mapped, CPU set up) and run to the same exit; no baseline, the
//!   goal is an absolute one.
//! - `microvm-syscall`: one system call round trip through the host shim
//!   (`getpid`, timed over a guest making [`SYSCALLS`] of them, the run's
//!   fixed cost subtracted); baseline `native-syscall`: `getpid` on the
//!   host.
//! - `microvm-compute`: a CPU-bound guest (an LCG over [`COMPUTE_STEPS`]
//!   steps) through the pool; baseline `native-compute`: the same ELF run
//!   as a native process. Both must agree on the result (the exit status).
//! - `gateway-microvm-rps`: HTTP requests per second through the node's
//!   gateway serving a microvm app, beside the same C app on the wasm tier
//!   (`gateway-wasm-rps`) and a hyper floor, same run (`microvm_gateway.rs`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hdrhistogram::Histogram;
use sandbox::microvm::tiny_elf;
use sandbox::{
    Artifact, Engine, Invocation, Limits, MicroVmConfig, MicroVmEngine, MicroVmPool,
    MicroVmSandbox, MicroVmTemplate, Sandbox,
};

use super::progress;
use super::report::{Report, Series, histogram, record, record_avg};

/// Where the guests' code is linked.
const ENTRY: u64 = 0x40_1000;
/// System calls per run in `microvm-syscall`: few, so that a run is
/// rarely preempted on a shared machine and the p50 shows the round trip
/// rather than time spent waiting for a core.
const SYSCALLS: u32 = 10;
/// LCG steps of the compute guest: a few hundred milliseconds on one core.
const COMPUTE_STEPS: u64 = 400_000_000;
/// The memory of the benchmark's VMs: the tier's smallest.
const MEMORY_BYTES: u64 = 8 << 20;

/// `exit_group(0)`.
fn exit_guest() -> Vec<u8> {
    vec![0x31, 0xff, 0xb8, 231, 0, 0, 0, 0x0f, 0x05]
}

/// A store of one byte to the doorbell page (`0x3000`) straight from the
/// program, no system call: the exit the shim's `syscall` stub makes,
/// alone. The host ends the run as a trap (the store is not at the stub).
fn doorbell_guest() -> Vec<u8> {
    vec![0xc6, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00, 0x00] // mov byte [0x3000], 0
}

/// `hlt` in ring 3: a #GP delivered through the guest's IDT to a stub
/// that halts: the exception path's exit.
fn fault_guest() -> Vec<u8> {
    vec![0xf4]
}

/// `getpid()` `n` times, then `exit_group(0)`.
fn syscall_guest(n: u32) -> Vec<u8> {
    let n = n.to_le_bytes();
    vec![
        0xbb, n[0], n[1], n[2], n[3], // mov ebx, n
        0xb8, 39, 0, 0, 0, // l: mov eax, SYS_getpid
        0x0f, 0x05, // syscall
        0xff, 0xcb, // dec ebx
        0x75, 0xf5, // jnz l
        0x31, 0xff, 0xb8, 231, 0, 0, 0, 0x0f, 0x05, // exit_group(0)
    ]
}

/// `steps` LCG steps from 1, then `exit_group(x)` with the final value.
fn compute_guest(steps: u64) -> Vec<u8> {
    let mut code = vec![0x48, 0xb9]; // mov rcx, steps
    code.extend_from_slice(&steps.to_le_bytes());
    code.extend_from_slice(&[
        0xb8, 1, 0, 0, 0, // mov eax, 1
        0x48, 0x69, 0xc0, 0x2d, 0xf4, 0x51, 0x58, // l: imul rax, rax, 0x5851f42d
        0x48, 0x05, 0x7e, 0x7b, 0x05, 0x14, // add rax, 0x14057b7e
        0x48, 0xff, 0xc9, // dec rcx
        0x75, 0xee, // jnz l
        0x89, 0xc7, // mov edi, eax
        0xb8, 231, 0, 0, 0, 0x0f, 0x05, // exit_group(edi)
    ]);
    code
}

struct Plan {
    cold: usize,
    fresh: usize,
    syscall_runs: usize,
    compute_runs: usize,
}

pub fn run(quick: bool) -> Result<Report> {
    let plan = if quick {
        Plan {
            cold: 2_000,
            fresh: 100,
            syscall_runs: 500,
            compute_runs: 3,
        }
    } else {
        Plan {
            cold: 20_000,
            fresh: 1_000,
            syscall_runs: 5_000,
            compute_runs: 10,
        }
    };
    let mut report = Report::new(
        "microvm",
        serde_json::json!({
            "memory_bytes": MEMORY_BYTES,
            "cold_samples": plan.cold,
            "fresh_samples": plan.fresh,
            "syscalls_per_run": SYSCALLS,
            "syscall_runs": plan.syscall_runs,
            "compute_steps": COMPUTE_STEPS,
            "compute_runs": plan.compute_runs,
            "kvm": kvm_flavour(),
            // The machine is shared: how busy it was when the run began.
            "loadavg_at_start": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        }),
    );
    let engine =
        MicroVmEngine::new(MicroVmConfig::default()).context("the microvm benchmark needs KVM")?;
    let dir = TempDir::new()?;

    progress("microvm", "cold: pooled VM, reset + run to exit");
    let exit = prepare(&engine, exit_guest())?;
    let cold = pooled_runs(&exit, plan.cold, plan.cold / 10)?;
    report.series.push(Series::latency(
        "microvm-cold",
        &cold,
        Some("native-process"),
    ));

    progress(
        "microvm",
        "cold, split: the reset alone, then the run alone",
    );
    let (reset, run) = split_runs(&exit, plan.cold)?;
    report
        .series
        .push(Series::latency("lab-microvm-reset", &reset, None));
    report
        .series
        .push(Series::latency("lab-microvm-run", &run, None));

    progress(
        "microvm",
        "exits alone: a doorbell store with no system call, a fault in ring 3",
    );
    for (name, code) in [
        ("lab-microvm-exit-doorbell", doorbell_guest()),
        ("lab-microvm-exit-fault", fault_guest()),
    ] {
        let template = prepare(&engine, code)?;
        let hist = trapping_runs(&template, plan.cold / 2, plan.cold / 20)?;
        report.series.push(Series::latency(name, &hist, None));
    }

    progress(
        "microvm",
        "native process: fork + exec + wait of the same ELF",
    );
    let exit_path = dir.write("exit", &tiny_elf(ENTRY, &exit_guest()))?;
    let native = native_runs(&exit_path, plan.fresh.max(100), 0)?;
    report
        .series
        .push(Series::latency("native-process", &native.hist, None));

    progress("microvm", "fresh VM: created from nothing, run to exit");
    let fresh = fresh_runs(&exit, plan.fresh)?;
    report
        .series
        .push(Series::latency("microvm-fresh-vm", &fresh, None));

    progress("microvm", "system call round trips");
    let with_calls = prepare(&engine, syscall_guest(SYSCALLS))?;
    let syscall = syscall_runs(&exit, &with_calls, plan.syscall_runs)?;
    report.series.push(Series::latency(
        "microvm-syscall",
        &syscall,
        Some("native-syscall"),
    ));
    let mut native_syscall = histogram();
    for _ in 0..plan.syscall_runs {
        let t = Instant::now();
        for _ in 0..SYSCALLS {
            std::hint::black_box(std::process::id());
        }
        record_avg(&mut native_syscall, t.elapsed(), SYSCALLS);
    }
    report
        .series
        .push(Series::latency("native-syscall", &native_syscall, None));

    progress(
        "microvm",
        "compute: the same CPU-bound ELF in a microVM and natively",
    );
    let compute = prepare(&engine, compute_guest(COMPUTE_STEPS))?;
    let compute_path = dir.write("compute", &tiny_elf(ENTRY, &compute_guest(COMPUTE_STEPS)))?;
    let (mut in_vm, mut natively) = (histogram(), histogram());
    let pool = MicroVmPool::new(compute.clone(), 1);
    let mut status = (0, 0);
    // Interleaved, so that noise on the shared machine hits both.
    for _ in 0..plan.compute_runs {
        let t = Instant::now();
        let out = pool.invoke(command())?;
        record(&mut in_vm, t.elapsed());
        status.0 = out.exit_code & 0xff;
        let n = native_runs(&compute_path, 1, 0)?;
        in_hist(&mut natively, &n.hist);
        status.1 = n.status;
    }
    ensure!(
        status.0 == status.1,
        "the compute guest's result differs: microVM {} vs native {}",
        status.0,
        status.1
    );
    report.series.push(Series::latency(
        "microvm-compute",
        &in_vm,
        Some("native-compute"),
    ));
    report
        .series
        .push(Series::latency("native-compute", &natively, None));

    progress(
        "microvm",
        "through the gateway: examples/wagi/hello.c as a microvm and a wasm app, and a hyper floor",
    );
    let through_gateway = super::microvm_gateway::run(&engine, quick)?;
    report.series.extend(through_gateway.series);

    report.notes = vec![
        "goals on this PVM machine: microvm-cold p50 <= 15 us and p99 <= 50 us (TinyKVM's 15 us), microvm-fresh-vm p50 <= 1 ms, microvm-compute >= 0.95x native".into(),
        "every exit on PVM (the system call doorbell included) is a trap into the host kernel's PVM switcher; microvm-cold makes one system call (exit_group)".into(),
        format!("microvm-syscall is ({SYSCALLS} getpid run - exit-only run) / {SYSCALLS}, per sample"),
        "native-process is fork+exec+wait of the same static ELF (std::process::Command)".into(),
    ];
    report.notes.extend(through_gateway.notes);
    Ok(report.finish())
}

fn command() -> Invocation<'static> {
    Invocation::Command {
        args: &[],
        env: &[],
        stdin: &[],
        dirs: &[],
    }
}

fn prepare(engine: &MicroVmEngine, code: Vec<u8>) -> Result<Arc<MicroVmTemplate>> {
    Ok(engine.prepare(
        &Artifact::new(tiny_elf(ENTRY, &code)),
        Limits {
            memory_bytes: MEMORY_BYTES,
            deadline: Duration::from_secs(60),
            ..Limits::default()
        },
    )?)
}

/// `samples` invocations through a one-VM pool after `warmup` unrecorded
/// ones, each ending in an exit of status 0.
fn pooled_runs(
    template: &Arc<MicroVmTemplate>,
    samples: usize,
    warmup: usize,
) -> Result<Histogram<u64>> {
    timed_runs(template, samples, warmup, |out| match out {
        Ok(out) if out.exit_code == 0 => Ok(()),
        Ok(out) => Err(anyhow::anyhow!("the guest exited {}", out.exit_code)),
        Err(e) => Err(anyhow::anyhow!("the guest failed: {e}")),
    })
}

/// Like [`pooled_runs`], for a guest whose one exit ends its run as a trap.
fn trapping_runs(
    template: &Arc<MicroVmTemplate>,
    samples: usize,
    warmup: usize,
) -> Result<Histogram<u64>> {
    timed_runs(template, samples, warmup, |out| match out {
        Err(sandbox::SandboxError::Trap { .. }) => Ok(()),
        other => Err(anyhow::anyhow!(
            "the guest did not end with a trap: {other:?}"
        )),
    })
}

/// Times invocations through a one-VM pool, each checked by `ended`.
fn timed_runs(
    template: &Arc<MicroVmTemplate>,
    samples: usize,
    warmup: usize,
    ended: impl Fn(&Result<sandbox::Output, sandbox::SandboxError>) -> Result<()>,
) -> Result<Histogram<u64>> {
    let pool = MicroVmPool::new(template.clone(), 1);
    pool.fill()?;
    let mut hist = histogram();
    for i in 0..warmup + samples {
        let t = Instant::now();
        let out = pool.invoke(command());
        let took = t.elapsed();
        ended(&out)?;
        if i >= warmup {
            record(&mut hist, took);
        }
    }
    Ok(hist)
}

/// The two halves of `microvm-cold`, timed apart on one VM: restoring the
/// dirtied pages, then an invocation on the clean VM (stack, registers,
/// `KVM_RUN` to the exit).
fn split_runs(
    template: &Arc<MicroVmTemplate>,
    samples: usize,
) -> Result<(Histogram<u64>, Histogram<u64>)> {
    let mut vm = MicroVmSandbox::start(template)?;
    let (mut reset, mut run) = (histogram(), histogram());
    vm.invoke(command())?;
    for _ in 0..samples {
        let t = Instant::now();
        vm.reset()?;
        record(&mut reset, t.elapsed());
        let t = Instant::now();
        vm.invoke(command())?;
        record(&mut run, t.elapsed());
    }
    Ok((reset, run))
}

fn fresh_runs(template: &Arc<MicroVmTemplate>, samples: usize) -> Result<Histogram<u64>> {
    let mut hist = histogram();
    for _ in 0..samples {
        let t = Instant::now();
        let mut vm = MicroVmSandbox::start(template)?;
        let out = vm.invoke(command())?;
        record(&mut hist, t.elapsed());
        ensure!(out.exit_code == 0, "the guest exited {}", out.exit_code);
        drop(vm);
    }
    Ok(hist)
}

/// Per sample: a run with [`SYSCALLS`] calls minus an exit-only run, both
/// on pooled VMs, divided by the count.
fn syscall_runs(
    exit: &Arc<MicroVmTemplate>,
    calls: &Arc<MicroVmTemplate>,
    samples: usize,
) -> Result<Histogram<u64>> {
    let (base, with) = (
        MicroVmPool::new(exit.clone(), 1),
        MicroVmPool::new(calls.clone(), 1),
    );
    let mut hist = histogram();
    for _ in 0..samples {
        let t = Instant::now();
        base.invoke(command())?;
        let fixed = t.elapsed();
        let t = Instant::now();
        with.invoke(command())?;
        let total = t.elapsed();
        record_avg(&mut hist, total.saturating_sub(fixed), SYSCALLS);
    }
    Ok(hist)
}

struct Native {
    hist: Histogram<u64>,
    status: i32,
}

fn native_runs(path: &PathBuf, samples: usize, warmup: usize) -> Result<Native> {
    let mut hist = histogram();
    let mut status = 0;
    for i in 0..warmup + samples {
        let t = Instant::now();
        let s = Command::new(path)
            .status()
            .with_context(|| format!("running {}", path.display()))?;
        let took = t.elapsed();
        status = s
            .code()
            .context("the native guest was killed by a signal")?;
        if i >= warmup {
            record(&mut hist, took);
        }
    }
    Ok(Native { hist, status })
}

fn in_hist(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Both come from report::histogram(): same bounds, so adding cannot fail.
    let _ = into.add(from);
}

/// Which KVM this is: PVM (kvm_pvm loaded) or hardware virtualization.
fn kvm_flavour() -> &'static str {
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        "pvm"
    } else {
        "hardware"
    }
}

/// A directory for the native copies of the guests, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("dwcp-bench-microvm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
