//! Criterion benches for the sandbox start paths that `dwcp bench startup`
//! reports with percentiles: cold through a pool, start plus call, a warm
//! call, and tuned wasmtime beside them. Run with `cargo bench -p dwcp-sandbox`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sandbox::{
    Artifact, ColdPool, Engine, Invocation, Limits, Sandbox, Template, WasmConfig, WasmEngine,
    WasmSandbox,
};

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "run")))"#;

fn startup(c: &mut Criterion) {
    let engine = WasmEngine::new(WasmConfig {
        max_live: 256,
        ..WasmConfig::fast()
    })
    .expect("engine");
    let template = engine
        .prepare(&Artifact::new(NOOP.into()), Limits::default())
        .expect("template");
    let entry = template.entry("run").expect("entry");
    let call = Invocation::Call { entry, input: &[] };

    let mut group = c.benchmark_group("startup");
    let pool = ColdPool::new(template.clone(), 64);
    group.bench_function("cold-pool (call; the preparer thread refills)", |b| {
        b.iter(|| black_box(pool.invoke_blocking(call).expect("invoke")))
    });
    group.bench_function("start+call (own store)", |b| {
        b.iter(|| {
            let mut sandbox = WasmSandbox::start(&template).expect("start");
            black_box(sandbox.invoke(call).expect("invoke"))
        })
    });
    let mut warm = WasmSandbox::start(&template).expect("start");
    group.bench_function("warm call", |b| {
        b.iter(|| black_box(warm.invoke(call).expect("invoke")))
    });

    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    let wt = wasmtime::Engine::new(&config).expect("wasmtime engine");
    let module = wasmtime::Module::new(&wt, NOOP).expect("module");
    let pre = wasmtime::Linker::<()>::new(&wt)
        .instantiate_pre(&module)
        .expect("instantiate_pre");
    group.bench_function("wasmtime-tuned (store, instantiate, call, drop)", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&wt, ());
            let instance = pre.instantiate(&mut store).expect("instantiate");
            let run = instance
                .get_typed_func::<(), ()>(&mut store, "run")
                .expect("run");
            run.call(&mut store, ()).expect("call");
        })
    });
    group.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
