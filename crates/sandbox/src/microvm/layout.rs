//! Where everything lives in a microVM's memory, and the bytes of the
//! structures the host writes there for the CPU: page tables, the GDT, the
//! TSS, the IDT and the exception stubs. Pure: builds byte images.
//!
//! Virtual addresses equal guest-physical ones (an identity map), so a
//! guest pointer is checked with one range comparison.
//!
//! ```text
//! 0x0000_0000  not mapped (null pointers fault)
//! 0x0000_1000  system area, kernel-only: descriptor tables, exception
//!              stubs, the exception stack, page tables
//! 0x0000_2000  the syscall stub (user, read+execute), the `LSTAR` target
//! 0x0000_3000  the doorbell (user, write-only in effect): mapped to a
//!              guest-physical page with no memory behind it, so a store
//!              there exits to the host
//! 0x0040_0000  the program's ELF segments, then its heap (brk) growing up
//!     ...      mmap'd memory growing down
//!              a guard page (not mapped)
//! top - stack  the stack, growing down from the top of memory
//! ```

use super::memory::PAGE_BYTES;

/// The syscall stub's page.
pub(crate) const STUB: u64 = 0x2000;
/// The doorbell's page (virtual).
pub(crate) const DOORBELL: u64 = 0x3000;
/// Where the doorbell page points: a guest-physical page beyond any memory
/// the VM has (memory is at most [`MAX_MEMORY_BYTES`]).
pub(crate) const DOORBELL_GPA: u64 = 0xffff_f000;
const GDT: u64 = 0x4000;
const TSS: u64 = 0x4800;
const IDT: u64 = 0x5000;
/// Exception stubs, [`VECTOR_STUB_BYTES`] apart, one per vector.
pub(crate) const VECTORS: u64 = 0x6000;
/// Bytes between two exception stubs.
pub(crate) const VECTOR_STUB_BYTES: u64 = 8;
/// Exceptions the IDT has gates for; any other vector faults as #GP.
pub(crate) const VECTOR_COUNT: u64 = 32;
/// Top of the stack the CPU pushes an exception frame on (one page).
pub(crate) const EXCEPTION_STACK_TOP: u64 = 0x8000;
const PAGE_TABLES: u64 = 0x10000;
/// The lowest address a program's ELF segments may use.
pub(crate) const USER_BASE: u64 = 0x40_0000;
/// The smallest memory a microVM may have.
pub(crate) const MIN_MEMORY_BYTES: u64 = 8 << 20;
/// The largest memory a microVM may have: its page tables (4 KiB pages)
/// must fit below [`USER_BASE`].
pub(crate) const MAX_MEMORY_BYTES: u64 = 1 << 30;

/// Segment selectors. A 64-bit TSS descriptor takes two GDT slots.
pub(crate) const KERNEL_CS: u16 = 0x08;
pub(crate) const KERNEL_DS: u16 = 0x10;
pub(crate) const USER_DS: u16 = 0x18 | 3;
pub(crate) const USER_CS: u16 = 0x20 | 3;
pub(crate) const TSS_SELECTOR: u16 = 0x28;

/// Control register and MSR values of a long-mode CPU with paging.
pub(crate) const CR0: u64 = 0x8005_0033; // PG | AM | WP | NE | ET | MP | PE
pub(crate) const CR4_PAE: u64 = 1 << 5;
pub(crate) const CR4_OSFXSR: u64 = 1 << 9;
pub(crate) const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub(crate) const EFER: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11); // SCE | LME | LMA | NXE
/// The page-map level 4 table, for CR3.
pub(crate) const CR3: u64 = PAGE_TABLES;

const PTE_PRESENT: u64 = 1;
const PTE_WRITE: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
/// Accessed and dirty, set up front so the CPU never writes page tables.
const PTE_ACCESSED_DIRTY: u64 = (1 << 5) | (1 << 6);
const PTE_NX: u64 = 1 << 63;

/// How a page of the program may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read and execute (ELF text).
    ReadExecute,
    /// Read only (ELF read-only data).
    Read,
    /// Read and write, never execute (data, heap, mmap, stack).
    ReadWrite,
}

/// Where a program's regions lie in a VM of a given size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) memory_bytes: u64,
    /// First byte after the ELF's segments, page-aligned: the heap's start.
    pub(crate) brk_start: u64,
    /// The unmapped page between the mmap area and the stack.
    pub(crate) guard_page: u64,
    /// Lowest address of the stack (top is `memory_bytes`).
    pub(crate) stack_bottom: u64,
}

impl Layout {
    /// Bytes kept for the stack: an eighth of memory, from 256 KiB to 8 MiB.
    pub(crate) fn stack_bytes(memory_bytes: u64) -> u64 {
        (memory_bytes / 8).clamp(256 << 10, 8 << 20)
    }

    /// The layout for `memory_bytes` of memory and segments ending at
    /// `segments_end`; `None` when they leave no room for a heap.
    pub(crate) fn new(memory_bytes: u64, segments_end: u64) -> Option<Layout> {
        let brk_start = segments_end.div_ceil(PAGE_BYTES) * PAGE_BYTES;
        let stack_bottom = memory_bytes - Self::stack_bytes(memory_bytes);
        let guard_page = stack_bottom - PAGE_BYTES;
        (brk_start < guard_page).then_some(Layout {
            memory_bytes,
            brk_start,
            guard_page,
            stack_bottom,
        })
    }

    /// True when `[addr, addr + len)` lies in memory the program may use
    /// (the ELF's segments, heap, mmap area and stack; not the guard page
    /// nor the system area). Writable-ness is checked separately.
    pub(crate) fn is_user_range(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let in_memory = addr >= USER_BASE && end <= self.memory_bytes;
        let touches_guard = addr < self.guard_page + PAGE_BYTES && end > self.guard_page;
        in_memory && !(len > 0 && touches_guard)
    }
}

/// The bytes of the system area and page tables for `layout`, with each
/// program page's access from `access` (pages not listed are read-write).
/// Returns `(guest address, bytes)` parts for [`super::memory::Image`].
pub(crate) fn system_image(
    layout: &Layout,
    readonly: &[(u64, u64, Access)],
) -> Vec<(u64, Vec<u8>)> {
    let mut parts = vec![
        (GDT, gdt()),
        (TSS, tss()),
        (IDT, idt()),
        (VECTORS, vector_stubs()),
        (STUB, syscall_stub()),
    ];
    parts.push((PAGE_TABLES, page_tables(layout, readonly)));
    parts
}

fn gdt() -> Vec<u8> {
    let mut out = Vec::new();
    for d in [
        0u64,
        0x00af_9a00_0000_ffff, // kernel code, 64-bit
        0x00cf_9200_0000_ffff, // kernel data
        0x00cf_f200_0000_ffff, // user data, DPL 3
        0x00af_fa00_0000_ffff, // user code, 64-bit, DPL 3
    ] {
        out.extend_from_slice(&d.to_le_bytes());
    }
    let (base, limit) = (TSS, TSS_BYTES - 1);
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40) // present, 64-bit available TSS
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    out.extend_from_slice(&low.to_le_bytes());
    out.extend_from_slice(&(base >> 32).to_le_bytes());
    out
}

/// Bytes of the GDT (its limit is this minus one).
pub(crate) const GDT_BYTES: u64 = 7 * 8;
/// Bytes of the 64-bit TSS.
pub(crate) const TSS_BYTES: u64 = 104;

/// Where the GDT, TSS and IDT are, for the CPU's registers.
pub(crate) const GDT_BASE: u64 = GDT;
pub(crate) const TSS_BASE: u64 = TSS;
pub(crate) const IDT_BASE: u64 = IDT;
/// Bytes of the IDT.
pub(crate) const IDT_BYTES: u64 = VECTOR_COUNT * 16;

fn tss() -> Vec<u8> {
    let mut out = vec![0u8; TSS_BYTES as usize];
    out[4..12].copy_from_slice(&EXCEPTION_STACK_TOP.to_le_bytes()); // RSP0
    // No I/O permission bitmap: its offset points past the TSS's limit.
    out[102..104].copy_from_slice(&(TSS_BYTES as u16).to_le_bytes());
    out
}

fn idt() -> Vec<u8> {
    let mut out = Vec::new();
    for v in 0..VECTOR_COUNT {
        let at = VECTORS + v * VECTOR_STUB_BYTES;
        let low = (at & 0xffff)
            | (u64::from(KERNEL_CS) << 16)
            | (0x8e << 40) // present, DPL 0, 64-bit interrupt gate
            | (((at >> 16) & 0xffff) << 48);
        out.extend_from_slice(&low.to_le_bytes());
        out.extend_from_slice(&(at >> 32).to_le_bytes());
    }
    out
}

/// Each vector's stub halts: the `hlt` exits to the host, which reads the
/// vector from where the CPU stopped and ends the run. The `jmp` back keeps
/// the CPU there should it ever be resumed.
fn vector_stubs() -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..VECTOR_COUNT {
        out.extend_from_slice(&[0xf4, 0xeb, 0xfd, 0x90, 0x90, 0x90, 0x90, 0x90]);
    }
    out
}

/// The vector whose stub holds `rip` after its `hlt`, if any.
pub(crate) fn vector_at(rip: u64) -> Option<u8> {
    let offset = rip.checked_sub(VECTORS + 1)?;
    (offset % VECTOR_STUB_BYTES == 0 && offset / VECTOR_STUB_BYTES < VECTOR_COUNT)
        .then_some((offset / VECTOR_STUB_BYTES) as u8)
}

/// On this KVM (PVM), `syscall` from user mode jumps to `LSTAR` without
/// entering kernel mode, so the stub is user code: one store to the
/// doorbell, which exits to the host. The host answers by setting `rax`
/// and returning to `rcx` itself. `ud2` follows in case it does not.
fn syscall_stub() -> Vec<u8> {
    let d = (DOORBELL as u32).to_le_bytes();
    vec![0x88, 0x04, 0x25, d[0], d[1], d[2], d[3], 0x0f, 0x0b] // mov [DOORBELL], al; ud2
}

/// Where the CPU is right after the stub's store.
pub(crate) const STUB_AFTER_STORE: u64 = STUB + 7;

fn page_tables(layout: &Layout, access: &[(u64, u64, Access)]) -> Vec<u8> {
    let pages = layout.memory_bytes / PAGE_BYTES;
    let pts = pages.div_ceil(512);
    let pds = pts.div_ceil(512);
    // PML4, PDPT, the PDs, the PTs.
    let mut out = vec![0u8; ((2 + pds + pts) * PAGE_BYTES) as usize];
    let table = |i: u64| PAGE_TABLES + i * PAGE_BYTES;
    let mut put = |at: u64, v: u64| {
        let o = (at - PAGE_TABLES) as usize;
        out[o..o + 8].copy_from_slice(&v.to_le_bytes());
    };
    let link = PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED_DIRTY;
    put(table(0), table(1) | link);
    for d in 0..pds {
        put(table(1) + d * 8, table(2 + d) | link);
    }
    for t in 0..pts {
        put(table(2) + t * 8, table(2 + pds + t) | link);
    }
    let pt_base = table(2 + pds);
    for p in 0..pages {
        let va = p * PAGE_BYTES;
        let entry = match va {
            0 => 0,
            STUB => STUB | PTE_PRESENT | PTE_USER | PTE_ACCESSED_DIRTY,
            DOORBELL => {
                DOORBELL_GPA | PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED_DIRTY | PTE_NX
            }
            VECTORS => VECTORS | PTE_PRESENT | PTE_ACCESSED_DIRTY,
            _ if va < USER_BASE => va | PTE_PRESENT | PTE_WRITE | PTE_ACCESSED_DIRTY | PTE_NX,
            _ if va == layout.guard_page => 0,
            _ => {
                let a = access
                    .iter()
                    .find(|(start, end, _)| va >= *start && va < *end)
                    .map_or(Access::ReadWrite, |(_, _, a)| *a);
                va | PTE_PRESENT
                    | PTE_USER
                    | PTE_ACCESSED_DIRTY
                    | match a {
                        Access::ReadExecute => 0,
                        Access::Read => PTE_NX,
                        Access::ReadWrite => PTE_WRITE | PTE_NX,
                    }
            }
        };
        put(pt_base + p * 8, entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_area_fits_below_the_program_at_the_largest_memory() {
        let layout = Layout::new(MAX_MEMORY_BYTES, USER_BASE + PAGE_BYTES).unwrap();
        let parts = system_image(&layout, &[]);
        for (at, bytes) in parts {
            assert!(at + bytes.len() as u64 <= USER_BASE, "{at:#x} overflows");
        }
    }

    #[test]
    fn user_ranges_exclude_system_area_guard_and_overflow() {
        let l = Layout::new(16 << 20, USER_BASE + 0x1234).unwrap();
        assert_eq!(l.brk_start, USER_BASE + 0x2000);
        assert!(l.is_user_range(USER_BASE, 16));
        assert!(!l.is_user_range(0x10000, 8), "page tables");
        assert!(!l.is_user_range(l.guard_page + 8, 8), "guard page");
        assert!(!l.is_user_range((16 << 20) - 4, 8), "past the end");
        assert!(!l.is_user_range(u64::MAX - 2, 8), "wraps");
        assert!(l.is_user_range(l.stack_bottom, 4096));
    }

    #[test]
    fn vectors_are_found_from_the_halt_address() {
        assert_eq!(vector_at(VECTORS + 1), Some(0));
        assert_eq!(vector_at(VECTORS + 14 * 8 + 1), Some(14));
        assert_eq!(vector_at(VECTORS + 14 * 8 + 2), None);
        assert_eq!(vector_at(VECTORS + 32 * 8 + 1), None);
    }
}
