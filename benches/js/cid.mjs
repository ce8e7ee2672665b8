// The npm ipfs-unixfs-importer computing the root CID of a file under a profile, blocks
// discarded (the CID-only peer of benches/peers.sh).
//   node benches/js/cid.mjs <file> [unixfs-v1-2025|unixfs-v0-2015]
import { createReadStream } from "node:fs";
import { importer } from "ipfs-unixfs-importer";

const [file, profile = "unixfs-v1-2025"] = process.argv.slice(2);
const discard = { put: async (cid) => cid, has: async () => false };
const t = performance.now();
let root;
for await (const entry of importer([{ content: createReadStream(file, { highWaterMark: 1 << 20 }) }], discard, { profile })) {
  root = entry.cid.toString();
}
console.log(`${root} ${((performance.now() - t) / 1000).toFixed(2)}`);
