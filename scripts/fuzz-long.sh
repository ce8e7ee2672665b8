#!/usr/bin/env bash
# The long fuzzing run of docs/SECURITY.md: every target for SECS seconds (default 600), two
# targets at a time (one per core), then a summary line per target: executions, corpus size,
# crashes. Crashers go to fuzz/artifacts/<target>/; copy them to fuzz/regressions/<target>/.
#   scripts/fuzz-long.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
TARGETS=(envelope cbor dagpb car keyfile chain text snapshot)
for t in "${TARGETS[@]}"; do RUSTC_BOOTSTRAP=1 cargo fuzz build "$t" 2>/dev/null; done
mkdir -p logs
run() {
  local t=$1
  mkdir -p "corpus/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    >"logs/$t.log" 2>&1 || true
}
for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
  run "${TARGETS[$i]}" &
  if ((i + 1 < ${#TARGETS[@]})); then run "${TARGETS[$((i + 1))]}" & fi
  wait
done
for t in "${TARGETS[@]}"; do
  execs=$(grep -oE '^Done [0-9]+ runs' "logs/$t.log" | grep -oE '[0-9]+' || echo "?")
  crashes=$(find "artifacts/$t" -name 'crash-*' 2>/dev/null | wc -l)
  echo "$t: $execs runs in ${SECS}s, corpus $(ls "corpus/$t" | wc -l) inputs, $crashes crashes"
done
