//! A newcomer's path through README.md with the real binary: the quick
//! start's node and example app, `dwcp deploy` (and again, only to change
//! its replicas), `dwcp scale`, `dwcp app show|create`, `dwcp logs`, a
//! rollout under traffic that goes wrong and says so with its exit status,
//! a bad input to each command, and shell completions. Each step asserts
//! what the user reads, not only that it worked.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, get_answer, talker, wait_gateway};

/// A version that traps on every request.
const CRASHER: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;

/// `dwcp ARGS` against node 1: its exit status, stdout and stderr.
fn run(c: &Cluster, args: &[&str]) -> (Option<i32>, String, String) {
    let out = c.cli(1, args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GETs `path` from `gateway` every 20 ms until stopped; the answers'
/// count and how many were 5xx.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Traffic {
    fn start(gateway: &str, path: &str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            let (gateway, path) = (gateway.to_string(), path.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(answer) = get_answer(&gateway, &path) {
                        sent.fetch_add(1, Ordering::Relaxed);
                        if answer.status >= 500 {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // The traffic's pace (about 50 a second), not a wait
                    // for a condition.
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Traffic {
            stop,
            sent,
            failed,
            thread,
        }
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_newcomer_deploys_scales_reads_logs_and_sees_a_bad_rollout_aborted() {
    let (c, gateway) = Cluster::found_serving(147);
    let write = |name: &str, bytes: &[u8]| {
        let path = c.root.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let v1 = write(
        "shop.wat",
        talker("hello from shop-v1", "shop-v1").as_bytes(),
    );

    // Deploy, as README says: the route defaults to /NAME.
    let out = c.cli_ok(&["deploy", &v1, "--name", "shop"]);
    assert!(
        out.starts_with("deployed default/shop version 1 (sha256 ")
            && out.ends_with("stored on 1 node) at /shop, 1 replica in local\n"),
        "{out}"
    );
    wait_gateway(
        &gateway,
        "/shop",
        |s, b| s == 200 && b == "shop-v1\n",
        "shop v1",
    );

    // The same file again, only to change the replicas: no new version.
    let out = c.cli_ok(&["deploy", &v1, "--name", "shop", "--replicas", "2"]);
    assert!(
        out.starts_with("deployed default/shop version 1 (sha256 ")
            && out.ends_with("unchanged: no new version) at /shop, 2 replicas in local\n"),
        "{out}"
    );
    let out = c.cli_ok(&["scale", "shop", "1"]);
    assert_eq!(out, "scaled default/shop version 1: 1 replica in local\n");
    let apps = c.cli_ok(&["apps"]);
    let row = apps.lines().find(|l| l.contains(" shop ")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    // TENANT APP ROUTE VERSIONS DEPLOYED TIER REPLICAS ...
    assert_eq!(cells[3..7], ["1", "1", "wasm", "1"], "{apps}");
    let show = c.cli_ok(&["app", "show", "shop"]);
    assert!(show.starts_with("app default/shop at /shop\n"), "{show}");
    assert!(
        show.contains("deployed: version 1, 1 replica in local"),
        "{show}"
    );
    assert!(show.contains("versions: 1\n"), "{show}");

    // `app create` defaults its route as deploy does.
    assert_eq!(
        c.cli_ok(&["app", "create", "blog"]),
        "created app default/blog at /blog\n"
    );

    // Logs: what the guest wrote to stderr, with the answer's request id.
    let answer = get_answer(&gateway, "/shop").unwrap();
    let id = answer.header("x-request-id").unwrap().to_string();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let logs = c.cli_ok(&["logs", "shop"]);
        if logs
            .lines()
            .any(|l| l.ends_with(&format!(" v1 {id} hello from shop-v1")))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no log line of {id}:\n{logs}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // A broken version rolled out under traffic: aborted, and the exit
    // status says so to a script.
    let v2 = write("broken.wat", CRASHER.as_bytes());
    let out = c.cli_ok(&["deploy", &v2, "--name", "shop", "--version-only"]);
    assert_eq!(
        out,
        "added version 2 of default/shop (not deployed); roll it out with: dwcp rollout start shop --to 2 --tenant default\n"
    );
    let traffic = Traffic::start(&gateway, "/shop");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, t) = c.call(1, "GET", "/api/v1/tenants/default/apps/shop/traffic", None);
        assert_eq!(status, 200, "{t}");
        if t["over_ms"].as_u64().unwrap_or(0) >= 10_000 {
            break;
        }
        assert!(Instant::now() < deadline, "no traffic measured: {t}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (code, stdout, stderr) = run(
        &c,
        &[
            "rollout",
            "start",
            "shop",
            "--to",
            "2",
            "--wait",
            "--timeout",
            "5m",
        ],
    );
    let (sent, failed) = traffic.stop();
    assert_eq!(code, Some(4), "{stdout}\n{stderr}");
    assert!(stderr.starts_with("plan: "), "{stderr}");
    assert!(stdout.contains("state: aborted: "), "{stdout}");
    assert!(sent > 0 && failed < sent, "{failed} of {sent} failed");
    let (code, stdout, _) = run(&c, &["rollout", "status", "shop"]);
    assert_eq!(code, Some(4), "{stdout}");
    wait_gateway(
        &gateway,
        "/shop",
        |s, b| s == 200 && b == "shop-v1\n",
        "shop v1 after the abort",
    );
    // The trap is in the app's log, not in the client's 500.
    let logs = c.cli_ok(&["logs", "shop", "--version", "2"]);
    assert!(logs.contains("unreachable"), "{logs}");

    // A bad input per command: each names what is wrong.
    let text = write("notes.txt", b"hello world\n");
    let err = c.cli_err(&["deploy", &text, "--name", "shop"]);
    assert_eq!(
        err,
        format!(
            "error: {text}: it is neither a WebAssembly module (which starts with the bytes 00 61 73 6d) nor WebAssembly text (which starts with `(module`): it starts with `hello world\\n`; nothing was uploaded\n"
        )
    );
    let blob = write("data.bin", b"\x89PNG\r\n\x1a\n\0\0");
    let err = c.cli_err(&["deploy", &blob, "--name", "shop"]);
    assert!(
        err.contains("data.bin: it is not a WebAssembly module: a module starts with the bytes 00 61 73 6d (`\\0asm`), this starts with 89 50 4e 47 0d 0a 1a 0a"),
        "{err}"
    );
    // Text that starts like WAT is parsed by the node, whose reason is kept.
    let wat = write("half.wat", b"(module (func");
    let err = c.cli_err(&["deploy", &wat, "--name", "shop"]);
    assert!(
        err.starts_with(&format!("error: {wat} was refused: the upload (13 bytes) is not a WebAssembly module, or a static x86-64 Linux program for the microvm tier, that this node can run: invalid module: ")),
        "{err}"
    );
    assert!(!err.contains("is not allowed"), "{err}");
    let err = c.cli_err(&["deploy", &v1, "--name", "shop", "--memory", "lots"]);
    assert!(err.starts_with("error: --memory: "), "{err}");
    let err = c.cli_err(&["scale", "shop", "lots"]);
    assert!(
        err.starts_with("error: N `lots` is not a number of sandboxes"),
        "{err}"
    );
    let err = c.cli_err(&["scale", "blog", "2"]);
    assert!(
        err.contains("app default/blog has no deployed version to scale"),
        "{err}"
    );
    let err = c.cli_err(&["app", "show", "nope"]);
    assert!(err.contains("app `default/nope` does not exist"), "{err}");
    let err = c.cli_err(&["rollout", "start", "shop", "--to", "9"]);
    assert!(err.contains('9'), "{err}");
    let err = c.cli_err(&["cluster", "remove", "7"]);
    assert!(
        err.starts_with("error: node 7 is not a member of the cluster"),
        "{err}"
    );
    assert!(!err.contains("is not allowed"), "{err}");
    let err = c.cli_err(&[
        "slo",
        "put",
        "shop",
        "availability",
        "--availability",
        "--target",
        "2",
    ]);
    assert!(err.contains("target"), "{err}");

    // Completions for the shells clap_complete knows; another is refused.
    let bash = c.cli_ok(&["completions", "bash"]);
    assert!(bash.contains("_dwcp()") && bash.contains("scale"), "{bash}");
    let (code, _, stderr) = run(&c, &["completions", "tcsh"]);
    assert_eq!(code, Some(2), "{stderr}");
}

/// `dwcp up --data-dir n1`, a bare name relative to the current directory:
/// its key file `n1.key` is made beside it (once refused with "No such file
/// or directory", syncing the empty path as its directory).
#[test]
fn a_node_on_a_bare_data_dir_name_starts() {
    let root = tempfile::tempdir().unwrap();
    let ip = "127.0.148.1";
    let mut child = Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args([
            "up",
            "--data-dir",
            "n1",
            "--listen",
            &format!("{ip}:7071"),
            "--api",
            &format!("{ip}:7070"),
            "--gateway",
            &format!("{ip}:8080"),
        ])
        .current_dir(root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        // The tokens come first on stdout; reading stops when the node is
        // killed below.
        let mut text = String::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("join token:") {
                break;
            }
        }
        text
    });
    let deadline = Instant::now() + DEADLINE;
    while !reader.is_finished() && Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("dwcp up exited with {status}: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = reader.join().unwrap();
    assert!(text.contains("admin token: dwcp-admin."), "{text}");
    assert!(root.path().join("n1.key").is_file());
    assert!(root.path().join("n1").is_dir());
}
