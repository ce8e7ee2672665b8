// The doctor, in Node with the npm package (WebAssembly). Usage:
//   doctor.mjs keygen WORKDIR                               makes the doctor's key and id
//   doctor.mjs register WORKDIR RPC KUBO GENESIS            registers with the endorsement
//   doctor.mjs read WORKDIR RPC GATEWAY GENESIS [refused]   reads through a trustless gateway
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AccessRevokedError, Endorsement, Identity, Vault } from "../../bindings-wasm/npm/node.js";

const [cmd, work, rpc, store, genesis, expect] = process.argv.slice(2);
const PASS = "cross-language passphrase";
const key = () => Identity.fromKeyFile(readFileSync(join(work, "doctor.key"), "utf8"), PASS);

if (cmd === "keygen") {
  const bob = Identity.generate("doctor", 2048, "bob");
  writeFileSync(join(work, "doctor.key"), bob.toKeyFile(PASS));
  writeFileSync(join(work, "doctor.id"), bob.id);
  console.log(`node: doctor ${bob.id} made a key`);
} else if (cmd === "register") {
  const v = await Vault.connect({ nodes: [rpc], genesis, kubo: store });
  await v.register(key(), Endorsement.fromText(readFileSync(join(work, "doctor.endorsement"), "utf8")));
  console.log("node: doctor registered with the hospital's endorsement");
} else if (cmd === "read") {
  const bob = key();
  const v = await Vault.connect({ nodes: [rpc], genesis, gateways: [store] });
  const record = readFileSync(join(work, "record.id"), "utf8").trim();
  // The transaction went through another hospital's node: wait until this one has it.
  const height = Number(readFileSync(join(work, "height"), "utf8"));
  for (let i = 0; (await v.height()) < height; i++) {
    if (i > 100) throw new Error(`node at ${rpc} did not reach block ${height}`);
    await new Promise((r) => setTimeout(r, 200));
    await v.sync();
  }
  if (expect === "refused") {
    try {
      await v.openRecord(bob, record);
      throw new Error("the revoked doctor could still read");
    } catch (e) {
      if (!(e instanceof AccessRevokedError)) throw e;
      console.log(`node: refused as expected (${e.code})`);
    }
  } else {
    const bytes = await v.openRecord(bob, record);
    const expected = readFileSync(join(work, "expected.json"));
    if (Buffer.compare(Buffer.from(bytes), expected) !== 0) throw new Error("the doctor read different bytes");
    const note = await v.grantNote(bob, record, bob);
    if (note !== "from Python") throw new Error(`note ${note}`);
    console.log(`node: read ${bytes.length} bytes through the gateway, byte-exact; note "${note}"`);
  }
} else {
  throw new Error(`unknown command ${cmd}`);
}
