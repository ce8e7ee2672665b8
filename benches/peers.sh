#!/usr/bin/env bash
# Peers that are programs, not crates, on the same 1 GiB of random data in the same run:
#   CIDs:    medshare `cid` vs kubo `ipfs add --only-hash` vs the npm ipfs-unixfs-importer,
#            under both profiles (and the three must agree);
#   sealing: medshare publish/open (filesystem store, medshare-rss: time and peak RSS)
#            vs `age` encrypt/decrypt of the same file;
#   ceiling: the CID's rate against the two-core SHA-256 ceiling (`openssl speed -multi 2`);
#   kubo:    medshare publish/open on the kubo store vs `ipfs add`/`ipfs cat` of the same file
#            through the same daemon (3 rounds, medians);
#   raw:     openssl speed for AES-256-GCM, SHA-256 and RSA 2048/3072/4096.
# Needs the tools of scripts/install-tools.sh (kubo) and Debian `age`; installs the npm importer.
#   benches/peers.sh [size-MiB]          (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MIB=${1:-1024}
IPFS=${MEDSHARE_IPFS:-$ROOT/.tools/bin/ipfs}
command -v age >/dev/null || { apt-get install -y -qq age >/dev/null; }
[ -d benches/js/node_modules/ipfs-unixfs-importer ] || (cd benches/js && npm ci --silent --no-audit --no-fund)
cargo build --quiet --release -p medshare-cli -p medshare-benches --bins
MEDSHARE=$ROOT/target/release/medshare
RSS=$ROOT/target/release/medshare-rss

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA=$WORK/data
head -c "$((MIB << 20))" /dev/urandom >"$DATA"
cat "$DATA" >/dev/null   # page cache: every tool reads from memory

t() { local s e; s=$(date +%s.%N); "$@" >"$WORK/out" 2>"$WORK/err"; e=$(date +%s.%N); printf '%.3f' "$(echo "$e - $s" | bc)"; }
rate() { printf '%.2f' "$(echo "scale=4; $MIB * 1.048576 / $1 / 1000" | bc)"; }   # GB/s
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }

echo "# $(date -u +%F), $(nproc) cores, $MIB MiB of random data"
echo
echo "| CID of $MIB MiB | medshare cid | kubo ipfs add --only-hash | npm ipfs-unixfs-importer | medshare vs kubo | medshare vs JS |"
echo "|---|---|---|---|---|---|"
for profile in unixfs-v1-2025 unixfs-v0-2015; do
  repo=$WORK/ipfs-$profile
  IPFS_PATH=$repo "$IPFS" init -e --profile="test,$profile" >/dev/null
  tm=$(t "$MEDSHARE" cid --profile "$profile" "$DATA"); cm=$(cat "$WORK/out")
  tk=$(IPFS_PATH=$repo t "$IPFS" add --only-hash -Q --pin=false "$DATA"); ck=$(cat "$WORK/out")
  tj=$(t node benches/js/cid.mjs "$DATA" "$profile"); cj=$(cut -d' ' -f1 "$WORK/out")
  [ "$cm" = "$ck" ] && [ "$cm" = "$cj" ] || { echo "CIDs differ: $cm $ck $cj" >&2; exit 1; }
  echo "| $profile | ${tm}s ($(rate "$tm") GB/s) | ${tk}s ($(rate "$tk") GB/s) | ${tj}s ($(rate "$tj") GB/s) | $(ratio "$tk" "$tm")× | $(ratio "$tj" "$tm")× |"
  eval "cid_${profile//-/_}=$tm"
done

# The two-core SHA-256 ceiling: two openssl processes hashing 1 MiB buffers from memory (its
# "k" is 1000 bytes). A CID hashes every byte once (plus the small DAG nodes).
sha2=$(openssl speed -elapsed -seconds 3 -multi 2 -bytes 1048576 -evp sha256 2>/dev/null | tail -n 1 | awk '{print $NF}' | tr -d k)
ceiling=$(echo "scale=4; $sha2 / 1000000" | bc)
echo
echo "| CID of $MIB MiB vs the 2-core SHA-256 ceiling ($(printf '%.2f' "$ceiling") GB/s, openssl speed -multi 2) | medshare cid | share of the ceiling |"
echo "|---|---|---|"
for profile in unixfs-v1-2025 unixfs-v0-2015; do
  v=cid_${profile//-/_}; tm=${!v}
  echo "| $profile | $(rate "$tm") GB/s | $(printf '%.2f' "$(echo "scale=4; $(rate "$tm") / $ceiling" | bc)")× |"
done

echo
echo "| seal/open $MIB MiB | medshare (fs store, incl. CID + fsync'd blocks) | peak RSS | age (X25519) | ratio |"
echo "|---|---|---|---|---|"
age-keygen -o "$WORK/age.key" 2>/dev/null
recipient=$(age-keygen -y "$WORK/age.key")
tp=$(t "$RSS" publish "$DATA" "$WORK/store"); record=$(cat "$WORK/out"); rp=$(grep -oE '[0-9]+ KiB' "$WORK/err")
ta=$(t age -r "$recipient" -o "$WORK/data.age" "$DATA")
echo "| publish / encrypt | ${tp}s ($(rate "$tp") GB/s) | $rp | ${ta}s ($(rate "$ta") GB/s) | $(ratio "$tp" "$ta")× the time |"
to=$(t "$RSS" open "$WORK/store" "$record"); ro=$(grep -oE '[0-9]+ KiB' "$WORK/err")
td=$(t age -d -i "$WORK/age.key" -o /dev/null "$WORK/data.age")
echo "| open / decrypt | ${to}s ($(rate "$to") GB/s) | $ro | ${td}s ($(rate "$td") GB/s) | $(ratio "$to" "$td")× the time |"

# The kubo store against kubo's own add and cat, through one offline daemon on 127.0.0.1.
repo=$WORK/ipfs-store
IPFS_PATH=$repo "$IPFS" init -e --profile=test,unixfs-v1-2025 >/dev/null
IPFS_PATH=$repo "$IPFS" daemon --offline --enable-gc=false >"$WORK/kubo.log" 2>&1 &
kubo=$!
trap 'kill $kubo 2>/dev/null; wait $kubo 2>/dev/null; rm -rf "$WORK"' EXIT
# Ready once its API answers (a bare `ipfs id` would answer from the repo without it).
until [ -f "$repo/api" ] && IPFS_PATH=$repo "$IPFS" --api "$(cat "$repo/api")" id >/dev/null 2>&1; do
  kill -0 $kubo 2>/dev/null || { cat "$WORK/kubo.log" >&2; exit 1; }
  sleep 0.1
done
api=$(cat "$repo/api")                       # /ip4/127.0.0.1/tcp/PORT
url=http://127.0.0.1:${api##*/}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
adds=(); cats=(); pubs=(); opens=(); prss=(); orss=()
for round in 1 2 3; do
  sync; ta=$(IPFS_PATH=$repo t "$IPFS" add -Q "$DATA"); cid=$(cat "$WORK/out")
  sync; tc=$(IPFS_PATH=$repo t sh -c "'$IPFS' cat $cid >/dev/null")
  store="kubo=$url,namespace=/bench-$round"
  sync; tp=$(t "$RSS" publish "$DATA" "$store"); record=$(cat "$WORK/out"); prss+=("$(grep -oE '[0-9]+ KiB' "$WORK/err" | cut -d' ' -f1)")
  sync; to=$(t "$RSS" open "$store" "$record"); orss+=("$(grep -oE '[0-9]+ KiB' "$WORK/err" | cut -d' ' -f1)")
  adds+=("$ta"); cats+=("$tc"); pubs+=("$tp"); opens+=("$to")
  IPFS_PATH=$repo "$IPFS" pin rm "$cid" >/dev/null
done
ta=$(median "${adds[@]}"); tc=$(median "${cats[@]}"); tp=$(median "${pubs[@]}"); to=$(median "${opens[@]}")
echo
echo "| kubo store, $MIB MiB (medians of 3 rounds) | medshare | peak RSS | kubo $("$IPFS" version -n) | ratio |"
echo "|---|---|---|---|---|"
echo "| publish (seal + dag/import) / ipfs add | ${tp}s ($(rate "$tp") GB/s) | $(median "${prss[@]}") KiB | ${ta}s ($(rate "$ta") GB/s) | $(ratio "$tp" "$ta")× the time |"
echo "| open (block/get + decrypt) / ipfs cat | ${to}s ($(rate "$to") GB/s) | $(median "${orss[@]}") KiB | ${tc}s ($(rate "$tc") GB/s) | $(ratio "$to" "$tc")× the time |"
echo "(rounds: add ${adds[*]}; publish ${pubs[*]}; cat ${cats[*]}; open ${opens[*]})"

echo
echo "openssl speed (one core, 1 MiB buffers; RSA in ops/s):"
openssl speed -elapsed -seconds 2 -bytes 1048576 -evp aes-256-gcm 2>/dev/null | tail -n 1
openssl speed -elapsed -seconds 2 -bytes 1048576 -evp sha256 2>/dev/null | tail -n 1
openssl speed -elapsed -seconds 2 rsa2048 rsa3072 rsa4096 2>/dev/null | grep -E "^rsa|sign/s"
