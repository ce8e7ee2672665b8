// The whole story through the JS API, in Node: identities, publish, grant, doctor reads,
// revoke, refusal, verify, audit, CAR export/import, progress callbacks, JS stores.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AccessRevokedError,
  AuditEvent,
  Identity,
  MedshareError,
  RecordInfo,
  Vault,
  storeConformance,
} from "../../npm/node.js";
import { MapStore, authority, doctor, doctor2, patient, text, utf8 } from "./helpers.mjs";

test("full story: publish, grant two doctors, read, revoke one, refuse, verify, audit", async () => {
  const [alice, bob, carol] = [patient(), doctor(), doctor2()];
  const store = new MapStore();
  const vault = await Vault.openOrCreate(authority(), store);
  await vault.register(alice);
  await vault.register(bob, "GMC-1");
  await vault.register(carol, "GMC-2");

  const labs = utf8('{"resourceType":"Bundle","type":"collection","entry":[]}');
  const rec = await vault.publish(alice, labs, { name: "labs.json", mediaType: "application/fhir+json" });
  assert.match(rec, /^b[a-z2-7]+$/);
  await vault.grant(alice, rec, bob.id, { purpose: "treatment" });
  await vault.grant(alice, rec, carol.id);

  const opened = await vault.openRecord(bob, rec);
  assert.ok(opened instanceof Uint8Array);
  assert.deepEqual(opened, labs);
  assert.deepEqual(await vault.openRecord(alice, rec), labs);
  const meta = await vault.metadata(bob, rec);
  assert.equal(meta.name, "labs.json");
  assert.equal(meta.mediaType, "application/fhir+json");
  assert.equal(meta.size, labs.length);

  const list = await vault.recordsFor(bob.id);
  assert.equal(list.length, 1);
  assert.ok(list[0] instanceof RecordInfo);
  assert.equal(list[0].record, rec);
  assert.equal(list[0].owner, alice.id);
  assert.equal(list[0].version, 1);
  assert.equal(list[0].purpose, "treatment");
  assert.equal(list[0].expires, undefined);

  const report = await vault.revoke(alice, rec, carol.id);
  assert.equal(report.newVersion, 2);
  assert.deepEqual(report.remaining, [bob.id]);
  assert.ok(report.deletedBlocks >= 1);
  await assert.rejects(vault.openRecord(carol, rec), (e) => {
    assert.ok(e instanceof AccessRevokedError);
    assert.ok(e instanceof MedshareError);
    assert.ok(e instanceof Error);
    assert.equal(e.code, "AccessRevoked");
    assert.equal(e.name, "AccessRevokedError");
    return true;
  });
  assert.deepEqual(await vault.openRecord(bob, rec), labs);
  assert.deepEqual(await vault.recordsFor(carol.id), []);

  const v = await vault.verify();
  assert.equal(v.blocks, 8); // genesis, 3 registrations, publish, 2 grants, revoke
  assert.equal(v.head, await vault.head());
  assert.equal(v.head, await store.head());

  const trail = await vault.audit(rec);
  assert.ok(trail.every((e) => e instanceof AuditEvent));
  assert.deepEqual(
    trail.map((e) => [e.kind, e.version ?? null, e.doctor ?? null]),
    [
      ["published", 1, null],
      ["granted", 1, bob.id],
      ["granted", 1, carol.id],
      ["revoked", null, carol.id],
      ["published", 2, null],
      ["granted", 2, bob.id],
    ],
  );
  assert.ok(trail.every((e) => e.author && e.tx && e.time > 1.7e9));

  // A second vault over the same store replays and verifies the chain, read-only.
  const replica = await Vault.withStore(store);
  assert.equal((await replica.verify()).blocks, 8);
  assert.deepEqual(await replica.openRecord(bob, rec), labs);
});

test("expiring grant", async () => {
  const [alice, bob] = [patient(), doctor()];
  const vault = await Vault.openOrCreate(authority());
  await vault.register(alice);
  await vault.register(bob, "GMC-1");
  const rec = await vault.publish(alice, utf8("short-lived"));
  await vault.grant(alice, rec, bob.id, { expires: Math.floor(Date.now() / 1000) + 1 });
  assert.equal(text(await vault.openRecord(bob, rec)), "short-lived");
  await new Promise((r) => setTimeout(r, 2100));
  await assert.rejects(vault.openRecord(bob, rec), { code: "AccessExpired", name: "AccessExpiredError" });
});

test("progress callbacks and a large record through a JS store", async () => {
  const alice = patient();
  const store = new MapStore();
  const vault = await Vault.openOrCreate(authority(), store);
  await vault.register(alice);
  const data = new Uint8Array(5 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i += 997) data[i] = i % 251;
  const sealed = [];
  const rec = await vault.publish(alice, data, { onProgress: (n) => sealed.push(n) });
  assert.ok(sealed.length >= 5, `progress called ${sealed.length} times`);
  assert.equal(sealed.at(-1), data.length);
  assert.ok(sealed.every((n, i) => i === 0 || n >= sealed[i - 1]));
  const opened = [];
  const back = await vault.openRecord(alice, rec, { onProgress: (n) => opened.push(n) });
  assert.deepEqual(back, data);
  assert.equal(opened.at(-1), data.length);
  assert.ok(store.blocks.size > 6);
});

test("CAR export and import between vaults", async () => {
  const [alice, bob] = [patient(), doctor()];
  const vault = await Vault.openOrCreate(authority());
  await vault.register(alice);
  await vault.register(bob, "GMC-1");
  const rec = await vault.publish(alice, utf8("carried"));
  await vault.grant(alice, rec, bob.id);
  const car = await vault.exportCar();
  assert.ok(car instanceof Uint8Array);
  const copy = await Vault.importCar(car);
  assert.equal((await copy.verify()).head, await vault.head());
  assert.equal(text(await copy.openRecord(bob, rec)), "carried");
  await assert.rejects(copy.publish(alice, utf8("x")), { code: "ReadOnly" });
});

test("calls on one vault run in order", async () => {
  const alice = patient();
  const vault = await Vault.openOrCreate(authority());
  await vault.register(alice);
  const ids = await Promise.all([1, 2, 3, 4].map((i) => vault.publish(alice, utf8(`r${i}`))));
  assert.equal(new Set(ids).size, 4);
  for (const [i, id] of ids.entries()) assert.equal(text(await vault.openRecord(alice, id)), `r${i + 1}`);
  assert.equal((await vault.verify()).blocks, 6);
});

test("Vault.memory() works with a throwaway authority", async () => {
  const alice = Identity.generate("patient", 2048, "alice");
  assert.equal(alice.role, "patient");
  assert.equal(alice.bits, 2048);
  assert.match(alice.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  const vault = await Vault.memory();
  await vault.register(alice);
  const rec = await vault.publish(alice, utf8("memory"));
  assert.equal(text(await vault.openRecord(alice, rec)), "memory");
});

test("the core's store conformance suite passes on a JS Map store", async () => {
  await storeConformance(() => new MapStore());
});

test("the conformance suite catches a store that loses writes", async () => {
  class Forgetful extends MapStore {
    async put() {}
  }
  await assert.rejects(storeConformance(() => new Forgetful()), (e) => {
    assert.equal(e.code, "Backend");
    assert.match(e.message, /store conformance/);
    return true;
  });
});

test("key files round-trip and are interchangeable with the CLI's format", () => {
  const alice = patient();
  const file = alice.toKeyFile("correct horse");
  assert.match(file, /^-----BEGIN MEDSHARE IDENTITY-----/);
  const back = Identity.fromKeyFile(file, "correct horse");
  assert.equal(back.id, alice.id);
  assert.equal(back.role, "patient");
  assert.equal(back.name, "alice");
});
