//! `dwcp chaos` end to end on real processes: the command starts its own
//! scratch cluster of three `dwcp up` children, runs three short
//! experiments (a follower killed, a follower partitioned by the
//! transport's drop rules — this test build has them — and a failing
//! canary), takes each fault back and reports every run as JSON.

use std::process::Command;

use serde_json::Value;

fn dwcp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dwcp"))
}

#[test]
fn list_names_every_experiment_and_says_what_cannot_run_here() {
    let out = dwcp().args(["chaos", "list", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = v["experiments"].as_array().unwrap();
    let here = all
        .iter()
        .filter(|e| e["unsupported"].is_null() && e["fault"]["kind"] != "none")
        .count();
    assert!(here >= 20, "{here} experiments run here");
    let clock = all.iter().find(|e| e["name"] == "clock-jump").unwrap();
    assert!(
        clock["unsupported"]
            .as_str()
            .unwrap()
            .contains("CAP_SYS_TIME")
    );

    // A name that does not exist is refused, naming it and the known ones.
    let out = dwcp()
        .args(["chaos", "run", "kill-everything"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`kill-everything`") && err.contains("kill-leader"),
        "{err}"
    );
    // One that cannot run here says why, before anything starts.
    let out = dwcp().args(["chaos", "run", "slow-disk"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported here"));
}

#[test]
fn three_experiments_run_end_to_end_and_are_taken_back() {
    let out = dwcp()
        .args([
            "chaos",
            "run",
            "kill-follower",
            "partition-follower",
            "bad-canary",
            "--hold",
            "8s",
            "--json",
        ])
        .env_remove("DWCP_API")
        .env_remove("DWCP_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dwcp chaos failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{v}");
    for run in runs {
        let name = run["experiment"].as_str().unwrap();
        // The load ran throughout, and no fault reached past its radius.
        assert!(run["requests"].as_u64().unwrap() > 50, "{run}");
        assert_ne!(run["resolution"], "aborted", "{name}: {run}\n{stderr}");
        // Every fault was taken back: the objective is back at the end.
        assert_ne!(
            run["resolution"], "not_recovered",
            "{name}: {run}\n{stderr}"
        );
        assert!(run["mttr_ms"].is_u64(), "{run}");
    }
    // The follower faults aimed at one node, never the leader's whole
    // cluster; the canary at the app (every node).
    assert_eq!(runs[0]["targets"].as_array().unwrap().len(), 1);
    assert_eq!(runs[1]["targets"].as_array().unwrap().len(), 1);
    assert_eq!(runs[2]["targets"].as_array().unwrap().len(), 3);
    // The rollout controller aborts a failing canary by itself.
    assert!(
        matches!(
            runs[2]["resolution"].as_str(),
            Some("autonomous" | "no_impact")
        ),
        "{}",
        runs[2]
    );
}
