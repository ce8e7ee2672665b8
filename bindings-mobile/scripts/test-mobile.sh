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
           "func errorCodes(" "func purposes(" "func openEnvelope(" "func verifyReceipt(" "func receipt(" "func trustedCheckpoint(" "func fhirRecord(" "func fhirPatient(" "func trustCheckpoint("; do
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

# --- A local network for the connect test: the test command's (MEDSHARE_TESTNET), or our own.
if [ -z "${MEDSHARE_TESTNET:-}" ]; then
  NET_DIR=$(mktemp -d)
  export MEDSHARE_TESTNET="$NET_DIR/net" MEDSHARE_TESTNET_PASSPHRASE="testnet passphrase of a test"
  MEDSHARE_PASSPHRASE="$MEDSHARE_TESTNET_PASSPHRASE" target/release/medshare testnet init \
    --dir "$MEDSHARE_TESTNET" --validators 2 --base-port 0 >/dev/null
  MEDSHARE_PASSPHRASE="$MEDSHARE_TESTNET_PASSPHRASE" target/release/medshare testnet up \
    --dir "$MEDSHARE_TESTNET" >"$NET_DIR/up.log" 2>&1 &
  UP_PID=$!
  trap 'kill -INT $UP_PID 2>/dev/null; wait $UP_PID 2>/dev/null; rm -rf "$HOME_DIR" "$NET_DIR"' EXIT
  until grep -q "is up" "$NET_DIR/up.log"; do
    kill -0 $UP_PID 2>/dev/null || { cat "$NET_DIR/up.log" >&2; exit 1; }
    sleep 0.2
  done
fi
eval "$(python3 - "$MEDSHARE_TESTNET" <<'PY'
import json, sys
t = json.load(open(sys.argv[1] + "/testnet.json"))
n = t["nodes"]
print(f'export NET_GENESIS={t["genesis"]} NET_AUTHORITY_KEY={n[0]["dir"]}/authority.key NET_AUTHORITY_KEY1={n[1]["dir"]}/authority.key')
print(f'export NET_RPC0=http://127.0.0.1:{n[0]["ports"]["rpc"]} NET_RPC1=http://127.0.0.1:{n[1]["ports"]["rpc"]}')
print(f'export NET_KUBO0=http://127.0.0.1:{n[0]["ports"]["kubo_api"]} NET_KUBO1=http://127.0.0.1:{n[1]["ports"]["kubo_api"]}')
print(f'export NET_GATEWAY1=http://127.0.0.1:{n[1]["ports"]["kubo_gateway"]}')
PY
)"

# --- Kotlin on the JVM.
CP="$JNA:$KLIB/kotlinx-coroutines-core-jvm.jar"
"$KOTLIN_HOME/bin/kotlinc-jvm" -nowarn -cp "$CP" "$OUT/kotlin/org/medshare/medshare_mobile.kt" \
  bindings-mobile/tests/kotlin/MedshareTest.kt -d "$OUT/medshare-kotlin-tests.jar" 2>&1 | grep -v "^warning" || true
[ -s "$OUT/medshare-kotlin-tests.jar" ] || { echo "kotlinc failed" >&2; exit 1; }
MEDSHARE_TESTDATA="$ROOT/core/testdata" MEDSHARE_CLI_HOME="$HOME_DIR/home" \
  java -Djna.library.path="$ROOT/target/release" -cp "$OUT/medshare-kotlin-tests.jar:$CP:$KLIB/kotlin-stdlib.jar" MedshareTestKt
