#!/usr/bin/env bash
# Builds the npm package and runs its tests: tsc --noEmit over a typed usage file, the Node
# suites (node --test), and the real headless Chromium test (Debian chromium + playwright-core).
# Installs what it needs, idempotently. The CLI interop test needs target/release/medshare
# (scripts/test.sh builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-wasm.sh
echo "clippy for wasm32-unknown-unknown (-D warnings)"
(cd .. && PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target/wasm" \
  /usr/bin/cargo clippy --quiet --profile wasm-release -p medshare-wasm --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort -- -D warnings)

if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/playwright-core ]; then
  npm ci --silent --no-audit --no-fund
fi
# The typed usage file imports the package by name, as a user would.
ln -sfn ../npm node_modules/medshare-wasm

echo "tsc --noEmit (typed usage against the generated declarations)"
node_modules/.bin/tsc -p tests/types/tsconfig.json
echo "node --test"
node --test tests/node/
echo "headless Chromium"
node --test tests/browser/run.mjs
