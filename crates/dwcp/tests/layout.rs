//! The crate graph is a layered DAG that ARCHITECTURE.md draws, and it
//! stays one: every dependency edge between DWCP crates (read from each
//! `crates/*/Cargo.toml`) must be on the list below, which is the table in
//! ARCHITECTURE.md ("The crate graph"). A new edge that breaks the layering
//! — `state` on anything, `ops` on `node`, a pure crate on an I/O one, a
//! cycle — fails here; an intended one is added to both, with its reason.
//!
//! It also checks that every crate has its section in ARCHITECTURE.md and
//! opens with a `//!` doc (role, invariants, what it must not depend on).
//! It reads files only: no DWCP crate is linked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate (by directory under `crates/`) and the DWCP crates it may
/// depend on (`[dependencies]`). Bottom-up: a crate names only crates
/// above it in this list, which is what makes the graph acyclic.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: no DWCP dependency.
    ("rng", &[]),
    ("state", &[]),
    ("sandbox", &[]),
    ("harness", &[]),
    ("certify", &[]),
    // Pure decisions over the state.
    ("rollout", &["state"]),
    ("scheduler", &["state"]),
    ("planet", &["state", "rng"]),
    ("autopilot", &["state", "rng"]),
    // Storage and the running node.
    ("replica", &["state"]),
    ("cluster", &["state", "replica", "planet"]),
    // What runs on a node, and the simulator.
    ("node", &["sandbox", "state", "cluster", "rng"]),
    // `ops` shows nodes' health by the scheduler's own (pure) liveness
    // judgement, serves the autopilot's findings and forecasts, and
    // checks and shows certification reports (`certify`'s schema).
    (
        "ops",
        &[
            "state",
            "replica",
            "cluster",
            "planet",
            "scheduler",
            "autopilot",
            "certify",
        ],
    ),
    (
        "sim",
        &[
            "state",
            "replica",
            "planet",
            "scheduler",
            "rollout",
            "autopilot",
            "rng",
        ],
    ),
    // The leader-only loops.
    (
        "controllers",
        &[
            "state",
            "cluster",
            "scheduler",
            "rollout",
            "planet",
            "ops",
            "autopilot",
        ],
    ),
    // Fuzz entry points over every parser of untrusted bytes; nothing
    // depends on them (fuzz/ and their replay test do).
    (
        "fuzzing",
        &["sandbox", "state", "replica", "planet", "cluster", "ops"],
    ),
    // The composition root: anything.
    (
        "dwcp",
        &[
            "rng",
            "state",
            "sandbox",
            "harness",
            "rollout",
            "scheduler",
            "planet",
            "autopilot",
            "replica",
            "cluster",
            "node",
            "ops",
            "sim",
            "controllers",
            "certify",
        ],
    ),
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Crate directory -> (package name, DWCP deps, DWCP dev-deps), deps by
/// directory name.
fn read_crates() -> BTreeMap<String, (String, BTreeSet<String>, BTreeSet<String>)> {
    let mut manifests = BTreeMap::new();
    for entry in std::fs::read_dir(crates_dir()).expect("crates/ is readable") {
        let dir = entry.expect("a directory entry").path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).expect("Cargo.toml is readable");
        let table: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let name = table["package"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no package.name", manifest.display()))
            .to_string();
        let dir_name = dir.file_name().unwrap().to_string_lossy().into_owned();
        manifests.insert(dir_name, (name, table));
    }
    // Package name (dwcp-state) -> directory (state).
    let dirs: BTreeMap<String, String> = manifests
        .iter()
        .map(|(dir, (name, _))| (name.clone(), dir.clone()))
        .collect();
    let dwcp_deps = |table: &toml::Table, section: &str, of: &str| -> BTreeSet<String> {
        table
            .get(section)
            .and_then(|s| s.as_table())
            .map(|deps| {
                deps.keys()
                    .filter(|k| dirs.contains_key(*k))
                    .map(|k| dirs[k].clone())
                    // A crate's dev-dependency on itself (with features).
                    .filter(|d| d != of)
                    .collect()
            })
            .unwrap_or_default()
    };
    manifests
        .iter()
        .map(|(dir, (name, table))| {
            let normal = dwcp_deps(table, "dependencies", dir);
            let dev = dwcp_deps(table, "dev-dependencies", dir);
            (dir.clone(), (name.clone(), normal, dev))
        })
        .collect()
}

#[test]
fn every_dependency_edge_between_dwcp_crates_is_an_allowed_one() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(c, deps)| (*c, deps.iter().copied().collect()))
        .collect();
    // Tests and benches (`[dev-dependencies]`) may use any crate below
    // their own in the layering (to drive pure code, or the harness).
    let below = |krate: &str| -> BTreeSet<&str> {
        ALLOWED
            .iter()
            .map(|(c, _)| *c)
            .take_while(|c| *c != krate)
            .collect()
    };
    let mut wrong = Vec::new();
    for (krate, (_, normal, dev)) in read_crates() {
        let Some(ok) = allowed.get(krate.as_str()) else {
            wrong.push(format!(
                "crates/{krate} is not in the crate graph: add it to ALLOWED here and to ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in &normal {
            if !ok.contains(dep.as_str()) {
                wrong.push(format!("{krate} -> {dep} (allowed: {ok:?})"));
            }
        }
        let below = below(&krate);
        for dep in &dev {
            if !below.contains(dep.as_str()) {
                wrong.push(format!(
                    "{krate} -> {dep} in [dev-dependencies] (allowed: the crates below it, {below:?})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependency edges off the layering (crates/dwcp/tests/layout.rs, ARCHITECTURE.md):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_allowed_graph_is_layered_bottom_up() {
    // Each crate names only crates listed before it: no cycle can pass.
    let mut seen = BTreeSet::new();
    for (krate, deps) in ALLOWED {
        for dep in *deps {
            assert!(
                seen.contains(dep),
                "{krate} may depend on {dep}, which is not below it in ALLOWED"
            );
        }
        assert!(seen.insert(*krate), "{krate} is listed twice");
    }
}

#[test]
fn every_crate_has_its_section_and_its_crate_doc() {
    let architecture = std::fs::read_to_string(crates_dir().join("../ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md at the repository root");
    for krate in read_crates().keys() {
        assert!(
            architecture.contains(&format!("### `crates/{krate}`")),
            "ARCHITECTURE.md has no section `### \\`crates/{krate}\\``"
        );
        let root = crates_dir().join(krate).join("src");
        let source = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| root.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("crates/{krate} has neither src/lib.rs nor src/main.rs"));
        let text = std::fs::read_to_string(&source).unwrap();
        assert!(
            text.trim_start().starts_with("//!"),
            "{} does not open with a `//!` crate doc",
            source.display()
        );
    }
}
