//! Sandbox groups and cold pools: members share a store but no WebAssembly
//! state, a failed member stops alone, a pool never reuses an instance and
//! is filled by the engine's preparer, a spinning guest yields to others on
//! its thread, and live slots come back when groups go.

use std::path::PathBuf;

use sandbox::{
    Artifact, ColdPool, Engine, Invocation, Limits, SandboxError, SandboxGroup, Template, WarmPool,
    WasmConfig, WasmEngine,
};

fn example(rel: &str) -> Artifact {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(rel);
    Artifact::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn engine(max_live: u32) -> WasmEngine {
    WasmEngine::new(WasmConfig {
        max_live,
        ..WasmConfig::fast()
    })
    .expect("engine")
}

const FRESH: [u8; 8] = [1, 0, 0, 0, 1, 0, 0, 0];
const SECOND: [u8; 8] = [2, 0, 0, 0, 2, 0, 0, 0];

#[test]
fn group_members_keep_their_own_state() {
    let engine = engine(16);
    let counter = engine
        .prepare(&example("counter.wat"), Limits::default())
        .unwrap();
    let bump = counter.entry("bump").unwrap();
    let call = Invocation::Call {
        entry: bump,
        input: &[],
    };
    let mut group = SandboxGroup::start(&counter, 3).unwrap();
    assert_eq!(group.len(), 3);
    assert_eq!(group.invoke(0, call).unwrap().returned, FRESH);
    assert_eq!(group.invoke(0, call).unwrap().returned, SECOND);
    // Member 1 saw nothing of member 0's two calls.
    assert_eq!(group.invoke(1, call).unwrap().returned, FRESH);
    assert_eq!(group.invoke(2, call).unwrap().returned, FRESH);
}

#[test]
fn a_failed_member_stops_alone() {
    let engine = engine(16);
    let bad = engine
        .prepare(&example("hostile/unreachable.wat"), Limits::default())
        .unwrap();
    let run = bad.entry("run").unwrap();
    let call = Invocation::Call {
        entry: run,
        input: &[],
    };
    let mut group = SandboxGroup::start(&bad, 2).unwrap();
    assert!(matches!(
        group.invoke(0, call),
        Err(SandboxError::Trap { .. })
    ));
    assert!(matches!(group.invoke(0, call), Err(SandboxError::Stopped)));
    // The other member is untouched: it traps on its own, not as "stopped".
    assert!(matches!(
        group.invoke(1, call),
        Err(SandboxError::Trap { .. })
    ));
    assert!(matches!(
        group.invoke(2, call),
        Err(SandboxError::InvalidLimit {
            field: "member",
            ..
        })
    ));
}

#[test]
fn groups_reserve_and_release_live_slots() {
    let engine = engine(8);
    let counter = engine
        .prepare(&example("counter.wat"), Limits::default())
        .unwrap();
    let group = SandboxGroup::start(&counter, 6).unwrap();
    assert_eq!(engine.live(), 6);
    assert!(matches!(
        SandboxGroup::start(&counter, 3),
        Err(SandboxError::LiveLimit { scope: "node", .. })
    ));
    assert_eq!(engine.live(), 6, "a refused group leaves no count behind");
    drop(group);
    assert_eq!(engine.live(), 0);
    SandboxGroup::start(&counter, 8).unwrap();
}

/// Waits (up to a generous deadline, never asserting a duration) until
/// `engine` has no live sandbox: a dropped pool's instances go at once, but
/// a batch its preparer was making when it was dropped goes when that round
/// ends.
fn wait_until_no_live(engine: &WasmEngine) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while engine.live() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} sandboxes still live",
            engine.live()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_cold_pool_never_reuses_an_instance() {
    let engine = engine(16);
    let counter = engine
        .prepare(&example("counter.wat"), Limits::default())
        .unwrap();
    let bump = counter.entry("bump").unwrap();
    let pool = ColdPool::new(counter.clone(), 0);
    pool.refill().unwrap();
    assert!(pool.stats().ready >= 1);
    // Many more invocations than a batch holds, with and without refills.
    for i in 0..25 {
        let out = pool
            .invoke_blocking(Invocation::Call {
                entry: bump,
                input: &[],
            })
            .unwrap();
        assert_eq!(
            out.returned, FRESH,
            "invocation {i} saw an earlier one's state"
        );
        if i % 7 == 0 {
            pool.refill().unwrap();
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.served, 25);
    assert!(stats.prepared >= 1 && stats.prepare_ns > 0, "{stats:?}");
    drop(pool);
    wait_until_no_live(&engine);
}

#[test]
fn a_cold_pool_runs_commands_with_their_own_stdin() {
    let engine = engine(16);
    let echo = engine
        .prepare(&example("echo.wat"), Limits::default())
        .unwrap();
    let pool = ColdPool::new(echo, 2);
    for text in ["first", "second", "third"] {
        let out = pool
            .invoke_blocking(Invocation::Command {
                args: &[],
                env: &[],
                stdin: text.as_bytes(),
                dirs: &[],
            })
            .unwrap();
        assert_eq!(out.stdout, text.as_bytes());
    }
}

#[test]
fn a_cold_pool_survives_a_hostile_invocation() {
    let engine = engine(16);
    let bad = engine
        .prepare(&example("hostile/unreachable.wat"), Limits::default())
        .unwrap();
    let run = bad.entry("run").unwrap();
    let pool = ColdPool::new(bad, 2);
    for _ in 0..5 {
        assert!(matches!(
            pool.invoke_blocking(Invocation::Call {
                entry: run,
                input: &[]
            }),
            Err(SandboxError::Trap { .. })
        ));
    }
    assert_eq!(pool.stats().served, 5);
}

#[test]
fn the_preparer_fills_a_pool_off_the_request_path() {
    let engine = engine(64);
    let counter = engine
        .prepare(&example("counter.wat"), Limits::default())
        .unwrap();
    // Nobody calls refill: the engine's preparer thread fills the pool to
    // the placed count.
    let pool = ColdPool::new(counter, 12);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pool.stats().ready < 12 {
        assert!(std::time::Instant::now() < deadline, "{:?}", pool.stats());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stats = pool.stats();
    assert!(stats.target >= 12, "{stats:?}");
    assert_eq!(stats.served, 0);
    assert!(stats.prepared >= 12, "{stats:?}");
}

#[test]
fn a_spinning_guest_yields_to_others_on_its_thread_until_its_deadline() {
    let engine = engine(16);
    let spin = engine
        .prepare(
            &example("hostile/loop.wat"),
            Limits {
                deadline: std::time::Duration::from_secs(5),
                ..Limits::default()
            },
        )
        .unwrap();
    let counter = engine
        .prepare(&example("counter.wat"), Limits::default())
        .unwrap();
    let (spin_entry, bump) = (spin.entry("run").unwrap(), counter.entry("bump").unwrap());
    let spinning = ColdPool::new(spin, 1);
    let quick = ColdPool::new(counter, 1);
    // One thread runs both: the spinning guest must yield for the quick
    // ones to run at all.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let spinner = async {
            spinning
                .invoke(
                    Invocation::Call {
                        entry: spin_entry,
                        input: &[],
                    },
                    |_| {},
                )
                .await
        };
        let others = async {
            // Let the spinner start first.
            tokio::task::yield_now().await;
            for _ in 0..20 {
                let out = quick
                    .invoke(
                        Invocation::Call {
                            entry: bump,
                            input: &[],
                        },
                        |_| {},
                    )
                    .await
                    .unwrap();
                assert_eq!(out.returned, FRESH);
            }
        };
        tokio::pin!(spinner);
        tokio::select! {
            biased;
            result = &mut spinner => panic!("the spinner ended before the others: {result:?}"),
            () = others => {}
        }
        assert!(matches!(spinner.await, Err(SandboxError::Timeout { .. })));
    });
}

/// A module whose 128 KiB data segment is all 7s; `scribble` returns the sum
/// of the bytes it finds (as 4 little-endian bytes), then overwrites them
/// all. Every fresh instance must find the original image.
fn scribble_module() -> Artifact {
    let data = "\\07".repeat(128 * 1024);
    Artifact::new(
        format!(
            r#"(module (memory (export "memory") 3)
  (data (i32.const 0) "{data}")
  (func (export "scribble") (param i32 i32) (result i64) (local $i i32) (local $sum i32)
    (loop $next
      (local.set $sum (i32.add (local.get $sum) (i32.load8_u (local.get $i))))
      (i32.store8 (local.get $i) (i32.const 9))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 131072))))
    (i32.store (i32.const 131072) (local.get $sum))
    (i64.const 562949953421316)))"#
        )
        .into_bytes(),
    )
}

#[test]
fn reused_slots_get_the_original_image_back() {
    // Four slots only (a pool keeps one ready), so instances are forced to
    // reuse slots whose pages the previous instance dirtied (and that stay
    // resident for reuse).
    let engine = engine(4);
    let template = engine
        .prepare(&scribble_module(), Limits::default())
        .unwrap();
    let entry = template.entry("scribble").unwrap();
    let expected = (7u32 * 131072).to_le_bytes();
    let pool = ColdPool::new(template.clone(), 1);
    for i in 0..12 {
        let out = pool
            .invoke_blocking(Invocation::Call { entry, input: &[] })
            .unwrap();
        assert_eq!(out.returned, expected, "instance {i} found a dirtied image");
    }
}

#[test]
fn a_sleep_past_the_deadline_is_a_timeout_and_a_short_one_works() {
    let engine = engine(8);
    let limits = Limits {
        deadline: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let sleepy = engine
        .prepare(&example("hostile/sleep.wat"), limits)
        .unwrap();
    let run = sleepy.entry("run").unwrap();
    let nap = sleepy.entry("nap").unwrap();
    let pool = ColdPool::new(sleepy, 2);
    // An hour-long poll_oneoff would hold the host thread for an hour; the
    // guard ends it as timed out instead.
    assert!(matches!(
        pool.invoke_blocking(Invocation::Call {
            entry: run,
            input: &[]
        }),
        Err(SandboxError::Timeout { .. })
    ));
    pool.invoke_blocking(Invocation::Call {
        entry: nap,
        input: &[],
    })
    .expect("a 1 ms sleep fits a 300 ms deadline");
    assert!(matches!(
        pool.invoke_blocking(Invocation::Command {
            args: &[],
            env: &[],
            stdin: b"",
            dirs: &[],
        }),
        Err(SandboxError::Timeout { .. })
    ));
}

fn dense_engine(max_live: u32, group: u32) -> WasmEngine {
    WasmEngine::new(WasmConfig {
        max_live,
        group,
        ..WasmConfig::dense()
    })
    .expect("engine")
}

fn small() -> Limits {
    Limits {
        memory_bytes: 1 << 20,
        table_elements: 1_000,
        ..Limits::default()
    }
}

#[test]
fn a_warm_pool_keeps_each_members_state_in_shared_stores() {
    let engine = dense_engine(64, 4);
    let counter = engine.prepare(&example("counter.wat"), small()).unwrap();
    let bump = counter.entry("bump").unwrap();
    let pool = WarmPool::new(counter, 10);
    assert_eq!(pool.fill().unwrap(), 10, "groups of 4, 4 and 2");
    assert_eq!(engine.live(), 10);
    let call = Invocation::Call {
        entry: bump,
        input: &[],
    };
    // One request at a time leases the same idle group (the group of 2,
    // filled last) and walks its members round robin; each member counts
    // its own calls.
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(pool.invoke_blocking(call).unwrap().returned[0]);
    }
    assert_eq!(seen, [1, 1, 2, 2, 3, 3, 4, 4]);
    assert_eq!(engine.live(), 10, "nothing started past the capacity");
}

#[test]
fn a_failed_warm_member_is_never_used_again() {
    let engine = dense_engine(16, 2);
    let bad = engine
        .prepare(&example("hostile/unreachable.wat"), small())
        .unwrap();
    let run = bad.entry("run").unwrap();
    let pool = WarmPool::new(bad, 2);
    pool.fill().unwrap();
    let call = Invocation::Call {
        entry: run,
        input: &[],
    };
    for _ in 0..2 {
        assert!(matches!(
            pool.invoke_blocking(call),
            Err(SandboxError::Trap { .. })
        ));
    }
    // Both members failed: the group went, and the next request starts a
    // new one (which traps on its own, not as "stopped").
    assert_eq!(pool.ready(), 0);
    assert!(matches!(
        pool.invoke_blocking(call),
        Err(SandboxError::Trap { .. })
    ));
}
