// Headless Chromium throughput of medshare-wasm publish and openRecord on a memory vault, with
// the content through WebCrypto (the default) and through the portable code, side by side with
// Chromium's own WebCrypto AES-256-GCM on the same bytes, in the same page (the measurement is
// measure.mjs, shared with seal-open.mjs).
//   node bindings-wasm/bench/browser.mjs      (after bindings-wasm/scripts/build-wasm.sh and
//                                              npm ci in bindings-wasm/; uses /usr/bin/chromium)
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { table } from "./measure.mjs";

const PKG = fileURLToPath(new URL("../npm/", import.meta.url));
const KEYS = fileURLToPath(new URL("../../core/testdata/keys/", import.meta.url));
const BENCH = fileURLToPath(new URL("./", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };

const PAGE = `<!doctype html><meta charset="utf-8"><title>medshare bench</title><script type="module">
import * as medshare from "/pkg/index.js";
import { measure } from "/bench/measure.mjs";
const pem = async (n) => (await fetch("/keys/" + n + "-2048.pem")).text();
window.benchRows = await measure(medshare, crypto, pem);
</script>`;

const server = createServer((req, res) => {
  const path = new URL(req.url, "http://127.0.0.1").pathname;
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    return;
  }
  const [base, rel] = path.startsWith("/pkg/")
    ? [PKG, path.slice(5)]
    : path.startsWith("/bench/") ? [BENCH, path.slice(7)] : [KEYS, path.slice(6)];
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
  console.log(table(`${browser.version()} (headless), ${new Date().toISOString().slice(0, 10)}`, rows));
} finally {
  await browser.close();
  server.close();
}
