// Node throughput of medshare-wasm seal (publish) and open (openRecord) on a memory vault,
// side by side with Node's built-in WebCrypto AES-256-GCM on the same bytes, in the same run.
//   node bindings-wasm/bench/seal-open.mjs            (after bindings-wasm/scripts/build-wasm.sh)
// Best of N runs per size; MB = 10^6 bytes.
import { webcrypto as crypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { Identity, Vault, useWebCrypto } from "../npm/node.js";

const key = (name) => readFileSync(new URL(`../../core/testdata/keys/${name}-2048.pem`, import.meta.url), "utf8");
const authority = Identity.fromPkcs8Pem("authority", key("authority"));
const alice = Identity.fromPkcs8Pem("patient", key("patient"));

async function best(runs, fn) {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t);
  }
  return min / 1000;
}

// Each size is measured with the content sealed, opened and hashed by WebCrypto (the default)
// and by the portable WebAssembly code (`useWebCrypto(false)`), beside raw WebCrypto AES-GCM.
const rows = [];
for (const [label, size, runs] of [["1 MiB", 1 << 20, 20], ["100 MiB", 100 << 20, 3]]) {
  const data = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) crypto.getRandomValues(data.subarray(off, Math.min(size, off + 65536)));

  const aes = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  let ct;
  const wcSeal = await best(runs, async () => { ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, data); });
  const wcOpen = await best(runs, async () => { await crypto.subtle.decrypt({ name: "AES-GCM", iv }, aes, ct); });

  for (const web of [true, false]) {
    useWebCrypto(web);
    const vault = await Vault.openOrCreate(authority);
    await vault.register(alice);
    let rec;
    const seal = await best(runs, async () => { rec = await vault.publish(alice, data); });
    const open = await best(runs, async () => { await vault.openRecord(alice, rec); });
    const mbs = (s) => (size / s / 1e6).toFixed(1);
    rows.push([label, web ? "WebCrypto" : "portable", mbs(seal), mbs(wcSeal), (seal / wcSeal).toFixed(2),
      mbs(open), mbs(wcOpen), (open / wcOpen).toFixed(2)]);
  }
}
useWebCrypto(true);
console.log(`node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log("| size | content crypto | medshare publish MB/s | WebCrypto encrypt MB/s | time ratio | medshare open MB/s | WebCrypto decrypt MB/s | time ratio |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
