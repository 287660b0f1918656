#!/usr/bin/env bash
# Runs DWCP's libFuzzer targets (fuzz/, see crates/fuzzing) one after
# another, each for SECONDS (default 60), niced, with the corpus kept in
# fuzz/corpus/<target> (not committed) and seeded from fuzz/seeds/<target>
# (and topologies/ or runbooks/ for those targets).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # all targets when none named
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); stable rustc builds the
# targets with RUSTC_BOOTSTRAP=1. A crash leaves its input in
# fuzz/artifacts/<target>/: fix it, copy the input to
# fuzz/regressions/<target>/ (CI replays those through
# crates/fuzzing/tests/replay.rs), and say so in docs/security.md.
# Each run appends "target<TAB>seconds<TAB>runs<TAB>outcome" to
# fuzz/runs.tsv (not committed) for the hours in docs/security.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions --release)
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
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  seeds=("fuzz/seeds/$target")
  case "$target" in
    topology) seeds+=(topologies) ;;
    runbook) seeds+=(runbooks) ;;
  esac
  log="fuzz/corpus/$target.log"
  outcome=clean
  nice -n 19 cargo fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || outcome=crash
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  printf '%s\t%s\t%s\t%s\n' "$target" "$seconds" "${runs:-0}" "$outcome" >>fuzz/runs.tsv
  echo "fuzz $target: ${seconds}s, ${runs:-0} runs, $outcome (log: $log)"
done
