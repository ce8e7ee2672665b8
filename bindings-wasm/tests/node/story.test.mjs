// The whole story through the JS API, in Node: identities, publish, grant, doctor reads,
// revoke, refusal, verify, audit, CAR export/import, progress callbacks, JS stores.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AccessRevokedError, Endorsement, Identity, MedshareError, Vault, storeConformance } from "../../npm/node.js";
import { MapStore, authority, patient, text, utf8, world } from "./helpers.mjs";

test("full story: publish, grant two doctors, read, revoke one, refuse, verify, audit", async () => {
  const store = new MapStore();
  const { vault, alice, bob, carol, genesis } = await world(store);
  const labs = utf8('{"resourceType":"Bundle","type":"collection","entry":[]}');
  const rec = await vault.publish(alice, labs, { name: "labs.json", mediaType: "application/fhir+json" });
  assert.match(rec, /^b[a-z2-7]+$/);
  await vault.grant(alice, rec, bob, { purpose: "COC", note: "cardiology second opinion" });
  await vault.grant(alice, rec, carol.id);

  const opened = await vault.openRecord(bob, rec);
  assert.ok(opened instanceof Uint8Array);
  assert.deepEqual(opened, labs);
  assert.deepEqual(await vault.openRecord(alice, rec), labs);
  const meta = await vault.metadata(bob, rec);
  assert.deepEqual(meta, { name: "labs.json", mediaType: "application/fhir+json", size: labs.length });
  assert.equal(await vault.grantNote(bob, rec, bob), "cardiology second opinion");
  assert.equal(await vault.grantNote(alice, rec, bob), "cardiology second opinion");

  const list = await vault.recordsFor(bob);
  assert.equal(list.length, 1);
  assert.equal(list[0].record, rec);
  assert.equal(list[0].owner, alice.id);
  assert.equal(list[0].version, 1);
  assert.equal(list[0].grant.purpose, "COC");
  assert.equal(list[0].grant.expires, null);

  const report = await vault.revoke(alice, rec, carol);
  assert.equal(report.newVersion, 2);
  assert.deepEqual(report.remaining, [bob.id]);
  assert.ok(report.deletedBlocks >= 1);
  await assert.rejects(vault.openRecord(carol, rec), (e) => {
    assert.ok(e instanceof AccessRevokedError);
    assert.ok(e instanceof MedshareError);
    assert.ok(e instanceof Error);
    assert.equal(e.code, "AccessRevoked");
    assert.equal(e.category, "Access");
    assert.equal(e.name, "AccessRevokedError");
    return true;
  });
  assert.deepEqual(await vault.openRecord(bob, rec), labs);
  assert.deepEqual(await vault.recordsFor(carol.id), []);

  const v = await vault.verify();
  assert.equal(v.blocks, 8); // genesis, 3 registrations, publish, 2 grants, revoke
  assert.equal(v.genesis, genesis);
  assert.equal(v.head, await vault.head());
  assert.equal(v.head, await store.head());

  const trail = await vault.audit(rec);
  assert.deepEqual(
    trail.map((e) => [e.event, e.version ?? null, e.doctor ?? null, e.purpose ?? null]),
    [
      ["published", 1, null, null],
      ["granted", 1, bob.id, "COC"],
      ["granted", 1, carol.id, "TREAT"],
      ["revoked", null, carol.id, null],
      ["published", 2, null, null],
      ["granted", 2, bob.id, "COC"],
    ],
  );
  assert.ok(trail.every((e) => e.author && e.tx && e.time > 1.7e9));
  const replica = await Vault.withStore(store);
  assert.equal((await replica.verify()).blocks, 8);
  assert.deepEqual(await replica.openRecord(bob, rec), labs);
});

test("expiring grant, resolved by the vault's clock", async () => {
  const { vault, alice, bob } = await world();
  const rec = await vault.publish(alice, utf8("short-lived"));
  // 2 s, not 1: an expiry of "now + 1" is refused if the block's second has ticked over
  // (a grant must not expire by the time it is issued, rule Expiry).
  await vault.grant(alice, rec, bob, { expiresIn: 2 });
  assert.equal(text(await vault.openRecord(bob, rec)), "short-lived");
  await new Promise((r) => setTimeout(r, 3100));
  await assert.rejects(vault.openRecord(bob, rec), { code: "AccessExpired", name: "AccessExpiredError" });
  await vault.grant(alice, rec, bob, { expires: new Date(Date.now() + 3_600_000) });
  assert.equal(text(await vault.openRecord(bob, rec)), "short-lived");
});

test("progress callbacks and a large record through a JS store", async () => {
  const store = new MapStore();
  const { vault, alice } = await world(store);
  const data = new Uint8Array(5 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i += 997) data[i] = i % 251;
  const sealed = [];
  const rec = await vault.publish(alice, data, { onProgress: (n) => sealed.push(n) });
  // Once per step: 4 MiB through WebCrypto (the default here), 1 MiB in the portable code.
  assert.ok(sealed.length >= 2, `progress called ${sealed.length} times`);
  assert.equal(sealed.at(-1), data.length);
  assert.ok(sealed.every((n, i) => i === 0 || n >= sealed[i - 1]));
  const opened = [];
  const back = await vault.openRecord(alice, rec, { onProgress: (n) => opened.push(n) });
  assert.deepEqual(back, data);
  assert.equal(opened.at(-1), data.length);
  assert.ok(store.blocks.size > 6);
});

test("CAR export and import between vaults", async () => {
  const { vault, alice, bob, genesis } = await world();
  const rec = await vault.publish(alice, utf8("carried"));
  await vault.grant(alice, rec, bob);
  const { car, report } = await vault.exportCar();
  assert.ok(car instanceof Uint8Array);
  assert.deepEqual(report.damaged, []);
  const copy = await Vault.importCar(car, { genesis });
  assert.equal((await copy.verify()).head, await vault.head());
  assert.equal(text(await copy.openRecord(bob, rec)), "carried");
  await assert.rejects(copy.publish(alice, utf8("x")), { code: "ReadOnly" });
  // Any byte container is accepted (an ArrayBuffer here).
  const again = await Vault.importCar(car.buffer.slice(car.byteOffset, car.byteOffset + car.length), { genesis });
  assert.equal(await again.head(), await vault.head());
});

test("calls on one vault run in order", async () => {
  const { vault, alice } = await world();
  const ids = await Promise.all([1, 2, 3, 4].map((i) => vault.publish(alice, utf8(`r${i}`))));
  assert.equal(new Set(ids).size, 4);
  for (const [i, id] of ids.entries()) assert.equal(text(await vault.openRecord(alice, id)), `r${i + 1}`);
  assert.equal((await vault.verify()).blocks, 8);
});

test("rotation keeps the account", async () => {
  const { vault, alice, bob } = await world();
  const rec = await vault.publish(alice, utf8("before"));
  await vault.grant(alice, rec, bob);
  const next = alice.rotated();
  assert.equal(next.id, alice.id);
  assert.notEqual(next.keyId, alice.keyId);
  const r = await vault.rotateKey(alice, next);
  assert.deepEqual(r.rekeyed, [rec]);
  assert.equal(text(await vault.openRecord(next, rec)), "before");
  assert.equal(text(await vault.openRecord(bob, rec)), "before");
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
  const e = Endorsement.sign(authority(), "bafyreiejmfhqsd7he66vgw7t2mtljtc7apzezp4mof2qs2kizyu4bs7wre", back, "L-1");
  assert.equal(Endorsement.fromText(e.toText()).doctor, back.id);
});

test("FHIR bundles of a record and of a patient, with no clear text", async () => {
  const { vault, alice, bob } = await world();
  const rec = await vault.publish(alice, utf8("labs"), { name: "secret-name.json", mediaType: "application/fhir+json" });
  await vault.grant(alice, rec, bob, { purpose: "ETREAT", note: "private words" });
  const b = await vault.fhirRecord(rec);
  assert.equal(b.resourceType, "Bundle");
  const kinds = b.entry.map((e) => e.resource.resourceType);
  assert.deepEqual(kinds, ["Patient", "Practitioner", "DocumentReference", "Provenance", "AuditEvent", "Consent", "AuditEvent"]);
  const consent = b.entry[5].resource;
  assert.equal(consent.status, "active");
  assert.equal(consent.provision[0].purpose[0].code, "ETREAT");
  const override = b.entry[6].resource.code.coding.find((c) => c.code === "110127");
  assert.equal(override.display, "Emergency Override Started");
  const text = JSON.stringify(b);
  assert.ok(!text.includes("private words") && !text.includes("secret-name"));
  const r4 = await vault.fhirPatient(alice, { version: "R4" });
  assert.equal(r4.entry.find((e) => e.resource.resourceType === "Consent").resource.provision.type, "permit");
  await assert.rejects(vault.fhirPatient(bob), { code: "UnknownIdentity" });
  await assert.rejects(vault.fhirRecord(rec, { version: "R3" }), { code: "InvalidInput" });
});
