#!/usr/bin/env bash
# Runs DWCP's libFuzzer targets (fuzz/, see crates/fuzzing) one after
# another, each for SECONDS (default 60), niced, ROUNDS times (default 1).
# Everything it writes stays under target/fuzz (not committed): the build,
# the corpus (target/fuzz/corpus/<target>, seeded from fuzz/seeds/<target>
# and topologies/ or runbooks/ for those targets), crash inputs
# (target/fuzz/artifacts/<target>/) and each run's log.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # all targets when none named
#   FUZZ_ROUNDS=4 scripts/fuzz.sh 900         # a rota: every target, 4 times
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); stable rustc builds the
# targets with RUSTC_BOOTSTRAP=1. The targets are built once, before the
# first run. A crash ends that target's run (the rota goes on with the
# next one) and leaves its input in target/fuzz/artifacts/<target>/: fix
# it, copy the input to fuzz/regressions/<target>/ (CI replays those
# through crates/fuzzing/tests/replay.rs), and say so in docs/security.md.
# Each run appends "target<TAB>seconds asked<TAB>wall seconds<TAB>
# executions<TAB>crashes<TAB>outcome<TAB>start UTC" to target/fuzz/runs.tsv,
# the record behind the hours in docs/security.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
shift || true
rounds="${FUZZ_ROUNDS:-1}"
work="$root/target/fuzz"
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions --release --target-dir "$work/build")
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
if [ "$#" -gt 0 ]; then
  for target in "${targets[@]}"; do nice -n 19 cargo fuzz build "${flags[@]}" "$target"; done
else
  nice -n 19 cargo fuzz build "${flags[@]}"
fi
bin_dir="$(find "$work/build" -path '*/release/api_json' -printf '%h\n' | head -n 1)"
[ -n "$bin_dir" ] || { echo "fuzz.sh: no fuzz binaries under $work/build" >&2; exit 1; }
for round in $(seq 1 "$rounds"); do
  for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    seeds=("$root/fuzz/seeds/$target")
    case "$target" in
      topology) seeds+=("$root/topologies") ;;
      runbook) seeds+=("$root/runbooks") ;;
    esac
    log="$work/$target.round$round.log"
    crashes_before=$(find "$artifacts" -type f | wc -l)
    started="$(date -u +%FT%TZ)"
    start_s=$(date +%s)
    outcome=clean
    nice -n 19 "$bin_dir/$target" "$corpus" "${seeds[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" >"$log" 2>&1 || outcome=crash
    wall=$(($(date +%s) - start_s))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    crashes=$(($(find "$artifacts" -type f | wc -l) - crashes_before))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$seconds" "$wall" "${runs:-0}" "$crashes" \
      "$outcome" "$started" >>"$work/runs.tsv"
    echo "fuzz $target (round $round): ${wall}s, ${runs:-0} executions, $crashes crashes, $outcome (log: $log)"
  done
done
