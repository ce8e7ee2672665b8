#!/usr/bin/env bash
# The cross-language story over a real network: a patient in Python publishes and grants, a
# doctor in Node (WASM) reads through a trustless gateway, the patient's Kotlin app revokes, and
# the CLI verifies offline the chain exported as a CAR by another node. Needs the network of the
# test command (MEDSHARE_TESTNET, MEDSHARE_TESTNET_PASSPHRASE; two validators or more), the
# Python package in .tools/venv, the npm package built, and the Kotlin bindings jar
# (bindings-mobile/scripts/test-mobile.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
: "${MEDSHARE_TESTNET:?the test command starts the network}"
M=target/release/medshare
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
eval "$(python3 - "$MEDSHARE_TESTNET" <<'PY'
import json, sys
t = json.load(open(sys.argv[1] + "/testnet.json"))
n = t["nodes"]
print(f'G={t["genesis"]} N0={n[0]["dir"]} N1={n[1]["dir"]}')
print(f'RPC0=http://127.0.0.1:{n[0]["ports"]["rpc"]} RPC1=http://127.0.0.1:{n[1]["ports"]["rpc"]}')
print(f'KUBO0=http://127.0.0.1:{n[0]["ports"]["kubo_api"]} KUBO1=http://127.0.0.1:{n[1]["ports"]["kubo_api"]}')
print(f'GW1=http://127.0.0.1:{n[1]["ports"]["kubo_gateway"]}')
PY
)"

node tests/cross-language/doctor.mjs keygen "$WORK"
MEDSHARE_PASSPHRASE="$MEDSHARE_TESTNET_PASSPHRASE" $M --home "$N0" endorse \
  --doctor "$(cat "$WORK/doctor.id")" --licence GMC-7001234 -o "$WORK/doctor.endorsement" >/dev/null
node tests/cross-language/doctor.mjs register "$WORK" "$RPC1" "$KUBO1" "$G"
.tools/venv/bin/python tests/cross-language/patient.py "$WORK" "$RPC0" "$KUBO0" "$G"
node tests/cross-language/doctor.mjs read "$WORK" "$RPC1" "$GW1" "$G"

KOTLIN_HOME=.tools/kotlin/node_modules/kotlin-compiler
JNA=$(ls "$HOME"/.m2/repository/net/java/dev/jna/jna/5.15.0/jna-5.15.0.jar)
CP="target/uniffi/medshare-kotlin-tests.jar:$JNA:$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar:$KOTLIN_HOME/lib/kotlin-stdlib.jar"
"$KOTLIN_HOME/bin/kotlinc-jvm" -nowarn -cp "$CP" tests/cross-language/Revoke.kt -d "$WORK/revoke.jar" 2>&1 | grep -v "^warning" || true
java -Djna.library.path="$ROOT/target/release" -cp "$WORK/revoke.jar:$CP" RevokeKt "$WORK" "$RPC0" "$KUBO0" "$G"
node tests/cross-language/doctor.mjs read "$WORK" "$RPC1" "$GW1" "$G" refused

# The chain as node 1 holds it, exported to a CAR, verified offline by a fresh home.
$M --home "$N1" export --car "$WORK/chain.car" >/dev/null
$M --home "$WORK/offline" import --car "$WORK/chain.car" --genesis "$G" >/dev/null
$M --home "$WORK/offline" verify
echo "cross-language story: Python published, Node read, Kotlin revoked, the CLI verified offline"
