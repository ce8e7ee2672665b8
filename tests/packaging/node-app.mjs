// A scratch Node app that installed the packed npm tarball.
import { Endorsement, Identity, Vault, cid, AccessRevokedError } from "medshare-wasm";

const hospital = Identity.generate("authority", 2048, "St Elsewhere");
const alice = Identity.generate("patient", 2048, "alice");
const bob = Identity.generate("doctor", 2048, "bob");
const vault = await Vault.memory(hospital);
await vault.register(alice);
await vault.register(bob, Endorsement.sign(hospital, await vault.genesis(), bob, "GMC-1"));
const record = await vault.publish(alice, new TextEncoder().encode("{}"), { mediaType: "application/fhir+json" });
await vault.grant(alice, record, bob);
if (new TextDecoder().decode(await vault.openRecord(bob, record)) !== "{}") throw new Error("read");
await vault.revoke(alice, record, bob);
await vault.openRecord(bob, record).then(
  () => { throw new Error("revoked doctor could read"); },
  (e) => { if (!(e instanceof AccessRevokedError)) throw e; },
);
console.log(`npm tarball in Node: ok; cid ${cid(new TextEncoder().encode("hello IPFS\n"))}`);
