//! Static x86-64 Linux ELF executables: checks and the plan to load one.
//! Pure: bytes in, a [`LoadPlan`] or the reason it is refused out.

use goblin::elf::Elf;
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};

use super::layout::{Access, USER_BASE};
use super::memory::PAGE_BYTES;

/// One loadable segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Where it starts in guest memory (after any load bias).
    pub(crate) addr: u64,
    /// The file's bytes for it; the rest up to `memory_bytes` is zero.
    pub(crate) bytes: Vec<u8>,
    pub(crate) memory_bytes: u64,
    pub(crate) access: Access,
}

/// Where an executable goes and how it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadPlan {
    pub(crate) segments: Vec<Segment>,
    /// The entry point (after any load bias).
    pub(crate) entry: u64,
    /// Where the program headers are in memory, for `AT_PHDR`.
    pub(crate) phdr: u64,
    pub(crate) phent: u64,
    pub(crate) phnum: u64,
    /// First byte after the highest segment.
    pub(crate) end: u64,
}

/// Why bytes are not a program this tier runs.
pub(crate) fn refuse(reason: impl std::fmt::Display) -> crate::SandboxError {
    crate::SandboxError::InvalidArtifact {
        reason: format!("not a static x86-64 Linux executable: {reason}"),
    }
}

/// Parses `bytes` and plans their loading below `memory_bytes`. Static
/// executables (`ET_EXEC`) load where they ask; static position-independent
/// ones (`ET_DYN` without an interpreter) load at [`USER_BASE`].
pub(crate) fn plan(bytes: &[u8], memory_bytes: u64) -> Result<LoadPlan, crate::SandboxError> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(refuse(if bytes.starts_with(b"\0asm") {
            "this is a WebAssembly module; run it on the wasm tier".to_string()
        } else {
            "no ELF magic number at the start of the file".to_string()
        }));
    }
    let elf = Elf::parse(bytes).map_err(|e| refuse(format!("malformed ELF: {e}")))?;
    if !elf.is_64 || elf.header.e_machine != EM_X86_64 {
        return Err(refuse(format!(
            "built for machine {} ({}-bit); only x86-64 (64-bit) runs here",
            elf.header.e_machine,
            if elf.is_64 { 64 } else { 32 }
        )));
    }
    if !elf.little_endian {
        return Err(refuse("big-endian ELF"));
    }
    if let Some(interp) = elf.interpreter {
        return Err(refuse(format!(
            "dynamically linked (it asks for the loader {interp}); link it statically, e.g. `gcc -static` or `musl-gcc -static`"
        )));
    }
    let bias = match elf.header.e_type {
        ET_EXEC => 0,
        ET_DYN => {
            if elf.program_headers.iter().any(|p| p.p_type == PT_INTERP) {
                return Err(refuse("dynamically linked"));
            }
            let lowest = elf
                .program_headers
                .iter()
                .filter(|p| p.p_type == PT_LOAD)
                .map(|p| p.p_vaddr)
                .min()
                .unwrap_or(0);
            USER_BASE.saturating_sub(lowest / PAGE_BYTES * PAGE_BYTES)
        }
        other => {
            return Err(refuse(format!(
                "ELF type {other} is not an executable (ET_EXEC or static-pie ET_DYN)"
            )));
        }
    };
    let mut segments = Vec::new();
    let mut end = 0u64;
    for ph in elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD) {
        let addr = ph
            .p_vaddr
            .checked_add(bias)
            .ok_or_else(|| refuse("segment address overflows"))?;
        let seg_end = addr
            .checked_add(ph.p_memsz)
            .ok_or_else(|| refuse("segment size overflows"))?;
        if addr < USER_BASE || seg_end > memory_bytes {
            return Err(refuse(format!(
                "a segment at {addr:#x}..{seg_end:#x} lies outside {USER_BASE:#x}..{memory_bytes:#x}, the program area of a microVM with {} MiB of memory (link at 0x400000, the default, or raise --memory)",
                memory_bytes >> 20
            )));
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(refuse(format!(
                "segment at {addr:#x} has more file bytes than memory bytes"
            )));
        }
        let from = ph.p_offset as usize;
        let to = from
            .checked_add(ph.p_filesz as usize)
            .filter(|to| *to <= bytes.len())
            .ok_or_else(|| {
                refuse(format!(
                    "segment at {addr:#x} runs past the end of the file"
                ))
            })?;
        let access = if ph.p_flags & PF_X != 0 {
            Access::ReadExecute
        } else if ph.p_flags & PF_W != 0 {
            Access::ReadWrite
        } else {
            Access::Read
        };
        segments.push(Segment {
            addr,
            bytes: bytes[from..to].to_vec(),
            memory_bytes: ph.p_memsz,
            access,
        });
        end = end.max(seg_end);
    }
    if segments.is_empty() {
        return Err(refuse("no loadable segment"));
    }
    let entry = elf
        .entry
        .checked_add(bias)
        .ok_or_else(|| refuse("entry overflows"))?;
    if !segments.iter().any(|s| {
        s.access == Access::ReadExecute && entry >= s.addr && entry < s.addr + s.memory_bytes
    }) {
        return Err(refuse(format!(
            "entry point {entry:#x} is not in an executable segment"
        )));
    }
    let phoff = elf.header.e_phoff;
    let phdr = match elf.program_headers.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => p.p_vaddr + bias,
        None => elf
            .program_headers
            .iter()
            .find(|p| p.p_type == PT_LOAD && p.p_offset <= phoff && phoff < p.p_offset + p.p_filesz)
            .map(|p| p.p_vaddr + bias + (phoff - p.p_offset))
            .unwrap_or(0),
    };
    Ok(LoadPlan {
        segments,
        entry,
        phdr,
        phent: u64::from(elf.header.e_phentsize),
        phnum: elf.program_headers.len() as u64,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_elf_and_wasm_with_a_reason() {
        let e = plan(b"\0asm\x01\0\0\0", 64 << 20).unwrap_err().to_string();
        assert!(e.contains("WebAssembly"), "{e}");
        let e = plan(b"#!/bin/sh\n", 64 << 20).unwrap_err().to_string();
        assert!(e.contains("no ELF magic"), "{e}");
        let e = plan(b"\x7fELF\x02\x01\x01", 64 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed"), "{e}");
    }

    #[test]
    fn refuses_a_dynamically_linked_host_binary() {
        // The test binary itself is dynamically linked (and a PIE).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = plan(&me, 1 << 30).unwrap_err().to_string();
        assert!(e.contains("dynamically linked"), "{e}");
    }
}
