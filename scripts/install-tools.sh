#!/usr/bin/env bash
# Installs, idempotently, the external tools the test suite runs for real, under .tools/:
#   - kubo (the reference IPFS implementation) and CometBFT built from the Go module proxy;
#   - a Python virtualenv with `cryptography` (the independent envelope reader), and maturin,
#     pytest and mypy for the Python package;
#   - kotlinc (npm `kotlin-compiler`) and JNA (Maven Central) for the Kotlin tests.
# Safe to run repeatedly: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
KUBO_VERSION="${KUBO_VERSION:-v0.43.0}"
mkdir -p "$TOOLS/bin"

# --- kubo -------------------------------------------------------------------------------------
if [ -x "$TOOLS/bin/ipfs" ] && "$TOOLS/bin/ipfs" version | grep -q "${KUBO_VERSION#v}"; then
  echo "kubo ${KUBO_VERSION} present"
else
  command -v go >/dev/null || { echo "Go is required to build kubo" >&2; exit 1; }
  echo "building kubo ${KUBO_VERSION} from the Go module proxy (a few minutes the first time)"
  # `go install pkg@version` refuses kubo's go.mod (it has exclude directives), so build inside
  # the downloaded module, where its go.mod applies as the main module.
  dir=$(go mod download -json "github.com/ipfs/kubo@${KUBO_VERSION}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [ -d "$dir" ] || { echo "go mod download of kubo failed" >&2; exit 1; }
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$TOOLS/bin/ipfs" ./cmd/ipfs)
  "$TOOLS/bin/ipfs" version
fi

# --- CometBFT (the network's consensus engine), from the Go module proxy like kubo -------------
COMETBFT_VERSION="${COMETBFT_VERSION:-v0.38.26}"
if [ -x "$TOOLS/bin/cometbft" ] && "$TOOLS/bin/cometbft" version | grep -qx "${COMETBFT_VERSION#v}"; then
  echo "cometbft ${COMETBFT_VERSION} present"
else
  command -v go >/dev/null || { echo "Go is required to build CometBFT" >&2; exit 1; }
  echo "building cometbft ${COMETBFT_VERSION} from the Go module proxy (about 1.5 minutes the first time)"
  GOBIN="$TOOLS/bin" go install "github.com/cometbft/cometbft/cmd/cometbft@${COMETBFT_VERSION}"
  "$TOOLS/bin/cometbft" version
fi
# abci-cli (the same module): its kvstore, out of process, is a reference in the network benchmark.
# (`abci-cli version` prints the ABCI protocol's version, so a stamp records the module's.)
if [ -x "$TOOLS/bin/abci-cli" ] && [ "$(cat "$TOOLS/bin/abci-cli.version" 2>/dev/null)" = "$COMETBFT_VERSION" ]; then
  echo "abci-cli ${COMETBFT_VERSION} present"
else
  GOBIN="$TOOLS/bin" go install "github.com/cometbft/cometbft/abci/cmd/abci-cli@${COMETBFT_VERSION}"
  echo "$COMETBFT_VERSION" > "$TOOLS/bin/abci-cli.version"
fi

# --- Python virtualenv --------------------------------------------------------------------------
if [ ! -x "$TOOLS/venv/bin/python" ]; then
  python3 -m venv "$TOOLS/venv"
fi
# fhir.resources: the FHIR R5/R4B models the FHIR export is validated against in the tests.
if ! "$TOOLS/venv/bin/python" -c "import cryptography, maturin, pytest, mypy, fhir.resources" 2>/dev/null; then
  "$TOOLS/venv/bin/pip" install --quiet --upgrade pip
  "$TOOLS/venv/bin/pip" install --quiet "cryptography>=42" "maturin>=1.9,<2" "pytest>=7" "mypy>=1.8" \
    "fhir.resources>=8.1,<9"
fi
# --- Kotlin compiler (npm package `kotlin-compiler`) and JNA (Maven Central) ---------------------
KOTLIN_VERSION=2.4.20
if [ -x "$TOOLS/kotlin/node_modules/kotlin-compiler/bin/kotlinc-jvm" ] \
   && grep -q "\"version\": \"$KOTLIN_VERSION\"" "$TOOLS/kotlin/node_modules/kotlin-compiler/package.json"; then
  echo "kotlinc $KOTLIN_VERSION present"
else
  mkdir -p "$TOOLS/kotlin"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/kotlin" "kotlin-compiler@$KOTLIN_VERSION"
fi
if [ ! -s "$HOME/.m2/repository/net/java/dev/jna/jna/5.15.0/jna-5.15.0.jar" ]; then
  mvn -q dependency:get -Dartifact=net.java.dev.jna:jna:5.15.0
fi

# --- Debian packages: faketime (the CLI's clock-shift test), rust-web-clippy (clippy of the wasm
#     target with Debian's Rust; the wasm build script installs the rest of that toolchain) ------
need_apt=()
command -v faketime >/dev/null || need_apt+=(faketime)
[ -x /usr/bin/clippy-driver ] || need_apt+=(rust-web-clippy)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing from apt: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "tools ready in $TOOLS"
