// Headless Chromium throughput of medshare-wasm publish and openRecord on a memory vault, with
// the content through WebCrypto (the default) and through the portable code, side by side with
// Chromium's own WebCrypto AES-256-GCM on the same bytes, in the same page.
//   node bindings-wasm/bench/browser.mjs      (after bindings-wasm/scripts/build-wasm.sh and
//                                              npm ci in bindings-wasm/; uses /usr/bin/chromium)
// Best of N runs per size; MB = 10^6 bytes.
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const PKG = fileURLToPath(new URL("../npm/", import.meta.url));
const KEYS = fileURLToPath(new URL("../../core/testdata/keys/", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

const PAGE = `<!doctype html><meta charset="utf-8"><title>medshare bench</title><script type="module">
import { Identity, Vault, useWebCrypto } from "/pkg/index.js";
const key = async (n) => (await fetch("/keys/" + n + "-2048.pem")).text();
const authority = Identity.fromPkcs8Pem("authority", await key("authority"));
const alice = Identity.fromPkcs8Pem("patient", await key("patient"));
async function best(runs, fn) {
  let min = Infinity;
  for (let i = 0; i < runs; i++) { const t = performance.now(); await fn(); min = Math.min(min, performance.now() - t); }
  return min / 1000;
}
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
window.benchRows = rows;
</script>`;

const server = createServer((req, res) => {
  const path = new URL(req.url, "http://127.0.0.1").pathname;
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    return;
  }
  const [base, rel] = path.startsWith("/pkg/") ? [PKG, path.slice(5)] : [KEYS, path.slice(6)];
  const file = normalize(join(base, rel));
  if (!file.startsWith(base) || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "text/plain" }).end(readFileSync(file));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => window.benchRows, null, { timeout: 600_000, polling: 500 });
  const rows = await page.evaluate(() => window.benchRows);
  console.log(`${browser.version()} (headless), ${new Date().toISOString().slice(0, 10)}`);
  console.log("| size | content crypto | medshare publish MB/s | WebCrypto encrypt MB/s | time ratio | medshare open MB/s | WebCrypto decrypt MB/s | time ratio |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
} finally {
  await browser.close();
  server.close();
}
