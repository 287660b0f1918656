//! CI's short run of every fuzz target, without building the fuzzers:
//! - replays the seeds (`fuzz/seeds/<target>/`), the repository's own files
//!   of each kind (topologies, runbooks) and every input a fuzzer once
//!   crashed or hung on (`fuzz/regressions/<target>/`, kept after the fix);
//! - then runs [`MUTATIONS`] inputs per target mutated from those, the way
//!   libFuzzer mutates (bit flips, special bytes, erased, inserted and
//!   repeated ranges, splices of two inputs), drawn from a fixed seed so
//!   every run tries the same ones. Not coverage-guided: the hours of
//!   `scripts/fuzz.sh` are the real search; this keeps every target
//!   exercised beyond its seeds on every change.
//!
//! Each input must be answered without a panic.

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

/// A target's inputs on disk: its seeds (at least one), the repository's
/// files of its kind and its regressions.
fn inputs(name: &str) -> Vec<Vec<u8>> {
    let root = repo();
    let seeds = files(&root.join("fuzz/seeds").join(name));
    assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seed");
    let mut paths = seeds;
    paths.extend(files(&root.join("fuzz/regressions").join(name)));
    match name {
        "topology" => paths.extend(files(&root.join("topologies"))),
        "runbook" => paths.extend(files(&root.join("runbooks"))),
        _ => {}
    }
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn every_target_has_seeds_and_answers_them_and_its_regressions() {
    let mut ran = 0;
    for fuzzing::Target { name, run } in fuzzing::TARGETS {
        for bytes in inputs(name) {
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

/// Mutated inputs run per target (about 5 s for all nine in a debug build).
const MUTATIONS: usize = 2_000;

/// Bytes parsers treat specially: JSON and TOML punctuation, CGI header
/// and line ends, digits, and the ends of a byte's range.
const SPECIAL: &[u8] = b"\0\x7f\x80\xff{}[]\":,=+-.\\\r\n 09eE";

/// One mutation of `input` (which may grow or shrink), `other` being
/// another input of the same target to splice with.
fn mutate(rng: &mut rng::SplitMix64, input: &mut Vec<u8>, other: &[u8]) {
    let len = input.len();
    match rng.below(6) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = SPECIAL[rng.below(SPECIAL.len())];
        }
        2 if len > 0 => {
            let from = rng.below(len);
            let to = (from + 1 + rng.below(16)).min(len);
            input.drain(from..to);
        }
        3 => {
            let at = rng.below(len + 1);
            let bytes: Vec<u8> = (0..1 + rng.below(8))
                .map(|_| rng.next_u64() as u8)
                .collect();
            input.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let from = rng.below(len);
            let to = (from + 1 + rng.below(32)).min(len);
            let copy = input[from..to].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, copy);
        }
        _ => {
            // A splice: this input's start, the other's end.
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
    }
}

#[test]
fn every_target_answers_inputs_mutated_from_its_own() {
    for (i, fuzzing::Target { name, run }) in fuzzing::TARGETS.iter().enumerate() {
        let corpus = inputs(name);
        let mut rng = rng::SplitMix64::new(16 + i as u64);
        for n in 0..MUTATIONS {
            let mut input = corpus[rng.below(corpus.len())].clone();
            let other = &corpus[rng.below(corpus.len())];
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut input, other);
            }
            if std::panic::catch_unwind(|| run(&input)).is_err() {
                // Keep it: copy these bytes to fuzz/regressions/<target>/.
                panic!("{name}: mutated input {n} panicked; its bytes: {input:?}");
            }
        }
    }
}
