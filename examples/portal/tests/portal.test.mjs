// The doctor portal for real: a local network (validators, kubo with its gateway), a patient
// and a doctor made with the CLI, the built page served on 127.0.0.1, and Debian's headless
// Chromium driven by playwright-core through: load the key, list, open a 10 MB record (hash
// compared), open a FHIR bundle, the audit trail, then a revoke from the CLI and the refusal
// after a refresh. A screenshot of each step goes to target/portal/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ROOT, cli, testnet } from "../../../scripts/js/testnet.mjs";

const PORTAL = fileURLToPath(new URL("../", import.meta.url));
const DIST = join(PORTAL, "dist");
const ARTIFACTS = join(ROOT, "target", "portal");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };

function serve() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const rel = url.pathname === "/" ? "index.html" : decodeURIComponent(url.pathname.slice(1));
    const file = normalize(join(DIST, rel));
    if (!file.startsWith(DIST) || !existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("a doctor reads, audits and is refused in the portal page", { timeout: 600_000 }, async (t) => {
  const net = await testnet();
  t.after(net.stop);
  const [n0, n1] = net.layout.nodes;
  const work = mkdtempSync(join(tmpdir(), "medshare-portal-"));
  const alice = join(work, "alice");
  const bob = join(work, "bob");
  cli(alice, ["init", "--network", join(n0.dir, "network.json")]);
  cli(alice, ["identity", "new", "--role", "patient", "--name", "alice", "--bits", "2048"]);
  cli(bob, ["init", "--network", join(n1.dir, "network.json")]);
  const doctor = cli(bob, ["identity", "new", "--role", "doctor", "--name", "bob", "--bits", "2048"]).id;
  const endorsement = join(work, "bob.endorsement");
  cli(n0.dir, ["endorse", "--doctor", doctor, "--licence", "GMC-7001234", "-o", endorsement], net.passphrase);
  cli(bob, ["identity", "register", "--as", "bob", "--endorsement", endorsement]);

  const scan = join(work, "scan.bin");
  const scanBytes = randomBytes(10 * 1024 * 1024);
  writeFileSync(scan, scanBytes);
  const fhir = join(work, "labs.json");
  writeFileSync(
    fhir,
    JSON.stringify({
      resourceType: "Bundle",
      type: "collection",
      entry: [{ resource: { resourceType: "Observation", code: { text: "Haemoglobin" }, valueQuantity: { value: 13.2, unit: "g/dL" }, effectiveDateTime: "2026-11-20" } }],
    }),
  );
  const big = cli(alice, ["record", "add", "--as", "alice", scan]).record;
  const labs = cli(alice, ["record", "add", "--as", "alice", fhir, "--media-type", "application/fhir+json"]).record;
  for (const r of [big, labs]) cli(alice, ["grant", "--as", "alice", "--record", r, "--doctor", doctor, "--purpose", "TREAT", "--expires", "30d"]);

  // The same 10 MB read from the CLI through the same hospital, for the closing comparison.
  const started = process.hrtime.bigint();
  cli(bob, ["record", "get", "--as", "bob", "--record", big, "-o", join(work, "cli-copy.bin")]);
  const cliMs = Number(process.hrtime.bigint() - started) / 1e6;

  execFileSync(join(PORTAL, "node_modules/.bin/vite"), ["build", "--logLevel", "warn"], { cwd: PORTAL, stdio: "inherit" });
  const server = await serve();
  t.after(() => server.close());
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const url = `http://127.0.0.1:${server.address().port}/?rpc=${encodeURIComponent(`http://127.0.0.1:${n1.ports.rpc}`)}&gateway=${encodeURIComponent(`http://127.0.0.1:${n1.ports.kubo_gateway}`)}&genesis=${net.layout.genesis}`;
  const keyFile = join(bob, "identities", "bob.key");

  async function unlock() {
    await page.goto(url);
    await page.setInputFiles("#keyfile", keyFile);
    await page.fill("#passphrase", "a client passphrase");
    await page.click("#unlock");
    await page.waitForFunction(() => /granted to you/.test(document.getElementById("status").textContent) || !document.getElementById("error").hidden, null, { timeout: 120_000 });
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
  }

  // 1. Load the key, see the two records with their metadata and expiry.
  await unlock();
  assert.equal(await page.locator("#records tbody tr").count(), 2);
  const row = page.locator(`#records tbody tr[data-record="${big}"]`);
  assert.match(await row.textContent(), /scan\.bin.*application\/octet-stream.*10\.0 MiB.*v1.*TREAT/);
  assert.doesNotMatch(await row.textContent(), /never/);
  assert.match(await page.textContent("#who"), new RegExp(doctor));
  // The page keeps the newest checkpoint it verified, for the next visit (rollback protection).
  const kept = async () => JSON.parse(await page.evaluate(() => Object.entries(localStorage).find(([k]) => k.startsWith("medshare.checkpoint."))?.[1] ?? "null"));
  const first = await kept();
  assert.ok(first && first.size >= 1, JSON.stringify(first));
  await shot("1-records");

  // 2. Open the 10 MB record: decrypted in the page, same bytes.
  const opened = Date.now();
  await row.locator("button.open").click();
  await page.waitForFunction(() => document.getElementById("hash").textContent.length === 64 || !document.getElementById("error").hidden, null, { timeout: 300_000 });
  const pageMs = Date.now() - opened;
  assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
  assert.equal(await page.textContent("#hash"), createHash("sha256").update(scanBytes).digest("hex"));
  assert.equal(await page.getAttribute("#download", "download"), "scan.bin");
  await shot("2-opened-10MB");

  // 3. The FHIR bundle is shown readably.
  await page.locator(`#records tbody tr[data-record="${labs}"] button.open`).click();
  await page.waitForSelector("#fhir table.fhir-entries");
  assert.match(await page.textContent("#fhir h3"), /Bundle \(collection\)/);
  assert.match(await page.textContent("#fhir table"), /Observation.*Haemoglobin.*13\.2 g\/dL/);
  await shot("3-fhir");

  // 4. The audit trail.
  await row.locator("button.audit").click();
  await page.waitForSelector("#audit li");
  const events = await page.locator("#audit li").evaluateAll((lis) => lis.map((li) => li.dataset.event));
  assert.deepEqual(events, ["published", "granted"]);
  // A receipt of the grant, made and verified in the page.
  await page.locator("#audit li[data-event=granted] button.receipt").click();
  await page.waitForSelector("#receipt:not([hidden])");
  assert.match(await page.textContent("#receipt-text"), new RegExp(`Receipt verified: Grant of ${big} to you \\(TREAT\\), in block \\d+, signed by \\d of \\d authorities`));
  assert.match(await page.getAttribute("#receipt-download", "download"), /^grant-b[a-z2-7]+\.receipt\.json$/);
  await shot("4-audit");

  // 5. The patient revokes from the CLI; after a refresh the record is refused.
  cli(alice, ["revoke", "--as", "alice", "--record", big, "--doctor", doctor]);
  await unlock();
  assert.equal(await page.locator("#records tbody tr").count(), 1);
  assert.ok((await kept()).size > first.size, "the kept checkpoint moved forward with the revocation");
  await page.locator(`#recent li[data-record="${big}"] button.open`).click();
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.getAttribute("#error", "data-code"), "AccessRevoked");
  assert.match(await page.textContent("#error"), /revoked by the patient/);
  await shot("5-refused");

  assert.deepEqual(problems, []);
  const timing = `10 MB record opened: portal (Chromium, gateway + WASM) ${pageMs} ms, CLI (kubo RPC, native) ${Math.round(cliMs)} ms, same network, same run\n`;
  writeFileSync(join(ARTIFACTS, "timings.txt"), timing);
  console.log(timing.trim());
});
