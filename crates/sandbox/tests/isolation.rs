//! Isolation tests of the WebAssembly tier: hostile modules end with typed
//! errors and never hurt the host or other sandboxes, cold starts share no
//! state, limits hold, and the compiled-code cache survives a restart and
//! corruption.
//!
//! Engines here use `WasmConfig::fast()` with a small `max_live` unless a test
//! needs more: each fast slot reserves 4 GiB (plus guards) of address space,
//! and the test harness runs several tests (so several engines) at once.
//!
//! No test measures time against the wall clock: a deadline test only checks
//! that the error *is* a timeout and that the engine still works afterwards.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use sandbox::wagi::{WagiRequest, parse_response};
use sandbox::{
    Artifact, Engine, Invocation, Limits, Output, Profile, Sandbox, SandboxError, SandboxPool,
    Template, WarmPolicy, WasmConfig, WasmEngine, WasmTemplate,
};

// ---------------------------------------------------------------- helpers

fn examples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

fn read_example(rel: &str) -> Vec<u8> {
    let path = examples_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read example {}: {e}", path.display()))
}

fn example(rel: &str) -> Artifact {
    Artifact::new(read_example(rel))
}

fn wat(text: &str) -> Artifact {
    Artifact::new(text.as_bytes().to_vec())
}

/// A fast-profile engine with `max_live` slots.
fn engine_with(max_live: u32) -> WasmEngine {
    WasmEngine::new(WasmConfig {
        max_live,
        ..WasmConfig::fast()
    })
    .expect("engine")
}

fn engine() -> WasmEngine {
    engine_with(64)
}

/// Limits whose deadline is short enough for an infinite loop test and
/// long enough that a slow shared machine running a debug build never hits
/// it by accident in a *good* module (good modules use the default 10 s).
fn loop_limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    }
}

fn prepare(engine: &WasmEngine, artifact: &Artifact, limits: Limits) -> Arc<WasmTemplate> {
    engine
        .prepare(artifact, limits)
        .unwrap_or_else(|e| panic!("prepare {artifact:?}: {e}"))
}

/// Starts a sandbox of `template` and calls raw entry `name` with `input`.
fn call_fresh(
    engine: &WasmEngine,
    template: &Arc<WasmTemplate>,
    name: &str,
    input: &[u8],
) -> Result<Output, SandboxError> {
    let entry = template.entry(name)?;
    let mut sandbox = engine.start(template)?;
    sandbox.invoke(Invocation::Call { entry, input })
}

fn command(
    engine: &WasmEngine,
    template: &Arc<WasmTemplate>,
    env: &[(String, String)],
    stdin: &[u8],
) -> Result<Output, SandboxError> {
    let args = vec!["module".to_string()];
    let mut sandbox = engine.start(template)?;
    sandbox.invoke(Invocation::Command {
        args: &args,
        env,
        stdin,
        dirs: &[],
    })
}

const ONE_ONE: [u8; 8] = [1, 0, 0, 0, 1, 0, 0, 0];
const TWO_TWO: [u8; 8] = [2, 0, 0, 0, 2, 0, 0, 0];

/// Proves the engine still serves good sandboxes after a hostile one.
fn assert_engine_healthy(engine: &WasmEngine) {
    let counter = prepare(engine, &example("counter.wat"), Limits::default());
    let out = call_fresh(engine, &counter, "bump", b"").expect("counter after a hostile module");
    assert_eq!(out.returned, ONE_ONE);
}

fn wagi_wasm() -> Artifact {
    let path = examples_dir().join("build/wagi-hello.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `bash scripts/build-examples.sh` from the \
             repository root to compile examples/wagi/hello.c first",
            path.display()
        )
    });
    Artifact::new(bytes)
}

// ------------------------------------------- 1. invalid modules and exports

#[test]
fn invalid_bytes_and_unparsable_wat_are_invalid_artifacts() {
    let engine = engine();
    let cases: [&[u8]; 5] = [
        b"\0asm\x01\0\0\0garbage",
        b"\0asm",
        b"",
        b"(module (func",
        // Parses, but does not validate: i32.add with an empty stack.
        b"(module (func (export \"f\") (i32.add)))",
    ];
    for bytes in cases {
        match engine.prepare(&Artifact::new(bytes.to_vec()), Limits::default()) {
            Err(SandboxError::InvalidArtifact { reason }) => {
                assert!(!reason.is_empty(), "empty reason for {bytes:?}")
            }
            Err(other) => panic!("{bytes:?}: expected InvalidArtifact, got {other:?}"),
            Ok(_) => panic!("{bytes:?}: expected InvalidArtifact, got a template"),
        }
    }
    assert_engine_healthy(&engine);
}

#[test]
fn a_component_is_refused_as_a_module() {
    let engine = engine();
    // The smallest binary component: magic, version 0x0d, layer 1.
    let component = b"\0asm\x0d\0\x01\0".to_vec();
    match engine.prepare(&Artifact::new(component), Limits::default()) {
        Err(e @ SandboxError::NotSupported { .. }) => {
            let message = e.to_string();
            assert!(message.contains("components"), "{message}");
            assert!(message.contains("prepare_http"), "{message}");
        }
        Err(other) => panic!("expected NotSupported, got {other:?}"),
        Ok(_) => panic!("a component was prepared as a module"),
    }
    assert_engine_healthy(&engine);
}

#[test]
fn missing_export_is_named_with_the_available_ones() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    match t.entry("nope") {
        Err(SandboxError::MissingExport { name, available }) => {
            assert_eq!(name, "nope");
            assert!(available.contains("bump"), "available: {available}");
            assert!(available.contains("dwcp_alloc"), "available: {available}");
        }
        other => panic!("expected MissingExport, got {other:?}"),
    }
}

#[test]
fn mistyped_export_is_an_export_type_error() {
    let engine = engine();
    let t = prepare(
        &engine,
        &wat(r#"(module
              (memory (export "memory") 1)
              (func (export "double") (param i32) (result i32)
                (i32.mul (local.get 0) (i32.const 2))))"#),
        Limits::default(),
    );
    match t.entry("double") {
        Err(SandboxError::ExportType { name, found, .. }) => {
            assert_eq!(name, "double");
            assert!(found.contains("i32"), "found: {found}");
        }
        other => panic!("expected ExportType, got {other:?}"),
    }
    // Not a function at all.
    match t.entry("memory") {
        Err(SandboxError::ExportType { name, .. }) => assert_eq!(name, "memory"),
        other => panic!("expected ExportType for `memory`, got {other:?}"),
    }
}

#[test]
fn ungranted_import_is_refused_by_name() {
    let engine = engine();
    match engine.prepare(&example("hostile/wasi-import.wat"), Limits::default()) {
        Err(SandboxError::ImportNotGranted { module, name, .. }) => {
            assert_eq!(module, "env");
            assert_eq!(name, "steal_secrets");
        }
        Err(other) => panic!("expected ImportNotGranted, got {other:?}"),
        Ok(_) => panic!("a module importing env::steal_secrets was prepared"),
    }
    // A WASI function that does not exist is not granted either.
    match engine.prepare(
        &wat(r#"(module (import "wasi_snapshot_preview1" "launch_missiles" (func)))"#),
        Limits::default(),
    ) {
        Err(SandboxError::ImportNotGranted { module, name, .. }) => {
            assert_eq!(module, "wasi_snapshot_preview1");
            assert_eq!(name, "launch_missiles");
        }
        Err(other) => panic!("expected ImportNotGranted, got {other:?}"),
        Ok(_) => panic!("a module importing a made-up WASI function was prepared"),
    }
    assert_engine_healthy(&engine);
}

// ------------------------------------------------------- 2. infinite loops

#[test]
fn infinite_loop_times_out_and_the_engine_keeps_working() {
    let engine = engine();
    let looping = prepare(&engine, &example("hostile/loop.wat"), loop_limits());
    for _ in 0..2 {
        match call_fresh(&engine, &looping, "run", b"") {
            Err(SandboxError::Timeout { deadline }) => {
                assert_eq!(deadline, Duration::from_millis(200))
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert_engine_healthy(&engine);
    }
    // `_start` loops too, as a command.
    match command(&engine, &looping, &[], b"") {
        Err(SandboxError::Timeout { .. }) => {}
        other => panic!("expected Timeout from _start, got {other:?}"),
    }
    assert_engine_healthy(&engine);
    assert_eq!(engine.live(), 0);
}

#[test]
fn looping_start_function_times_out_when_starting() {
    let engine = engine();
    let t = prepare(&engine, &example("hostile/start-loop.wat"), loop_limits());
    // `run` exists and type-checks; the start function is what never ends.
    t.entry("run").expect("run is a valid entry");
    for _ in 0..2 {
        match engine.start(&t) {
            Err(SandboxError::Timeout { .. }) => {}
            Err(other) => panic!("expected Timeout from start, got {other:?}"),
            Ok(_) => panic!("a sandbox whose start function loops forever started"),
        }
        assert_eq!(engine.live(), 0, "a failed start must release its slot");
        assert_engine_healthy(&engine);
    }
}

#[test]
fn a_failed_sandbox_refuses_further_invocations() {
    let engine = engine();
    let t = prepare(&engine, &example("hostile/loop.wat"), loop_limits());
    let entry = t.entry("run").unwrap();
    let mut sandbox = engine.start(&t).unwrap();
    assert!(matches!(
        sandbox.invoke(Invocation::Call { entry, input: b"" }),
        Err(SandboxError::Timeout { .. })
    ));
    assert!(matches!(
        sandbox.invoke(Invocation::Call { entry, input: b"" }),
        Err(SandboxError::Stopped)
    ));
}

// ------------------------------------------------ 3. memory, stack, traps

#[test]
fn memory_bomb_hits_the_configured_memory_limit() {
    let engine = engine();
    let limit = 4u64 << 20;
    let t = prepare(
        &engine,
        &example("hostile/memory-bomb.wat"),
        Limits {
            memory_bytes: limit,
            ..Limits::default()
        },
    );
    match call_fresh(&engine, &t, "run", b"") {
        Err(SandboxError::MemoryLimit {
            limit_bytes,
            wanted_bytes,
        }) => {
            assert_eq!(limit_bytes, limit);
            assert!(wanted_bytes > limit, "wanted {wanted_bytes}");
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert_engine_healthy(&engine);
}

#[test]
fn initial_memory_and_table_past_the_limits_fail_to_start() {
    let engine = engine();
    let big_memory = prepare(
        &engine,
        &wat(r#"(module (memory (export "memory") 32) (func (export "run")))"#),
        Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        },
    );
    match engine.start(&big_memory) {
        Err(SandboxError::MemoryLimit { limit_bytes, .. }) => assert_eq!(limit_bytes, 1 << 20),
        Err(other) => panic!("expected MemoryLimit, got {other:?}"),
        Ok(_) => panic!("2 MiB of initial memory started under a 1 MiB limit"),
    }
    let big_table = prepare(
        &engine,
        &wat(r#"(module (table 100 funcref) (func (export "run")))"#),
        Limits {
            table_elements: 10,
            ..Limits::default()
        },
    );
    match engine.start(&big_table) {
        Err(SandboxError::TableLimit { limit, wanted }) => {
            assert_eq!(limit, 10);
            assert_eq!(wanted, 100);
        }
        Err(other) => panic!("expected TableLimit, got {other:?}"),
        Ok(_) => panic!("a 100-element table started under a 10-element limit"),
    }
    assert_eq!(engine.live(), 0);
    assert_engine_healthy(&engine);
}

#[test]
fn table_growth_past_the_limit_is_a_table_limit() {
    let engine = engine();
    let t = prepare(
        &engine,
        &wat(r#"(module (table 1 funcref)
              (func (export "run")
                (drop (table.grow (ref.null func) (i32.const 50)))))"#),
        Limits {
            table_elements: 10,
            ..Limits::default()
        },
    );
    match call_fresh(&engine, &t, "run", b"") {
        Err(SandboxError::TableLimit { limit, wanted }) => {
            assert_eq!(limit, 10);
            assert_eq!(wanted, 51);
        }
        other => panic!("expected TableLimit, got {other:?}"),
    }
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let engine = engine();
    let t = prepare(
        &engine,
        &example("hostile/recursion.wat"),
        Limits::default(),
    );
    match call_fresh(&engine, &t, "run", b"") {
        Err(SandboxError::StackOverflow) => {}
        other => panic!("expected StackOverflow, got {other:?}"),
    }
    assert_engine_healthy(&engine);
}

#[test]
fn unreachable_is_a_trap_naming_unreachable() {
    let engine = engine();
    let t = prepare(
        &engine,
        &example("hostile/unreachable.wat"),
        Limits::default(),
    );
    match call_fresh(&engine, &t, "run", b"") {
        Err(SandboxError::Trap { message }) => {
            assert!(message.contains("unreachable"), "message: {message}")
        }
        other => panic!("expected Trap, got {other:?}"),
    }
    // And as a command (`_start`).
    match command(&engine, &t, &[], b"") {
        Err(SandboxError::Trap { message }) => {
            assert!(message.contains("unreachable"), "message: {message}")
        }
        other => panic!("expected Trap from _start, got {other:?}"),
    }
    assert_engine_healthy(&engine);
}

#[test]
fn huge_output_is_capped_and_flagged() {
    let engine = engine();
    let t = prepare(
        &engine,
        &example("hostile/huge-output.wat"),
        Limits {
            output_bytes: 64 << 10,
            ..Limits::default()
        },
    );
    let out = command(&engine, &t, &[], b"").expect("huge-output runs to completion");
    assert_eq!(out.stdout.len(), 65536);
    assert!(out.stdout.iter().all(|&b| b == b'A'));
    assert!(out.truncated);
    assert_eq!(out.exit_code, 0);
    assert!(out.stderr.is_empty());
}

// ------------------------------------ 4. a thousand sandboxes at once

#[derive(Clone, Copy, Debug)]
enum Kind {
    Counter,
    Reverse,
    Loop,
    Bomb,
    Unreachable,
}

#[test]
fn a_thousand_live_sandboxes_with_hostile_neighbours() {
    const THREADS: usize = 8;
    const TOTAL: usize = 1000;
    // 1,100 fast slots reserve about 4.5 TiB of address space (no memory):
    // fine on a 64-bit host with its 128 TiB of user address space.
    let engine = engine_with(1100);
    let counter = prepare(&engine, &example("counter.wat"), Limits::default());
    let reverse = prepare(&engine, &example("reverse.wat"), Limits::default());
    let looping = prepare(&engine, &example("hostile/loop.wat"), loop_limits());
    let bomb = prepare(
        &engine,
        &example("hostile/memory-bomb.wat"),
        Limits {
            memory_bytes: 2 << 20,
            ..Limits::default()
        },
    );
    let unreachable = prepare(
        &engine,
        &example("hostile/unreachable.wat"),
        Limits::default(),
    );

    // Sandbox i is hostile when i % 100 == 7 (10 of them), spread over all
    // threads; the rest alternate between counter and reverse.
    let kind = |i: usize| match (i % 100 == 7, i / 100 % 3, i % 2) {
        (true, 0, _) => Kind::Loop,
        (true, 1, _) => Kind::Bomb,
        (true, _, _) => Kind::Unreachable,
        (false, _, 0) => Kind::Counter,
        (false, _, _) => Kind::Reverse,
    };
    let input = |i: usize| format!("sandbox number {i}").into_bytes();

    let all_started = Barrier::new(THREADS + 1);
    let may_invoke = Barrier::new(THREADS + 1);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (engine, all_started, may_invoke) = (&engine, &all_started, &may_invoke);
                let templates = [&counter, &reverse, &looping, &bomb, &unreachable];
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (t..TOTAL).step_by(THREADS) {
                        let k = kind(i);
                        let template = match k {
                            Kind::Counter => templates[0],
                            Kind::Reverse => templates[1],
                            Kind::Loop => templates[2],
                            Kind::Bomb => templates[3],
                            Kind::Unreachable => templates[4],
                        };
                        let name = match k {
                            Kind::Counter => "bump",
                            Kind::Reverse => "reverse",
                            _ => "run",
                        };
                        let entry = template.entry(name).expect("entry");
                        let sandbox = engine
                            .start(template)
                            .unwrap_or_else(|e| panic!("start sandbox {i}: {e}"));
                        mine.push((i, k, entry, sandbox));
                    }
                    all_started.wait();
                    may_invoke.wait();
                    let mut failures = Vec::new();
                    for (i, k, entry, mut sandbox) in mine {
                        let input = input(i);
                        let arg: &[u8] = match k {
                            Kind::Reverse => &input,
                            _ => b"",
                        };
                        let result = sandbox.invoke(Invocation::Call { entry, input: arg });
                        let ok = match (k, &result) {
                            (Kind::Counter, Ok(out)) => out.returned == ONE_ONE,
                            (Kind::Reverse, Ok(out)) => {
                                let mut want = input.clone();
                                want.reverse();
                                out.returned == want
                            }
                            (Kind::Loop, Err(SandboxError::Timeout { .. })) => true,
                            (Kind::Bomb, Err(SandboxError::MemoryLimit { limit_bytes, .. })) => {
                                *limit_bytes == 2 << 20
                            }
                            (Kind::Unreachable, Err(SandboxError::Trap { message })) => {
                                message.contains("unreachable")
                            }
                            _ => false,
                        };
                        if !ok {
                            failures.push(format!("sandbox {i} ({k:?}): {result:?}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        all_started.wait();
        assert_eq!(engine.live(), TOTAL, "all sandboxes must be alive at once");
        assert_eq!(counter.live() + reverse.live(), 990);
        assert_eq!(looping.live() + bomb.live() + unreachable.live(), 10);
        may_invoke.wait();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sandbox thread panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(engine.live(), 0, "every sandbox released its slot");
    assert_engine_healthy(&engine);
}

// ------------------------------------------------------ 5. cold isolation

fn bump(sandbox: &mut impl Sandbox, template: &WasmTemplate) -> Vec<u8> {
    let entry = template.entry("bump").unwrap();
    sandbox
        .invoke(Invocation::Call { entry, input: b"" })
        .expect("bump")
        .returned
}

#[test]
fn fresh_sandboxes_share_no_state() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    for round in 0..8 {
        let mut s = engine.start(&t).unwrap();
        assert_eq!(bump(&mut s, &t), ONE_ONE, "fresh sandbox #{round}");
    }
    // Several alive at once are independent of each other too.
    let mut a = engine.start(&t).unwrap();
    let mut b = engine.start(&t).unwrap();
    assert_eq!(bump(&mut a, &t), ONE_ONE);
    assert_eq!(bump(&mut a, &t), TWO_TWO);
    assert_eq!(bump(&mut b, &t), ONE_ONE);
}

#[test]
fn state_persists_within_one_sandbox() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    let mut s = engine.start(&t).unwrap();
    assert_eq!(bump(&mut s, &t), ONE_ONE);
    assert_eq!(bump(&mut s, &t), TWO_TWO);
    assert_eq!(bump(&mut s, &t), [3, 0, 0, 0, 3, 0, 0, 0]);
}

#[test]
fn a_reused_slot_is_reset_even_after_its_memory_grew() {
    // A sandbox dirties memory (also past the keep-resident size) and grows
    // it; later fresh sandboxes, likely in the same pool slot, see none of it.
    let engine = engine_with(1);
    let t = prepare(
        &engine,
        &wat(r#"(module
              (memory (export "memory") 1)
              (global $g (mut i32) (i32.const 0))
              (func (export "dirty")
                (drop (memory.grow (i32.const 4)))
                (memory.fill (i32.const 0) (i32.const 0x5a) (i32.mul (memory.size) (i32.const 65536)))
                (global.set $g (i32.const 99)))
              (func (export "peek") (param i32 i32) (result i64)
                (i32.store (i32.const 0) (memory.size))
                (i32.store (i32.const 4) (global.get $g))
                (i32.store (i32.const 8) (i32.load (i32.const 40000)))
                (i64.const 12)))"#),
        Limits::default(),
    );
    for _ in 0..3 {
        let out = call_fresh(&engine, &t, "peek", b"").unwrap();
        assert_eq!(out.returned, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        call_fresh(&engine, &t, "dirty", b"").unwrap();
    }
}

#[test]
fn pool_per_invocation_never_reuses_an_instance() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    let entry = t.entry("bump").unwrap();
    let pool = SandboxPool::new(t.clone(), WarmPolicy::PerInvocation, 3);
    assert_eq!(pool.policy(), WarmPolicy::PerInvocation);
    assert_eq!(pool.fill().unwrap(), 3);
    assert_eq!(pool.ready(), 3);
    // More invocations than ready instances: some start fresh on demand.
    for i in 0..6 {
        let out = pool.invoke(Invocation::Call { entry, input: b"" }).unwrap();
        assert_eq!(out.returned, ONE_ONE, "pool invocation #{i}");
    }
    assert_eq!(pool.ready(), 0);
    assert_eq!(engine.live(), 0);
}

#[test]
fn pool_keep_alive_keeps_state() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    let entry = t.entry("bump").unwrap();
    let pool = SandboxPool::new(t.clone(), WarmPolicy::KeepAlive, 1);
    let first = pool.invoke(Invocation::Call { entry, input: b"" }).unwrap();
    assert_eq!(first.returned, ONE_ONE);
    let second = pool.invoke(Invocation::Call { entry, input: b"" }).unwrap();
    assert_eq!(second.returned, TWO_TWO);
    assert_eq!(pool.ready(), 1);
}

#[test]
fn pool_keep_alive_discards_a_failed_instance() {
    let engine = engine();
    let t = prepare(
        &engine,
        &wat(r#"(module
              (memory (export "memory") 1)
              (global $n (mut i32) (i32.const 0))
              (func (export "bump") (param i32 i32) (result i64)
                (global.set $n (i32.add (global.get $n) (i32.const 1)))
                (i32.store (i32.const 0) (global.get $n))
                (i64.const 4))
              (func (export "crash") unreachable))"#),
        Limits::default(),
    );
    let bump = t.entry("bump").unwrap();
    let crash = t.entry("crash").unwrap();
    let pool = SandboxPool::new(t.clone(), WarmPolicy::KeepAlive, 1);
    let call = |entry| pool.invoke(Invocation::Call { entry, input: b"" });
    assert_eq!(call(bump).unwrap().returned, [1, 0, 0, 0]);
    assert_eq!(call(bump).unwrap().returned, [2, 0, 0, 0]);
    assert!(matches!(call(crash), Err(SandboxError::Trap { .. })));
    assert_eq!(pool.ready(), 0, "the failed instance was not kept");
    assert_eq!(call(bump).unwrap().returned, [1, 0, 0, 0]);
}

/// `WarmPolicy::PerInvocation` promises that every invocation runs on an
/// instance that has never run one, but `SandboxPool::put` accepts a used
/// instance into such a pool and `take`/`invoke` hand it out again.
#[test]
fn pool_per_invocation_refuses_a_used_instance() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    let entry = t.entry("bump").unwrap();
    let pool = SandboxPool::new(t.clone(), WarmPolicy::PerInvocation, 2);
    let mut used = pool.take().unwrap();
    assert_eq!(bump(&mut used, &t), ONE_ONE);
    let _ = pool.put(used);
    let out = pool.invoke(Invocation::Call { entry, input: b"" }).unwrap();
    assert_eq!(
        out.returned, ONE_ONE,
        "a PerInvocation pool ran on a used instance"
    );
}

// --------------------------------------------------------------- 6. commands

#[test]
fn hello_prints_hello_world() {
    let engine = engine();
    let t = prepare(&engine, &example("hello.wat"), Limits::default());
    assert!(t.is_command());
    let out = command(&engine, &t, &[], b"").unwrap();
    assert_eq!(out.stdout, b"Hello, world!\n");
    assert_eq!(out.exit_code, 0);
    assert!(out.stderr.is_empty());
    assert!(!out.truncated);
    assert!(out.returned.is_empty());
}

#[test]
fn echo_copies_stdin_to_stdout() {
    let engine = engine();
    let t = prepare(&engine, &example("echo.wat"), Limits::default());
    // Larger than echo's 32 KiB buffer, so it takes several reads.
    let input: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let out = command(&engine, &t, &[], &input).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(
        out.stdout == input,
        "echoed {} bytes of {}",
        out.stdout.len(),
        input.len()
    );
    let empty = command(&engine, &t, &[], b"").unwrap();
    assert!(empty.stdout.is_empty());
}

#[test]
fn exit_code_is_reported_with_the_output_before_it() {
    let engine = engine();
    let t = prepare(&engine, &example("exit-code.wat"), Limits::default());
    let out = command(&engine, &t, &[], b"").unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout, b"bye\n");
}

#[test]
fn env_shows_exactly_the_granted_variables() {
    let engine = engine();
    let t = prepare(&engine, &example("env.wat"), Limits::default());
    let granted: Vec<(String, String)> = [
        ("GREETING", "hello world"),
        ("DWCP_TEST", "42"),
        ("EMPTY", ""),
        ("WITH_EQUALS", "a=b=c"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = command(&engine, &t, &granted, b"").unwrap();
    assert_eq!(out.exit_code, 0);
    let printed: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let want: BTreeSet<String> = granted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(printed, want);

    // Nothing granted: nothing printed (not the host's PATH, HOME, ...).
    let none = command(&engine, &t, &[], b"").unwrap();
    assert!(
        none.stdout.is_empty(),
        "env leaked: {}",
        String::from_utf8_lossy(&none.stdout)
    );
}

#[test]
fn env_of_one_invocation_does_not_leak_into_the_next_warm_one() {
    let engine = engine();
    let t = prepare(&engine, &example("env.wat"), Limits::default());
    let args = vec!["env".to_string()];
    let mut s = engine.start(&t).unwrap();
    let secret = vec![("SECRET".to_string(), "s3cr3t".to_string())];
    let first = s
        .invoke(Invocation::Command {
            args: &args,
            env: &secret,
            stdin: b"",
            dirs: &[],
        })
        .unwrap();
    assert_eq!(first.stdout, b"SECRET=s3cr3t\n");
    let second = s
        .invoke(Invocation::Command {
            args: &args,
            env: &[],
            stdin: b"",
            dirs: &[],
        })
        .unwrap();
    assert!(
        second.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
}

#[test]
fn a_raw_module_is_not_a_command() {
    let engine = engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    assert!(!t.is_command());
    match command(&engine, &t, &[], b"") {
        Err(SandboxError::MissingExport { name, .. }) => assert_eq!(name, "_start"),
        other => panic!("expected MissingExport(_start), got {other:?}"),
    }
}

// -------------------------------------------------------------------- 7. fuel

fn fuel_engine() -> WasmEngine {
    WasmEngine::new(WasmConfig {
        max_live: 16,
        fuel: true,
        ..WasmConfig::fast()
    })
    .expect("fuel engine")
}

#[test]
fn fuel_runs_out_in_an_infinite_loop() {
    let engine = fuel_engine();
    let t = prepare(
        &engine,
        &example("hostile/loop.wat"),
        Limits {
            fuel: Some(10_000),
            // Generous: fuel, not the clock, must stop it.
            deadline: Duration::from_secs(60),
            ..Limits::default()
        },
    );
    match call_fresh(&engine, &t, "run", b"") {
        Err(SandboxError::FuelExhausted { fuel }) => assert_eq!(fuel, 10_000),
        other => panic!("expected FuelExhausted, got {other:?}"),
    }
}

#[test]
fn fuel_used_is_reported_and_refilled_per_invocation() {
    let engine = fuel_engine();
    let t = prepare(
        &engine,
        &example("counter.wat"),
        Limits {
            fuel: Some(10_000),
            ..Limits::default()
        },
    );
    let entry = t.entry("bump").unwrap();
    let mut s = engine.start(&t).unwrap();
    let mut used = Vec::new();
    for _ in 0..3 {
        let out = s.invoke(Invocation::Call { entry, input: b"" }).unwrap();
        let fuel = out.fuel_used.expect("fuel_used with metering on");
        assert!(fuel > 0 && fuel < 10_000, "fuel used: {fuel}");
        used.push(fuel);
    }
    assert!(
        used.windows(2).all(|w| w[0] == w[1]),
        "same work, same fuel: {used:?}"
    );
}

/// `Limits::fuel` is documented as "`None` for no fuel metering", but on an
/// engine built with `WasmConfig::fuel` a template without a budget gets a
/// store with zero fuel, so every sandbox runs out of fuel at once.
#[test]
fn no_fuel_budget_on_a_fuel_engine_means_unmetered() {
    let engine = fuel_engine();
    let t = prepare(&engine, &example("counter.wat"), Limits::default());
    let out = call_fresh(&engine, &t, "bump", b"").expect("unmetered call");
    assert_eq!(out.returned, ONE_ONE);
}

#[test]
fn fuel_limit_needs_a_fuel_engine() {
    let engine = engine();
    match engine.prepare(
        &example("hostile/loop.wat"),
        Limits {
            fuel: Some(10_000),
            ..Limits::default()
        },
    ) {
        Err(SandboxError::InvalidLimit { field, .. }) => assert_eq!(field, "fuel"),
        Err(other) => panic!("expected InvalidLimit(fuel), got {other:?}"),
        Ok(_) => panic!("a fuel limit was accepted on an engine without fuel"),
    }
}

#[test]
fn memory_limit_must_fit_the_dense_slot() {
    let config = WasmConfig {
        max_live: 64,
        ..WasmConfig::dense()
    };
    assert_eq!(config.profile, Profile::Dense);
    let slot = config.slot_memory;
    let engine = WasmEngine::new(config).unwrap();
    match engine.prepare(
        &example("counter.wat"),
        Limits {
            memory_bytes: slot + 65536,
            ..Limits::default()
        },
    ) {
        Err(SandboxError::InvalidLimit { field, .. }) => assert_eq!(field, "memory"),
        Err(other) => panic!("expected InvalidLimit(memory), got {other:?}"),
        Ok(_) => panic!("a memory limit past the dense slot was accepted"),
    }
    // The default limits (64 MiB) do not fit either.
    assert!(matches!(
        engine.prepare(&example("counter.wat"), Limits::default()),
        Err(SandboxError::InvalidLimit {
            field: "memory",
            ..
        })
    ));
    // One that fits works, and the memory limit still holds in a dense slot.
    let fits = Limits {
        memory_bytes: slot,
        table_elements: 1_000,
        ..Limits::default()
    };
    let t = prepare(&engine, &example("counter.wat"), fits.clone());
    assert_eq!(
        call_fresh(&engine, &t, "bump", b"").unwrap().returned,
        ONE_ONE
    );
    let bomb = prepare(&engine, &example("hostile/memory-bomb.wat"), fits);
    match call_fresh(&engine, &bomb, "run", b"") {
        Err(SandboxError::MemoryLimit { limit_bytes, .. }) => assert_eq!(limit_bytes, slot),
        other => panic!("expected MemoryLimit in a dense slot, got {other:?}"),
    }
}

#[test]
fn other_invalid_limits_are_refused() {
    let engine = engine();
    let bad = |limits: Limits| match engine.prepare(&example("counter.wat"), limits) {
        Err(SandboxError::InvalidLimit { field, .. }) => field,
        Err(other) => panic!("expected InvalidLimit, got {other:?}"),
        Ok(_) => panic!("invalid limits were accepted"),
    };
    assert_eq!(
        bad(Limits {
            deadline: Duration::ZERO,
            ..Limits::default()
        }),
        "timeout"
    );
    assert_eq!(
        bad(Limits {
            max_live: Some(0),
            ..Limits::default()
        }),
        "max_live"
    );
    assert_eq!(
        bad(Limits {
            table_elements: u32::MAX,
            ..Limits::default()
        }),
        "table_elements"
    );
    assert!(matches!(
        WasmEngine::new(WasmConfig {
            max_live: 0,
            ..WasmConfig::fast()
        }),
        Err(SandboxError::InvalidLimit {
            field: "max_live",
            ..
        })
    ));
}

// ---------------------------------------------------- 8. compiled-code cache

fn cached_engine(dir: &Path) -> WasmEngine {
    WasmEngine::new(WasmConfig {
        max_live: 8,
        cache_dir: Some(dir.to_path_buf()),
        ..WasmConfig::fast()
    })
    .expect("engine with a cache")
}

fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

#[test]
fn compiled_code_cache_survives_a_restart_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = example("counter.wat");

    let first = cached_engine(dir.path());
    let t = prepare(&first, &artifact, Limits::default());
    assert!(!t.compiled_from_cache(), "nothing was cached yet");
    assert_eq!(
        call_fresh(&first, &t, "bump", b"").unwrap().returned,
        ONE_ONE
    );
    drop((t, first));
    let files = cwasm_files(dir.path());
    assert_eq!(files.len(), 1, "one compiled file: {files:?}");
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&artifact.digest().to_hex()),
        "named by the artifact digest: {files:?}"
    );

    // A restart: a new engine loads the code instead of compiling.
    let second = cached_engine(dir.path());
    let t = prepare(&second, &artifact, Limits::default());
    assert!(
        t.compiled_from_cache(),
        "the restarted engine used the cache"
    );
    assert_eq!(t.digest(), artifact.digest());
    assert_eq!(
        call_fresh(&second, &t, "bump", b"").unwrap().returned,
        ONE_ONE
    );
    drop((t, second));

    // Corrupt the middle of the file: the next engine recompiles.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xa5;
    }
    std::fs::write(&files[0], &bytes).unwrap();
    let third = cached_engine(dir.path());
    let t = prepare(&third, &artifact, Limits::default());
    assert!(
        !t.compiled_from_cache(),
        "a corrupted file must not be loaded"
    );
    assert_eq!(
        call_fresh(&third, &t, "bump", b"").unwrap().returned,
        ONE_ONE
    );
    drop((t, third));

    // The recompiled code was written back and is good again.
    let fourth = cached_engine(dir.path());
    let t = prepare(&fourth, &artifact, Limits::default());
    assert!(
        t.compiled_from_cache(),
        "the recompiled code was cached again"
    );
    assert_eq!(
        call_fresh(&fourth, &t, "bump", b"").unwrap().returned,
        ONE_ONE
    );

    // A truncated file is no better.
    drop((t, fourth));
    std::fs::write(&files[0], &bytes[..10]).unwrap();
    let fifth = cached_engine(dir.path());
    let t = prepare(&fifth, &artifact, Limits::default());
    assert!(!t.compiled_from_cache());
    assert_eq!(
        call_fresh(&fifth, &t, "bump", b"").unwrap().returned,
        ONE_ONE
    );
}

#[test]
fn cached_code_is_not_shared_across_engine_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = example("hostile/loop.wat");
    let plain = cached_engine(dir.path());
    assert!(!prepare(&plain, &artifact, Limits::default()).compiled_from_cache());
    // Fuel changes the generated code: it must not load the unmetered code
    // (which would loop forever instead of running out of fuel).
    let metered = WasmEngine::new(WasmConfig {
        max_live: 8,
        fuel: true,
        cache_dir: Some(dir.path().to_path_buf()),
        ..WasmConfig::fast()
    })
    .unwrap();
    let limits = Limits {
        fuel: Some(10_000),
        deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    let t = prepare(&metered, &artifact, limits);
    assert!(
        !t.compiled_from_cache(),
        "fuel code must not come from the plain engine"
    );
    assert!(matches!(
        call_fresh(&metered, &t, "run", b""),
        Err(SandboxError::FuelExhausted { .. })
    ));
    assert_eq!(cwasm_files(dir.path()).len(), 2);
}

// ------------------------------------------------------------ 9. live limits

#[test]
fn per_template_live_limit() {
    let engine = engine();
    let t = prepare(
        &engine,
        &example("counter.wat"),
        Limits {
            max_live: Some(2),
            ..Limits::default()
        },
    );
    let a = engine.start(&t).unwrap();
    let b = engine.start(&t).unwrap();
    match engine.start(&t) {
        Err(SandboxError::LiveLimit { scope, limit }) => {
            assert_eq!(scope, "template");
            assert_eq!(limit, 2);
        }
        Err(other) => panic!("expected LiveLimit, got {other:?}"),
        Ok(_) => panic!("a third sandbox started under max_live 2"),
    }
    assert_eq!(t.live(), 2);
    assert_eq!(engine.live(), 2);
    // Another template is not limited by this one's limit.
    let other = prepare(&engine, &example("reverse.wat"), Limits::default());
    let _c = engine.start(&other).unwrap();
    drop(a);
    let mut d = engine.start(&t).expect("a slot was freed");
    assert_eq!(bump(&mut d, &t), ONE_ONE);
    drop((b, d));
    assert_eq!(t.live(), 0);
}

#[test]
fn node_live_limit() {
    let engine = engine_with(3);
    let counter = prepare(&engine, &example("counter.wat"), Limits::default());
    let reverse = prepare(&engine, &example("reverse.wat"), Limits::default());
    let a = engine.start(&counter).unwrap();
    let _b = engine.start(&reverse).unwrap();
    let _c = engine.start(&counter).unwrap();
    for t in [&counter, &reverse] {
        match engine.start(t) {
            Err(SandboxError::LiveLimit { scope, limit }) => {
                assert_eq!(scope, "node");
                assert_eq!(limit, 3);
            }
            Err(other) => panic!("expected LiveLimit, got {other:?}"),
            Ok(_) => panic!("a fourth sandbox started on a 3-slot node"),
        }
    }
    assert_eq!(engine.live(), 3);
    assert_eq!(counter.live(), 2, "a refused start left no count behind");
    drop(a);
    let mut d = engine.start(&counter).expect("a slot was freed");
    assert_eq!(bump(&mut d, &counter), ONE_ONE);
    // Sandbox::stop releases the slot as dropping does.
    d.stop();
    assert_eq!(engine.live(), 2);
}

// --------------------------------------------------------------------- 10. WAGI

fn wagi_call(engine: &WasmEngine, t: &Arc<WasmTemplate>, req: &WagiRequest) -> Output {
    let out = command(engine, t, &req.env(), &req.body).expect("wagi app runs");
    assert_eq!(
        out.exit_code,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn wagi_c_app_answers_a_request() {
    let engine = engine();
    let t = prepare(&engine, &wagi_wasm(), Limits::default());
    assert!(t.is_command());
    let req = WagiRequest {
        method: "POST".into(),
        path: "/x".into(),
        query: "a=1".into(),
        route: "/app".into(),
        host: "example.test".into(),
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: b"ping".to_vec(),
    };
    let out = wagi_call(&engine, &t, &req);
    let resp = parse_response(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.headers.get("content-type").map(String::as_str),
        Some("text/plain")
    );
    let body = String::from_utf8(resp.body).unwrap();
    for want in [
        "Hello from C!",
        "method=POST",
        "path=/x",
        "query=a=1",
        "body=ping",
    ] {
        assert!(body.contains(want), "{want:?} missing from body {body:?}");
    }

    let teapot = WagiRequest {
        method: "GET".into(),
        path: "/".into(),
        query: "status=418".into(),
        ..WagiRequest::default()
    };
    let out = wagi_call(&engine, &t, &teapot);
    let resp = parse_response(&out.stdout).unwrap();
    assert_eq!(resp.status, 418);
    let body = String::from_utf8(resp.body).unwrap();
    assert!(body.contains("method=GET"), "{body:?}");
}

// ---------------------------------------------------- 11. the raw interface

#[test]
fn reverse_returns_the_input_reversed() {
    let engine = engine();
    let t = prepare(&engine, &example("reverse.wat"), Limits::default());
    let out = call_fresh(&engine, &t, "reverse", b"hello").unwrap();
    assert_eq!(out.returned, b"olleh");
    assert!(!out.truncated);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    // Empty input passes ptr = len = 0.
    assert!(
        call_fresh(&engine, &t, "reverse", b"")
            .unwrap()
            .returned
            .is_empty()
    );
    // Bigger than one page: dwcp_alloc grows memory.
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let out = call_fresh(&engine, &t, "reverse", &big).unwrap();
    let mut want = big.clone();
    want.reverse();
    assert!(out.returned == want, "reversed 200 kB differ");
}

#[test]
fn input_to_a_unit_entry_is_refused() {
    let engine = engine();
    let t = prepare(&engine, &example("noop.wat"), Limits::default());
    assert_eq!(
        call_fresh(&engine, &t, "run", b"").unwrap(),
        Output::default()
    );
    match call_fresh(&engine, &t, "run", b"input") {
        Err(SandboxError::ExportType { name, .. }) => assert_eq!(name, "run"),
        other => panic!("expected ExportType, got {other:?}"),
    }
}

const SIXTY_FOUR: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
  (func (export "out64") (param i32 i32) (result i64) (i64.const 64))
  (func (export "outside") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 65500) (i64.const 32)) (i64.const 100))))"#;

#[test]
fn returned_bytes_past_the_cap_are_truncated_and_flagged() {
    let engine = engine();
    let data = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let capped = prepare(
        &engine,
        &wat(SIXTY_FOUR),
        Limits {
            output_bytes: 10,
            ..Limits::default()
        },
    );
    let out = call_fresh(&engine, &capped, "out64", b"").unwrap();
    assert_eq!(out.returned, &data[..10]);
    assert!(out.truncated);
    // Exactly at the cap is not truncated.
    let exact = prepare(
        &engine,
        &wat(SIXTY_FOUR),
        Limits {
            output_bytes: 64,
            ..Limits::default()
        },
    );
    let out = call_fresh(&engine, &exact, "out64", b"").unwrap();
    assert_eq!(out.returned, data);
    assert!(!out.truncated);
}

#[test]
fn returned_bytes_outside_memory_are_bad_output() {
    let engine = engine();
    let t = prepare(&engine, &wat(SIXTY_FOUR), Limits::default());
    match call_fresh(&engine, &t, "outside", b"") {
        Err(SandboxError::BadOutput { entry, .. }) => assert_eq!(entry, "outside"),
        other => panic!("expected BadOutput, got {other:?}"),
    }
}

#[test]
fn input_without_dwcp_alloc_is_a_missing_export() {
    let engine = engine();
    let t = prepare(&engine, &wat(SIXTY_FOUR), Limits::default());
    match call_fresh(&engine, &t, "out64", b"x") {
        Err(SandboxError::MissingExport { name, .. }) => assert_eq!(name, "dwcp_alloc"),
        other => panic!("expected MissingExport(dwcp_alloc), got {other:?}"),
    }
}

#[test]
fn bytes_entry_without_exported_memory_is_refused() {
    let engine = engine();
    let t = prepare(
        &engine,
        &wat(
            r#"(module (memory 1) (func (export "f") (param i32 i32) (result i64) (i64.const 0)))"#,
        ),
        Limits::default(),
    );
    assert!(matches!(t.entry("f"), Err(SandboxError::ExportType { .. })));
}
