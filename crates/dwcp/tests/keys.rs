//! Keys at rest on a real `dwcp up`: a first start makes a key file
//! beside the data directory and no key is left in the clear; a restart
//! without the key, or with another, stops with an error naming
//! --key-file; `--rotate-keys` seals everything under a new key and the
//! node serves on with its data.

mod common;

use std::path::Path;
use std::process::Command;

use common::Cluster;

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs `dwcp up` on node 1's directory and addresses with `extra`, which
/// must fail at start; returns what it printed on stderr.
fn start_fails(c: &Cluster, extra: &[&str]) -> String {
    let node = &c.nodes[&1];
    let out = Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .arg("up")
        .arg("--data-dir")
        .arg(&node.dir)
        .args([
            "--listen",
            &node.peer,
            "--api",
            &node.api,
            "--gateway",
            &node.gateway,
        ])
        .args(extra)
        .env_remove("DWCP_KEY_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "dwcp up started: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn keys_are_sealed_at_rest_unlocked_by_the_key_file_and_rotated() {
    let mut c = Cluster::found(64);
    c.wait_api(1);
    c.put(1, "kept", "across rotations");
    let dir = c.nodes[&1].dir.clone();
    let key_file = dir.with_extension("key");
    assert_eq!(mode(&key_file), 0o600);
    for file in ["ca-key.pem", "node-key.pem", "secret"] {
        let tls = dir.join("tls");
        assert!(!tls.join(file).exists(), "tls/{file} is in the clear");
        assert!(
            tls.join(format!("{file}.sealed")).exists(),
            "tls/{file}.sealed"
        );
        assert_eq!(mode(&tls.join(format!("{file}.sealed"))), 0o600);
    }
    let key_pem_marker = "PRIVATE KEY";
    for entry in std::fs::read_dir(dir.join("tls")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(key_pem_marker),
            "a private key in the clear in tls/"
        );
    }
    c.kill(1);

    // Another key: refused, naming the flag; no key at all: the same.
    let other = dir.with_extension("other-key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    let e = start_fails(&c, &["--key-file", other.to_str().unwrap()]);
    assert!(e.contains("--key-file"), "{e}");
    let hidden = dir.with_extension("key-away");
    std::fs::rename(&key_file, &hidden).unwrap();
    let e = start_fails(&c, &[]);
    assert!(e.contains("sealed") && e.contains("--key-file"), "{e}");
    assert!(
        !key_file.exists(),
        "a new key file was made over sealed keys"
    );
    std::fs::rename(&hidden, &key_file).unwrap();

    // A rotation: a new key, the same data.
    let before = std::fs::read_to_string(&key_file).unwrap();
    c.restart_with(1, &["--rotate-keys"]);
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after, "the key file did not change");
    assert!(!dir.with_extension("key.old").exists());
    assert_eq!(c.get(1, "kept").as_deref(), Some("across rotations"));
    c.kill(1);
    c.restart(1);
    assert_eq!(c.get(1, "kept").as_deref(), Some("across rotations"));
    // The old key opens nothing now.
    std::fs::write(&other, before).unwrap();
    c.kill(1);
    let e = start_fails(&c, &["--key-file", other.to_str().unwrap()]);
    assert!(e.contains("--key-file"), "{e}");
}

/// Runs `dwcp ARGS` with the admin token; its status, stdout and stderr.
fn dwcp(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args(args)
        .env("DWCP_TOKEN", &c.admin)
        .env_remove("DWCP_API")
        .env_remove("DWCP_CA")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_api_over_tls_is_trusted_through_the_cluster_ca_only() {
    let c = Cluster::found_with(65, &["--api-tls"]);
    let node = &c.nodes[&1];
    let https = format!("https://{}", node.api);
    let ca = node.dir.join("tls/ca.pem");
    let ca = ca.to_str().unwrap();
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let (ok, out, err) = dwcp(&c, &["cluster", "status", "--api", &https, "--ca-file", ca]);
        if ok {
            assert!(out.contains("leader"), "{out}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{err}\n{}",
            node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Without the CA: a clear error before any connection.
    let (ok, _, err) = dwcp(&c, &["cluster", "status", "--api", &https]);
    assert!(!ok && err.contains("--ca-file"), "{err}");
    // Another CA: the handshake fails.
    let stranger = c.root.path().join("other-ca.pem");
    let other = cluster::tls::ClusterCa::create("other").unwrap();
    std::fs::write(&stranger, other.cert_pem()).unwrap();
    let (ok, _, err) = dwcp(
        &c,
        &[
            "cluster",
            "status",
            "--api",
            &https,
            "--ca-file",
            stranger.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("TLS"), "{err}");
    // Plain HTTP to the TLS port gets no API answer.
    let plain = common::http(&node.api, "GET", "/api/v1/health", None, None, "text/plain");
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP was served: {plain:?}"
    );
}
