#!/usr/bin/env bash
# Runs every check and test of the project, installing what it needs first (idempotent).
#   ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

# The core's optional features the tests exercise: the HTTP stores and network client, and the
# fuzzing harnesses (replayed by the regression tests).
FEATURES="medshare/http,medshare/fuzzing"

step "tools (kubo, Python venv, Kotlin, faketime)"
scripts/install-tools.sh

step "rustfmt"
cargo fmt --all --check

step "clippy (-D warnings)"
cargo clippy --release --workspace --all-targets --features "$FEATURES" -- -D warnings
cargo clippy --release -p medshare --all-targets --no-default-features -- -D warnings

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --release --workspace --no-deps --quiet --features "$FEATURES"

step "Rust tests (unit, integration incl. kubo cross-checks, doc-tests)"
cargo test --release --workspace --features "$FEATURES"

step "Python package: pip install ./bindings-python (maturin, shared target dir), pytest, mypy"
.tools/venv/bin/pip install --quiet --force-reinstall --no-deps ./bindings-python
(cd bindings-python/tests && MEDSHARE_CLI="$PWD/../../target/release/medshare" ../../.tools/venv/bin/python -m pytest -q)

step "mobile SDK: Swift bindings generated and checked, Kotlin tests on the JVM"
bindings-mobile/scripts/test-mobile.sh

step "WASM/npm package: build, clippy for wasm32, tsc --noEmit, node --test, real headless Chromium"
MEDSHARE_CLI="$PWD/target/release/medshare" bindings-wasm/scripts/test-wasm.sh

step "envelope vectors through an independent Python/OpenSSL reader"
.tools/venv/bin/python core/testdata/vectors/check_envelope.py

step "all green"
