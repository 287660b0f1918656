//! `dwcp bench density`: how many live sandboxes one node holds in the
//! `dense` profile, each having touched one page of its memory, and what
//! each costs in resident memory; beside wasmtime's default configuration.

use std::time::Instant;

use anyhow::Result;
use std::sync::Arc;

use sandbox::{
    Artifact, Engine, EntryId, Invocation, Limits, SandboxGroup, Template, WasmConfig, WasmEngine,
    WasmTemplate,
};
use wasmtime::{Linker, Module, Store};

use super::progress;
use super::report::{Report, Series};

const TOUCH: &str = r#"(module (memory (export "memory") 1 1)
  (func (export "touch") (i32.store8 (i32.const 0) (i32.const 1))))"#;

/// Live sandboxes per [`SandboxGroup`] (one wasmtime store each).
const GROUP: u32 = 256;

/// The baseline stops here: wasmtime's default reserves gigabytes of
/// address space per instance, so this is already far past where it fails.
const BASELINE_CAP: u32 = 100_000;

pub fn run(quick: bool, target: Option<u32>) -> Result<Report> {
    let target = target.unwrap_or(if quick { 20_000 } else { 1_000_000 });
    anyhow::ensure!(target > 0, "--target must be at least 1");
    let mut report = Report::new(
        "density",
        serde_json::json!({
            "target": target,
            "profile": "dense",
            "slot_memory_bytes": 65536,
            "group_size": GROUP,
            "module": "1 page of memory; `touch` writes one byte, so one 4 KiB page is resident",
            "vm.max_map_count": read_trimmed("/proc/sys/vm/max_map_count"),
            "memory_total_bytes": meminfo_total(),
        }),
    );

    progress(
        "density",
        &format!("dwcp dense profile, aiming for {target} live sandboxes"),
    );
    let ours = measure("dwcp-group", target)?;
    progress(
        "density",
        &format!("wasmtime default, aiming for {}", target.min(BASELINE_CAP)),
    );
    let theirs = measure("wasmtime-default", target.min(BASELINE_CAP))?;
    progress(
        "density",
        &format!(
            "dwcp with one store per sandbox, aiming for {}",
            target.min(BASELINE_CAP)
        ),
    );
    let own = measure("dwcp-own-store", target.min(BASELINE_CAP))?;

    report.series.push(Series::value(
        "wasmtime-default-live",
        "count",
        theirs.live as f64,
        theirs.live,
        None,
    ));
    report.series.push(Series::value(
        "live-sandboxes",
        "count",
        ours.live as f64,
        ours.live,
        Some("wasmtime-default-live"),
    ));
    report.series.push(Series::value(
        "wasmtime-default-rss-per-sandbox",
        "bytes",
        theirs.rss_per(),
        theirs.live,
        None,
    ));
    report.series.push(Series::value(
        "rss-per-sandbox",
        "bytes",
        ours.rss_per(),
        ours.live,
        Some("wasmtime-default-rss-per-sandbox"),
    ));
    report.series.push(Series::value(
        "own-store-rss-per-sandbox",
        "bytes",
        own.rss_per(),
        own.live,
        Some("wasmtime-default-rss-per-sandbox"),
    ));
    report.series.push(Series::value(
        "rss-total",
        "bytes",
        ours.rss_grown as f64,
        ours.live,
        None,
    ));
    report.series.push(Series::value(
        "start-rate",
        "ops/s",
        ours.live as f64 / ours.seconds.max(1e-9),
        ours.live,
        None,
    ));
    let mut report = report.finish();
    report.notes.push(format!(
        "dwcp stopped at {} live sandboxes: {}",
        ours.live, ours.stopped_by
    ));
    report.notes.push(format!(
        "wasmtime default stopped at {}: {}",
        theirs.live, theirs.stopped_by
    ));
    report.notes.push(format!(
        "live-sandboxes and rss-per-sandbox keep sandboxes in groups of {GROUP} sharing one wasmtime store (each with its own memory, tables and globals); own-store-rss-per-sandbox gives each its own store"
    ));
    report.notes.push(format!(
        "memory maps in use at the peak: {} (the kernel allows {})",
        ours.maps,
        read_trimmed("/proc/sys/vm/max_map_count")
    ));
    Ok(report)
}

/// Runs one measurement in a child process of this binary: resident memory
/// freed by one measurement stays in the process and would hide the next
/// one's growth.
fn measure(kind: &str, target: u32) -> Result<Live> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["bench", "density", "--worker", kind, "--target"])
        .arg(target.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the {kind} density measurement failed ({})",
        out.status
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One measurement, in this process: the child side of [`measure`].
pub fn worker(kind: &str, target: u32) -> Result<()> {
    let live = match kind {
        "dwcp-group" => dwcp_live(target, GROUP)?,
        "dwcp-own-store" => dwcp_live(target, 1)?,
        "wasmtime-default" => wasmtime_live(target)?,
        other => anyhow::bail!("unknown density worker `{other}`"),
    };
    println!("{}", serde_json::to_string(&live)?);
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Live {
    live: u64,
    rss_grown: u64,
    seconds: f64,
    maps: usize,
    stopped_by: String,
}

impl Live {
    fn rss_per(&self) -> f64 {
        self.rss_grown as f64 / self.live.max(1) as f64
    }
}

fn dwcp_live(target: u32, group: u32) -> Result<Live> {
    let engine = WasmEngine::new(WasmConfig {
        max_live: target,
        slot_memory: 64 << 10,
        slot_table_elements: 16,
        ..WasmConfig::dense()
    })?;
    let template = engine.prepare(
        &Artifact::new(TOUCH.into()),
        Limits {
            memory_bytes: 64 << 10,
            table_elements: 16,
            ..Limits::default()
        },
    )?;
    let entry = template.entry("touch")?;
    let before = rss_bytes();
    let start = Instant::now();
    let mut groups = Vec::new();
    let mut live = 0u32;
    let mut stopped_by = format!("reached the target of {target}");
    let step = (target / 10).max(1);
    while live < target {
        let size = group.min(target - live);
        match touched_group(&template, entry, size as usize) {
            Ok(g) => groups.push(g),
            Err(e) => {
                stopped_by = e.to_string();
                break;
            }
        }
        let was = live;
        live += size;
        if live / step != was / step {
            progress(
                "density",
                &format!("{live} live, rss {} MiB", rss_bytes() >> 20),
            );
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let rss_grown = rss_bytes().saturating_sub(before);
    let maps = count_maps();
    drop(groups);
    Ok(Live {
        live: u64::from(live),
        rss_grown,
        seconds,
        maps,
        stopped_by,
    })
}

/// A group of `size` live sandboxes, each having touched one page. A group
/// of one is a plain sandbox in its own store.
fn touched_group(
    template: &Arc<WasmTemplate>,
    entry: EntryId,
    size: usize,
) -> Result<SandboxGroup, sandbox::SandboxError> {
    let mut group = SandboxGroup::start(template, size)?;
    for i in 0..size {
        group.invoke(i, Invocation::Call { entry, input: &[] })?;
    }
    Ok(group)
}

fn wasmtime_live(target: u32) -> Result<Live> {
    let engine = wasmtime::Engine::default();
    let module = Module::new(&engine, TOUCH)?;
    let linker: Linker<()> = Linker::new(&engine);
    let before = rss_bytes();
    let start = Instant::now();
    let mut live = Vec::new();
    let mut stopped_by = format!("reached the target of {target}");
    for _ in 0..target {
        let mut store = Store::new(&engine, ());
        let one = linker.instantiate(&mut store, &module).and_then(|i| {
            i.get_typed_func::<(), ()>(&mut store, "touch")?
                .call(&mut store, ())
        });
        match one {
            Ok(()) => live.push(store),
            Err(e) => {
                stopped_by = format!("{e:#}");
                break;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let rss_grown = rss_bytes().saturating_sub(before);
    let maps = count_maps();
    let n = live.len() as u64;
    drop(live);
    Ok(Live {
        live: n,
        rss_grown,
        seconds,
        maps,
        stopped_by,
    })
}

/// Resident set size of this process.
fn rss_bytes() -> u64 {
    proc_kib("/proc/self/status", "VmRSS:") * 1024
}

fn meminfo_total() -> u64 {
    proc_kib("/proc/meminfo", "MemTotal:") * 1024
}

/// The `key: N kB` figure of a `/proc` file, or 0 when absent.
fn proc_kib(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |s| s.lines().count())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}
