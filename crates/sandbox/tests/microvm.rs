//! The microVM tier against real KVM and real programs: the examples of
//! `examples/microvm`, built by `scripts/build-examples.sh` with musl-gcc
//! and gcc -static. Where `/dev/kvm` is missing these tests fail with the
//! engine's "not supported here: ..." message; CI machines have it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sandbox::microvm::tiny_elf;
use sandbox::wagi::{WagiRequest, parse_response};
use sandbox::{
    Artifact, Engine, Invocation, Limits, MicroVmConfig, MicroVmEngine, MicroVmPool,
    MicroVmTemplate, Output, Sandbox, SandboxError, Template,
};

const LIBCS: [&str; 2] = ["musl", "glibc"];

fn engine() -> &'static MicroVmEngine {
    static ENGINE: OnceLock<MicroVmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| match MicroVmEngine::new(MicroVmConfig::default()) {
        Ok(e) => e,
        Err(e) => panic!("these tests need KVM: {e}"),
    })
}

fn program(name: &str, libc: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/build/microvm")
        .join(format!("{name}.{libc}"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `bash scripts/build-examples.sh` first",
            path.display()
        )
    })
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        // Generous: a shared, noisy machine must not turn a pass into a timeout.
        deadline: Duration::from_secs(20),
        output_bytes: 1 << 20,
        ..Limits::default()
    }
}

fn prepare(name: &str, libc: &str, limits: Limits) -> Arc<MicroVmTemplate> {
    engine()
        .prepare(&Artifact::new(program(name, libc)), limits)
        .unwrap_or_else(|e| panic!("{name}.{libc}: {e}"))
}

fn run(
    template: &Arc<MicroVmTemplate>,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Result<Output, SandboxError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut vm = engine().start(template)?;
    vm.invoke(Invocation::Command {
        args: &args,
        env: &env,
        stdin,
        dirs: &[],
    })
}

/// A command with `args` and nothing else granted.
fn command(args: &[String]) -> Invocation<'_> {
    Invocation::Command {
        args,
        env: &[],
        stdin: b"",
        dirs: &[],
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// After a hostile program, the engine still runs a well-behaved one.
fn still_serves() {
    let out = run(&prepare("hello", "musl", limits()), &["hello"], &[], b"").unwrap();
    assert_eq!(text(&out.stdout), "hello from a microVM\n");
}

#[test]
fn hello_runs_unmodified_from_musl_and_glibc() {
    for libc in LIBCS {
        let out = run(&prepare("hello", libc, limits()), &["hello"], &[], b"").unwrap();
        assert_eq!(text(&out.stdout), "hello from a microVM\n", "{libc}");
        assert_eq!(out.exit_code, 0);
    }
}

#[test]
fn echo_gets_its_stdin_and_arguments() {
    for libc in LIBCS {
        let out = run(
            &prepare("echo", libc, limits()),
            &["echo", "one", "two"],
            &[],
            b"piped in\n",
        )
        .unwrap();
        assert_eq!(
            text(&out.stdout),
            "piped in\narg 1: one\narg 2: two\n",
            "{libc}"
        );
    }
}

#[test]
fn a_wagi_app_answers_an_http_request() {
    let req = WagiRequest {
        method: "POST".into(),
        path: "/hi".into(),
        query: "a=1".into(),
        route: "/app".into(),
        host: "example.test".into(),
        headers: vec![],
        body: b"ping".to_vec(),
    };
    let env = req.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for libc in LIBCS {
        let out = run(&prepare("wagi", libc, limits()), &["wagi"], &env, &req.body).unwrap();
        let resp = parse_response(&out.stdout).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers["x-tier"], "microvm");
        assert_eq!(
            text(&resp.body),
            "hello from a microVM app\nmethod=POST path=/hi query=a=1\nbody=ping\n",
            "{libc}"
        );
    }
}

#[test]
fn an_infinite_loop_is_stopped_at_its_deadline() {
    for libc in LIBCS {
        let limits = Limits {
            deadline: Duration::from_millis(200),
            ..limits()
        };
        let err = run(&prepare("loop", libc, limits), &["loop"], &[], b"").unwrap_err();
        assert!(
            matches!(err, SandboxError::Timeout { deadline } if deadline == Duration::from_millis(200)),
            "{libc}: {err}"
        );
    }
    still_serves();
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    for libc in LIBCS {
        let err = run(&prepare("membomb", libc, limits()), &["membomb"], &[], b"").unwrap_err();
        assert_eq!(err.code(), "memory_limit", "{libc}: {err}");
    }
    still_serves();
}

#[test]
fn a_fork_bomb_is_refused() {
    for libc in LIBCS {
        let out = run(
            &prepare("forkbomb", libc, limits()),
            &["forkbomb"],
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(
            text(&out.stdout),
            "fork refused: Function not implemented\n",
            "{libc}"
        );
        assert_eq!(out.exit_code, 3);
    }
}

#[test]
fn every_syscall_number_with_wild_arguments_is_survived() {
    for libc in LIBCS {
        let out = run(
            &prepare("syscalls", libc, limits()),
            &["syscalls"],
            &[],
            b"",
        )
        .unwrap();
        let said = text(&out.stdout);
        assert!(said.starts_with("survived "), "{libc}: {said}");
        assert_eq!(out.exit_code, 0);
    }
    still_serves();
}

#[test]
fn wild_pointers_to_write_and_read_fail_with_efault() {
    for libc in LIBCS {
        let out = run(
            &prepare("wildwrite", libc, limits()),
            &["wildwrite"],
            &[],
            b"some stdin",
        )
        .unwrap();
        assert_eq!(
            text(&out.stdout),
            "19 of 19 calls failed with EFAULT\n",
            "{libc}"
        );
    }
}

#[test]
fn privileged_instructions_trap() {
    for what in [
        "hlt", "cli", "out", "in", "wrmsr", "rdmsr", "cr3", "lgdt", "int80",
    ] {
        let err = run(
            &prepare("privileged", "musl", limits()),
            &["privileged", what],
            &[],
            b"",
        )
        .unwrap_err();
        let SandboxError::Trap { message } = &err else {
            panic!("{what}: expected a trap, got {err}");
        };
        assert!(
            message.contains("general protection fault") || message.contains("invalid opcode"),
            "{what}: {message}"
        );
    }
    still_serves();
}

#[test]
fn writing_the_page_tables_or_gdt_faults() {
    for target in ["pt", "gdt"] {
        let err = run(
            &prepare("pagetables", "glibc", limits()),
            &["pagetables", target],
            &[],
            b"",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("page fault: write") && msg.contains("system area"),
            "{target}: {msg}"
        );
    }
    still_serves();
}

#[test]
fn a_stdout_flood_is_capped() {
    let limits = Limits {
        output_bytes: 64 << 10,
        ..limits()
    };
    for libc in LIBCS {
        let out = run(
            &prepare("flood", libc, limits.clone()),
            &["flood"],
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(out.stdout.len(), 64 << 10, "{libc}");
        assert!(out.truncated);
        assert_eq!(out.exit_code, 0);
    }
}

#[test]
fn a_cold_start_never_sees_an_earlier_requests_memory() {
    for libc in LIBCS {
        let template = prepare("leak", libc, limits());
        // The same VM, twice: its dirtied pages are restored in between.
        let mut vm = engine().start(&template).unwrap();
        let mut once = |secret: &str| {
            let args = vec!["leak".to_string(), secret.to_string()];
            text(&vm.invoke(command(&args)).unwrap().stdout)
        };
        let first = once("request-one-secret");
        let second = once("request-two-secret");
        assert!(!second.contains("request-one"), "{libc}: {second}");
        assert_eq!(first, second, "{libc}: both runs start from the same image");
        // And through a pool.
        let pool = MicroVmPool::new(template.clone(), 1);
        for secret in ["pool-secret-a", "pool-secret-b"] {
            let args = vec!["leak".to_string(), secret.to_string()];
            let out = pool.invoke(command(&args)).unwrap();
            assert!(
                !text(&out.stdout).contains("secret"),
                "{libc}: {}",
                text(&out.stdout)
            );
        }
    }
}

#[test]
fn a_spinning_neighbour_does_not_stop_another_sandbox() {
    let spinner = prepare(
        "loop",
        "musl",
        Limits {
            deadline: Duration::from_secs(3),
            ..limits()
        },
    );
    let thread = std::thread::spawn(move || run(&spinner, &["loop"], &[], b""));
    for _ in 0..5 {
        still_serves();
    }
    let err = thread.join().unwrap().unwrap_err();
    assert_eq!(err.code(), "timeout");
}

#[test]
fn artifacts_that_are_not_static_x86_64_linux_programs_are_refused() {
    let dynamic = std::fs::read("/bin/true").unwrap();
    let err = engine()
        .prepare(&Artifact::new(dynamic), limits())
        .err()
        .unwrap();
    assert!(err.to_string().contains("dynamically linked"), "{err}");
    let err = engine()
        .prepare(&Artifact::new(b"\0asm\x01\0\0\0".to_vec()), limits())
        .err()
        .unwrap();
    assert!(err.to_string().contains("wasm tier"), "{err}");
    // Linked where a 16 MiB VM has no room for it.
    let far = tiny_elf(0x4000_0000, &[0x0f, 0x05]);
    let err = engine()
        .prepare(&Artifact::new(far), limits())
        .err()
        .unwrap();
    assert!(err.to_string().contains("lies outside"), "{err}");
}

#[test]
fn limits_the_tier_cannot_honour_are_refused_by_name() {
    let elf = Artifact::new(tiny_elf(0x40_1000, &[0x0f, 0x05]));
    let bad_memory = Limits {
        memory_bytes: 3 << 20,
        ..limits()
    };
    let err = engine().prepare(&elf, bad_memory).err().unwrap();
    assert!(
        matches!(
            err,
            SandboxError::InvalidLimit {
                field: "memory_bytes",
                ..
            }
        ),
        "{err}"
    );
    let fuel = Limits {
        fuel: Some(10),
        ..limits()
    };
    let err = engine().prepare(&elf, fuel).err().unwrap();
    assert!(
        matches!(err, SandboxError::InvalidLimit { field: "fuel", .. }),
        "{err}"
    );
    let template = engine().prepare(&elf, limits()).unwrap();
    assert_eq!(template.entry("run").unwrap_err().code(), "not_supported");
}
