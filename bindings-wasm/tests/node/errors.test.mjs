// Every error kind the JS API can produce, asserted by class and exact code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as medshare from "../../npm/node.js";
import { Identity, MedshareError, Vault, cid, errorClasses, errorCodes } from "../../npm/node.js";
import { MapStore, TESTDATA, authority, doctor, patient, utf8 } from "./helpers.mjs";

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

test("one Error subclass per core error code", () => {
  const codes = errorCodes();
  assert.equal(codes.length, 35);
  assert.deepEqual(Object.keys(errorClasses).filter((k) => k !== "MedshareError").sort(), [...codes].sort());
  for (const code of codes) {
    const cls = medshare[`${code}Error`];
    assert.equal(cls, errorClasses[code]);
    assert.equal(cls.code, code);
    const e = new cls("m");
    assert.ok(e instanceof MedshareError && e instanceof Error);
    assert.equal(e.code, code);
  }
});

test("identity errors", () => {
  const weak = readFileSync(`${TESTDATA}keys/weak-1024.pem`, "utf8");
  assert.throws(() => Identity.fromPkcs8Pem("patient", weak), expect("WeakKey"));
  assert.throws(() => Identity.generate("patient", 1024), expect("WeakKey"));
  assert.throws(() => Identity.generate("patient", 2560), expect("UnsupportedKeySize"));
  assert.throws(() => Identity.fromPkcs8Pem("patient", "not a key"), expect("InvalidKey"));
  assert.throws(() => Identity.fromPkcs8Pem("nurse", weak), expect("InvalidKey"));
  const file = patient().toKeyFile("right");
  assert.throws(() => Identity.fromKeyFile(file, "wrong"), expect("WrongPassphrase"));
  assert.throws(() => Identity.fromKeyFile("garbage", "x"), expect("InvalidKey"));
});

test("access errors", async () => {
  const [alice, bob] = [patient(), doctor()];
  const vault = await Vault.openOrCreate(authority());
  await vault.register(alice);
  await vault.register(bob, "GMC-1");
  const rec = await vault.publish(alice, utf8("private"));
  await assert.rejects(vault.openRecord(bob, rec), expect("AccessDenied"));
  await vault.grant(alice, rec, bob.id);
  await vault.revoke(alice, rec, bob.id);
  await assert.rejects(vault.openRecord(bob, rec), expect("AccessRevoked"));
  // A well-formed record id that is not on the chain.
  const other = await (await Vault.openOrCreate(authority())).register(alice).then(async () => rec);
  assert.equal(other, rec);
  const fresh = await Vault.openOrCreate(authority());
  await fresh.register(alice);
  await assert.rejects(fresh.openRecord(alice, rec), expect("UnknownRecord"));
  // A doctor that was never registered: the ledger refuses the grant before writing anything.
  const stranger = Identity.generate("doctor", 2048, "stranger");
  const head = await vault.head();
  await assert.rejects(vault.grant(alice, rec, stranger.id), expect("Rejected"));
  assert.equal(await vault.head(), head);
  // Only the owner may grant.
  await assert.rejects(vault.grant(bob, rec, bob.id), (e) => {
    expect("Rejected")(e);
    assert.equal(typeof e.rule, "string");
    return true;
  });
});

test("argument errors", async () => {
  const vault = await Vault.openOrCreate(authority());
  await assert.rejects(vault.recordsFor("not-an-id"), expect("InvalidKey"));
  await assert.rejects(vault.audit("zzz"), expect("MalformedEnvelope"));
  assert.throws(() => cid(utf8("x"), "unixfs-v9"), expect("InvalidCid"));
  await assert.rejects(
    vault.grant(patient(), "bibaueq2eivdeoscjjjfuytkoj4", doctor().id, { expires: -5 }),
    TypeError,
  );
});

test("store and chain errors", async () => {
  // An empty store and no authority: nothing to open.
  await assert.rejects(Vault.withStore(new MapStore()), expect("NoChain"));

  // A read-only vault cannot append.
  const store = new MapStore();
  const alice = patient();
  const writer = await Vault.openOrCreate(authority(), store);
  await writer.register(alice);
  const rec = await writer.publish(alice, new Uint8Array(300_000).fill(7));
  const reader = await Vault.withStore(store);
  await assert.rejects(reader.register(doctor(), "GMC"), expect("ReadOnly"));

  // A store that returns other bytes than it was given.
  for (const [k, v] of store.blocks) {
    if (k.startsWith("bafkrei")) store.blocks.set(k, v.map((b, i) => (i === 100 ? b ^ 1 : b)));
  }
  await assert.rejects(writer.openRecord(alice, rec), expect("CidMismatch"));

  // A store that throws: its message surfaces as Backend.
  const broken = new MapStore();
  broken.head = async () => {
    throw new Error("disk on fire");
  };
  await assert.rejects(Vault.withStore(broken), (e) => {
    expect("Backend")(e);
    assert.match(e.message, /disk on fire/);
    return true;
  });

  // A second writer appending from a stale head loses the compare-and-swap.
  const shared = new MapStore();
  const a = await Vault.openOrCreate(authority(), shared);
  const b = await Vault.openOrCreate(authority(), shared);
  await a.register(alice);
  await assert.rejects(b.register(doctor(), "GMC"), expect("HeadConflict"));

  // CARs that are not CARs.
  await assert.rejects(Vault.importCar(utf8("not a car")), expect("MalformedCar"));
});

test("chains that do not verify are InvalidChain, with the rule and height", async () => {
  const alice = patient();
  // The head points at a transaction, not a block.
  const store = new MapStore();
  const writer = await Vault.openOrCreate(authority(), store);
  store.current = await writer.register(alice);
  await assert.rejects(Vault.withStore(store), (e) => {
    expect("InvalidChain")(e);
    assert.equal(e.rule, "Encoding");
    assert.equal(e.height, undefined); // unknowable: the head did not decode
    return true;
  });

  // A CAR of another chain imported over this one does not descend from its head.
  const mine = new MapStore();
  const a = await Vault.openOrCreate(authority(), mine);
  await a.register(alice);
  const other = await Vault.openOrCreate(authority());
  await other.register(alice);
  await other.register(doctor(), "GMC");
  await assert.rejects(Vault.importCar(await other.exportCar(), mine), (e) => {
    expect("InvalidChain")(e);
    assert.equal(e.rule, "Parent");
    assert.equal(typeof e.height, "number");
    return true;
  });
});
