// Shared fixtures for the Node tests of medshare-wasm.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Endorsement, Identity, Vault } from "../../npm/node.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const TESTDATA = `${ROOT}core/testdata/`;

export function fixtureKey(name) {
  return readFileSync(`${TESTDATA}keys/${name}-2048.pem`, "utf8");
}

export const authority = () => Identity.fromPkcs8Pem("authority", fixtureKey("authority"), "authority");
export const patient = () => Identity.fromPkcs8Pem("patient", fixtureKey("patient"), "alice");
export const doctor = () => Identity.fromPkcs8Pem("doctor", fixtureKey("doctor"), "bob");
export const doctor2 = () => Identity.fromPkcs8Pem("doctor", fixtureKey("doctor2"), "carol");

/** A BlockStore over a Map, async like a real one; `blocks` is exposed for tampering tests. */
export class MapStore {
  constructor() {
    this.blocks = new Map();
    this.current = null;
  }
  async get(cid) {
    return this.blocks.get(cid) ?? null;
  }
  async put(cid, data) {
    this.blocks.set(cid, data);
  }
  async has(cid) {
    return this.blocks.has(cid);
  }
  async delete(cid) {
    this.blocks.delete(cid);
  }
  async head() {
    return this.current;
  }
  async compareAndSwapHead(expected, next) {
    if (this.current !== expected) return false;
    this.current = next;
    return true;
  }
}

export const utf8 = (s) => new TextEncoder().encode(s);

/** A vault (memory store, or `store`) certified by the fixture authority, with the patient and
 * doctors registered (doctors with the authority's endorsement). */
export async function world(store) {
  const auth = authority();
  const vault = await Vault.openOrCreate(auth, store);
  const genesis = await vault.genesis();
  const [alice, bob, carol] = [patient(), doctor(), doctor2()];
  await vault.register(alice);
  await vault.register(bob, Endorsement.sign(auth, genesis, bob, "GMC-1"));
  await vault.register(carol, Endorsement.sign(auth, genesis, carol, "GMC-2"));
  return { vault, auth, genesis, alice, bob, carol };
}
export const text = (b) => new TextDecoder().decode(b);
