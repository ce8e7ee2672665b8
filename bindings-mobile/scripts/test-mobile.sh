#!/usr/bin/env bash
# Builds the mobile SDK's native library, generates the Kotlin and Swift bindings with the
# workspace's uniffi-bindgen (library mode), checks the Swift sources, prepares a CLI home, then
# compiles and runs the Kotlin tests on this machine's JVM against the real library.
# Needs: scripts/install-tools.sh (kotlinc from npm `kotlin-compiler`, JNA from Maven Central).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=target/uniffi
KOTLIN_HOME=.tools/kotlin/node_modules/kotlin-compiler
KLIB=$KOTLIN_HOME/lib
JNA=$(ls "$HOME"/.m2/repository/net/java/dev/jna/jna/5.15.0/jna-5.15.0.jar)

cargo build --release -p medshare-mobile -p uniffi-bindgen -p medshare-cli --quiet
LIB=target/release/libmedshare_mobile.so
rm -rf "$OUT"
target/release/uniffi-bindgen generate --library "$LIB" --language kotlin --out-dir "$OUT/kotlin" --no-format
target/release/uniffi-bindgen generate --library "$LIB" --language swift --out-dir "$OUT/swift" --no-format

# --- Swift: generated, non-empty, and exposing every exported function (compiled on macOS only).
for f in MedShare.swift MedShareFFI.h MedShareFFI.modulemap; do
  [ -s "$OUT/swift/$f" ] || { echo "Swift binding $f missing or empty" >&2; exit 1; }
done
grep -q "module MedShareFFI" "$OUT/swift/MedShareFFI.modulemap"
missing=0
for sym in "func cid(" "func storeConformance(" "class Identity" "static func generate(" "static func load(" \
           "static func fromKeyFile(" "func toKeyFile(" "func save(" "class Vault" 'static func `open`(' \
           "static func memory(" "static func withStore(" "func register(" "func publish(" "func publishFile(" \
           "func grant(" "func revoke(" "func openRecord(" "func openRecordToFile(" "func recordsFor(" \
           "func audit(" "func verify(" "protocol ForeignStore" "enum MedshareError" "case Access(" \
           "enum ErrorCode" "case accessRevoked" "class Endorsement" "static func connect(" "static func importCar(" \
           "func rotateKey(" "func rotated(" "func grantNote(" "func metadata(" "func exportCar(" "struct GrantOptionsRecord" \
           "func errorCodes(" "func purposes(" "func openEnvelope("; do
  if ! grep -qF "$sym" "$OUT/swift/MedShare.swift"; then echo "Swift binding lacks: $sym" >&2; missing=1; fi
done
[ $missing = 0 ] || exit 1
echo "swift: MedShare.swift, MedShareFFI.h and the modulemap generated; every exported API present"

# --- A record published by the Rust CLI, for the Kotlin side to open.
HOME_DIR=$(mktemp -d)
trap 'rm -rf "$HOME_DIR"' EXIT
export MEDSHARE_PASSPHRASE="kotlin interop passphrase"
M="target/release/medshare --home $HOME_DIR/home"
$M init >/dev/null
$M identity new --role patient --name alice --bits 2048 >/dev/null
$M identity new --role doctor --name bob --bits 2048 --licence GMC-1 >/dev/null
printf '{"resourceType":"Bundle","id":"from-the-cli"}' > "$HOME_DIR/home/source.json"
$M --json record add --as alice "$HOME_DIR/home/source.json" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' > "$HOME_DIR/home/record-id"
$M grant --as alice --record "$(cat "$HOME_DIR/home/record-id")" --doctor bob --purpose COC >/dev/null

# --- Kotlin on the JVM.
CP="$JNA:$KLIB/kotlinx-coroutines-core-jvm.jar"
"$KOTLIN_HOME/bin/kotlinc-jvm" -nowarn -cp "$CP" "$OUT/kotlin/org/medshare/medshare_mobile.kt" \
  bindings-mobile/tests/kotlin/MedshareTest.kt -d "$OUT/medshare-kotlin-tests.jar" 2>&1 | grep -v "^warning" || true
[ -s "$OUT/medshare-kotlin-tests.jar" ] || { echo "kotlinc failed" >&2; exit 1; }
MEDSHARE_TESTDATA="$ROOT/core/testdata" MEDSHARE_CLI_HOME="$HOME_DIR/home" \
  java -Djna.library.path="$ROOT/target/release" -cp "$OUT/medshare-kotlin-tests.jar:$CP:$KLIB/kotlin-stdlib.jar" MedshareTestKt
