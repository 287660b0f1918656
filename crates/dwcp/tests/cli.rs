//! End-to-end tests of the `dwcp` binary: `dwcp run` and `dwcp bench`.
//!
//! Every invocation gets its own temporary `DWCP_CACHE_DIR` (so nothing is
//! read from or written to the user's cache) unless the test passes
//! `--no-cache`. No test measures time against the wall clock.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn examples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

fn example(rel: &str) -> String {
    examples_dir().join(rel).display().to_string()
}

/// A `dwcp` command whose cache is the (still empty) directory `cache`.
fn dwcp_in(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dwcp"));
    cmd.args(args)
        .env("DWCP_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `dwcp ARGS` with a fresh cache directory of its own.
fn dwcp(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    run(dwcp_in(cache.path(), args))
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("cannot run the dwcp binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

#[track_caller]
fn assert_stderr_has(out: &Output, want: &str) {
    let err = stderr(out);
    assert!(err.contains(want), "{want:?} not in stderr: {err}");
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

// ------------------------------------------------------------------ dwcp run

#[test]
fn run_hello() {
    let out = dwcp(&["run", &example("hello.wat")]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "Hello, world!\n");
}

#[test]
fn run_exit_code_becomes_ours() {
    let out = dwcp(&["run", &example("exit-code.wat")]);
    assert_code(&out, 3);
    assert_eq!(stdout(&out), "bye\n");
}

#[test]
fn run_echo_with_stdin_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = "first line\nsecond line, ünïcødé\n".repeat(2000);
    let input = write_temp(dir.path(), "in.txt", text.as_bytes());
    let out = dwcp(&["run", &example("echo.wat"), "--stdin", &input]);
    assert_code(&out, 0);
    assert!(
        stdout(&out) == text,
        "echo returned {} bytes of {}",
        out.stdout.len(),
        text.len()
    );
}

#[test]
fn run_echo_with_stdin_dash_reads_our_stdin() {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = dwcp_in(cache.path(), &["run", &example("echo.wat"), "--stdin", "-"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"piped in\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "piped in\n");
}

#[test]
fn run_invoke_reverse_with_stdin_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_temp(dir.path(), "in.bin", b"hello\x00\xff world");
    let out = dwcp(&[
        "run",
        &example("reverse.wat"),
        "--invoke",
        "reverse",
        "--stdin",
        &input,
    ]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"dlrow \xff\x00olleh");
}

#[test]
fn run_env_grants_only_what_is_given() {
    let out = dwcp(&["run", &example("env.wat"), "--env", "K=V"]);
    assert_code(&out, 0);
    // Exactly K=V: nothing from our own environment (PATH, HOME, ...).
    assert_eq!(stdout(&out), "K=V\n");

    let out = dwcp(&["run", &example("env.wat"), "--env", "A=1", "--env", "B=x=y"]);
    assert_code(&out, 0);
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, ["A=1", "B=x=y"]);

    let out = dwcp(&["run", &example("env.wat")]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "", "no --env, no variables");
}

#[test]
fn run_infinite_loop_times_out_with_124() {
    let out = dwcp(&["run", &example("hostile/loop.wat"), "--timeout", "200ms"]);
    assert_code(&out, 124);
    assert_stderr_has(&out, "timed out");
    // The raw entry point too.
    let out = dwcp(&[
        "run",
        &example("hostile/loop.wat"),
        "--invoke",
        "run",
        "--timeout",
        "200ms",
    ]);
    assert_code(&out, 124);
    assert_stderr_has(&out, "timed out");
    // And a start function that never ends.
    let out = dwcp(&[
        "run",
        &example("hostile/start-loop.wat"),
        "--invoke",
        "run",
        "--timeout",
        "200ms",
    ]);
    assert_code(&out, 124);
    assert_stderr_has(&out, "timed out");
}

#[test]
fn run_memory_bomb_hits_the_memory_limit_with_125() {
    let out = dwcp(&[
        "run",
        &example("hostile/memory-bomb.wat"),
        "--invoke",
        "run",
        "--memory",
        "1MiB",
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "memory limit");
    assert_stderr_has(&out, "1048576");
}

#[test]
fn run_traps_exit_125() {
    let out = dwcp(&["run", &example("hostile/unreachable.wat")]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "unreachable");
    let out = dwcp(&["run", &example("hostile/recursion.wat"), "--invoke", "run"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "stack overflow");
    let out = dwcp(&[
        "run",
        &example("hostile/wasi-import.wat"),
        "--invoke",
        "run",
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "steal_secrets");
}

#[test]
fn run_fuel_limits_and_reports_fuel() {
    let out = dwcp(&[
        "run",
        &example("hostile/loop.wat"),
        "--invoke",
        "run",
        "--fuel",
        "10000",
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "out of fuel");
    let out = dwcp(&["run", &example("hello.wat"), "--fuel", "1000000"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "Hello, world!\n");
    assert_stderr_has(&out, "fuel used: ");
}

#[test]
fn run_caps_huge_output_and_warns() {
    let out = dwcp(&[
        "run",
        &example("hostile/huge-output.wat"),
        "--max-output",
        "64KiB",
    ]);
    assert_code(&out, 0);
    assert_eq!(out.stdout.len(), 65536);
    assert!(out.stdout.iter().all(|&b| b == b'A'));
    assert_stderr_has(&out, "--max-output");
}

#[test]
fn run_nonexistent_file_exits_125() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-module.wat").display().to_string();
    let out = dwcp(&["run", &missing]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "cannot read");
    assert_stderr_has(&out, "no-such-module.wat");
}

#[test]
fn run_invalid_module_exits_125() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_temp(dir.path(), "bad.wasm", b"\0asm\x01\0\0\0garbage");
    let out = dwcp(&["run", &bad]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "invalid module");
}

#[test]
fn run_refuses_a_component_as_not_supported_yet() {
    let dir = tempfile::tempdir().unwrap();
    let component = write_temp(dir.path(), "http.wasm", b"\0asm\x0d\0\x01\0");
    let out = dwcp(&["run", &component]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "not supported: WebAssembly components");
}

#[test]
fn run_rejects_an_unknown_size_unit() {
    let out = dwcp(&["run", &example("hello.wat"), "--memory", "12parsecs"]);
    assert!(!out.status.success());
    assert_stderr_has(&out, "unknown size unit");
    assert!(out.stdout.is_empty(), "the module must not have run");
}

#[test]
fn run_rejects_env_without_a_value() {
    let out = dwcp(&["run", &example("env.wat"), "--env", "novalue"]);
    assert!(!out.status.success());
    assert_stderr_has(&out, "KEY=VALUE");
    assert!(out.stdout.is_empty(), "the module must not have run");
    let out = dwcp(&["run", &example("env.wat"), "--env", "=value"]);
    assert!(!out.status.success());
    assert_stderr_has(&out, "KEY=VALUE");
}

#[test]
fn run_invoke_unknown_export_lists_the_available_ones() {
    let out = dwcp(&["run", &example("counter.wat"), "--invoke", "nope"]);
    assert!(!out.status.success());
    assert_code(&out, 125);
    assert_stderr_has(&out, "nope");
    assert_stderr_has(&out, "bump");
    assert_stderr_has(&out, "dwcp_alloc");
}

#[test]
fn run_fills_the_cache_and_no_cache_skips_it() {
    let cache = tempfile::tempdir().unwrap();
    let cwasm = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
                    .count()
            })
            .unwrap_or(0)
    };
    let out = run(dwcp_in(
        cache.path(),
        &["run", "--no-cache", &example("hello.wat")],
    ));
    assert_code(&out, 0);
    assert_eq!(cwasm(cache.path()), 0, "--no-cache wrote to the cache");
    for _ in 0..2 {
        let out = run(dwcp_in(cache.path(), &["run", &example("hello.wat")]));
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "Hello, world!\n");
        assert_eq!(cwasm(cache.path()), 1);
    }
    // --cache-dir wins over DWCP_CACHE_DIR.
    let other = tempfile::tempdir().unwrap();
    let dir = other.path().display().to_string();
    let out = run(dwcp_in(
        cache.path(),
        &["run", "--cache-dir", &dir, &example("exit-code.wat")],
    ));
    assert_code(&out, 3);
    assert_eq!(cwasm(other.path()), 1);
    assert_eq!(cwasm(cache.path()), 1);
}

/// `--profile dense` can never run anything: `dwcp run` asks for the
/// default table limit (10,000 elements), which is more than the dense
/// profile's slots hold (1,000), and there is no flag to lower it.
#[test]
fn run_dense_profile() {
    let out = dwcp(&[
        "run",
        "--profile",
        "dense",
        "--memory",
        "1MiB",
        &example("hello.wat"),
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "Hello, world!\n");
}

#[test]
fn run_dense_profile_refuses_a_memory_limit_past_its_slot() {
    let out = dwcp(&[
        "run",
        "--profile",
        "dense",
        "--memory",
        "64MiB",
        &example("hello.wat"),
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "limit `memory`");
}

// ---------------------------------------------------------------- dwcp up

#[test]
fn up_refuses_more_sandboxes_than_memory_or_address_space_allow() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    // Dense: 8 KiB each, past any machine's memory.
    let out = dwcp(&[
        "up",
        "--data-dir",
        dir,
        "--profile",
        "dense",
        "--sandboxes",
        "4000000000",
    ]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        "limit `--sandboxes` = 4000000000 is not allowed: at most",
    );
    assert_stderr_has(&out, "KiB of memory and this machine has");
    // Fast: 4 GiB reservations run out of address space first.
    let out = dwcp(&[
        "up",
        "--data-dir",
        dir,
        "--profile",
        "fast",
        "--sandboxes",
        "1000000",
    ]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "of address space");
    assert_stderr_has(&out, "use the `dense` profile");
    // Nothing was made: the refusal comes before the data directory.
    assert!(
        std::fs::read_dir(data.path()).unwrap().next().is_none(),
        "the refused node left files behind"
    );
}

// ---------------------------------------------------------------- dwcp bench

fn bench_json(args: &[&str]) -> Value {
    let out = dwcp(args);
    assert_code(&out, 0);
    let text = stdout(&out);
    let mut objects = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let report = objects
        .next()
        .expect("no JSON on stdout")
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"));
    assert!(
        objects.next().is_none(),
        "more than one JSON value on stdout: {text}"
    );
    assert!(report.is_object(), "not a JSON object: {text}");
    report
}

fn series<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["series"]
        .as_array()
        .expect("`series` is an array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no series {name:?} in {report}"))
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {v}"))
}

#[track_caller]
fn assert_latency(s: &Value) {
    assert_eq!(s["unit"], "ns", "{s}");
    let q: Vec<f64> = ["p50", "p90", "p99", "p999", "max"]
        .iter()
        .map(|f| num(s, f))
        .collect();
    assert!(q[0] > 0.0, "p50 must be positive: {s}");
    assert!(
        q.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {s}"
    );
}

#[test]
fn bench_startup_quick_json() {
    // In a debug build this takes some 20-30 s on a 2-core machine.
    let report = bench_json(&["bench", "startup", "--quick", "--json"]);
    assert_eq!(report["bench"], "startup");
    assert!(num(&report["machine"], "cores") >= 1.0);
    let names = [
        "cold",
        "cold-2threads",
        "fresh-rate",
        "warm",
        "cold-1mib",
        "cold-1mib-touched",
        "wasmtime-default",
        "wasmtime-tuned",
    ];
    for name in names {
        let s = series(&report, name);
        assert!(num(s, "samples") > 0.0, "no samples in {s}");
        if name != "fresh-rate" {
            assert_latency(s);
        }
    }
    let cold = series(&report, "cold");
    assert_eq!(cold["baseline"], "wasmtime-tuned");
    assert!(num(cold, "ratio") > 0.0, "{cold}");
    let rate = series(&report, "fresh-rate");
    assert_eq!(rate["unit"], "ops/s");
    assert!(num(rate, "value") > 0.0, "{rate}");
    // Every baseline a series names is itself in the report.
    for s in report["series"].as_array().unwrap() {
        if let Some(base) = s["baseline"].as_str() {
            series(&report, base);
        }
    }
}

#[test]
fn bench_density_quick_json() {
    let report = bench_json(&["bench", "density", "--quick", "--json", "--target", "2000"]);
    assert_eq!(report["bench"], "density");
    assert!(num(&report["machine"], "cores") >= 1.0);
    let live = series(&report, "live-sandboxes");
    assert_eq!(live["unit"], "count");
    let n = num(live, "value");
    assert!(n > 0.0 && n <= 2000.0, "{live}");
    assert!(num(live, "samples") > 0.0);
    let rss = series(&report, "rss-per-sandbox");
    assert_eq!(rss["unit"], "bytes");
    assert!(num(rss, "value") > 0.0, "{rss}");
    assert!(num(rss, "samples") > 0.0);
}

#[test]
fn bench_control_quick_json() {
    let report = bench_json(&["bench", "control", "--quick", "--json"]);
    assert_eq!(report["bench"], "control");
    for name in ["redb-floor", "commit-1client", "failover"] {
        let s = series(&report, name);
        assert_eq!(s["unit"], "ns", "{name}");
        assert!(num(s, "samples") > 0.0, "{name}");
        assert!(
            num(s, "p50") > 0.0 && num(s, "p50") <= num(s, "p99"),
            "{name}: {s}"
        );
    }
    assert_eq!(series(&report, "commit-1client")["baseline"], "redb-floor");
    let writes = series(&report, "writes-64clients");
    assert_eq!(writes["unit"], "ops/s");
    assert!(num(writes, "value") > 0.0, "{writes}");
}

#[test]
fn bench_scheduler_quick_json() {
    let report = bench_json(&["bench", "scheduler", "--quick", "--json"]);
    assert_eq!(report["bench"], "scheduler");
    assert!(num(&report["machine"], "cores") >= 1.0);
    assert!(num(&report["config"], "sandboxes") > 0.0);
    for name in ["placements-rate", "naive-placements-rate"] {
        let s = series(&report, name);
        assert_eq!(s["unit"], "ops/s", "{name}");
        assert!(num(s, "value") > 0.0, "{s}");
        assert!(num(s, "samples") > 0.0, "{s}");
        assert!(s.get("p50").is_none(), "{s}");
    }
    let rate = series(&report, "placements-rate");
    assert_eq!(rate["baseline"], "naive-placements-rate");
    assert!(num(rate, "ratio") > 0.0, "{rate}");
    assert!(series(&report, "naive-placements-rate")["baseline"].is_null());
    let replan = series(&report, "replan-after-node-failure");
    assert!(num(replan, "samples") > 0.0, "{replan}");
    assert_latency(replan);
}

#[test]
fn bench_gateway_quick_json() {
    // About 14 s: three servers, two 2.25 s phases each.
    let report = bench_json(&["bench", "gateway", "--quick", "--json"]);
    assert_eq!(report["bench"], "gateway");
    assert!(num(&report["machine"], "cores") >= 1.0);
    assert!(num(&report["config"], "connections") >= 1.0);
    for target in ["hyper-floor", "gateway-cold", "gateway-warm"] {
        let rps = series(&report, &format!("{target}-rps"));
        assert_eq!(rps["unit"], "ops/s", "{rps}");
        assert!(num(rps, "value") > 0.0, "{rps}");
        assert!(num(rps, "samples") > 0.0, "{rps}");
        assert!(rps.get("p50").is_none(), "{rps}");
        let latency = series(&report, &format!("{target}-latency"));
        assert!(num(latency, "samples") > 0.0, "{latency}");
        assert_latency(latency);
        if target == "hyper-floor" {
            assert!(rps["baseline"].is_null(), "{rps}");
            assert!(latency["baseline"].is_null(), "{latency}");
        } else {
            assert_eq!(rps["baseline"], "hyper-floor-rps");
            assert_eq!(latency["baseline"], "hyper-floor-latency");
            assert!(num(rps, "ratio") > 0.0, "{rps}");
            assert!(num(latency, "ratio") > 0.0, "{latency}");
        }
    }
    let notes = report["notes"].as_array().expect("notes");
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.starts_with("goal gateway-cold-rps"))),
        "{report}"
    );
}

#[test]
fn bench_table_output() {
    let out = dwcp(&["bench", "density", "--quick", "--target", "100"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("live-sandboxes"), "{text}");
    assert!(text.contains("rss-per-sandbox"), "{text}");
}

#[test]
fn bench_unknown_names_the_available_ones() {
    let out = dwcp(&["bench", "nope"]);
    assert!(!out.status.success());
    assert_stderr_has(&out, "nope");
    assert_stderr_has(&out, "startup");
    assert_stderr_has(&out, "density");
    assert_stderr_has(&out, "scheduler");
    assert_stderr_has(&out, "gateway");
    assert_stderr_has(&out, "rollout");
    assert!(out.stdout.is_empty());
}

#[test]
fn run_unimplemented_tiers_say_not_supported() {
    let out = dwcp(&["run", &example("hello.wat"), "--tier", "ebpf"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "not supported");
    assert_stderr_has(&out, "ebpf");
    let out = dwcp(&["run", &example("hello.wat"), "--tier", "wasm"]);
    assert_code(&out, 0);
}

/// A microVM program built by scripts/build-examples.sh.
fn microvm_program(name: &str) -> String {
    built(&format!("microvm/{name}"))
}

#[test]
fn run_microvm_runs_a_static_linux_program_with_args_env_and_stdin() {
    let out = dwcp(&["run", "--tier", "microvm", &microvm_program("hello.glibc")]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "hello from a microVM\n");
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), "piped\n").unwrap();
    let out = dwcp(&[
        "run",
        "--tier",
        "microvm",
        &microvm_program("echo.musl"),
        "--stdin",
        &input.path().display().to_string(),
        "--",
        "x",
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "piped\narg 1: x\n");
    let out = dwcp(&[
        "run",
        "--tier",
        "microvm",
        "--timeout",
        "200ms",
        &microvm_program("loop.musl"),
    ]);
    assert_code(&out, 124);
    assert_stderr_has(&out, "timed out");
}

/// Without /dev/kvm (hidden here by an empty /dev in a private mount
/// namespace: the tests run as root, as CI does) the tier says so.
#[test]
fn run_microvm_without_kvm_says_not_supported_here() {
    let script = format!(
        "mount -t tmpfs none /dev && exec {} run --tier microvm {}",
        env!("CARGO_BIN_EXE_dwcp"),
        microvm_program("hello.musl")
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) is needed to hide /dev/kvm");
    assert_code(&out, 125);
    assert_stderr_has(&out, "not supported here: cannot open /dev/kvm");
}

#[test]
fn run_microvm_refuses_what_is_not_a_static_linux_program() {
    let out = dwcp(&["run", &example("hello.wat"), "--tier", "microvm"]);
    assert_code(&out, 125);
    // Where KVM is missing the tier says so; elsewhere the file is refused.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a static x86-64 Linux executable")
            || stderr.contains("not supported here"),
        "{stderr}"
    );
}

/// The C program that reads and writes files (built by scripts/build-examples.sh).
fn files_wasm() -> String {
    built("files.wasm")
}

/// A file under examples/build/ (made by scripts/build-examples.sh).
fn built(rel: &str) -> String {
    let path = examples_dir().join("build").join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/build-examples.sh` first",
        path.display()
    );
    path.display().to_string()
}

#[test]
fn run_dir_grants_only_what_is_granted() {
    let host = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("todo.txt"), "secret plan").unwrap();
    std::fs::write(outside.path().join("private.txt"), "not yours").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("private.txt"),
        host.path().join("link.txt"),
    )
    .unwrap();
    let ro = format!("{}::/data", host.path().display());
    let files = files_wasm();

    let out = dwcp(&["run", &files, "--dir", &ro, "--", "cat", "/data/todo.txt"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "secret plan");

    // No grant, no file.
    let out = dwcp(&["run", &files, "--", "cat", "/data/todo.txt"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "cannot open");

    // Escapes through `..` and through a symbolic link are refused.
    let escape = format!("/data/../{}/private.txt", outside.path().display());
    let out = dwcp(&["run", &files, "--dir", &ro, "--", "cat", &escape]);
    assert_code(&out, 1);
    let out = dwcp(&["run", &files, "--dir", &ro, "--", "cat", "/data/link.txt"]);
    assert_code(&out, 1);
    assert!(!stdout(&out).contains("not yours"));

    // A read-only grant refuses writes; a read-write one allows them.
    let out = dwcp(&[
        "run",
        &files,
        "--dir",
        &ro,
        "--",
        "write",
        "/data/new.txt",
        "hi",
    ]);
    assert_code(&out, 1);
    assert!(!host.path().join("new.txt").exists());
    let rw = format!("{}::/data", host.path().display());
    let out = dwcp(&[
        "run",
        &files,
        "--dir-rw",
        &rw,
        "--",
        "write",
        "/data/new.txt",
        "hi",
    ]);
    assert_code(&out, 0);
    assert_eq!(
        std::fs::read_to_string(host.path().join("new.txt")).unwrap(),
        "hi"
    );

    // Opening files without end hits the sandbox's cap, not the host's.
    let out = dwcp(&["run", &files, "--dir", &ro, "--", "hoard", "/data/todo.txt"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "resource limit");

    // A grant of a directory that does not exist is a clear error.
    let missing = format!("{}/nope::/data", host.path().display());
    let out = dwcp(&["run", &files, "--dir", &missing, "--", "cat", "/data/x"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "cannot grant directory");
    let out = dwcp(&["run", &files, "--dir", "::/data", "--", "cat", "/data/x"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "HOST::GUEST");
}

// ------------------------------------------------------------- dwcp up --topology

/// A small topology in the file format, with `region` lines as given.
fn topology(regions: &str) -> String {
    format!(
        "country = [{{ name = \"us\", continent = \"north-america\" }}, {{ name = \"ie\", continent = \"europe\" }}]\n\
         metro = [{{ name = \"ashburn\", country = \"us\" }}, {{ name = \"dublin\", country = \"ie\" }}]\n\
         region = [\n{regions}]\n[global]\nvoters = 1\n"
    )
}

#[test]
fn up_refuses_a_bad_topology_before_doing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = "  { name = \"us-east\", metro = \"ashburn\", lat = 38.9, lon = -77.4, nodes = [\"a1\"] },\n  { name = \"eu-west\", metro = \"dublin\", lat = 53.3, lon = -6.3, nodes = [\"d1\"] },\n";
    let cases = [
        // The same region twice: the second named.
        (
            topology(&format!(
                "{good}  {{ name = \"us-east\", metro = \"ashburn\", lat = 38.9, lon = -77.4, nodes = [\"a2\"] }},\n"
            )),
            "us-east",
        ),
        // A region under a metro nobody declared.
        (
            topology(
                "  { name = \"us-east\", metro = \"nowhere\", lat = 38.9, lon = -77.4, nodes = [\"a1\"] },\n",
            ),
            "nowhere",
        ),
        // An RTT faster than light in fibre allows for Ashburn-Dublin.
        (
            format!(
                "{}[[rtt]]\na = \"us-east\"\nb = \"eu-west\"\nms = 10.0\n",
                topology(good)
            ),
            "floor",
        ),
        // More global voters than regions.
        (topology(good).replace("voters = 1", "voters = 3"), "voters"),
    ];
    for (i, (text, named)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = dwcp(&[
            "up",
            "--topology",
            file.to_str().unwrap(),
            "--region",
            "us-east",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert_code(&out, 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--topology") && err.contains(named),
            "case {i}: {err}"
        );
        assert!(!data.exists(), "case {i}: nothing is made");
    }
    // A good topology that does not name this node's region.
    let file = dir.path().join("good.toml");
    std::fs::write(&file, topology(good)).unwrap();
    let out = dwcp(&[
        "up",
        "--topology",
        file.to_str().unwrap(),
        "--region",
        "local",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--region local") && err.contains("us-east, eu-west"),
        "{err}"
    );
    assert!(!data.exists());
    // Where the node sits: --node is required, must be in the file and in
    // --region; only a global voter (the first node of a voter region —
    // here a1 of us-east, the one voter) founds the global tier, and a new
    // node needs the global tier's peer port.
    let file = file.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&[], "--node: required"),
        (&["--node", "zz"], "--node zz: the topology"),
        (
            &["--node", "d1", "--region", "us-east"],
            "node d1 is in region eu-west",
        ),
        (&["--node", "a1"], "--global-listen: required"),
        (
            &["--node", "d1", "--global-listen", "127.0.0.1:7072"],
            "node d1 is not one of the global tier's voters (a1)",
        ),
    ];
    for (extra, said) in cases {
        let mut args = vec![
            "up",
            "--topology",
            file,
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = dwcp(&args);
        assert_code(&out, 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{extra:?}: {err}");
        assert!(!data.exists(), "{extra:?}: nothing is made");
    }
}

// ------------------------------------------------------------ dwcp bench nab

/// A NAB-shaped directory: `synthetic/wave.csv` (a daily wave sampled every
/// 5 minutes, a spike at point 300, labelled) and `synthetic/flat.csv`
/// (no window).
fn tiny_nab(dir: &Path) {
    let data = dir.join("data/synthetic");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(dir.join("labels")).unwrap();
    let stamp = |i: usize| {
        let minutes = i * 5;
        format!(
            "2020-01-{:02} {:02}:{:02}:00",
            1 + minutes / 1440,
            minutes / 60 % 24,
            minutes % 60
        )
    };
    let mut wave = String::from("timestamp,value\n");
    let mut flat = String::from("timestamp,value\n");
    for i in 0..400 {
        let v = 10.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin();
        let v = if i == 300 { v + 100.0 } else { v };
        wave.push_str(&format!("{},{v}\n", stamp(i)));
        flat.push_str(&format!("{},5\n", stamp(i)));
    }
    std::fs::write(data.join("wave.csv"), wave).unwrap();
    std::fs::write(data.join("flat.csv"), flat).unwrap();
    let labels = format!(
        "{{\"synthetic/wave.csv\": [[\"{}.000000\", \"{}.000000\"]], \"synthetic/flat.csv\": []}}",
        stamp(290),
        stamp(320)
    );
    std::fs::write(dir.join("labels/combined_windows.json"), labels).unwrap();
}

#[test]
fn bench_nab_runs_every_series_and_writes_nab_results() {
    let dir = tempfile::tempdir().unwrap();
    tiny_nab(dir.path());
    let out = dir.path().join("out");
    let nab = dir.path().display().to_string();
    let report = bench_json(&[
        "bench",
        "nab",
        "--nab",
        &nab,
        "--out",
        &out.display().to_string(),
        "--json",
    ]);
    assert_eq!(report["bench"], "nab");
    assert_eq!(report["config"]["series"], 2);
    for profile in ["standard", "reward_low_FP_rate", "reward_low_FN_rate"] {
        let s = series(&report, profile);
        assert_eq!(s["unit"], "score");
        assert!(num(s, "value") <= 100.0, "{s}");
        series(&report, &format!("windowed-gaussian-{profile}"));
    }
    // The spike is found at its own point, early in its window: a high score.
    assert!(num(series(&report, "standard"), "value") > 50.0, "{report}");
    assert!(num(series(&report, "points-per-s"), "value") > 0.0);
    assert!(num(series(&report, "memory-per-series"), "value") > 0.0);
    assert_latency(series(&report, "observe"));
    let results = std::fs::read_to_string(out.join("dwcp/synthetic/dwcp_wave.csv")).unwrap();
    let rows: Vec<&str> = results.lines().collect();
    assert_eq!(rows[0], "timestamp,value,anomaly_score,label");
    assert_eq!(rows.len(), 401);
    assert!(
        rows[291].ends_with(",1") && rows[290].ends_with(",0"),
        "{}",
        rows[291]
    );
    assert!(out.join("dwcp/synthetic/dwcp_flat.csv").is_file());
}

#[test]
fn bench_nab_refuses_a_directory_that_is_not_nab() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").display().to_string();
    let out = dwcp(&["bench", "nab", "--nab", &missing]);
    assert_code(&out, 1);
    assert_stderr_has(&out, &format!("{missing} is not a NAB directory (--nab)"));
    assert!(out.stdout.is_empty());
}

#[test]
fn bench_nab_names_the_file_line_and_field_of_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    tiny_nab(dir.path());
    let nab = dir.path().display().to_string();
    let wave = dir.path().join("data/synthetic/wave.csv");
    let text = std::fs::read_to_string(&wave).unwrap();
    std::fs::write(&wave, text.replacen(",0\n", ",zero\n", 1)).unwrap();
    let out = dwcp(&["bench", "nab", "--nab", &nab]);
    assert_code(&out, 1);
    assert_stderr_has(&out, &format!("in {}", wave.display()));
    assert_stderr_has(&out, "line 2: field `value`: `zero` is not a finite number");

    std::fs::write(&wave, text).unwrap();
    std::fs::write(
        dir.path().join("labels/combined_windows.json"),
        "{\"synthetic/wave.csv\": [[\"soon\", \"later\"]]}",
    )
    .unwrap();
    let out = dwcp(&["bench", "nab", "--nab", &nab]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        "field `synthetic/wave.csv[0]`: `soon` is not a timestamp",
    );
}

#[test]
fn bench_forecast_beats_seasonal_naive_on_the_synthetic_series() {
    let dir = tempfile::tempdir().unwrap();
    tiny_nab(dir.path());
    let nab = dir.path().display().to_string();
    // The tiny corpus has no metric-like series: only the synthetic ones run.
    let report = bench_json(&["bench", "forecast", "--nab", &nab, "--json"]);
    assert_eq!(report["bench"], "forecast");
    for name in ["request_rate", "live_sandboxes", "memory_bytes"] {
        let mase = num(series(&report, &format!("mase/synthetic/{name}")), "value");
        assert!(mase < 1.0, "{name}: {mase}");
        let mae = series(&report, &format!("mae/synthetic/{name}"));
        assert_eq!(
            mae["baseline"],
            format!("seasonal-naive-mae/synthetic/{name}")
        );
        let coverage = num(
            series(&report, &format!("coverage/synthetic/{name}")),
            "value",
        );
        assert!((0.8..=0.97).contains(&coverage), "{name}: {coverage}");
    }
    assert_eq!(num(series(&report, "series-below-mase-1"), "value"), 3.0);
}
