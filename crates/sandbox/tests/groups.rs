//! Sandbox groups and cold lanes: members share a store but no WebAssembly
//! state, a failed member stops alone, a lane never reuses an instance, and
//! live slots come back when groups go.

use std::path::PathBuf;

use sandbox::{
    Artifact, ColdLane, Engine, Invocation, Limits, SandboxError, SandboxGroup, Template,
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

#[test]
fn a_cold_lane_never_reuses_an_instance() {
    let engine = engine(16);
    let counter = engine
        .prepare(&example("counter.wat"), Limits::default())
        .unwrap();
    let bump = counter.entry("bump").unwrap();
    let mut lane = ColdLane::new(counter.clone(), 4);
    lane.prepare().unwrap();
    assert_eq!(lane.ready(), 4);
    // Many more invocations than a batch holds, with and without prepare.
    for i in 0..25 {
        let out = lane
            .invoke(Invocation::Call {
                entry: bump,
                input: &[],
            })
            .unwrap();
        assert_eq!(
            out.returned, FRESH,
            "invocation {i} saw an earlier one's state"
        );
        if i % 7 == 0 {
            lane.prepare().unwrap();
        }
        assert!(engine.live() <= 8, "a lane holds at most two batches");
    }
    drop(lane);
    assert_eq!(engine.live(), 0);
}

#[test]
fn a_cold_lane_runs_commands_with_their_own_stdin() {
    let engine = engine(16);
    let echo = engine
        .prepare(&example("echo.wat"), Limits::default())
        .unwrap();
    let mut lane = ColdLane::new(echo, 2);
    for text in ["first", "second", "third"] {
        let out = lane
            .invoke(Invocation::Command {
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
fn a_cold_lane_survives_a_hostile_invocation() {
    let engine = engine(16);
    let bad = engine
        .prepare(&example("hostile/unreachable.wat"), Limits::default())
        .unwrap();
    let run = bad.entry("run").unwrap();
    let mut lane = ColdLane::new(bad, 2);
    for _ in 0..5 {
        assert!(matches!(
            lane.invoke(Invocation::Call {
                entry: run,
                input: &[]
            }),
            Err(SandboxError::Trap { .. })
        ));
    }
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
    // Two slots only, so instances are forced to reuse slots whose pages the
    // previous instance dirtied (and that stay resident for reuse).
    let engine = engine(2);
    let template = engine
        .prepare(&scribble_module(), Limits::default())
        .unwrap();
    let entry = template.entry("scribble").unwrap();
    let expected = (7u32 * 131072).to_le_bytes();
    let mut lane = ColdLane::new(template.clone(), 1);
    for i in 0..12 {
        let out = lane.invoke(Invocation::Call { entry, input: &[] }).unwrap();
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
    let mut lane = ColdLane::new(sleepy, 2);
    // An hour-long poll_oneoff would hold the host thread for an hour; the
    // guard ends it as timed out instead.
    assert!(matches!(
        lane.invoke(Invocation::Call {
            entry: run,
            input: &[]
        }),
        Err(SandboxError::Timeout { .. })
    ));
    lane.invoke(Invocation::Call {
        entry: nap,
        input: &[],
    })
    .expect("a 1 ms sleep fits a 300 ms deadline");
    assert!(matches!(
        lane.invoke(Invocation::Command {
            args: &[],
            env: &[],
            stdin: b"",
            dirs: &[],
        }),
        Err(SandboxError::Timeout { .. })
    ));
}
