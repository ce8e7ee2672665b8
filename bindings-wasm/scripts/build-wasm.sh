#!/usr/bin/env bash
# Builds the npm package directory bindings-wasm/npm/ (wasm/ inside it is generated here).
# Installs what it needs, idempotently (see ../shared/TOOLCHAIN.md for why this route):
#   - Debian's Rust 1.96 with its std sources (rustc-web, cargo-web, rust-web-src), and lld-22
#     for rust-lld: rustup has no wasm32 target on these machines, so std is built from source;
#   - wasm-bindgen-cli at exactly the version in Cargo.lock, into .tools/bin.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

need_apt=()
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q '1\.9[6-9]' || need_apt+=(rustc-web cargo-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rust-web-src)
command -v rust-lld >/dev/null && [ -e "$(readlink -f "$(command -v rust-lld)")" ] || need_apt+=(rust-web-llvm lld-22)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing from apt: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $WB_VERSION\$"; then
  echo "installing wasm-bindgen-cli $WB_VERSION"
  cargo install --quiet wasm-bindgen-cli --version "$WB_VERSION" --root "$TOOLS" --force
fi

echo "building medshare-wasm (wasm32-unknown-unknown, std from source)"
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$ROOT/target/wasm" \
  /usr/bin/cargo build --quiet --profile wasm-release -p medshare-wasm \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort

OUT="$ROOT/bindings-wasm/npm/wasm"
rm -rf "$OUT"
"$TOOLS/bin/wasm-bindgen" --target web --out-dir "$OUT" \
  "$ROOT/target/wasm/wasm32-unknown-unknown/wasm-release/medshare_wasm.wasm"
# No wasm-opt pass: Debian's binaryen (version 108) predates the reference-types tables that
# Rust 1.96 and wasm-bindgen 0.2.130 emit, and its output fails to instantiate.
raw=$(stat -c %s "$OUT/medshare_wasm_bg.wasm")
gz=$(gzip -9c "$OUT/medshare_wasm_bg.wasm" | wc -c)
echo "medshare_wasm_bg.wasm: $raw bytes raw, $gz bytes gzip -9"
