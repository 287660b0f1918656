//! Templates: a module validated, compiled and linked once, from which
//! sandboxes start.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::{ExternType, FuncType, InstancePre, Module, ModuleExport, ValType};

use super::store::StoreState;
use super::{Shared, WASI_MODULE, epoch};
use crate::{Artifact, Digest, EntryId, Limits, SandboxError, Template};

/// What a raw entry point takes and returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// `() -> ()`
    Unit,
    /// `(i32 ptr, i32 len) -> i64 packed (ptr << 32 | len)`
    Bytes,
}

pub(crate) struct EntrySpec {
    pub(crate) name: String,
    pub(crate) export: ModuleExport,
    pub(crate) kind: EntryKind,
}

/// Why a component is refused here, and where it runs instead.
const COMPONENTS: &str = "WebAssembly components run only as wasi:http/incoming-handler apps \
     (`WasmEngine::prepare_http`, what the gateway serves), not as modules with raw entry points \
     or WASI preview 1 commands";

/// Whether `bytes` are a binary WebAssembly component rather than a core
/// module: the same `\0asm` magic, then a version field whose layer half
/// (bytes 6 and 7) is 1 where a core module has 0.
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// Why `bytes` cannot be WebAssembly at all, before any parsing: neither
/// the binary format (the `\0asm` magic number) nor the text format (UTF-8
/// whose first token, past whitespace and comments, is `(`). `None` when
/// they may be either; parsing then says what is wrong inside. Without
/// this, bytes that are neither are parsed as text, and a stray binary
/// file is reported as a WAT syntax error at `<anon>:1:1`.
pub fn not_webassembly(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(b"\0asm") {
        return None;
    }
    if bytes.is_empty() {
        return Some("it is empty".into());
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Some(format!(
            "it is not a WebAssembly module: a module starts with the bytes 00 61 73 6d (`\\0asm`), this starts with {}",
            head.join(" ")
        ));
    };
    let mut rest = text.trim_start();
    // `;;` line comments may precede `(module`.
    while let Some(after) = rest.strip_prefix(";;") {
        rest = after
            .split_once('\n')
            .map_or("", |(_, next)| next)
            .trim_start();
    }
    if rest.starts_with('(') {
        return None;
    }
    let head: String = rest.chars().take(16).collect();
    Some(format!(
        "it is neither a WebAssembly module (which starts with the bytes 00 61 73 6d) nor WebAssembly text (which starts with `(module`): it starts with `{}`",
        head.escape_debug()
    ))
}

const RAW_TYPES: &str = "raw entry points must be `() -> ()` or `(i32, i32) -> i64`";

/// A prepared WebAssembly module.
pub struct WasmTemplate {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pre: InstancePre<StoreState>,
    module: Module,
    pub(crate) limits: Limits,
    pub(crate) entries: Vec<EntrySpec>,
    pub(crate) start: Option<ModuleExport>,
    pub(crate) alloc: Option<ModuleExport>,
    pub(crate) memory: Option<ModuleExport>,
    pub(crate) deadline_ticks: u64,
    digest: Digest,
    from_cache: bool,
    live: AtomicUsize,
}

impl WasmTemplate {
    pub(crate) fn prepare(
        shared: &Arc<Shared>,
        artifact: &Artifact,
        limits: Limits,
    ) -> Result<WasmTemplate, SandboxError> {
        check_limits(shared, &limits)?;
        if super::http::is_component_artifact(artifact.bytes()) {
            return Err(SandboxError::NotSupported {
                what: COMPONENTS.to_string(),
            });
        }
        if let Some(reason) = not_webassembly(artifact.bytes()) {
            return Err(SandboxError::InvalidArtifact { reason });
        }
        let digest = artifact.digest();
        let cached = shared
            .cache
            .as_ref()
            .and_then(|c| c.load(&shared.engine, &digest));
        let from_cache = cached.is_some();
        let module = match cached {
            Some(module) => module,
            None => {
                let module = Module::new(&shared.engine, artifact.bytes()).map_err(|e| {
                    SandboxError::InvalidArtifact {
                        reason: format!("{e:#}"),
                    }
                })?;
                if let Some(cache) = &shared.cache {
                    cache.store(&digest, &module);
                }
                module
            }
        };
        for import in module.imports() {
            let key = (import.module().to_string(), import.name().to_string());
            if !shared.granted.contains(&key) {
                return Err(SandboxError::ImportNotGranted {
                    module: key.0,
                    name: key.1,
                    allowed: "the WASI preview 1 functions of `wasi_snapshot_preview1`",
                });
            }
        }
        debug_assert!(module.imports().all(|i| i.module() == WASI_MODULE));
        let pre =
            shared
                .linker
                .instantiate_pre(&module)
                .map_err(|e| SandboxError::InvalidArtifact {
                    reason: format!("{e:#}"),
                })?;

        let mut entries = Vec::new();
        for export in module.exports() {
            if let ExternType::Func(ty) = export.ty()
                && let Some(kind) = entry_kind(&ty)
                && let Some(index) = module.get_export_index(export.name())
            {
                entries.push(EntrySpec {
                    name: export.name().to_string(),
                    export: index,
                    kind,
                });
            }
        }
        let start = typed_export(&module, "_start", |ty| {
            entry_kind(ty) == Some(EntryKind::Unit)
        });
        let alloc = typed_export(&module, "dwcp_alloc", |ty| {
            ty.params().map(|p| p.is_i32()).eq([true])
                && ty.results().map(|r| r.is_i32()).eq([true])
        });
        let memory = matches!(module.get_export("memory"), Some(ExternType::Memory(_)))
            .then(|| module.get_export_index("memory"))
            .flatten();
        let deadline_ticks = epoch::deadline_ticks(limits.deadline, shared.config.epoch_tick);
        Ok(WasmTemplate {
            shared: shared.clone(),
            pre,
            module,
            limits,
            entries,
            start,
            alloc,
            memory,
            deadline_ticks,
            digest,
            from_cache,
            live: AtomicUsize::new(0),
        })
    }

    /// The digest of the artifact this template was prepared from.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// True when the compiled code came from the on-disk cache.
    pub fn compiled_from_cache(&self) -> bool {
        self.from_cache
    }

    /// True when the module can run as a WASI command (exports `_start`).
    pub fn is_command(&self) -> bool {
        self.start.is_some()
    }

    /// Sandboxes of this template alive right now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The names of the module's exported functions, for error messages.
    pub(crate) fn function_exports(&self) -> String {
        let funcs: Vec<&str> = self
            .module
            .exports()
            .filter(|e| matches!(e.ty(), ExternType::Func(_)))
            .map(|e| e.name())
            .collect();
        if funcs.is_empty() {
            "none".into()
        } else {
            funcs.join(", ")
        }
    }

    pub(crate) fn entry_spec(&self, entry: EntryId) -> &EntrySpec {
        &self.entries[entry.0]
    }
}

/// Live-sandbox reservations on a template and its node, released on drop.
pub(crate) struct LiveSlots {
    template: Arc<WasmTemplate>,
    count: usize,
}

impl LiveSlots {
    /// Reserves `count` live sandboxes of `template`, or says which limit
    /// refuses them.
    pub(crate) fn acquire(
        template: &Arc<WasmTemplate>,
        count: usize,
    ) -> Result<LiveSlots, SandboxError> {
        let live = &template.live;
        let prev = live.fetch_add(count, Ordering::Relaxed);
        if let Some(limit) = template.limits.max_live
            && prev + count > limit
        {
            live.fetch_sub(count, Ordering::Relaxed);
            return Err(SandboxError::LiveLimit {
                scope: "template",
                limit,
            });
        }
        if let Err(e) = template.shared.acquire_live(count) {
            live.fetch_sub(count, Ordering::Relaxed);
            return Err(e);
        }
        Ok(LiveSlots {
            template: template.clone(),
            count,
        })
    }

    pub(crate) fn template(&self) -> &Arc<WasmTemplate> {
        &self.template
    }
}

impl Drop for LiveSlots {
    fn drop(&mut self) {
        self.template.live.fetch_sub(self.count, Ordering::Relaxed);
        self.template.shared.release_live(self.count);
    }
}

impl Template for WasmTemplate {
    fn entry(&self, name: &str) -> Result<EntryId, SandboxError> {
        if let Some(i) = self.entries.iter().position(|e| e.name == name) {
            let spec = &self.entries[i];
            if spec.kind == EntryKind::Bytes && self.memory.is_none() {
                return Err(SandboxError::ExportType {
                    name: name.to_string(),
                    found: "(i32, i32) -> i64 without an exported `memory`".into(),
                    expected: "a bytes entry point needs the module to export its memory as `memory`",
                });
            }
            return Ok(EntryId(i));
        }
        match self.module.get_export(name) {
            Some(ExternType::Func(ty)) => Err(SandboxError::ExportType {
                name: name.to_string(),
                found: describe(&ty),
                expected: RAW_TYPES,
            }),
            Some(other) => Err(SandboxError::ExportType {
                name: name.to_string(),
                found: format!("{} (not a function)", kind_name(&other)),
                expected: RAW_TYPES,
            }),
            None => Err(SandboxError::MissingExport {
                name: name.to_string(),
                available: self.function_exports(),
            }),
        }
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }
}

pub(crate) fn check_limits(shared: &Shared, limits: &Limits) -> Result<(), SandboxError> {
    let config = &shared.config;
    let bad = |field, value: String, allowed: String| {
        Err(SandboxError::InvalidLimit {
            field,
            value,
            allowed,
        })
    };
    if limits.memory_bytes > config.slot_memory {
        return bad(
            "memory",
            limits.memory_bytes.to_string(),
            format!(
                "at most {} bytes, the slot size of this engine's `{}` profile",
                config.slot_memory,
                config.profile.as_str()
            ),
        );
    }
    if limits.table_elements > config.slot_table_elements {
        return bad(
            "table_elements",
            limits.table_elements.to_string(),
            format!("at most {}", config.slot_table_elements),
        );
    }
    if limits.deadline.is_zero() {
        return bad("timeout", "0".into(), "a positive duration".into());
    }
    if limits.fuel.is_some() && !config.fuel {
        return bad(
            "fuel",
            format!("{:?}", limits.fuel),
            "only on an engine built with fuel metering (`WasmConfig::fuel`)".into(),
        );
    }
    if limits.max_live == Some(0) {
        return bad("max_live", "0".into(), "at least 1, or no limit".into());
    }
    Ok(())
}

fn entry_kind(ty: &FuncType) -> Option<EntryKind> {
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    match (params.as_slice(), results.as_slice()) {
        ([], []) => Some(EntryKind::Unit),
        ([a, b], [r]) if a.is_i32() && b.is_i32() && r.is_i64() => Some(EntryKind::Bytes),
        _ => None,
    }
}

fn typed_export(
    module: &Module,
    name: &str,
    fits: impl Fn(&FuncType) -> bool,
) -> Option<ModuleExport> {
    match module.get_export(name) {
        Some(ExternType::Func(ty)) if fits(&ty) => module.get_export_index(name),
        _ => None,
    }
}

fn describe(ty: &FuncType) -> String {
    let list = |v: Vec<String>| v.join(", ");
    format!(
        "({}) -> ({})",
        list(ty.params().map(|p| p.to_string()).collect()),
        list(ty.results().map(|r| r.to_string()).collect())
    )
}

fn kind_name(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "a function",
        ExternType::Global(_) => "a global",
        ExternType::Table(_) => "a table",
        ExternType::Memory(_) => "a memory",
        _ => "a tag",
    }
}

#[cfg(test)]
mod tests {
    use super::not_webassembly;

    #[test]
    fn bytes_that_are_no_webassembly_are_named_before_parsing() {
        assert_eq!(not_webassembly(b"\0asm\x01\0\0\0"), None);
        assert_eq!(not_webassembly(b"  ;; hi\n(module)"), None);
        assert_eq!(not_webassembly(b"(module (func"), None);
        assert_eq!(not_webassembly(b"").as_deref(), Some("it is empty"));
        let elf = not_webassembly(b"\x7fELF\x02\x01\x01\0\0\xff").unwrap();
        assert!(
            elf.ends_with("this starts with 7f 45 4c 46 02 01 01 00"),
            "{elf}"
        );
        let text = not_webassembly(b"hello world").unwrap();
        assert!(text.contains("nor WebAssembly text"), "{text}");
        assert!(text.ends_with("it starts with `hello world`"), "{text}");
        assert!(!text.contains("<anon>"), "{text}");
    }
}
