//! The host shim: answers a microVM program's system calls. Every call is
//! a VM exit; [`Process::call`] decides its answer from the call's number
//! and arguments and the process's state, reading and writing guest memory
//! only through [`Guest`] after checking each pointer against the layout.
//!
//! The allow-list (see `docs/microvm.md` for the table): memory (`brk`,
//! `mmap`/`munmap`/`mprotect`/`madvise`/`mremap` inside the sandbox's
//! region), `read` on stdin, `write`/`writev` on stdout and stderr, clocks,
//! `getrandom`, `exit`/`exit_group`, and what libc start-up asks (ids,
//! `arch_prctl`, `set_tid_address`, `uname`, `ioctl` → `ENOTTY`, signal
//! masks accepted and ignored). Paths never exist (`ENOENT`); every other
//! number answers `ENOSYS` — `fork`, `clone` and `execve` among them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::layout::{Layout, USER_BASE};
use super::memory::PAGE_BYTES;
use super::stack::GUEST_ID;
use crate::SandboxError;

/// Guest memory as the shim sees it (guest virtual = guest physical).
pub(crate) trait Guest {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), SandboxError>;
    fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), SandboxError>;
    fn zero(&mut self, addr: u64, len: u64) -> Result<(), SandboxError>;
}

/// Linux error numbers the shim answers with.
mod errno {
    pub const ENOENT: u64 = 2;
    pub const ESRCH: u64 = 3;
    pub const EBADF: u64 = 9;
    pub const ENOMEM: u64 = 12;
    pub const EFAULT: u64 = 14;
    pub const EINVAL: u64 = 22;
    pub const ENOTTY: u64 = 25;
    pub const ESPIPE: u64 = 29;
    pub const ENOSYS: u64 = 38;
}

/// What the vCPU does after a call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Return this value in `rax` and continue.
    Return(u64),
    /// The program exited with this status.
    Exit(i32),
    /// Set the FS base (thread pointer) to this, return 0 and continue.
    SetFsBase(u64),
    /// Set the GS base to this, return 0 and continue.
    SetGsBase(u64),
}

/// A system call: its number and six arguments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call {
    pub(crate) nr: u64,
    pub(crate) args: [u64; 6],
}

/// One run of a program: its memory bookkeeping, input and output.
pub(crate) struct Process<'a> {
    layout: &'a Layout,
    /// `[start, end)` ranges the program may not write (ELF text, rodata).
    readonly: &'a [(u64, u64)],
    brk: u64,
    /// The highest the break has been: pages above it were never handed out.
    brk_high: u64,
    /// The mmap area grows down from the guard page; this is its low end.
    mmap_low: u64,
    /// The lowest the mmap area has been: pages below it were never handed out.
    mmap_lowest: u64,
    stdin: &'a [u8],
    stdin_at: usize,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    output_cap: usize,
    pub(crate) truncated: bool,
    pub(crate) fs_base: u64,
    pub(crate) gs_base: u64,
    deadline: Duration,
    deadline_at: Instant,
}

impl<'a> Process<'a> {
    pub(crate) fn new(
        layout: &'a Layout,
        readonly: &'a [(u64, u64)],
        stdin: &'a [u8],
        output_cap: usize,
        deadline: Duration,
        started: Instant,
    ) -> Process<'a> {
        Process {
            layout,
            readonly,
            brk: layout.brk_start,
            brk_high: layout.brk_start,
            mmap_low: layout.guard_page,
            mmap_lowest: layout.guard_page,
            stdin,
            stdin_at: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            output_cap,
            truncated: false,
            fs_base: 0,
            gs_base: 0,
            deadline,
            deadline_at: started + deadline,
        }
    }

    /// Checks that the program may read (`write == false`) or write
    /// `[addr, addr + len)`.
    fn check(&self, addr: u64, len: u64, write: bool) -> Result<(), u64> {
        if len == 0 {
            return Ok(());
        }
        if !self.layout.is_user_range(addr, len) {
            return Err(errno::EFAULT);
        }
        let end = addr + len;
        if write && self.readonly.iter().any(|(s, e)| addr < *e && end > *s) {
            return Err(errno::EFAULT);
        }
        Ok(())
    }

    /// Answers one call. `Err` ends the run (a limit, a deadline, a host
    /// failure); an error *number* for the program is an `Ok(Return(-e))`.
    pub(crate) fn call(&mut self, guest: &mut dyn Guest, call: Call) -> Result<Next, SandboxError> {
        let [a0, a1, a2, a3, _a4, _a5] = call.args;
        let ret = |r: Result<u64, u64>| Ok(Next::Return(r.unwrap_or_else(|e| e.wrapping_neg())));
        match call.nr {
            0 => ret(self.read(guest, a0, a1, a2)),
            1 => ret(self.write(guest, a0, a1, a2)),
            19 => ret(self.readv(guest, a0, a1, a2)),
            20 => ret(self.writev(guest, a0, a1, a2)),
            3 => ret(if a0 <= 2 { Ok(0) } else { Err(errno::EBADF) }), // close
            5 => ret(self.fstat(guest, a0, a1)),
            262 => {
                // newfstatat(fd, "", buf, AT_EMPTY_PATH) is fstat; paths do not exist.
                const AT_EMPTY_PATH: u64 = 0x1000;
                if a3 & AT_EMPTY_PATH != 0 {
                    ret(self.fstat(guest, a0, a2))
                } else {
                    ret(Err(errno::ENOENT))
                }
            }
            8 => ret(if a0 <= 2 {
                Err(errno::ESPIPE)
            } else {
                Err(errno::EBADF)
            }), // lseek
            16 => ret(if a0 <= 2 {
                Err(errno::ENOTTY)
            } else {
                Err(errno::EBADF)
            }), // ioctl
            72 => ret(match (a0, a1) {
                (0..=2, 1) => Ok(0), // F_GETFD
                (0, 3) => Ok(0),     // F_GETFL: O_RDONLY
                (1..=2, 3) => Ok(1), // F_GETFL: O_WRONLY
                (0..=2, _) => Err(errno::EINVAL),
                _ => Err(errno::EBADF),
            }),
            // open, stat, lstat, access, readlink, openat, readlinkat, faccessat, statx: no file system.
            2 | 4 | 6 | 21 | 89 | 257 | 267 | 269 | 332 | 439 => ret(Err(errno::ENOENT)),
            9 => self.mmap(guest, call.args),
            11 => ret(self.munmap(a0, a1)),
            10 | 28 => ret(self.in_region(a0, a1)), // mprotect, madvise: accepted, no effect
            25 => ret(Err(errno::ENOMEM)),          // mremap: callers fall back to copying
            12 => self.brk(guest, a0).map(Next::Return),
            158 => self.arch_prctl(guest, a0, a1),
            218 | 186 | 39 => ret(Ok(1)), // set_tid_address, gettid, getpid
            110 => ret(Ok(0)),            // getppid
            102 | 104 | 107 | 108 => ret(Ok(GUEST_ID)), // getuid, getgid, geteuid, getegid
            273 => ret(Ok(0)),            // set_robust_list
            13 | 14 | 131 => ret(Ok(0)), // rt_sigaction, rt_sigprocmask, sigaltstack: no signals come
            24 => ret(Ok(0)),            // sched_yield
            63 => ret(self.uname(guest, a0)),
            79 => ret(self.write_out(guest, a0, a1, b"/\0").map(|_| 2)), // getcwd
            204 => ret(self
                .write_out(guest, a2, a1.min(8), &1u64.to_le_bytes())
                .map(|_| 8)), // sched_getaffinity: one CPU
            228 => ret(self.clock_gettime(guest, a0, a1)),
            229 => ret(self.write_timespec(guest, a1, Duration::from_nanos(1))), // clock_getres
            96 => ret(self.gettimeofday(guest, a0)),
            201 => {
                let now = wall_clock().as_secs();
                if a0 != 0
                    && let Err(e) = self.write_out(guest, a0, 8, &now.to_le_bytes())
                {
                    return ret(Err(e));
                }
                ret(Ok(now))
            }
            318 => ret(self.getrandom(guest, a0, a1)),
            35 => self.sleep(guest, a0),           // nanosleep
            230 => self.sleep(guest, a2),          // clock_nanosleep
            60 | 231 => Ok(Next::Exit(a0 as i32)), // exit, exit_group
            62 | 200 | 234 => {
                // kill(pid, sig), tkill(tid, sig), tgkill(tgid, tid, sig):
                // the program is process 1, thread 1, and alone.
                let (target, signal) = if call.nr == 234 { (a1, a2) } else { (a0, a1) };
                let ourselves = matches!(target as i32, -1..=1);
                match signal {
                    _ if !ourselves => ret(Err(errno::ESRCH)),
                    0 => ret(Ok(0)),
                    1..=64 => Err(SandboxError::Trap {
                        message: format!(
                            "the program killed itself with signal {signal}{}",
                            signal_name(signal)
                        ),
                    }),
                    _ => ret(Err(errno::EINVAL)),
                }
            }
            _ => ret(Err(errno::ENOSYS)),
        }
    }

    fn write_out(
        &self,
        guest: &mut dyn Guest,
        addr: u64,
        len: u64,
        bytes: &[u8],
    ) -> Result<(), u64> {
        let n = (len as usize).min(bytes.len());
        self.check(addr, n as u64, true)?;
        guest.write(addr, &bytes[..n]).map_err(|_| errno::EFAULT)
    }

    fn read(&mut self, guest: &mut dyn Guest, fd: u64, buf: u64, count: u64) -> Result<u64, u64> {
        if fd != 0 {
            return Err(errno::EBADF);
        }
        // The whole buffer must be the program's, as Linux checks it too.
        self.check(buf, count, true)?;
        let left = &self.stdin[self.stdin_at..];
        let n = (count as usize).min(left.len());
        guest.write(buf, &left[..n]).map_err(|_| errno::EFAULT)?;
        self.stdin_at += n;
        Ok(n as u64)
    }

    fn readv(&mut self, guest: &mut dyn Guest, fd: u64, iov: u64, count: u64) -> Result<u64, u64> {
        let mut total = 0;
        for (base, len) in self.iovecs(guest, iov, count)? {
            let n = self.read(guest, fd, base, len)?;
            total += n;
            if n < len {
                break;
            }
        }
        Ok(total)
    }

    fn write(&mut self, guest: &mut dyn Guest, fd: u64, buf: u64, count: u64) -> Result<u64, u64> {
        if fd != 1 && fd != 2 {
            return Err(errno::EBADF);
        }
        self.check(buf, count, false)?;
        let out = if fd == 1 {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        let room = self.output_cap.saturating_sub(out.len());
        let kept = (count as usize).min(room);
        if kept < count as usize {
            self.truncated = true;
        }
        if kept > 0 {
            let at = out.len();
            out.resize(at + kept, 0);
            guest.read(buf, &mut out[at..]).map_err(|_| errno::EFAULT)?;
        }
        // What went past the cap is dropped, but counts as written so that
        // the program goes on (as the wasm tier does).
        Ok(count)
    }

    fn writev(&mut self, guest: &mut dyn Guest, fd: u64, iov: u64, count: u64) -> Result<u64, u64> {
        let mut total = 0;
        for (base, len) in self.iovecs(guest, iov, count)? {
            total += self.write(guest, fd, base, len)?;
        }
        Ok(total)
    }

    fn iovecs(&self, guest: &dyn Guest, iov: u64, count: u64) -> Result<Vec<(u64, u64)>, u64> {
        const IOV_MAX: u64 = 1024;
        if count > IOV_MAX {
            return Err(errno::EINVAL);
        }
        self.check(iov, count * 16, false)?;
        let mut raw = vec![0u8; (count * 16) as usize];
        guest.read(iov, &mut raw).map_err(|_| errno::EFAULT)?;
        Ok(raw
            .chunks_exact(16)
            .map(|c| {
                let w = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
                (w(0), w(8))
            })
            .collect())
    }

    fn fstat(&self, guest: &mut dyn Guest, fd: u64, buf: u64) -> Result<u64, u64> {
        if fd > 2 {
            return Err(errno::EBADF);
        }
        // struct stat (x86-64): a pipe, so that libc buffers fully.
        let mut st = [0u8; 144];
        const S_IFIFO: u32 = 0o010000;
        st[24..28].copy_from_slice(&(S_IFIFO | 0o600).to_le_bytes()); // st_mode
        st[16..24].copy_from_slice(&1u64.to_le_bytes()); // st_nlink
        st[56..64].copy_from_slice(&4096u64.to_le_bytes()); // st_blksize
        self.write_out(guest, buf, 144, &st).map(|_| 0)
    }

    fn uname(&self, guest: &mut dyn Guest, buf: u64) -> Result<u64, u64> {
        let mut u = [0u8; 6 * 65];
        for (i, field) in [
            "Linux",
            "dwcp-microvm",
            "6.1.0",
            "#1 dwcp",
            "x86_64",
            "(none)",
        ]
        .iter()
        .enumerate()
        {
            u[i * 65..i * 65 + field.len()].copy_from_slice(field.as_bytes());
        }
        self.write_out(guest, buf, u.len() as u64, &u).map(|_| 0)
    }

    fn write_timespec(&self, guest: &mut dyn Guest, addr: u64, t: Duration) -> Result<u64, u64> {
        if addr == 0 {
            return Ok(0);
        }
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&t.as_secs().to_le_bytes());
        b[8..].copy_from_slice(&u64::from(t.subsec_nanos()).to_le_bytes());
        self.write_out(guest, addr, 16, &b).map(|_| 0)
    }

    fn clock_gettime(&self, guest: &mut dyn Guest, clock: u64, addr: u64) -> Result<u64, u64> {
        let t = match clock {
            0 | 5 | 8 | 11 => wall_clock(),   // REALTIME (+COARSE, ALARM, TAI)
            1 | 4 | 6 | 7 | 9 => monotonic(), // MONOTONIC (+RAW, COARSE), BOOTTIME (+ALARM)
            2 | 3 => self
                .deadline
                .saturating_sub(self.deadline_at.saturating_duration_since(Instant::now())), // CPU time of this run
            _ => return Err(errno::EINVAL),
        };
        self.write_timespec(guest, addr, t)
    }

    fn gettimeofday(&self, guest: &mut dyn Guest, addr: u64) -> Result<u64, u64> {
        if addr == 0 {
            return Ok(0);
        }
        let t = wall_clock();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&t.as_secs().to_le_bytes());
        b[8..].copy_from_slice(&u64::from(t.subsec_micros()).to_le_bytes());
        self.write_out(guest, addr, 16, &b).map(|_| 0)
    }

    fn getrandom(&self, guest: &mut dyn Guest, buf: u64, len: u64) -> Result<u64, u64> {
        // Linux returns at most this much per call too (33554431); less is fine.
        const MAX_BYTES: u64 = 1 << 16;
        let n = len.min(MAX_BYTES);
        self.check(buf, n, true)?;
        let mut bytes = vec![0u8; n as usize];
        getrandom::fill(&mut bytes).map_err(|_| errno::EFAULT)?;
        guest.write(buf, &bytes).map_err(|_| errno::EFAULT)?;
        Ok(n)
    }

    fn sleep(&self, guest: &mut dyn Guest, req: u64) -> Result<Next, SandboxError> {
        let mut b = [0u8; 16];
        if self.check(req, 16, false).is_err() || guest.read(req, &mut b).is_err() {
            return Ok(Next::Return(errno::EFAULT.wrapping_neg()));
        }
        let secs = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let nanos = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        if nanos >= 1_000_000_000 {
            return Ok(Next::Return(errno::EINVAL.wrapping_neg()));
        }
        let wanted = Duration::from_secs(secs).saturating_add(Duration::from_nanos(nanos));
        let left = self.deadline_at.saturating_duration_since(Instant::now());
        if wanted >= left {
            return Err(SandboxError::Timeout {
                deadline: self.deadline,
            });
        }
        std::thread::sleep(wanted);
        Ok(Next::Return(0))
    }

    /// 0 when `[addr, addr + len)` is page-aligned inside the program's
    /// memory, else an error number.
    fn in_region(&self, addr: u64, len: u64) -> Result<u64, u64> {
        if !addr.is_multiple_of(PAGE_BYTES) {
            return Err(errno::EINVAL);
        }
        let len = len.div_ceil(PAGE_BYTES) * PAGE_BYTES;
        if len == 0 || self.layout.is_user_range(addr, len) {
            Ok(0)
        } else {
            Err(errno::ENOMEM)
        }
    }

    fn brk(&mut self, guest: &mut dyn Guest, want: u64) -> Result<u64, SandboxError> {
        if want < self.layout.brk_start || want > self.mmap_low {
            // Linux answers a failed brk with the current break; libc's
            // malloc then falls back to mmap, which enforces the limit.
            return Ok(self.brk);
        }
        if want > self.brk {
            // Memory the program gave back and takes again reads as zero.
            let dirty_end = want.min(self.brk_high);
            if dirty_end > self.brk {
                guest.zero(self.brk, dirty_end - self.brk)?;
            }
            self.brk_high = self.brk_high.max(want);
        }
        self.brk = want;
        Ok(want)
    }

    fn mmap(&mut self, guest: &mut dyn Guest, args: [u64; 6]) -> Result<Next, SandboxError> {
        const MAP_FIXED: u64 = 0x10;
        const MAP_ANONYMOUS: u64 = 0x20;
        const MAP_FIXED_NOREPLACE: u64 = 0x100000;
        let [addr, len, _prot, flags, _fd, _offset] = args;
        let fail = |e: u64| Ok(Next::Return(e.wrapping_neg()));
        if flags & MAP_ANONYMOUS == 0 {
            return fail(errno::EBADF); // no files to map
        }
        if len == 0 {
            return fail(errno::EINVAL);
        }
        let Some(len) = len.checked_next_multiple_of(PAGE_BYTES) else {
            return fail(errno::ENOMEM);
        };
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
            // Only inside memory already handed out to the mmap area or heap.
            if !addr.is_multiple_of(PAGE_BYTES)
                || !self.layout.is_user_range(addr, len)
                || addr < self.layout.brk_start
            {
                return fail(errno::ENOMEM);
            }
            guest.zero(addr, len)?;
            return Ok(Next::Return(addr));
        }
        let wanted = self.layout.memory_bytes.saturating_sub(self.mmap_low) + len;
        let Some(low) = self
            .mmap_low
            .checked_sub(len)
            .filter(|low| *low >= self.brk)
        else {
            return Err(SandboxError::MemoryLimit {
                limit_bytes: self.layout.memory_bytes - USER_BASE,
                wanted_bytes: (self.brk - USER_BASE).saturating_add(wanted),
            });
        };
        let dirty_low = low.max(self.mmap_lowest);
        if self.mmap_low > dirty_low {
            guest.zero(dirty_low, self.mmap_low - dirty_low)?;
        }
        self.mmap_low = low;
        self.mmap_lowest = self.mmap_lowest.min(low);
        Ok(Next::Return(low))
    }

    fn munmap(&mut self, addr: u64, len: u64) -> Result<u64, u64> {
        self.in_region(addr, len)?;
        let len = len.div_ceil(PAGE_BYTES) * PAGE_BYTES;
        // The most recent mapping's space is reused; older holes are not.
        if addr == self.mmap_low && addr + len <= self.layout.guard_page {
            self.mmap_low = addr + len;
        }
        Ok(0)
    }

    fn arch_prctl(
        &mut self,
        guest: &mut dyn Guest,
        code: u64,
        addr: u64,
    ) -> Result<Next, SandboxError> {
        const ARCH_SET_GS: u64 = 0x1001;
        const ARCH_SET_FS: u64 = 0x1002;
        const ARCH_GET_FS: u64 = 0x1003;
        const ARCH_GET_GS: u64 = 0x1004;
        const CANONICAL_LIMIT: u64 = 1 << 47;
        let ret = |r: Result<u64, u64>| Ok(Next::Return(r.unwrap_or_else(|e| e.wrapping_neg())));
        match code {
            ARCH_SET_FS | ARCH_SET_GS if addr >= CANONICAL_LIMIT => ret(Err(errno::EINVAL)),
            ARCH_SET_FS => {
                self.fs_base = addr;
                Ok(Next::SetFsBase(addr))
            }
            ARCH_SET_GS => {
                self.gs_base = addr;
                Ok(Next::SetGsBase(addr))
            }
            ARCH_GET_FS => ret(self
                .write_out(guest, addr, 8, &self.fs_base.to_le_bytes())
                .map(|_| 0)),
            ARCH_GET_GS => ret(self
                .write_out(guest, addr, 8, &self.gs_base.to_le_bytes())
                .map(|_| 0)),
            _ => ret(Err(errno::EINVAL)),
        }
    }
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn monotonic() -> Duration {
    // One process-wide origin, so that every sandbox's clock only goes forward.
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    // Start well above zero: programs treat 0 as "unset".
    Duration::from_secs(1) + origin.elapsed()
}

fn signal_name(signal: u64) -> &'static str {
    match signal {
        6 => " (SIGABRT: it called abort(), e.g. a failed assertion)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest memory as a plain vector, for the shim's decisions.
    struct Flat(Vec<u8>);

    impl Guest for Flat {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), SandboxError> {
            buf.copy_from_slice(&self.0[addr as usize..addr as usize + buf.len()]);
            Ok(())
        }
        fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), SandboxError> {
            self.0[addr as usize..addr as usize + bytes.len()].copy_from_slice(bytes);
            Ok(())
        }
        fn zero(&mut self, addr: u64, len: u64) -> Result<(), SandboxError> {
            self.0[addr as usize..(addr + len) as usize].fill(0);
            Ok(())
        }
    }

    const MEM: u64 = 16 << 20;

    fn call(nr: u64, args: &[u64]) -> Call {
        let mut a = [0; 6];
        a[..args.len()].copy_from_slice(args);
        Call { nr, args: a }
    }

    fn setup() -> (Layout, Flat) {
        (
            Layout::new(MEM, USER_BASE + 0x10000).unwrap(),
            Flat(vec![0; MEM as usize]),
        )
    }

    #[test]
    fn bad_pointers_get_efault_and_touch_nothing() {
        let (layout, mut mem) = setup();
        let readonly = [(USER_BASE, USER_BASE + 0x1000)];
        let mut p = Process::new(
            &layout,
            &readonly,
            b"input",
            100,
            Duration::from_secs(1),
            Instant::now(),
        );
        let efault = Next::Return(errno::EFAULT.wrapping_neg());
        for addr in [
            0,
            0x10000,
            0x2000,
            layout.guard_page,
            MEM - 2,
            u64::MAX - 1,
            USER_BASE,
        ] {
            assert_eq!(
                p.call(&mut mem, call(0, &[0, addr, 5])).unwrap(),
                efault,
                "read into {addr:#x}"
            );
        }
        for addr in [0, 0x10000, MEM, u64::MAX - 1] {
            assert_eq!(
                p.call(&mut mem, call(1, &[1, addr, 5])).unwrap(),
                efault,
                "write from {addr:#x}"
            );
        }
        assert!(mem.0.iter().all(|b| *b == 0), "nothing written");
        assert!(p.stdout.is_empty());
    }

    #[test]
    fn output_past_the_cap_is_dropped_and_flagged() {
        let (layout, mut mem) = setup();
        let mut p = Process::new(&layout, &[], b"", 4, Duration::from_secs(1), Instant::now());
        mem.0[USER_BASE as usize..USER_BASE as usize + 6].copy_from_slice(b"abcdef");
        assert_eq!(
            p.call(&mut mem, call(1, &[1, USER_BASE, 6])).unwrap(),
            Next::Return(6)
        );
        assert_eq!(p.stdout, b"abcd");
        assert!(p.truncated);
    }

    #[test]
    fn fork_clone_execve_and_unknown_numbers_are_enosys() {
        let (layout, mut mem) = setup();
        let mut p = Process::new(&layout, &[], b"", 4, Duration::from_secs(1), Instant::now());
        for nr in [56, 57, 58, 59, 41, 101, 500, u64::MAX] {
            assert_eq!(
                p.call(&mut mem, call(nr, &[])).unwrap(),
                Next::Return(errno::ENOSYS.wrapping_neg())
            );
        }
    }

    #[test]
    fn mmap_past_memory_is_a_memory_limit_and_brk_fails_softly() {
        let (layout, mut mem) = setup();
        let mut p = Process::new(&layout, &[], b"", 4, Duration::from_secs(1), Instant::now());
        let brk0 = layout.brk_start;
        assert_eq!(
            p.call(&mut mem, call(12, &[0])).unwrap(),
            Next::Return(brk0)
        );
        assert_eq!(
            p.call(&mut mem, call(12, &[MEM])).unwrap(),
            Next::Return(brk0),
            "brk past memory fails"
        );
        let anon = [0, 1 << 20, 3, 0x22, u64::MAX, 0];
        let Next::Return(a) = p.call(&mut mem, call(9, &anon)).unwrap() else {
            panic!()
        };
        assert!(a >= brk0 && a + (1 << 20) <= layout.guard_page);
        let huge = [0, MEM, 3, 0x22, u64::MAX, 0];
        let e = p.call(&mut mem, call(9, &huge)).unwrap_err();
        assert_eq!(e.code(), "memory_limit");
    }

    #[test]
    fn reused_memory_reads_as_zero() {
        let (layout, mut mem) = setup();
        let mut p = Process::new(&layout, &[], b"", 4, Duration::from_secs(1), Instant::now());
        let anon = [0, 4096, 3, 0x22, u64::MAX, 0];
        let Next::Return(a) = p.call(&mut mem, call(9, &anon)).unwrap() else {
            panic!()
        };
        mem.0[a as usize] = 9;
        assert_eq!(
            p.call(&mut mem, call(11, &[a, 4096])).unwrap(),
            Next::Return(0)
        );
        let Next::Return(b) = p.call(&mut mem, call(9, &anon)).unwrap() else {
            panic!()
        };
        assert_eq!(a, b);
        assert_eq!(mem.0[b as usize], 0);
    }
}
