//! `dwcp bench startup`: how fast a sandbox starts, cold and warm, beside
//! wasmtime's default configuration and wasmtime tuned by its own docs.
//!
//! Every series times the same trivial module: one page of memory and an
//! exported `run: () -> ()` that returns at once.
//! - `wasmtime-default`: `Engine::default()` (on-demand allocator), a fresh
//!   `Store` and `Linker::instantiate` per sample, then the call.
//! - `wasmtime-tuned`: the pooling allocator, copy-on-write images,
//!   `InstancePre`, a fresh `Store` per sample, then the call.
//! - `cold`: DWCP's request path: a [`ColdLane`] hands out a never-used
//!   instance that it prepared ahead of time, and it is called. Preparing
//!   it is real work, reported separately as `prepare`; `cold-unprepared`
//!   times `WasmSandbox::start` plus the call in one go.
//! - `fresh-rate`: fresh sandboxes per second on one thread through a cold
//!   lane, preparation, call and teardown all included;
//!   `wasmtime-tuned-rate` is the same loop on tuned wasmtime, the two
//!   interleaved in alternating slices so that noise hits both. The `-touch`
//!   variants use a module whose function writes one word of memory.
//! - `warm`: a call into a kept-alive instance through `Sandbox::invoke`,
//!   timed in batches because one call is shorter than the clock's own cost;
//!   `wasmtime-warm` is a bare `TypedFunc::call` timed the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use sandbox::{
    Artifact, ColdLane, Engine, EntryId, Invocation, Limits, Sandbox, Template, WasmConfig,
    WasmEngine, WasmSandbox, WasmTemplate,
};
use wasmtime::{InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store};

use super::progress;
use super::report::{Report, Series, histogram, record, record_avg};

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "run")))"#;

/// Like [`NOOP`] but `run` writes one word of memory, as any function
/// compiled from C or Rust does when it touches its shadow stack.
const TOUCH: &str = r#"(module (memory (export "memory") 1)
  (func (export "run") (i32.store (i32.const 65532) (i32.const 1))))"#;

/// Instances a cold lane prepares per batch.
const BATCH: usize = ColdLane::DEFAULT_BATCH;
/// Calls per timed batch in the warm series.
const WARM_BATCH: u32 = 100;

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
            "batch": BATCH,
            "warm_batch": WARM_BATCH,
            "rate_seconds": plan.rate_for.as_secs_f64(),
            "profile": "fast",
            "wasmtime": "48.0.8",
        }),
    );

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
        max_live: 1024,
        ..WasmConfig::fast()
    })?;
    let template = engine.prepare(&Artifact::new(NOOP.into()), Limits::default())?;
    let entry = template.entry("run")?;

    progress("startup", "dwcp cold (one thread)");
    let cold = cold_loop(&template, entry, plan.samples)?;
    report
        .series
        .push(Series::latency("cold", &cold.cold, Some("wasmtime-tuned")));
    report
        .series
        .push(Series::latency("prepare", &cold.prepare, None));

    progress("startup", "dwcp cold (two threads at once)");
    let two = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| cold_loop(&template, entry, plan.samples / 2)))
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

    progress("startup", "dwcp cold without preparation (start + call)");
    let unprepared = unprepared(&template, entry, plan.samples)?;
    report.series.push(Series::latency(
        "cold-unprepared",
        &unprepared,
        Some("wasmtime-tuned"),
    ));

    progress(
        "startup",
        "fresh sandboxes per second, dwcp and tuned wasmtime",
    );
    let (ours, theirs) = fresh_rates(&template, entry, &tuned, plan.rate_for)?;
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

    progress(
        "startup",
        "the same with a module that writes one word of memory",
    );
    let touch = engine.prepare(&Artifact::new(TOUCH.into()), Limits::default())?;
    let tuned_touch = WasmtimeTuned::with_module(TOUCH)?;
    let (ours, theirs) = fresh_rates(&touch, touch.entry("run")?, &tuned_touch, plan.rate_for)?;
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

    progress("startup", "warm calls, dwcp and bare wasmtime");
    let batches = plan.samples;
    let warm = warm(&template, entry, batches)?;
    let bare = tuned.warm(batches)?;
    report
        .series
        .push(Series::latency("wasmtime-warm", &bare, None));
    report
        .series
        .push(Series::latency("warm", &warm, Some("wasmtime-warm")));

    progress("startup", "1 MiB data segment, untouched and fully touched");
    let mib = engine.prepare(&Artifact::new(one_mib_module().into()), Limits::default())?;
    let mib_batches = plan.mib_samples.div_ceil(BATCH) * BATCH;
    let touched_batches = plan.touched_samples.div_ceil(BATCH) * BATCH;
    let untouched = cold_loop(&mib, mib.entry("run")?, mib_batches)?;
    let touched = cold_loop(&mib, mib.entry("touch")?, touched_batches)?;
    report
        .series
        .push(Series::latency("cold-1mib", &untouched.cold, Some("cold")));
    report.series.push(Series::latency(
        "cold-1mib-touched",
        &touched.cold,
        Some("cold-1mib"),
    ));
    report.series.push(Series::latency(
        "prepare-1mib-touched",
        &touched.prepare,
        None,
    ));

    let mut report = report.finish();
    if let Some(r) = report.ratio("cold", "wasmtime-default") {
        report.notes.push(format!(
            "cold is {r:.1}x wasmtime's default configuration at p50"
        ));
    }
    report.notes.push(
        format!("cold takes never-used instances that a cold lane prepared ahead of time in batches of {BATCH}; `prepare` is that work per instance (batch average, including the teardown of the used batch) and fresh-rate includes it"),
    );
    report.notes.push(
        "a slot whose sandbox dirtied its memory is reset by copying back only the dirtied pages (prepare-1mib-touched carries that cost) and stays resident, so the next sandbox takes no page faults"
            .into(),
    );
    report.notes.push(format!(
        "warm and wasmtime-warm are per-call averages of batches of {WARM_BATCH} calls (one call is shorter than reading the clock)"
    ));
    Ok(report)
}

struct ColdRun {
    cold: Histogram<u64>,
    prepare: Histogram<u64>,
}

/// Times DWCP's cold path: a [`ColdLane`] prepares a batch ahead of time
/// (timed as `prepare`, per instance, including the teardown of the batch
/// used before), then each invocation on a never-used instance is timed
/// from the request to the entry's return. The first tenth is warm-up.
fn cold_loop(template: &Arc<WasmTemplate>, entry: EntryId, samples: usize) -> Result<ColdRun> {
    let mut lane = ColdLane::new(template.clone(), BATCH);
    let mut run = ColdRun {
        cold: histogram(),
        prepare: histogram(),
    };
    let warmup = samples / 10;
    let mut done = 0;
    while done < samples + warmup {
        let t = Instant::now();
        lane.prepare()?;
        let took = t.elapsed();
        if done >= warmup {
            record_avg(&mut run.prepare, took, BATCH as u32);
        }
        for _ in 0..BATCH {
            let t = Instant::now();
            lane.invoke(Invocation::Call { entry, input: &[] })?;
            let took = t.elapsed();
            if done >= warmup {
                record(&mut run.cold, took);
            }
            done += 1;
        }
    }
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

/// Fresh sandboxes per second through a cold lane on this thread (with
/// preparation and teardown inline) against tuned wasmtime doing the same.
fn fresh_rates(
    template: &Arc<WasmTemplate>,
    entry: EntryId,
    tuned: &WasmtimeTuned,
    span: Duration,
) -> Result<(Rate, Rate)> {
    let mut lane = ColdLane::new(template.clone(), BATCH);
    rate_pair(
        span,
        || {
            lane.invoke(Invocation::Call { entry, input: &[] })?;
            Ok(())
        },
        || tuned.one().map(drop),
    )
}

/// Operations counted and the time spent on them.
#[derive(Clone, Copy, Default)]
struct Rate {
    ops: u64,
    busy: Duration,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.busy.as_secs_f64().max(1e-9)
    }
}

/// Measures two loops for `span` each, interleaved in 20 alternating
/// slices, so that a noisy neighbour on a shared machine slows both alike
/// instead of whichever happened to run during the noise.
fn rate_pair(
    span: Duration,
    mut a: impl FnMut() -> Result<()>,
    mut b: impl FnMut() -> Result<()>,
) -> Result<(Rate, Rate)> {
    const SLICES: u32 = 20;
    for _ in 0..1000 {
        a()?;
        b()?;
    }
    let slice = span / SLICES;
    let (mut ra, mut rb) = (Rate::default(), Rate::default());
    for _ in 0..SLICES {
        run_slice(slice, &mut a, &mut ra)?;
        run_slice(slice, &mut b, &mut rb)?;
    }
    Ok((ra, rb))
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

fn warm(template: &Arc<WasmTemplate>, entry: EntryId, batches: usize) -> Result<Histogram<u64>> {
    let mut sandbox = WasmSandbox::start(template)?;
    let mut hist = histogram();
    for i in 0..batches + batches / 10 {
        let t = Instant::now();
        for _ in 0..WARM_BATCH {
            sandbox.invoke(Invocation::Call { entry, input: &[] })?;
        }
        let took = t.elapsed();
        if i >= batches / 10 {
            record_avg(&mut hist, took, WARM_BATCH);
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

    fn warm(&self, batches: usize) -> Result<Histogram<u64>> {
        let mut store = Store::new(&self.engine, ());
        let instance = self.pre.instantiate(&mut store)?;
        let run = instance.get_typed_func::<(), ()>(&mut store, "run")?;
        let mut hist = histogram();
        for i in 0..batches + batches / 10 {
            let t = Instant::now();
            for _ in 0..WARM_BATCH {
                run.call(&mut store, ())?;
            }
            let took = t.elapsed();
            if i >= batches / 10 {
                record_avg(&mut hist, took, WARM_BATCH);
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
