//! Backups and restores through real processes: a populated 3-node
//! cluster backed up with `dwcp backup`, restored with `dwcp restore` into
//! a new cluster that serves the same state, apps and tokens; damaged,
//! truncated, foreign and wrong-key files refused, naming why, leaving
//! nothing behind; scheduled backups with retention.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, wait_gateway};

fn dwcp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args(args)
        .env_remove("DWCP_BACKUP_KEY_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the dwcp binary")
}

/// `dwcp ARGS` expected to fail; its stderr.
fn refused(args: &[&str]) -> String {
    let out = dwcp(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "dwcp {args:?} succeeded: {stderr}");
    stderr
}

fn key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = dwcp(&["backup", "key", "--out", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_populated_cluster_round_trips_through_a_backup_and_bad_files_are_refused() {
    let mut c = Cluster::with_voters(171, 3);
    c.wait_api(1);
    // Registers, an operator token, an app with a version beside the example.
    for i in 0..50 {
        c.put(
            1 + (i % 3) as u8,
            &format!("round-trip-{i}"),
            &format!("value {i}"),
        );
    }
    let token = c.cli_ok(&["token", "create", "ci", "--role", "operator"]);
    let operator = token
        .split_whitespace()
        .find(|w| w.starts_with("dwcp-"))
        .unwrap_or_else(|| panic!("no token in {token}"))
        .to_string();
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wagi/hello.wat");
    c.cli_ok(&["deploy", hello, "--name", "greeter", "--route", "/greeter"]);
    let before = c.revision();

    let tmp = tempfile::tempdir().unwrap();
    let k = key(tmp.path(), "backup.key");
    let file = tmp.path().join("cluster.dwcpbak");
    let out = c.cli(1, &["backup", "--out", s(&file), "--key-file", s(&k)]);
    let (taken, said) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{said}");
    assert!(taken.contains("at revision"), "{taken}");
    // Piped, the progress bar is not drawn: no escape code anywhere.
    assert!(
        !taken.contains('\x1b') && !said.contains('\x1b'),
        "{taken:?} {said:?}"
    );
    // A backup never overwrites.
    let again = c.cli_err(&["backup", "--out", s(&file), "--key-file", s(&k)]);
    assert!(again.contains("exists already"), "{again}");
    let inspected = dwcp(&["backup", "inspect", s(&file), "--key-file", s(&k)]);
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(
        inspected.status.success() && text.contains("intact"),
        "{text}"
    );

    // Refusals, each naming why, each leaving no directory behind.
    let target = tmp.path().join("refused");
    let restore = |file: &Path, key: &Path| {
        let e = refused(&[
            "restore",
            s(file),
            "--data-dir",
            s(&target),
            "--key-file",
            s(key),
            "--listen",
            "127.0.171.9:7071",
        ]);
        assert!(
            !target.exists(),
            "a refused restore left {}",
            target.display()
        );
        e
    };
    let other = key(tmp.path(), "other.key");
    let e = restore(&file, &other);
    assert!(e.contains("sealed under another key"), "{e}");
    let bytes = std::fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    let damaged = tmp.path().join("damaged.dwcpbak");
    std::fs::write(&damaged, &flipped).unwrap();
    let e = restore(&damaged, &k);
    assert!(
        e.contains("damaged") && e.contains("fails authentication"),
        "{e}"
    );
    let cut = tmp.path().join("cut.dwcpbak");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let e = restore(&cut, &k);
    assert!(e.contains("truncated"), "{e}");
    let foreign = tmp.path().join("foreign.dwcpbak");
    std::fs::write(&foreign, b"PK\x03\x04 not a backup at all").unwrap();
    let e = restore(&foreign, &k);
    assert!(e.contains("not a DWCP backup"), "{e}");
    let loose = tmp.path().join("loose.key");
    std::fs::copy(&k, &loose).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let e = restore(&file, &loose);
    assert!(e.contains("others may read it"), "{e}");

    // The restore founds a new cluster with the backup's state.
    let dir = c.dir_of(9);
    let out = dwcp(&[
        "restore",
        s(&file),
        "--data-dir",
        s(&dir),
        "--key-file",
        s(&k),
        "--listen",
        "127.0.171.9:7071",
        "--api",
        "127.0.171.9:7070",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("join token: dwcp-join."),
        "{stderr}"
    );
    // The old cluster is gone: only the restored node runs.
    for n in [1, 2, 3] {
        c.kill(n);
    }
    c.start_prepared(9, &[]);
    // The old admin token works on the restored cluster.
    for i in 0..50 {
        assert_eq!(
            c.get(9, &format!("round-trip-{i}")).as_deref(),
            Some(format!("value {i}").as_str())
        );
    }
    let (status, apps) = c.call(9, "GET", "/api/v1/apps", None);
    assert_eq!(status, 200);
    let names: Vec<&str> = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"greeter") && names.contains(&"hello"),
        "{apps}"
    );
    let (status, _) = c
        .call_as(9, "GET", "/api/v1/apps", None, Some(&operator))
        .unwrap();
    assert_eq!(status, 200, "the backup's operator token");
    let (status, cluster) = c.call(9, "GET", "/api/v1/cluster", None);
    assert_eq!(status, 200);
    assert_eq!(cluster["members"].as_array().unwrap().len(), 1, "{cluster}");
    let (status, probe) = c.call(9, "GET", "/api/v1/registers/probe", None);
    assert_eq!(status, 200, "{probe}");
    assert!(
        probe["revision"].as_u64().unwrap() > before,
        "the revision goes on"
    );
    let (_, audit) = c.call(9, "GET", "/api/v1/audit", None);
    let last = audit["entries"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["what"]
            .as_str()
            .unwrap()
            .contains("restore the backup"),
        "{last}"
    );
    // The artifacts came along: the restored node serves the apps.
    let gateway = c.nodes[&9].gateway.clone();
    wait_gateway(
        &gateway,
        "/greeter",
        |status, body| status == 200 && body == "Hello from DWCP!\n",
        "the restored app",
    );
}

#[test]
fn scheduled_backups_are_taken_recorded_and_pruned() {
    let tmp = tempfile::tempdir().unwrap();
    let k = key(tmp.path(), "backup.key");
    let dir = tmp.path().join("backups");
    let mut c = Cluster::found_with(
        172,
        &[
            "--backup-dir",
            s(&dir),
            "--backup-every",
            "1s",
            "--backup-keep",
            "2",
            "--backup-key-file",
            s(&k),
        ],
    );
    c.wait_api(1);
    // Three backups taken (the record's time changes each time)…
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while seen.len() < 3 {
        let (status, listed) = c.call(1, "GET", "/api/v1/backups", None);
        assert_eq!(status, 200);
        if let Some(b) = listed["backups"].as_array().and_then(|a| a.first()) {
            assert_eq!(b["node"], "node-1");
            assert_eq!(b["tier"], "cluster");
            assert_eq!(b["every_ms"], 1000);
            let taken = b["taken_unix_ms"].as_u64().unwrap();
            if seen.last() != Some(&taken) {
                seen.push(taken);
                assert!(dir.join(b["file"].as_str().unwrap()).exists(), "{b}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "backups seen: {seen:?}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // …and only the newest two kept (between a backup and its pruning
    // there are three; a write in progress is a hidden partial file).
    let backups = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".dwcpbak") && !n.starts_with('.'))
            .collect()
    };
    let deadline = Instant::now() + DEADLINE;
    while backups().len() != 2 {
        assert!(Instant::now() < deadline, "{:?}", backups());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each is a whole backup.
    let newest = backups().into_iter().max().unwrap();
    let out = dwcp(&[
        "backup",
        "inspect",
        s(&dir.join(&newest)),
        "--key-file",
        s(&k),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("intact"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
