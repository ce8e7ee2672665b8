#!/usr/bin/env bash
# Short fuzzing run of every target (default 30 s each), with cargo-fuzz on the stable toolchain
# (RUSTC_BOOTSTRAP=1 admits the sanitizer flags). Not part of the test command (it needs ~2 min of
# ASan build plus the runs); crashers it finds go into fuzz/regressions/<target>/, which the test
# command replays.   Usage: scripts/fuzz-smoke.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in envelope cbor dagpb car keyfile chain text snapshot; do
  echo "== $t ($SECS s)"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 2>&1 \
    | grep -E "^Done|SUMMARY|panicked|ERROR" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "crash found in $t: copy artifacts/$t/crash-* to regressions/$t/ and fix" >&2
    exit 1
  fi
done
