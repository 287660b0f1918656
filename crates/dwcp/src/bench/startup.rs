//! `dwcp bench startup`: how fast a sandbox starts, cold and warm, through
//! the code the gateway runs per request, beside wasmtime's default
//! configuration and wasmtime tuned by its own docs.
//!
//! Every series times the same trivial module: one page of memory and an
//! exported `run: () -> ()` that returns at once.
//! - `wasmtime-default`: `Engine::default()` (on-demand allocator), a fresh
//!   `Store` and `Linker::instantiate` per sample, then the call.
//! - `wasmtime-tuned`: the pooling allocator, copy-on-write images,
//!   `InstancePre`, a fresh `Store` per sample, then the call.
//! - `cold`: the gateway's per-request start and run, exactly: `await` of
//!   [`ColdPool::invoke`] (what `VersionHandle::run` calls for a cold
//!   route), which leases a never-used instance that the engine's preparer
//!   thread made ahead of time, arms it and calls it, on a tokio runtime as
//!   the gateway does. Requests are paced at [`COLD_RATE`] a second — a
//!   rate the preparer sustains, above what the gateway serves here — so
//!   the series is the request path, not a backlog of inline starts;
//!   `cold-to-entry` is the part up to the call into the guest (what the
//!   node's `dwcp_sandbox_start_seconds` records). `prepare-per-instance`
//!   and `teardown-per-instance` are the preparer's work per instance,
//!   measured in the same run. `cold-2threads`: two threads at once on one
//!   pool.
//! - `cold-unprepared` (lab): `WasmSandbox::start` plus the call on the
//!   request path — what an inline start (no instance ready) costs.
//! - `fresh-rate`: fresh sandboxes per second per core through the same
//!   pool, as fast as one thread asks: invocations ÷ (the asking thread's
//!   time + the preparer's preparation and teardown time for them), so the
//!   preparation is in the rate; `wasmtime-tuned-rate` is the same loop on
//!   tuned wasmtime, the two interleaved in alternating slices so that
//!   noise hits both. The `-touch` variants use a module whose function
//!   writes one word of memory.
//! - `warm`: a call into a kept-alive instance through the gateway's warm
//!   path (`WarmPool::invoke`, what `VersionHandle::run` calls for a warm
//!   route), each call
//!   timed on its own, less the cost of reading the clock (`clock`,
//!   measured in the same run); `wasmtime-warm` is a bare synchronous
//!   `TypedFunc::call` timed the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use sandbox::{
    Artifact, ColdPool, ColdStats, Engine, EntryId, Invocation, Limits, Sandbox, Template,
    WarmPool, WasmConfig, WasmEngine, WasmSandbox, WasmTemplate,
};
use wasmtime::{InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store};

use super::progress;
use super::report::{Report, Series, histogram, record};

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "run")))"#;

/// Like [`NOOP`] but `run` writes one word of memory, as any function
/// compiled from C or Rust does when it touches its shadow stack.
const TOUCH: &str = r#"(module (memory (export "memory") 1)
  (func (export "run") (i32.store (i32.const 65532) (i32.const 1))))"#;

/// Requests a second in the `cold` series: several times what the gateway
/// serves on this machine (`dwcp bench gateway`), and a rate the preparer
/// sustains from its own thread.
const COLD_RATE: f64 = 100_000.0;

/// Live sandboxes of the bench's engine (the preparer keeps up to a
/// quarter of them ready per pool).
const MAX_LIVE: u32 = 4096;

struct Plan {
    samples: usize,
    rate_for: Duration,
    mib_samples: usize,
    touched_samples: usize,
}

pub fn run(quick: bool) -> Result<Report> {
    let plan = if quick {
        Plan {
            samples: 20_000,
            rate_for: Duration::from_millis(700),
            mib_samples: 2_000,
            touched_samples: 200,
        }
    } else {
        Plan {
            samples: 100_000,
            rate_for: Duration::from_secs(3),
            mib_samples: 20_000,
            touched_samples: 2_000,
        }
    };
    let mut report = Report::new(
        "startup",
        serde_json::json!({
            "module": "1 page of memory, `run: () -> ()` returning at once",
            "samples": plan.samples,
            "warmup": plan.samples / 10,
            "cold_rate_per_second": COLD_RATE,
            "batch": sandbox::wasm::BATCH,
            "rate_seconds": plan.rate_for.as_secs_f64(),
            "profile": "fast",
            "max_live": MAX_LIVE,
            "executor": "tokio current-thread runtime (the gateway polls the same future on its worker threads)",
            "wasmtime": "48.0.8",
        }),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    progress("startup", "wasmtime default configuration");
    let default = wasmtime_default(plan.samples)?;
    report
        .series
        .push(Series::latency("wasmtime-default", &default, None));

    progress(
        "startup",
        "wasmtime tuned (pooling, copy-on-write, InstancePre)",
    );
    let tuned = WasmtimeTuned::new()?;
    let tuned_hist = tuned.cold(plan.samples)?;
    report.series.push(Series::latency(
        "wasmtime-tuned",
        &tuned_hist,
        Some("wasmtime-default"),
    ));

    let engine = WasmEngine::new(WasmConfig {
        max_live: MAX_LIVE,
        ..WasmConfig::fast()
    })?;
    let template = engine.prepare(&Artifact::new(NOOP.into()), Limits::default())?;
    let entry = template.entry("run")?;

    progress(
        "startup",
        "dwcp cold: the gateway's per-request start (one thread)",
    );
    let pool = ColdPool::new(template.clone(), 1);
    let cold = runtime.block_on(cold_loop(&pool, entry, plan.samples, COLD_RATE))?;
    report
        .series
        .push(Series::latency("cold", &cold.cold, Some("wasmtime-tuned")));
    report.series.push(Series::latency(
        "cold-to-entry",
        &cold.to_entry,
        Some("wasmtime-tuned"),
    ));
    let stats = pool.stats();
    push_preparation(&mut report, "", &stats);
    let cold_inline = cold.inline;

    progress("startup", "dwcp cold (two threads at once, one pool)");
    let two = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(anyhow::Error::from)
                        .and_then(|rt| {
                            rt.block_on(cold_loop(&pool, entry, plan.samples / 2, COLD_RATE / 2.0))
                        })
                })
            })
            .collect();
        let mut merged = histogram();
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a bench thread panicked"))??;
            merged.add(&part.cold)?;
        }
        anyhow::Ok(merged)
    })?;
    report.series.push(Series::latency(
        "cold-2threads",
        &two,
        Some("wasmtime-tuned"),
    ));
    drop(pool);

    progress(
        "startup",
        "lab: a sandbox started on the request path (start + call)",
    );
    let unprepared = unprepared(&template, entry, plan.samples)?;
    report.series.push(Series::latency(
        "cold-unprepared",
        &unprepared,
        Some("wasmtime-tuned"),
    ));

    progress(
        "startup",
        "fresh sandboxes per second per core, dwcp and tuned wasmtime",
    );
    let (ours, theirs) = runtime.block_on(fresh_rates(&template, entry, &tuned, plan.rate_for))?;
    report.series.push(Series::value(
        "wasmtime-tuned-rate",
        "ops/s",
        theirs.per_second(),
        theirs.ops,
        None,
    ));
    report.series.push(Series::value(
        "fresh-rate",
        "ops/s",
        ours.per_second(),
        ours.ops,
        Some("wasmtime-tuned-rate"),
    ));
    let rate_note = ours.note("fresh-rate");

    progress(
        "startup",
        "the same with a module that writes one word of memory",
    );
    let touch = engine.prepare(&Artifact::new(TOUCH.into()), Limits::default())?;
    let tuned_touch = WasmtimeTuned::with_module(TOUCH)?;
    let (ours, theirs) = runtime.block_on(fresh_rates(
        &touch,
        touch.entry("run")?,
        &tuned_touch,
        plan.rate_for,
    ))?;
    report.series.push(Series::value(
        "wasmtime-tuned-rate-touch",
        "ops/s",
        theirs.per_second(),
        theirs.ops,
        None,
    ));
    report.series.push(Series::value(
        "fresh-rate-touch",
        "ops/s",
        ours.per_second(),
        ours.ops,
        Some("wasmtime-tuned-rate-touch"),
    ));

    progress(
        "startup",
        "warm calls, dwcp and bare wasmtime, one at a time",
    );
    let clock = clock_cost(plan.samples);
    let clock_ns = clock.value_at_quantile(0.5) / PS_PER_NS;
    let warm = runtime.block_on(warm(&template, entry, plan.samples, clock_ns))?;
    let bare = tuned.warm(plan.samples, clock_ns)?;
    report.series.push(Series::latency("clock", &clock, None));
    report
        .series
        .push(Series::latency("wasmtime-warm", &bare, None));
    report
        .series
        .push(Series::latency("warm", &warm, Some("wasmtime-warm")));

    progress("startup", "1 MiB data segment, untouched and fully touched");
    let mib = engine.prepare(&Artifact::new(one_mib_module().into()), Limits::default())?;
    let mib_pool = ColdPool::new(mib.clone(), 1);
    let untouched = runtime.block_on(cold_loop(
        &mib_pool,
        mib.entry("run")?,
        plan.mib_samples,
        COLD_RATE / 10.0,
    ))?;
    drop(mib_pool);
    let touched_pool = ColdPool::new(mib.clone(), 1);
    let touched = runtime.block_on(cold_loop(
        &touched_pool,
        mib.entry("touch")?,
        plan.touched_samples,
        COLD_RATE / 100.0,
    ))?;
    report
        .series
        .push(Series::latency("cold-1mib", &untouched.cold, Some("cold")));
    report.series.push(Series::latency(
        "cold-1mib-touched",
        &touched.cold,
        Some("cold-1mib"),
    ));
    push_preparation(&mut report, "-1mib-touched", &touched_pool.stats());

    let mut report = report.finish();
    if let Some(r) = report.ratio("cold", "wasmtime-default") {
        report.notes.push(format!(
            "cold is {r:.1}x wasmtime's default configuration at p50"
        ));
    }
    report.notes.push(format!(
        "cold is ColdPool::invoke, the call the gateway makes per request on a cold route, paced at {COLD_RATE:.0} requests/s: it leases a never-used instance that the engine's preparer thread made ahead of time (in batches of up to {} sharing one store), arms it and calls it; {cold_inline} of its {} requests found none ready and started one inline (cold-unprepared is what that costs)",
        sandbox::wasm::BATCH,
        plan.samples + plan.samples / 10,
    ));
    report.notes.push(
        "prepare-per-instance and teardown-per-instance are the preparer's own time per instance over the cold series (wall time on its thread); fresh-rate divides by the asking thread's time plus that time"
            .into(),
    );
    report.notes.push(rate_note);
    report.notes.push(
        "a slot whose sandbox dirtied its memory is reset by copying back only the dirtied pages (prepare-per-instance-1mib-touched carries that cost) and stays resident, so the next sandbox takes no page faults"
            .into(),
    );
    report.notes.push(format!(
        "warm and wasmtime-warm time each call on its own, less the clock's cost (clock p50 = {clock_ns} ns, measured in this run as two back-to-back readings)"
    ));
    Ok(report)
}

const PS_PER_NS: u64 = 1000;

/// The preparer's work per instance as two value series.
fn push_preparation(report: &mut Report, suffix: &str, stats: &ColdStats) {
    let per = |ns: u64, n: u64| ns as f64 / n.max(1) as f64;
    report.series.push(Series::value(
        &format!("prepare-per-instance{suffix}"),
        "ns",
        per(stats.prepare_ns, stats.prepared),
        stats.prepared,
        None,
    ));
    report.series.push(Series::value(
        &format!("teardown-per-instance{suffix}"),
        "ns",
        per(stats.teardown_ns, stats.torn_down),
        stats.torn_down,
        None,
    ));
}

struct ColdRun {
    cold: Histogram<u64>,
    to_entry: Histogram<u64>,
    inline: u64,
}

/// Times the gateway's cold path: each request awaits [`ColdPool::invoke`]
/// on a never-used instance, from the call to its return (`cold`) and to
/// the call into the guest (`to_entry`). Requests start at `rate` a second
/// (the thread spins between them, untimed); the first tenth is warm-up.
async fn cold_loop(pool: &ColdPool, entry: EntryId, samples: usize, rate: f64) -> Result<ColdRun> {
    let mut run = ColdRun {
        cold: histogram(),
        to_entry: histogram(),
        inline: 0,
    };
    let warmup = samples / 10;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let inline_before = pool.stats().inline_starts;
    let mut due = Instant::now();
    for i in 0..samples + warmup {
        due += gap;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let mut took_to_entry = None;
        let t = Instant::now();
        pool.invoke(Invocation::Call { entry, input: &[] }, |d| {
            took_to_entry = Some(d)
        })
        .await?;
        let took = t.elapsed();
        if i >= warmup {
            record(&mut run.cold, took);
            if let Some(d) = took_to_entry {
                record(&mut run.to_entry, d);
            }
        }
    }
    run.inline = pool.stats().inline_starts - inline_before;
    Ok(run)
}

fn unprepared(
    template: &Arc<WasmTemplate>,
    entry: EntryId,
    samples: usize,
) -> Result<Histogram<u64>> {
    timed(samples, || {
        let mut sandbox = WasmSandbox::start(template)?;
        sandbox.invoke(Invocation::Call { entry, input: &[] })?;
        Ok(sandbox)
    })
}

/// Times `one` over `samples` runs after a tenth as many for warm-up. What
/// `one` returns is dropped outside the timing: a start is charged up to the
/// entry's return, not for the teardown after it.
fn timed<T>(samples: usize, mut one: impl FnMut() -> Result<T>) -> Result<Histogram<u64>> {
    let mut hist = histogram();
    for i in 0..samples + samples / 10 {
        let t = Instant::now();
        let keep = one()?;
        let took = t.elapsed();
        drop(keep);
        if i >= samples / 10 {
            record(&mut hist, took);
        }
    }
    Ok(hist)
}

/// Fresh sandboxes per second per core through a cold pool (the preparer's
/// time for them counted in) against tuned wasmtime doing the same on this
/// thread, interleaved.
async fn fresh_rates(
    template: &Arc<WasmTemplate>,
    entry: EntryId,
    tuned: &WasmtimeTuned,
    span: Duration,
) -> Result<(Rate, Rate)> {
    const SLICES: u32 = 20;
    let pool = ColdPool::new(template.clone(), 1);
    let call = Invocation::Call { entry, input: &[] };
    for _ in 0..1000 {
        pool.invoke(call, |_| {}).await?;
        tuned.one().map(drop)?;
    }
    let slice = span / SLICES;
    let (mut ours, mut theirs) = (Rate::default(), Rate::default());
    for _ in 0..SLICES {
        let before = pool.stats();
        let start = Instant::now();
        let mut ops = 0;
        while start.elapsed() < slice {
            for _ in 0..64 {
                pool.invoke(call, |_| {}).await?;
            }
            ops += 64;
        }
        ours.busy += start.elapsed();
        let after = pool.stats();
        ours.ops += ops;
        ours.preparer += Duration::from_nanos(
            (after.prepare_ns + after.teardown_ns)
                .saturating_sub(before.prepare_ns + before.teardown_ns),
        );
        ours.inline += after.inline_starts - before.inline_starts;
        run_slice(slice, &mut || tuned.one().map(drop), &mut theirs)?;
    }
    Ok((ours, theirs))
}

/// Operations counted and the time spent on them.
#[derive(Clone, Copy, Default)]
struct Rate {
    ops: u64,
    /// Time of the thread that asked.
    busy: Duration,
    /// The preparer's time for the pool meanwhile (zero for wasmtime).
    preparer: Duration,
    /// Invocations that started their instance inline.
    inline: u64,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.ops as f64 / (self.busy + self.preparer).as_secs_f64().max(1e-9)
    }

    fn note(&self, name: &str) -> String {
        format!(
            "{name}: {} invocations in {:.3} s of the asking thread plus {:.3} s of the preparer's; {} started inline (the asking thread outran the preparer)",
            self.ops,
            self.busy.as_secs_f64(),
            self.preparer.as_secs_f64(),
            self.inline
        )
    }
}

/// Runs `one` for about `slice`, adding what it did to `into`.
fn run_slice(slice: Duration, one: &mut impl FnMut() -> Result<()>, into: &mut Rate) -> Result<()> {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            one()?;
        }
        into.ops += 64;
        let elapsed = start.elapsed();
        if elapsed >= slice {
            into.busy += elapsed;
            return Ok(());
        }
    }
}

/// What two back-to-back readings of the clock differ by.
fn clock_cost(samples: usize) -> Histogram<u64> {
    let mut hist = histogram();
    for _ in 0..samples {
        let a = Instant::now();
        let b = Instant::now();
        record(&mut hist, b - a);
    }
    hist
}

/// Records `took` less the clock's own cost (at least 1 ps, the
/// histogram's floor).
fn record_less(hist: &mut Histogram<u64>, took: Duration, clock_ns: u64) {
    record(hist, took.saturating_sub(Duration::from_nanos(clock_ns)));
}

/// The gateway's warm path: a kept-alive instance of a [`WarmPool`], each
/// call timed on its own.
async fn warm(
    template: &Arc<WasmTemplate>,
    entry: EntryId,
    samples: usize,
    clock_ns: u64,
) -> Result<Histogram<u64>> {
    let pool = WarmPool::new(template.clone(), 1);
    pool.fill()?;
    let call = Invocation::Call { entry, input: &[] };
    let mut hist = histogram();
    for i in 0..samples + samples / 10 {
        let t = Instant::now();
        pool.invoke(call).await?;
        let took = t.elapsed();
        if i >= samples / 10 {
            record_less(&mut hist, took, clock_ns);
        }
    }
    Ok(hist)
}

fn wasmtime_default(samples: usize) -> Result<Histogram<u64>> {
    let engine = wasmtime::Engine::default();
    let module = Module::new(&engine, NOOP)?;
    let linker: Linker<()> = Linker::new(&engine);
    timed(samples, || {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module)?;
        let run = instance.get_typed_func::<(), ()>(&mut store, "run")?;
        run.call(&mut store, ())?;
        Ok(store)
    })
}

/// wasmtime as its documentation tunes it for fast instantiation.
struct WasmtimeTuned {
    engine: wasmtime::Engine,
    pre: wasmtime::InstancePre<()>,
}

impl WasmtimeTuned {
    fn new() -> Result<WasmtimeTuned> {
        WasmtimeTuned::with_module(NOOP)
    }

    fn with_module(wat: &str) -> Result<WasmtimeTuned> {
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::default(),
        ));
        config.memory_init_cow(true);
        let engine = wasmtime::Engine::new(&config)?;
        let module = Module::new(&engine, wat)?;
        let pre = Linker::new(&engine).instantiate_pre(&module)?;
        Ok(WasmtimeTuned { engine, pre })
    }

    /// A fresh store and instance, called once; returned so that the
    /// caller chooses whether its teardown is timed.
    fn one(&self) -> Result<Store<()>> {
        let mut store = Store::new(&self.engine, ());
        let instance = self.pre.instantiate(&mut store)?;
        let run = instance.get_typed_func::<(), ()>(&mut store, "run")?;
        run.call(&mut store, ())?;
        Ok(store)
    }

    fn cold(&self, samples: usize) -> Result<Histogram<u64>> {
        timed(samples, || self.one())
    }

    fn warm(&self, samples: usize, clock_ns: u64) -> Result<Histogram<u64>> {
        let mut store = Store::new(&self.engine, ());
        let instance = self.pre.instantiate(&mut store)?;
        let run = instance.get_typed_func::<(), ()>(&mut store, "run")?;
        let mut hist = histogram();
        for i in 0..samples + samples / 10 {
            let t = Instant::now();
            run.call(&mut store, ())?;
            let took = t.elapsed();
            if i >= samples / 10 {
                record_less(&mut hist, took, clock_ns);
            }
        }
        Ok(hist)
    }
}

/// A module with a 1 MiB data segment at address 0, `run` touching nothing
/// and `touch` writing one byte in every 4 KiB page of the segment.
fn one_mib_module() -> String {
    let data = "abcdefgh".repeat(1 << 17);
    format!(
        r#"(module (memory (export "memory") 17)
  (data (i32.const 0) "{data}")
  (func (export "run"))
  (func (export "touch") (local $i i32)
    (loop $next
      (i32.store8 (local.get $i) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 4096)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 1048576))))))"#
    )
}
