// The measurement both benches run (Node: seal-open.mjs; headless Chromium: browser.mjs):
// medshare-wasm publish and openRecord on a memory vault, with the content through WebCrypto
// (the default) and through the portable code, beside the host's own single-shot WebCrypto
// AES-256-GCM of the same bytes. Best of N runs per size; MB = 10^6 bytes.

async function best(runs, fn) {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t);
  }
  return min / 1000;
}

/** `api` is the package's exports; `crypto` the host's WebCrypto; `pem(name)` a fixture key. */
export async function measure({ Identity, Vault, useWebCrypto }, crypto, pem) {
  const authority = Identity.fromPkcs8Pem("authority", await pem("authority"));
  const alice = Identity.fromPkcs8Pem("patient", await pem("patient"));
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
  return rows;
}

/** The rows as a markdown table under `title`. */
export function table(title, rows) {
  return [
    title,
    "| size | content crypto | medshare publish MB/s | WebCrypto encrypt MB/s | time ratio | medshare open MB/s | WebCrypto decrypt MB/s | time ratio |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
