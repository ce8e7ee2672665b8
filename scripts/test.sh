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

step "the AWS-LC backend (feature aws-lc: RSA, AES-GCM): clippy, the vectors, envelopes, vault and ledger on it"
cargo clippy --release -p medshare --all-targets --features "aws-lc,fuzzing" -- -D warnings
cargo test --release -p medshare --features "aws-lc,fuzzing" --lib --test vectors --test identity \
  --test envelope --test ledger --test emergency --test testkit --test receipt --test offload \
  --test vault

step "a local medshare network (2 validators, kubo): for the bindings' network tests, the portal and the cross-language story"
NET_DIR=$(mktemp -d)
export MEDSHARE_TESTNET="$NET_DIR/net" MEDSHARE_TESTNET_PASSPHRASE="test-command testnet passphrase"
MEDSHARE_PASSPHRASE="$MEDSHARE_TESTNET_PASSPHRASE" target/release/medshare testnet init \
  --dir "$MEDSHARE_TESTNET" --validators 2 --base-port 0 >/dev/null
MEDSHARE_PASSPHRASE="$MEDSHARE_TESTNET_PASSPHRASE" target/release/medshare testnet up \
  --dir "$MEDSHARE_TESTNET" >"$NET_DIR/up.log" 2>&1 &
UP_PID=$!
trap 'kill -INT $UP_PID 2>/dev/null; wait $UP_PID 2>/dev/null; rm -rf "$NET_DIR"' EXIT
until grep -q "is up" "$NET_DIR/up.log"; do
  kill -0 $UP_PID 2>/dev/null || { cat "$NET_DIR/up.log" >&2; exit 1; }
  sleep 0.2
done
echo "network up: $MEDSHARE_TESTNET"

step "Python package: pip install ./bindings-python (maturin, shared target dir), pytest, mypy"
.tools/venv/bin/pip install --quiet --force-reinstall --no-deps ./bindings-python
(cd bindings-python/tests && MEDSHARE_CLI="$PWD/../../target/release/medshare" ../../.tools/venv/bin/python -m pytest -q)

step "mobile SDK: Swift bindings generated and checked, Kotlin tests on the JVM"
bindings-mobile/scripts/test-mobile.sh

step "WASM/npm package: build, clippy for wasm32, tsc --noEmit, node --test, real headless Chromium"
MEDSHARE_CLI="$PWD/target/release/medshare" bindings-wasm/scripts/test-wasm.sh

step "doctor portal (examples/portal): vite build, real headless Chromium through a network"
(cd examples/portal && { [ -d node_modules/vite ] || npm ci --silent --no-audit --no-fund; } && node --test tests/)

step "cross-language story over the network: Python publishes, Node reads, Kotlin revokes, the CLI verifies a CAR"
bash tests/cross-language/run.sh

step "packaging: the wheel in a venv without Rust, the npm tarball in Node and vite, the Kotlin jar in a separate project"
bash tests/packaging/run.sh

step "envelope vectors through an independent Python/OpenSSL reader"
.tools/venv/bin/python core/testdata/vectors/check_envelope.py

step "the state map (FORMAT §12) and break-glass key shares (FORMAT §6.10) through independent Python verifiers"
.tools/venv/bin/python core/testdata/vectors/check_state_map.py
.tools/venv/bin/python core/testdata/vectors/check_emergency_shares.py

step "certificates through an independent signed-note implementation (Go, golang.org/x/mod/sumdb/note)"
(cd tests/go-note && go test ./...)

step "all green"
