// Records cross between the Rust CLI and Node in both directions, as CAR files and key files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Identity, Vault } from "../../npm/node.js";
import { MapStore, ROOT, text, utf8 } from "./helpers.mjs";

const PASS = "interop passphrase";
const CLI = process.env.MEDSHARE_CLI ?? join(ROOT, "target", "release", "medshare");

function cli(home, ...args) {
  const out = execFileSync(CLI, ["--home", home, "--json", ...args], {
    env: { ...process.env, MEDSHARE_PASSPHRASE: PASS },
    encoding: "utf8",
  });
  return JSON.parse(out);
}

test("a record published by the CLI opens in Node, and one published in Node opens in the CLI", async (t) => {
  assert.ok(existsSync(CLI), `the medshare CLI is not built at ${CLI} (scripts/test.sh builds it)`);
  const dir = mkdtempSync(join(tmpdir(), "medshare-wasm-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const home = join(dir, "home");
  cli(home, "init");
  cli(home, "identity", "new", "--role", "patient", "--name", "alice", "--bits", "2048");
  cli(home, "identity", "new", "--role", "doctor", "--name", "bob", "--bits", "2048", "--licence", "GMC-9");
  const src = join(dir, "labs.json");
  writeFileSync(src, '{"resourceType":"Bundle","id":"from-the-cli"}');
  const rec = cli(home, "record", "add", "--as", "alice", src).id;
  cli(home, "grant", "--as", "alice", "--record", rec, "--doctor", "bob");
  const car = join(dir, "chain.car");
  cli(home, "export", "--car", car);

  // CLI -> Node: the doctor's CLI key file opens the CLI's record from its CAR.
  const bob = Identity.fromKeyFile(readFileSync(join(home, "identities", "bob.key"), "utf8"), PASS);
  const store = new MapStore();
  const genesis = readFileSync(join(home, "genesis"), "utf8").trim();
  const replica = await Vault.importCar(readFileSync(car), { store, genesis });
  assert.equal(text(await replica.openRecord(bob, rec)), readFileSync(src, "utf8"));
  assert.deepEqual((await replica.recordsFor(bob.id)).map((r) => r.record), [rec]);

  // Node -> CLI: Node appends to the same chain with the CLI's authority, exports a CAR, and
  // the CLI imports it, verifies it and opens the new record as the doctor.
  const authority = Identity.fromKeyFile(readFileSync(join(home, "authority.key"), "utf8"), PASS);
  const alice = Identity.fromKeyFile(readFileSync(join(home, "identities", "alice.key"), "utf8"), PASS);
  const writer = await Vault.openOrCreate(authority, store);
  const rec2 = await writer.publish(alice, utf8("written in Node"), { name: "note.txt", mediaType: "text/plain" });
  await writer.grant(alice, rec2, bob.id);
  const back = join(dir, "back.car");
  writeFileSync(back, (await writer.exportCar()).car);
  const imported = cli(home, "import", "--car", back);
  assert.equal(imported.head, await writer.head());
  assert.equal(imported.applied, 2);
  const out = join(dir, "note.txt");
  cli(home, "record", "get", "--as", "bob", "--record", rec2, "-o", out);
  assert.equal(readFileSync(out, "utf8"), "written in Node");
  assert.equal(cli(home, "verify").ok, true);
});
