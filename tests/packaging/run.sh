#!/usr/bin/env bash
# What a user installs, without Rust: the Python wheel (abi3, manylinux) in a brand-new venv
# with no Rust toolchain on PATH; the npm tarball (`npm pack`) in a scratch app, imported in Node
# and bundled by vite; the Kotlin SDK as a jar plus its native library, used by a separate tiny
# Kotlin project. Each runs the quick-start.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CID=bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa   # `ipfs add --cid-version 1` of "hello IPFS\n"

echo "--- Python wheel"
rm -rf target/wheels
.tools/venv/bin/maturin build --release --quiet -m bindings-python/Cargo.toml -o target/wheels
WHEEL=$(ls target/wheels/medshare-*.whl)
case "$WHEEL" in *abi3*manylinux*) ;; *) echo "not an abi3 manylinux wheel: $WHEEL" >&2; exit 1 ;; esac
# A brand-new venv, and a PATH holding only it: no cargo, no rustc, no compiler at all.
env -i HOME="$WORK" PATH=/usr/bin:/bin python3 -m venv "$WORK/venv"
CLEAN=(env -i HOME="$WORK" PATH="$WORK/venv/bin")
if "${CLEAN[@]}" /bin/sh -c 'command -v cargo || command -v rustc || command -v cc' >/dev/null; then
  echo "the clean PATH still reaches a Rust toolchain or a compiler" >&2; exit 1
fi
"${CLEAN[@]}" "$WORK/venv/bin/pip" install --quiet --no-index "$WHEEL"
cp tests/packaging/quickstart.py "$WORK/tests_quickstart.py"
out=$(cd "$WORK" && "${CLEAN[@]}" "$WORK/venv/bin/python" tests_quickstart.py)
echo "$out"; grep -q "$CID" <<<"$out"

echo "--- npm tarball"
(cd bindings-wasm/npm && npm pack --silent --pack-destination "$WORK" >/dev/null)
TGZ=$(ls "$WORK"/medshare-wasm-*.tgz)
mkdir -p "$WORK/app" && cd "$WORK/app"
printf '{"name":"scratch","private":true,"type":"module"}\n' > package.json
npm install --silent --no-audit --no-fund "$TGZ" "vite@^6.4.0"
cp "$ROOT/tests/packaging/node-app.mjs" .
# Captured, not `tee /dev/stderr`: tee would truncate a log file that stderr is redirected to.
out=$(node node-app.mjs)
echo "$out"
grep -q "$CID" <<<"$out" || { echo "the npm tarball in Node did not print $CID" >&2; exit 1; }
mkdir -p src && cp "$ROOT/tests/packaging/web-main.js" src/main.js
printf '<!doctype html><body><script type="module" src="/src/main.js"></script></body>\n' > index.html
printf 'export default { build: { target: "es2022" }, optimizeDeps: { exclude: ["medshare-wasm"] } };\n' > vite.config.js
node_modules/.bin/vite build --logLevel warn
ls dist/assets/*.wasm >/dev/null && echo "npm tarball bundled by vite: $(ls dist/assets | tr '\n' ' ')"
cd "$ROOT"

echo "--- Kotlin jar + native library"
KOTLIN_HOME=.tools/kotlin/node_modules/kotlin-compiler
JNA=$(ls "$HOME"/.m2/repository/net/java/dev/jna/jna/5.15.0/jna-5.15.0.jar)
COROUTINES=$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar
"$KOTLIN_HOME/bin/kotlinc-jvm" -nowarn -cp "$JNA:$COROUTINES" target/uniffi/kotlin/org/medshare/medshare_mobile.kt \
  -d "$WORK/medshare-mobile.jar" 2>&1 | grep -v "^warning" || true
mkdir -p "$WORK/sdk/lib" && cp "$WORK/medshare-mobile.jar" target/release/libmedshare_mobile.so "$WORK/sdk/lib/"
"$KOTLIN_HOME/bin/kotlinc-jvm" -nowarn -cp "$WORK/sdk/lib/medshare-mobile.jar:$JNA:$COROUTINES" tests/packaging/Main.kt \
  -d "$WORK/app.jar" 2>&1 | grep -v "^warning" || true
out=$(java -Djna.library.path="$WORK/sdk/lib" -cp "$WORK/app.jar:$WORK/sdk/lib/medshare-mobile.jar:$JNA:$COROUTINES:$KOTLIN_HOME/lib/kotlin-stdlib.jar" MainKt)
echo "$out"; grep -q "$CID" <<<"$out"
echo "packaging: wheel, npm tarball and Kotlin jar each ran the quick-start"
