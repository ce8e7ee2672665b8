// Real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) loads the
// package from a server on 127.0.0.1 and runs page.js; this script asserts on the page and
// leaves a screenshot in target/wasm-artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const PKG = fileURLToPath(new URL("../../npm/", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const ARTIFACTS = join(ROOT, "target", "wasm-artifacts");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

function serve() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    let base = HERE;
    let rel = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
    if (rel.startsWith("pkg/")) {
      base = PKG;
      rel = rel.slice(4);
    }
    const file = normalize(join(base, rel));
    if (!file.startsWith(base) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("a doctor portal page opens a granted record in real headless Chromium", { timeout: 300_000 }, async (t) => {
  const server = await serve();
  t.after(() => server.close());
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));

  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', { timeout: 240_000 });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "browser.png"), fullPage: true });
  const r = await page.evaluate(() => window.medshareResults);
  console.log(JSON.stringify({ ...r, expected: undefined, plaintext: undefined }));

  assert.equal(await page.textContent("#status"), "done", r.error);
  assert.deepEqual(problems, []);
  assert.equal(r.plaintext, r.expected);
  assert.equal(await page.textContent("#plaintext"), r.expected);
  assert.match(await page.textContent("#doctor"), /^Dr Bob: b[a-z2-7]+ \(2048-bit RSA\)$/);
  assert.equal(r.revoked, "AccessRevokedError (AccessRevoked)");
  assert.equal(r.verified, 6); // genesis, two registrations, publish, grant, revoke
  assert.equal(r.conformance, "passed");
  assert.equal(r.bigRoundTrip, true);
  // Once per 4 MiB step of each (publish and open through WebCrypto).
  assert.ok(r.progressCalls >= 40, `progress called ${r.progressCalls} times`);
  assert.equal(r.webCrypto, true, "Chromium on 127.0.0.1 (a secure context) has crypto.subtle");
  assert.deepEqual(r.interop, ["ok", "ok"]);
  // The page kept painting and running timers while 100 MB were sealed and opened: no frame
  // and no 10 ms timer waited a quarter of a second (measured: ~40 ms and ~70 ms).
  assert.ok(r.maxFrameGapMs < 250, `longest gap between frames ${r.maxFrameGapMs} ms`);
  assert.ok(r.frames > (r.sealMs + r.openMs) / 100, `only ${r.frames} frames`);
  assert.ok(r.maxGapMs < 250, `longest timer gap ${r.maxGapMs} ms`);
});
