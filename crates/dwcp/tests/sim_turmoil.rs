//! `dwcp sim gossip` and `dwcp sim raft`: both engines run and the report
//! has the series docs/planet.md quotes, with the virtual figures the same
//! for a seed. No wall-clock assertions.

use std::process::Command;

fn sim(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .arg("sim")
        .args(args)
        .arg("--json")
        .output()
        .expect("the dwcp binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

fn series<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["series"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no series {name} in {report}"))
}

#[test]
fn sim_gossip_compares_turmoil_with_the_driver() {
    let args = ["gossip", "--members", "6", "--updates", "2", "--seed", "3"];
    let report = sim(&args);
    assert_eq!(report["bench"], "sim-gossip");
    for engine in ["driver", "turmoil"] {
        assert_eq!(
            series(&report, &format!("{engine}-convergence"))["samples"],
            12
        );
        assert_eq!(
            series(&report, &format!("{engine}-update-all"))["samples"],
            2
        );
    }
    assert_eq!(
        series(&report, "turmoil-convergence")["baseline"],
        "driver-convergence"
    );
    series(&report, "turmoil-cpu-per-sim-s");
    series(&report, "turmoil-idle-running-cpu");
    let again = sim(&args);
    for name in [
        "driver-convergence",
        "turmoil-convergence",
        "turmoil-discovery",
    ] {
        assert_eq!(series(&report, name)["p50"], series(&again, name)["p50"]);
        assert_eq!(series(&report, name)["max"], series(&again, name)["max"]);
    }
}

#[test]
fn sim_raft_commits_over_turmoil_and_the_links() {
    let report = sim(&["raft", "--writes", "3"]);
    assert_eq!(report["bench"], "sim-raft");
    assert_eq!(series(&report, "links-commit")["samples"], 3);
    assert_eq!(series(&report, "turmoil-commit")["samples"], 3);
    assert_eq!(
        series(&report, "turmoil-commit")["baseline"],
        "links-commit"
    );
}

#[test]
fn an_unknown_engine_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args(["sim", "gossip", "--engine", "ns3"])
        .output()
        .expect("the dwcp binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--engine ns3"));
}
