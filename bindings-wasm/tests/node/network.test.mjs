// The npm package on a medshare network, in Node: a patient publishing through one hospital's
// validator and kubo RPC, a doctor reading through another hospital's trustless gateway, each
// holding only its own key (the hospital's authority key is used here only to endorse).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AccessDeniedError, AccessRevokedError, Endorsement, EmergencyPendingError, RejectedError, Identity, LedgerError, LightClient, NetworkError, Vault, WrongGenesisError } from "../../npm/node.js";
import { testnet } from "../../../scripts/js/testnet.mjs";

/** Another hospital's node commits the same heights a moment after the one a client used. */
async function eventually(check, seconds = 20) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test("a patient and a doctor on the network, over RPC, kubo and a gateway", { timeout: 300_000 }, async (t) => {
  const net = await testnet();
  t.after(net.stop);
  const [n0, n1] = net.layout.nodes;
  const rpc = (n) => `http://127.0.0.1:${n.ports.rpc}`;
  const genesis = net.layout.genesis;

  const patient = Identity.generate("patient", 2048, "alice");
  const doctor = Identity.generate("doctor", 2048, "bob");
  const hospital = Identity.fromKeyFile(readFileSync(join(n0.dir, "authority.key"), "utf8"), net.passphrase);

  const v = await Vault.connect({ nodes: [rpc(n0)], genesis, kubo: `http://127.0.0.1:${n0.ports.kubo_api}` });
  await v.register(patient);
  const d = await Vault.connect({ nodes: [rpc(n1)], genesis, kubo: `http://127.0.0.1:${n1.ports.kubo_api}` });
  await d.register(doctor, Endorsement.sign(hospital, genesis, doctor, "GMC-42"));

  const data = new Uint8Array(1_500_000).map((_, i) => (i * 31) & 0xff);
  const record = await v.publish(patient, data, { name: "scan.bin", mediaType: "application/octet-stream" });
  await v.grant(patient, record, doctor, { purpose: "TREAT", expiresIn: 3600 });

  // The doctor reads through node 1's gateway alone (read-only, every block hash-checked).
  const reader = await Vault.connect({ nodes: [rpc(n1)], genesis, gateways: [`http://127.0.0.1:${n1.ports.kubo_gateway}`] });
  const read = await eventually(async () => {
    await reader.sync();
    return reader.openRecord(doctor, record);
  });
  assert.deepEqual(read, data);
  const [mine] = (await reader.recordsFor(doctor)).filter((r) => r.record === record);
  assert.equal(mine.grant.purpose, "TREAT");

  // A light client with only the genesis CID: proven answers through node 1.
  const light = await LightClient.connect({ nodes: [rpc(n1)], genesis });
  const access = await eventually(async () => {
    const a = await light.accessList(record);
    assert.deepEqual(a.grants.map((g) => g.doctor), [doctor.id]);
    return a;
  });
  assert.equal(access.owner, patient.id);
  assert.equal(access.grants[0].purpose, "TREAT");
  assert.ok(access.grants[0].expires > 0);
  assert.ok((await light.recordsOf(doctor)).some((r) => r.record === record));
  // Another (valid) record id that is on no chain: its absence is proven.
  const absent = record.slice(0, 5) + (record[5] === "a" ? "b" : "a") + record.slice(6);
  assert.equal(await light.accessList(absent), null);
  assert.ok(JSON.parse(light.checkpoint()).height >= 1);
  const again = await LightClient.connect({ nodes: [rpc(n0)], genesis, trust: light.trust() });
  assert.ok(await again.accessList(record));
  await assert.rejects(
    LightClient.connect({ nodes: [rpc(n0)], genesis: "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy" }),
    WrongGenesisError,
  );

  await v.revoke(patient, record, doctor);
  await eventually(async () => {
    await reader.sync();
    await assert.rejects(reader.openRecord(doctor, record), AccessRevokedError);
  });

  // Another network's genesis is refused; nodes that do not answer are a network error.
  await assert.rejects(
    Vault.connect({ nodes: [rpc(n0)], genesis: "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", gateways: [`http://127.0.0.1:${n0.ports.kubo_gateway}`] }),
    LedgerError,
  );
  await assert.rejects(Vault.connect({ nodes: ["http://127.0.0.1:9"], genesis, gateways: ["http://127.0.0.1:9"], timeout: 2 }), NetworkError);
});

test("break-glass: a doctor with no grant reads once both hospitals released their shares", { timeout: 300_000 }, async (t) => {
  const net = await testnet();
  t.after(net.stop);
  const [n0, n1] = net.layout.nodes;
  const rpc = (n) => `http://127.0.0.1:${n.ports.rpc}`;
  const genesis = net.layout.genesis;
  const patient = Identity.generate("patient", 2048, "dana");
  const doctor = Identity.generate("doctor", 2048, "erin");
  const hospital = Identity.fromKeyFile(readFileSync(join(n0.dir, "authority.key"), "utf8"), net.passphrase);
  const v = await Vault.connect({ nodes: [rpc(n0)], genesis, kubo: `http://127.0.0.1:${n0.ports.kubo_api}` });
  await v.register(patient);
  const d = await Vault.connect({ nodes: [rpc(n1)], genesis, kubo: `http://127.0.0.1:${n1.ports.kubo_api}` });
  await d.register(doctor, Endorsement.sign(hospital, genesis, doctor, "GMC-77"));
  const data = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  const record = await v.publish(patient, data, { name: "allergies.pdf", mediaType: "application/pdf", emergency: true });
  await eventually(async () => {
    await d.sync();
    await assert.rejects(d.openRecord(doctor, record), AccessDeniedError);
  });
  await assert.rejects(v.publish(patient, data, { emergency: "yes" }), TypeError);
  const request = await d.requestEmergency(doctor, record, "found unconscious", { window: 3600 });
  // The nodes release by themselves (emergency: auto); until both did, the record stays shut.
  try {
    await d.openRecord(doctor, record);
  } catch (e) {
    assert.ok(e instanceof EmergencyPendingError, String(e));
  }
  const read = await eventually(async () => {
    await d.sync();
    return d.openRecord(doctor, record);
  }, 60);
  assert.deepEqual(read, data);
  const status = await d.emergencyStatus(doctor, request);
  assert.equal(status.open, true);
  assert.ok(status.shares.every((s) => s.valid));
  assert.equal(await d.emergencyJustification(doctor, request), "found unconscious");
  // The patient's client talks to node 0, which commits those heights a moment later.
  await eventually(async () => {
    await v.sync();
    const events = (await v.audit(record)).map((e) => e.event);
    assert.ok(events.includes("emergency") && events.includes("share-released"), events.join());
  });
  assert.ok((await v.emergencies({ unreviewed: true })).some((e) => e.request === request));
  // Hospital 0 endorsed the doctor: another hospital reviews.
  await assert.rejects(v.reviewEmergency(hospital, request, "unjustified"), RejectedError);
  const other = Identity.fromKeyFile(readFileSync(join(n1.dir, "authority.key"), "utf8"), net.passphrase);
  await v.reviewEmergency(other, request, "unjustified");
  assert.ok(!(await v.emergencies({ unreviewed: true })).some((e) => e.request === request));
  assert.equal(await v.rekey(patient, record), 2);
  await eventually(async () => {
    await d.sync();
    await assert.rejects(d.openRecord(doctor, record), AccessDeniedError);
  });
});
