// Node throughput of medshare-wasm publish and openRecord on a memory vault, through WebCrypto
// and through the portable code, side by side with Node's built-in WebCrypto AES-256-GCM on the
// same bytes, in the same run (the measurement is measure.mjs, shared with browser.mjs).
//   node bindings-wasm/bench/seal-open.mjs            (after bindings-wasm/scripts/build-wasm.sh)
import { webcrypto as crypto } from "node:crypto";
import { readFileSync } from "node:fs";
import * as medshare from "../npm/node.js";
import { measure, table } from "./measure.mjs";

const pem = (name) => readFileSync(new URL(`../../core/testdata/keys/${name}-2048.pem`, import.meta.url), "utf8");
const rows = await measure(medshare, crypto, pem);
console.log(table(`node ${process.version}, ${new Date().toISOString().slice(0, 10)}`, rows));
