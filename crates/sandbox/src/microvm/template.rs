//! A microVM template: a checked static ELF laid out in a memory image
//! that every sandbox of the template maps copy-on-write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Shared;
use super::elf::{self, LoadPlan};
use super::layout::{self, Access, Layout};
use super::memory::{Image, PAGE_BYTES};
use crate::{Artifact, EntryId, Limits, SandboxError, Template};

/// A static x86-64 Linux program prepared on this node.
pub struct MicroVmTemplate {
    pub(crate) shared: Arc<Shared>,
    pub(crate) plan: LoadPlan,
    pub(crate) layout: Layout,
    pub(crate) image: Image,
    /// `[start, end)` of the segments the program may not write.
    pub(crate) readonly: Vec<(u64, u64)>,
    limits: Limits,
    /// Sandboxes of this template alive now.
    pub(crate) live: AtomicUsize,
}

impl MicroVmTemplate {
    pub(crate) fn prepare(
        shared: &Arc<Shared>,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<MicroVmTemplate, SandboxError> {
        check_limits(&limits)?;
        let memory_bytes = limits.memory_bytes;
        let plan = elf::plan(artifact.bytes(), memory_bytes)?;
        let layout =
            Layout::new(memory_bytes, plan.end).ok_or_else(|| SandboxError::MemoryLimit {
                limit_bytes: memory_bytes,
                wanted_bytes: plan.end + Layout::stack_bytes(memory_bytes) + PAGE_BYTES,
            })?;
        let page_floor = |a: u64| a / PAGE_BYTES * PAGE_BYTES;
        let page_ceil = |a: u64| a.div_ceil(PAGE_BYTES) * PAGE_BYTES;
        // Page permissions: a page shared by two segments gets the more
        // permissive one (writable wins), as Linux's loader does.
        let mut access: Vec<(u64, u64, Access)> = plan
            .segments
            .iter()
            .map(|s| {
                (
                    page_floor(s.addr),
                    page_ceil(s.addr + s.memory_bytes),
                    s.access,
                )
            })
            .collect();
        access.sort_by_key(|(_, _, a)| match a {
            Access::ReadWrite => 0,
            Access::ReadExecute => 1,
            Access::Read => 2,
        });
        let readonly: Vec<(u64, u64)> = plan
            .segments
            .iter()
            .filter(|s| s.access != Access::ReadWrite)
            .map(|s| (page_floor(s.addr), page_ceil(s.addr + s.memory_bytes)))
            .filter(|(start, end)| {
                // Not read-only where a writable segment shares the page.
                !plan.segments.iter().any(|w| {
                    w.access == Access::ReadWrite
                        && page_floor(w.addr) < *end
                        && page_ceil(w.addr + w.memory_bytes) > *start
                })
            })
            .collect();
        let system = layout::system_image(&layout, &access);
        let mut parts: Vec<(u64, &[u8])> = system.iter().map(|(a, b)| (*a, b.as_slice())).collect();
        for s in &plan.segments {
            parts.push((s.addr, s.bytes.as_slice()));
        }
        let image = Image::build(memory_bytes, &parts)?;
        Ok(MicroVmTemplate {
            shared: shared.clone(),
            plan,
            layout,
            image,
            readonly,
            limits,
            live: AtomicUsize::new(0),
        })
    }

    /// Bytes of the template's memory image (the VM's memory size).
    pub fn memory_bytes(&self) -> u64 {
        self.image.size_bytes()
    }

    /// Sandboxes of this template alive now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

fn check_limits(limits: &Limits) -> Result<(), SandboxError> {
    let m = limits.memory_bytes;
    if !(layout::MIN_MEMORY_BYTES..=layout::MAX_MEMORY_BYTES).contains(&m)
        || !m.is_multiple_of(2 << 20)
    {
        return Err(SandboxError::InvalidLimit {
            field: "memory_bytes",
            value: m.to_string(),
            allowed: format!(
                "a multiple of 2 MiB from {} MiB to {} MiB for the microvm tier",
                layout::MIN_MEMORY_BYTES >> 20,
                layout::MAX_MEMORY_BYTES >> 20
            ),
        });
    }
    if let Some(fuel) = limits.fuel {
        return Err(SandboxError::InvalidLimit {
            field: "fuel",
            value: fuel.to_string(),
            allowed: "none: the microvm tier has no fuel metering (its programs run as native code); use the deadline".into(),
        });
    }
    if limits.deadline.is_zero() {
        return Err(SandboxError::InvalidLimit {
            field: "deadline",
            value: "0s".into(),
            allowed: "a positive duration".into(),
        });
    }
    Ok(())
}

impl Template for MicroVmTemplate {
    fn entry(&self, name: &str) -> Result<EntryId, SandboxError> {
        Err(SandboxError::NotSupported {
            what: format!(
                "raw entry points (`{name}`) are a wasm tier interface; a microvm program runs as a command (WAGI)"
            ),
        })
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }
}
