//! Replays through every fuzz target the seeds (`fuzz/seeds/<target>/`),
//! the repository's own files of each kind (topologies, runbooks) and
//! every input a fuzzer once crashed or hung on (`fuzz/regressions/<target>/`,
//! kept after the fix): each must be answered without a panic. This is
//! CI's smoke run of the fuzz targets, without building the fuzzers.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files directly in `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_seeds_and_answers_them_and_its_regressions() {
    let root = repo();
    let mut ran = 0;
    for fuzzing::Target { name, run } in fuzzing::TARGETS {
        let seeds = files(&root.join("fuzz/seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seed");
        let mut inputs = seeds;
        inputs.extend(files(&root.join("fuzz/regressions").join(name)));
        match *name {
            "topology" => inputs.extend(files(&root.join("topologies"))),
            "runbook" => inputs.extend(files(&root.join("runbooks"))),
            _ => {}
        }
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap();
            run(&bytes);
            ran += 1;
        }
        // Each target also answers nothing at all and a few bytes.
        run(b"");
        run(&[0xff; 3]);
    }
    assert!(ran >= fuzzing::TARGETS.len());
}

#[test]
fn every_target_has_a_libfuzzer_binary() {
    let manifest = std::fs::read_to_string(repo().join("fuzz/Cargo.toml")).unwrap();
    for fuzzing::Target { name, .. } in fuzzing::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(repo().join(format!("fuzz/fuzz_targets/{name}.rs")).exists());
    }
}
