// Receipts: a grant and a revocation proven to someone who holds only the genesis CID.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidProofError, WrongGenesisError, verifyReceipt } from "../../npm/node.js";
import { MapStore, utf8, world } from "./helpers.mjs";

test("receipts of a grant and a revocation verify offline; a changed one does not", async () => {
  const { vault, alice, bob, genesis } = await world(new MapStore());
  const rec = await vault.publish(alice, utf8('{"resourceType":"Bundle"}'), { mediaType: "application/fhir+json" });
  await vault.grant(alice, rec, bob, { purpose: "COC" });
  const txOf = async (event) => (await vault.audit(rec)).find((e) => e.event === event).tx;
  const grantTx = await txOf("granted");
  const kept = await vault.receipt(grantTx);
  await vault.revoke(alice, rec, bob);
  const revokeTx = await txOf("revoked");
  const proof = await vault.receipt(revokeTx);
  assert.ok(proof.length < 8192, `${proof.length} bytes`);

  const g = verifyReceipt(kept, genesis);
  assert.equal(g.kind, "Grant");
  assert.equal(g.tx, grantTx);
  assert.equal(g.record, rec);
  assert.equal(g.doctor, bob.id);
  assert.equal(g.purpose, "COC");
  assert.equal(g.author, alice.id);
  const r = verifyReceipt(proof, genesis);
  assert.equal(r.kind, "Revoke");
  assert.equal(r.doctor, bob.id);
  assert.ok(r.index > g.index && r.logSize > r.index);
  assert.equal(r.signers.length, r.authorities);

  const keptText = await vault.trustedCheckpoint();
  await vault.trustCheckpoint(keptText); // its own: contained
  await assert.rejects(vault.trustCheckpoint("{}"), { code: "InvalidInput" });
  const cp = JSON.parse(keptText);
  assert.equal(cp.genesis, genesis);
  assert.ok(cp.size >= r.logSize);

  // Another network's genesis (any other CID): the receipt is not about it.
  const elsewhere = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
  assert.throws(() => verifyReceipt(proof, elsewhere), WrongGenesisError);
  const doc = JSON.parse(proof);
  doc.transaction.index += 1;
  assert.throws(() => verifyReceipt(JSON.stringify(doc), genesis), (e) => {
    assert.ok(e instanceof InvalidProofError);
    assert.match(e.message, /leaf/);
    return true;
  });
});
