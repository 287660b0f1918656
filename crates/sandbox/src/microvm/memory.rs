//! Guest memory: the template's initial image in a memfd, and each VM's
//! private copy-on-write mapping of it.
//!
//! A template writes its image (page tables, descriptor tables, the ELF's
//! segments) once into a sealed-size memfd. Every VM maps that memfd
//! `MAP_PRIVATE`: pages the guest (or the host shim) never writes stay the
//! memfd's shared pages; a written page becomes a private anonymous copy.
//! Resetting a VM asks the kernel (`PAGEMAP_SCAN`) for exactly those private
//! pages and copies the image back over them, so a reset costs in
//! proportion to what the last run dirtied and the VM keeps its mappings
//! (no page faults on the next run).
//!
//! This module and [`super::kvm`] are the only ones with `unsafe`.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd};

use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

use crate::SandboxError;

/// Bytes in a page.
pub(crate) const PAGE_BYTES: u64 = 4096;

/// The template's initial memory image, shared read-only by all its VMs.
pub(crate) struct Image {
    file: File,
    /// A shared read-only view of the image, the source of resets.
    view: MmapRegion,
    size_bytes: u64,
}

impl Image {
    /// Builds an image of `size_bytes` (a multiple of the page size) whose
    /// contents are zero except for `parts`, each `(guest address, bytes)`.
    pub(crate) fn build(size_bytes: u64, parts: &[(u64, &[u8])]) -> Result<Image, SandboxError> {
        let engine = |what: &str, e: std::io::Error| {
            SandboxError::Engine(format!("microvm image: {what}: {e}"))
        };
        // SAFETY: memfd_create takes a NUL-terminated name and flags; it
        // returns a new descriptor that we own, or -1.
        let fd = unsafe { libc::memfd_create(c"dwcp-microvm-image".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(engine("memfd_create", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let mut file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size_bytes)
            .map_err(|e| engine("set its size", e))?;
        for (addr, bytes) in parts {
            let end = addr.checked_add(bytes.len() as u64);
            if end.is_none_or(|end| end > size_bytes) {
                return Err(SandboxError::Engine(format!(
                    "microvm image: a part at {addr:#x} of {} bytes does not fit in {size_bytes} bytes",
                    bytes.len()
                )));
            }
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*addr))
                .and_then(|_| file.write_all(bytes))
                .map_err(|e| engine("write", e))?;
        }
        let view = MmapRegionBuilder::new(size_bytes as usize)
            .with_file_offset(FileOffset::new(
                file.try_clone().map_err(|e| engine("dup", e))?,
                0,
            ))
            .with_mmap_prot(libc::PROT_READ)
            .with_mmap_flags(libc::MAP_SHARED | libc::MAP_NORESERVE)
            .build()
            .map_err(|e| SandboxError::Engine(format!("microvm image: map it: {e}")))?;
        Ok(Image {
            file,
            view,
            size_bytes,
        })
    }

    /// The image's size.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the view is a live read-only shared mapping of
        // `size_bytes` bytes owned by `self`; nothing writes the memfd after
        // `build`, so the slice is immutable for its lifetime.
        unsafe { std::slice::from_raw_parts(self.view.as_ptr(), self.view.size()) }
    }
}

/// One VM's memory: a private copy-on-write mapping of an [`Image`].
pub(crate) struct GuestRam {
    memory: GuestMemoryMmap,
    host_base: *mut u8,
    size_bytes: u64,
    /// `/proc/self/pagemap`, for `PAGEMAP_SCAN`.
    pagemap: File,
    /// Reused buffer of dirty ranges.
    regions: Vec<PageRegion>,
}

// SAFETY: `host_base` points into the mapping owned by `memory`, which is
// itself Send; the pointer is only used by the thread that holds `&mut self`.
unsafe impl Send for GuestRam {}

impl GuestRam {
    /// Maps `image` privately.
    pub(crate) fn map(image: &Image) -> Result<GuestRam, SandboxError> {
        let engine =
            |what: &str, e: String| SandboxError::Engine(format!("microvm memory: {what}: {e}"));
        let file = image
            .file
            .try_clone()
            .map_err(|e| engine("dup", e.to_string()))?;
        let region = MmapRegionBuilder::new(image.size_bytes as usize)
            .with_file_offset(FileOffset::new(file, 0))
            .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
            .with_mmap_flags(libc::MAP_PRIVATE | libc::MAP_NORESERVE)
            .build()
            .map_err(|e| engine("map", e.to_string()))?;
        let host_base = region.as_ptr();
        let region = GuestRegionMmap::new(region, GuestAddress(0))
            .ok_or_else(|| engine("region", "does not fit the address space".into()))?;
        let memory = GuestMemoryMmap::from_regions(vec![region])
            .map_err(|e| engine("regions", e.to_string()))?;
        let pagemap = File::open("/proc/self/pagemap")
            .map_err(|e| engine("open /proc/self/pagemap", e.to_string()))?;
        Ok(GuestRam {
            memory,
            host_base,
            size_bytes: image.size_bytes,
            pagemap,
            regions: vec![PageRegion::default(); 256],
        })
    }

    /// Where the guest's physical address 0 is in our address space.
    pub(crate) fn host_base(&self) -> u64 {
        self.host_base as u64
    }

    /// The memory's size.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Copies `buf.len()` bytes from guest physical `addr`. The caller has
    /// checked the range against the sandbox's layout; this checks only that
    /// it lies in memory.
    pub(crate) fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), SandboxError> {
        self.memory
            .read_slice(buf, GuestAddress(addr))
            .map_err(|e| SandboxError::Engine(format!("microvm memory read at {addr:#x}: {e}")))
    }

    /// Copies `bytes` to guest physical `addr` (see [`GuestRam::read`]).
    pub(crate) fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), SandboxError> {
        self.memory
            .write_slice(bytes, GuestAddress(addr))
            .map_err(|e| SandboxError::Engine(format!("microvm memory write at {addr:#x}: {e}")))
    }

    /// Sets `len` bytes at `addr` to zero.
    pub(crate) fn zero(&self, addr: u64, len: u64) -> Result<(), SandboxError> {
        const CHUNK: [u8; 4096] = [0; 4096];
        let mut at = addr;
        let end = addr.saturating_add(len);
        while at < end {
            let n = (end - at).min(CHUNK.len() as u64) as usize;
            self.write(at, &CHUNK[..n])?;
            at += n as u64;
        }
        Ok(())
    }

    /// Restores every page that differs from `image` (every page written
    /// since the mapping was made) to the image's content. Returns how many
    /// pages it restored.
    pub(crate) fn reset(&mut self, image: &Image) -> Result<u64, SandboxError> {
        let source = image.bytes();
        let mut restored = 0;
        let mut start = self.host_base as u64;
        let end = start + self.size_bytes;
        loop {
            let (found, walk_end) = self.scan_private(start, end)?;
            for r in &self.regions[..found] {
                let offset = (r.start - self.host_base as u64) as usize;
                let len = (r.end - r.start) as usize;
                // SAFETY: the kernel reported [start, end) inside our
                // mapping of `size_bytes` (it never reports beyond the
                // range asked); `source` has the same size; the two do not
                // overlap (different mappings); nothing else touches guest
                // memory while we hold `&mut self` (the vCPU is not running:
                // it is driven only from `&mut` methods of its sandbox).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        source.as_ptr().add(offset),
                        self.host_base.add(offset),
                        len,
                    );
                }
                restored += len as u64 / PAGE_BYTES;
            }
            if walk_end >= end || found < self.regions.len() {
                break;
            }
            start = walk_end;
        }
        Ok(restored)
    }

    /// Asks the kernel for the private (copy-on-written) pages in
    /// `[start, end)`: fills `self.regions`, returns how many and where the
    /// walk stopped.
    fn scan_private(&mut self, start: u64, end: u64) -> Result<(usize, u64), SandboxError> {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            flags: 0,
            start,
            end,
            walk_end: 0,
            vec: self.regions.as_mut_ptr() as u64,
            vec_len: self.regions.len() as u64,
            max_pages: 0,
            // Present pages that are not the file's: private copies.
            category_inverted: PAGE_IS_FILE,
            category_mask: PAGE_IS_FILE | PAGE_IS_PRESENT,
            category_anyof_mask: 0,
            return_mask: PAGE_IS_FILE | PAGE_IS_PRESENT,
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` and writes at most `vec_len`
        // entries into `self.regions` (a live, exclusively borrowed buffer of
        // exactly that many `PageRegion`s, laid out as the kernel's
        // `struct page_region`), and `walk_end` into `arg`.
        let found = unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
        if found < 0 {
            let e = std::io::Error::last_os_error();
            return Err(SandboxError::NotSupported {
                what: format!(
                    "the microvm tier is not supported here: PAGEMAP_SCAN on /proc/self/pagemap failed ({e}); it needs Linux 6.7 or later"
                ),
            });
        }
        Ok((found as usize, arg.walk_end))
    }
}

const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = (3 << 30)
    | ((std::mem::size_of::<PmScanArg>() as libc::c_ulong) << 16)
    | ((b'f' as libc::c_ulong) << 8)
    | 16;

/// The kernel's `struct pm_scan_arg` (include/uapi/linux/fs.h).
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// The kernel's `struct page_region`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_restores_exactly_what_was_written() {
        let image = Image::build(64 * PAGE_BYTES, &[(PAGE_BYTES, b"template")]).unwrap();
        let mut ram = GuestRam::map(&image).unwrap();
        let mut buf = [0u8; 8];
        ram.read(PAGE_BYTES, &mut buf).unwrap();
        assert_eq!(&buf, b"template");
        assert_eq!(ram.reset(&image).unwrap(), 0, "reading dirties nothing");
        ram.write(PAGE_BYTES, b"request1").unwrap();
        ram.write(10 * PAGE_BYTES + 5, b"secret").unwrap();
        ram.write(11 * PAGE_BYTES, b"x").unwrap();
        assert_eq!(ram.reset(&image).unwrap(), 3);
        ram.read(PAGE_BYTES, &mut buf).unwrap();
        assert_eq!(&buf, b"template");
        let mut six = [1u8; 6];
        ram.read(10 * PAGE_BYTES + 5, &mut six).unwrap();
        assert_eq!(six, [0; 6]);
    }
}
