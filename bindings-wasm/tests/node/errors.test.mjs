// Every error kind the JS API can produce, asserted by class and exact code; and the argument
// checks that keep wrong types out of wasm memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as medshare from "../../npm/node.js";
import { Endorsement, Identity, MedshareError, Vault, categoryClasses, cid, errorClasses, errorCodes } from "../../npm/node.js";
import { MapStore, TESTDATA, authority, doctor, patient, utf8, world } from "./helpers.mjs";

const SOME_GENESIS = "bafyreiejmfhqsd7he66vgw7t2mtljtc7apzezp4mof2qs2kizyu4bs7wre";

function expect(code) {
  return (e) => {
    assert.ok(e instanceof MedshareError, `${e} is not a MedshareError`);
    assert.ok(e instanceof medshare[`${code}Error`], `${e.name} is not ${code}Error`);
    assert.equal(e.code, code);
    assert.equal(e.name, `${code}Error`);
    assert.ok(e.message.length > 0);
    return true;
  };
}

test("one Error subclass per core error code, under its category", () => {
  const codes = errorCodes();
  assert.ok(codes.length >= 40);
  assert.deepEqual(Object.keys(errorClasses).filter((k) => k !== "MedshareError").sort(), codes.map((c) => c.code).sort());
  for (const { code, category } of codes) {
    const cls = medshare[`${code}Error`];
    assert.equal(cls, errorClasses[code]);
    assert.equal(cls.code, code);
    const e = new cls("m");
    assert.ok(e instanceof MedshareError && e instanceof Error);
    assert.ok(e instanceof categoryClasses[category], `${code} is not in ${category}`);
    assert.equal(e.code, code);
    assert.equal(e.category, category);
  }
});

test("identity errors", () => {
  const weak = readFileSync(`${TESTDATA}keys/weak-1024.pem`, "utf8");
  assert.throws(() => Identity.fromPkcs8Pem("patient", weak), expect("WeakKey"));
  assert.throws(() => Identity.generate("patient", 1024), expect("WeakKey"));
  assert.throws(() => Identity.generate("patient", 2560), expect("UnsupportedKeySize"));
  assert.throws(() => Identity.fromPkcs8Pem("patient", "not a key"), expect("InvalidKey"));
  assert.throws(() => Identity.fromPkcs8Pem("nurse", weak), expect("InvalidInput"));
  const file = patient().toKeyFile("right");
  assert.throws(() => Identity.fromKeyFile(file, "wrong"), expect("WrongPassphrase"));
  assert.throws(() => Identity.fromKeyFile("garbage", "x"), expect("InvalidKey"));
  assert.throws(() => Identity.fromKeyFile("", "x"), (e) => expect("InvalidKey")(e) && /empty/.test(e.message));
});

test("wrong argument types are TypeErrors, never a crash or a hung vault", async () => {
  const { vault, alice, bob } = await world();
  for (const bad of ["text", 42, null, {}, [1, 2]]) {
    await assert.rejects(vault.publish(alice, bad), TypeError);
  }
  // The vault still works after each refusal (no lock left held).
  const rec = await vault.publish(alice, new Uint8Array([1, 2, 3]).buffer);
  assert.deepEqual(await vault.openRecord(alice, rec), new Uint8Array([1, 2, 3]));
  await assert.rejects(vault.grant(alice, rec, 42), TypeError);
  await assert.rejects(vault.grant(alice, rec, { id: bob.id }), TypeError);
  await vault.grant(alice, rec, bob); // an Identity where an id is taken
  await assert.rejects(vault.openRecord(alice, 42), TypeError);
  await assert.rejects(vault.openRecord("alice", rec), TypeError);
  await assert.rejects(vault.grant(alice, rec, bob, { expires: "2030-01-01" }), TypeError);
  await assert.rejects(vault.grant(alice, rec, bob, { expires: -5 }), TypeError);
  await assert.rejects(vault.grant(alice, rec, bob, { purpose: "HIV follow-up" }), expect("InvalidInput"));
  assert.throws(() => Identity.fromKeyFile(42, "pw"), TypeError);
  assert.throws(() => cid("text"), TypeError);
  assert.equal(cid(new Uint8Array([0, 0, 0, 0]).buffer), cid(new Uint8Array(4)));
  assert.equal(cid(new Uint16Array([1])), cid(new Uint8Array(new Uint16Array([1]).buffer)));
  assert.throws(() => cid(utf8("x"), "unixfs-v9"), expect("InvalidInput"));
  await assert.rejects(vault.recordsFor("not-an-id"), expect("InvalidInput"));
  await assert.rejects(vault.audit("zzz"), expect("InvalidInput"));
  assert.throws(() => new Identity(), TypeError);
  assert.throws(() => new Vault(), TypeError);
  assert.equal((await vault.verify()).blocks, 6);
});

test("access errors", async () => {
  const { vault, alice, bob } = await world();
  const rec = await vault.publish(alice, utf8("private"));
  await assert.rejects(vault.openRecord(bob, rec), expect("AccessDenied"));
  await vault.grant(alice, rec, bob);
  await vault.revoke(alice, rec, bob);
  await assert.rejects(vault.openRecord(bob, rec), expect("AccessRevoked"));
  const fresh = await Vault.openOrCreate(authority());
  await fresh.register(alice);
  await assert.rejects(fresh.openRecord(alice, rec), expect("UnknownRecord"));
  const stranger = Identity.generate("doctor", 2048, "stranger");
  const head = await vault.head();
  await assert.rejects(vault.grant(alice, rec, stranger), expect("Rejected"));
  assert.equal(await vault.head(), head);
  await assert.rejects(vault.grant(bob, rec, bob), (e) => {
    expect("Rejected")(e);
    assert.equal(typeof e.rule, "string");
    return true;
  });
  // A doctor without an endorsement is refused in the core (every binding).
  await assert.rejects(fresh.register(doctor()), expect("InvalidInput"));
  assert.throws(() => Endorsement.sign(authority(), SOME_GENESIS, doctor(), ""), expect("InvalidInput"));
});

test("store and chain errors", async () => {
  await assert.rejects(Vault.withStore(new MapStore()), expect("NoChain"));
  const store = new MapStore();
  const { vault: writer, alice, genesis } = await world(store);
  const rec = await writer.publish(alice, new Uint8Array(300_000).fill(7));
  const reader = await Vault.withStore(store);
  await assert.rejects(reader.register(patient()), expect("ReadOnly"));
  for (const [k, v] of store.blocks) {
    if (k.startsWith("bafkrei")) store.blocks.set(k, v.map((b, i) => (i === 100 ? b ^ 1 : b)));
  }
  await assert.rejects(writer.openRecord(alice, rec), expect("CidMismatch"));
  const broken = new MapStore();
  broken.head = async () => {
    throw new Error("disk on fire");
  };
  await assert.rejects(Vault.withStore(broken), (e) => {
    expect("Backend")(e);
    assert.match(e.message, /disk on fire/);
    return true;
  });
  // A store whose swap always fails is named, not "expected none, found none".
  const stubborn = new MapStore();
  stubborn.compareAndSwapHead = async () => false;
  await assert.rejects(Vault.openOrCreate(authority(), stubborn), (e) => expect("Backend")(e) && /refused to move its head/.test(e.message));
  await assert.rejects(Vault.importCar(utf8("not a car"), { genesis }), expect("MalformedCar"));
});
