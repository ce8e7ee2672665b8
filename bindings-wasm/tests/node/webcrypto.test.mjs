// Record content through Node's WebCrypto (the default) and through the portable WebAssembly
// code: each opens what the other published, to the byte, and a damaged block is still found.
import { test } from "node:test";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { CidMismatchError, Vault, useWebCrypto } from "../../npm/node.js";
import { MapStore, world } from "./helpers.mjs";

function random(n) {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) webcrypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

test("WebCrypto and the portable code publish the same format, each opening the other's", async (t) => {
  t.after(() => useWebCrypto(true));
  assert.equal(useWebCrypto(), true, "Node 20 has crypto.subtle");
  const store = new MapStore();
  const { vault, alice, bob } = await world(store);
  // Around a chunk (64 KiB), a leaf (1 MiB) and a publish step (4 MiB).
  for (const size of [0, 1, 70_000, 1 << 20, (5 << 20) + 123]) {
    const data = random(size);
    assert.equal(useWebCrypto(true), true);
    const viaWeb = await vault.publish(alice, data);
    await vault.grant(alice, viaWeb, bob);
    assert.equal(useWebCrypto(false), false);
    const viaWasm = await vault.publish(alice, data);
    await vault.grant(alice, viaWasm, bob);
    assert.deepEqual(await vault.openRecord(bob, viaWeb), data, `portable opens WebCrypto's, ${size} bytes`);
    const reader = await Vault.withStore(store);
    useWebCrypto(true);
    assert.deepEqual(await reader.openRecord(bob, viaWasm), data, `WebCrypto opens the portable's, ${size} bytes`);
    assert.deepEqual(await reader.openRecord(alice, viaWeb), data);
    // Same layout either way: envelopes of the same size.
    const [a, b] = [await vault.record(viaWeb), await vault.record(viaWasm)];
    assert.equal(a.size, b.size);
  }
});

test("a damaged block is found on the WebCrypto path", async () => {
  useWebCrypto(true);
  const store = new MapStore();
  const { vault, alice } = await world(store);
  const rec = await vault.publish(alice, random(3 << 20));
  for (const [k, v] of store.blocks) {
    if (k.startsWith("bafkrei") && v.length === 1 << 20) store.blocks.set(k, v.map((b, i) => (i === 100 ? b ^ 1 : b)));
  }
  await assert.rejects(vault.openRecord(alice, rec), (e) => {
    assert.ok(e instanceof CidMismatchError, `${e.name}`);
    assert.equal(e.code, "CidMismatch");
    return true;
  });
});

test("useWebCrypto takes a boolean", () => {
  assert.throws(() => useWebCrypto("yes"), {
    name: "TypeError",
    message: "on must be a boolean, not a string",
  });
});
