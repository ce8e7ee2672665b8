// The core's pinned vectors, read from core/testdata and checked through the JS API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cid } from "../../npm/node.js";
import { TESTDATA, patient } from "./helpers.mjs";

const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

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
  // Kubo's documented example.
  assert.equal(cid(new TextEncoder().encode("hello IPFS\n")), "bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa");
});

test("envelope v1 vectors: CIDs under both profiles and the recipient id", () => {
  const vectors = readFileSync(`${TESTDATA}vectors/envelope-v1.txt`, "utf8")
    .split("\n\n")
    .map((block) => Object.fromEntries(
      block.split("\n").filter((l) => !l.startsWith("#") && l.includes(": ")).map((l) => {
        const i = l.indexOf(": ");
        return [l.slice(0, i), l.slice(i + 2)];
      }),
    ))
    .filter((v) => v.envelope);
  assert.equal(vectors.length, 3);
  for (const v of vectors) {
    const env = hex(v.envelope);
    assert.equal(new TextDecoder().decode(env.slice(0, 6)), "MSHENV");
    assert.equal(cid(env), v.cid_v1, v.name);
    assert.equal(cid(env, "unixfs-v0-2015"), v.cid_v0, v.name);
    assert.equal(v.recipient, patient().id);
  }
});
