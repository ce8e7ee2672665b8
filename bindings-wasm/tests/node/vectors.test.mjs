// The core's pinned vectors and negative testkit, read from core/testdata and checked through
// the JS API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Identity, MedshareError, Vault, cid, openEnvelope } from "../../npm/node.js";
import { MapStore, TESTDATA, patient } from "./helpers.mjs";

const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

function blocks(path) {
  return readFileSync(path, "utf8")
    .split("\n\n")
    .map((block) => Object.fromEntries(
      block.split("\n").filter((l) => !l.startsWith("#") && /^[a-z0-9_]+:/.test(l)).map((l) => {
        const i = l.indexOf(":");
        return [l.slice(0, i), l.slice(i + 1).trim()];
      }),
    ))
    .filter((v) => v.name);
}

test("`ipfs add` CIDs of the public vectors (both profiles)", () => {
  let n = 0;
  for (const line of readFileSync(`${TESTDATA}cid-public.tsv`, "utf8").split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const [profile, size, expected] = line.split("\t");
    const data = Uint8Array.from({ length: Number(size) }, (_, i) => i % 251);
    assert.equal(cid(data, profile), expected, `${profile} ${size}`);
    n += 1;
  }
  assert.equal(n, 12);
  assert.equal(cid(new TextEncoder().encode("hello IPFS\n")), "bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa");
});

test("envelope v2 vectors open, with their CIDs and recipient", () => {
  const vectors = blocks(`${TESTDATA}vectors/envelope-v2.txt`);
  assert.equal(vectors.length, 3);
  for (const v of vectors) {
    const env = hex(v.envelope);
    assert.equal(new TextDecoder().decode(env.slice(0, 6)), "MSHENV");
    assert.equal(cid(env), v.cid_v1, v.name);
    assert.equal(cid(env, "unixfs-v0-2015"), v.cid_v0, v.name);
    assert.equal(v.recipient, patient().keyId);
    assert.deepEqual(openEnvelope(patient(), env), hex(v.plaintext));
  }
});

test("every testkit case gives its code", async () => {
  const cases = blocks(`${TESTDATA}testkit/cases.txt`);
  assert.ok(cases.length >= 20);
  for (const c of cases) {
    const data = hex(c.data);
    const run = async () => {
      switch (c.kind) {
        case "envelope":
          return openEnvelope(Identity.fromPkcs8Pem("patient", readFileSync(`${TESTDATA}keys/${c.key}.pem`, "utf8")), data);
        case "keyfile":
          return Identity.fromKeyFile(new TextDecoder().decode(data), c.passphrase);
        case "pkcs8":
          return Identity.fromPkcs8Pem("patient", new TextDecoder().decode(data));
        case "car":
          return Vault.importCar(data, { store: new MapStore(), genesis: c.genesis });
        default:
          throw new Error(`unknown kind ${c.kind}`);
      }
    };
    await assert.rejects(run(), (e) => {
      assert.ok(e instanceof MedshareError, `${c.name}: ${e}`);
      assert.equal(e.code, c.expect, `${c.name}: ${e.message}`);
      return true;
    });
  }
});
