//! `dwcp certify`'s own commands, without a cluster: the catalog, a
//! tampered report refused by `diff`, waivers naming unknown criteria
//! refused. (`dwcp certify --quick` itself starts three `dwcp up`
//! processes for minutes: it is a command, not a CI test.)

use std::process::{Command, Stdio};

fn dwcp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the dwcp binary")
}

#[test]
fn the_catalog_lists_fifty_criteria_in_six_categories() {
    let out = dwcp(&["certify", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert!(rows.len() >= 50, "{} criteria", rows.len());
    for category in [
        "performance",
        "security",
        "reliability",
        "scalability",
        "operations",
        "compliance",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("{category}."))),
            "{category}"
        );
    }
}

#[test]
fn diff_refuses_a_changed_report_and_waivers_must_name_criteria() {
    let tmp = tempfile::tempdir().unwrap();
    // A report with one criterion, as schema 1 writes it, then changed.
    let report = serde_json::json!({
        "schema": 1, "target": "t", "quick": true, "started_unix_ms": 1, "duration_ms": 2,
        "dwcp_version": "0.1.0", "criteria": [],
        "scores": {"overall": {"criteria": 0, "pass": 0, "warn": 0, "fail": 0, "waived": 0, "score": null}, "categories": {}},
        "sha256": "0".repeat(64),
    });
    let path = tmp.path().join("a.json");
    std::fs::write(&path, report.to_string()).unwrap();
    let p = path.to_str().unwrap();
    let out = dwcp(&["certify", "diff", p, p]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("it was changed"), "{stderr}");

    let waivers = tmp.path().join("waivers.json");
    std::fs::write(
        &waivers,
        r#"[{"criterion": "security.nothing", "by": "ana", "reason": "x", "expires_unix_ms": 1}]"#,
    )
    .unwrap();
    let out = dwcp(&[
        "certify",
        "--api",
        "http://127.0.0.1:9",
        "--token",
        "x",
        "--waivers",
        waivers.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("security.nothing") && stderr.contains("does not exist"),
        "{stderr}"
    );
}
