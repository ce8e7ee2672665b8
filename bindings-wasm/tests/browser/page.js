// The doctor portal scenario, run entirely in the page: keys are generated here and never
// leave it; blocks live in IndexedDB.
import { Endorsement, Identity, Vault, storeConformance, MedshareError, useWebCrypto } from "/pkg/index.js";
import { openIndexedDbStore, deleteIndexedDbStore } from "/pkg/idb-store.js";

const $ = (id) => document.getElementById(id);
const show = (id, text) => { $(id).textContent = text; };
const results = {};
window.medshareResults = results;

// A store that opens its IndexedDB database on first use (the conformance suite wants a fresh
// store from a synchronous factory).
function lazyStore(name) {
  const opened = deleteIndexedDbStore(name).then(() => openIndexedDbStore(name));
  const call = (m) => async (...args) => (await opened)[m](...args);
  return {
    get: call("get"), put: call("put"), has: call("has"), delete: call("delete"),
    head: call("head"), compareAndSwapHead: call("compareAndSwapHead"),
  };
}

async function main() {
  // The hospital's authority and the patient (in a real deployment: elsewhere).
  const authority = Identity.generate("authority", 2048, "St Elsewhere");
  const alice = Identity.generate("patient", 2048, "Alice");

  // The doctor's key, generated in the browser.
  const doctor = Identity.generate("doctor", 2048, "Dr Bob");
  results.doctor = doctor.id;
  show("doctor", `${doctor.name}: ${doctor.id} (${doctor.bits}-bit RSA)`);

  await deleteIndexedDbStore("medshare-test");
  const store = await openIndexedDbStore("medshare-test");
  const vault = await Vault.openOrCreate(authority, store);
  await vault.register(alice);
  await vault.register(doctor, Endorsement.sign(authority, await vault.genesis(), doctor, "GMC-7"));
  const fhir = JSON.stringify({ resourceType: "Observation", status: "final", code: { text: "HbA1c" }, valueQuantity: { value: 6.1, unit: "%" } });
  const rec = await vault.publish(alice, new TextEncoder().encode(fhir), { name: "hba1c.json", mediaType: "application/fhir+json" });
  await vault.grant(alice, rec, doctor, { purpose: "TREAT", note: "diabetes follow-up" });
  show("record", rec);

  // The doctor's view: a read-only vault over the same IndexedDB store.
  const portal = await Vault.withStore(store);
  const listed = await portal.recordsFor(doctor);
  const plain = new TextDecoder().decode(await portal.openRecord(doctor, listed[0].record));
  results.plaintext = plain;
  results.expected = fhir;
  show("plaintext", plain);

  await vault.revoke(alice, rec, doctor.id);
  await portal.sync();
  try {
    await portal.openRecord(doctor, rec);
    results.revoked = "opened (wrong)";
  } catch (e) {
    results.revoked = e instanceof MedshareError ? `${e.name} (${e.code})` : String(e);
  }
  show("revoked", results.revoked);
  const v = await portal.verify();
  results.verified = v.blocks;
  show("verified", `${v.blocks} blocks, ${v.transactions} transactions, head ${v.head}`);
  store.close();

  let n = 0;
  await storeConformance(() => lazyStore(`medshare-conformance-${n++}`));
  results.conformance = "passed";
  show("conformance", `passed (${n} fresh stores)`);

  // Chromium's WebCrypto and the portable code each open what the other published (5 MiB).
  results.webCrypto = useWebCrypto();
  const five = new Uint8Array(5 * 1024 * 1024 + 123);
  for (let off = 0; off < five.length; off += 65536) crypto.getRandomValues(five.subarray(off, Math.min(five.length, off + 65536)));
  const both = await Vault.openOrCreate(authority);
  await both.register(alice);
  results.interop = [];
  for (const [first, second] of [[true, false], [false, true]]) {
    useWebCrypto(first);
    const r = await both.publish(alice, five);
    useWebCrypto(second);
    const back = await both.openRecord(alice, r);
    results.interop.push(back.length === five.length && back.every((b, i) => b === five[i]) ? "ok" : "differs");
  }
  useWebCrypto(true);
  show("interop", `WebCrypto ${results.webCrypto ? "on" : "absent"}; published by one, opened by the other: ${results.interop.join(", ")}`);

  // Responsiveness: a 10 ms timer keeps ticking while 100 MB are sealed and opened.
  const big = new Uint8Array(100 * 1000 * 1000);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  const mem = await Vault.openOrCreate(authority);
  await mem.register(alice);
  let t0 = performance.now();
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks += 1;
  }, 10);
  let lastFrame = performance.now();
  let maxFrameGap = 0;
  let frames = 0;
  let running = true;
  const frame = () => {
    const now = performance.now();
    maxFrameGap = Math.max(maxFrameGap, now - lastFrame);
    lastFrame = now;
    frames += 1;
    if (running) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  let progressCalls = 0;
  t0 = performance.now();
  const id = await mem.publish(alice, big, { onProgress: () => progressCalls++ });
  const t1 = performance.now();
  const back = await mem.openRecord(alice, id, { onProgress: () => progressCalls++ });
  const t2 = performance.now();
  clearInterval(timer);
  running = false;
  const same = back.length === big.length && back.every((b, i) => b === big[i]);
  Object.assign(results, {
    sealMs: t1 - t0, openMs: t2 - t1, maxGapMs: maxGap, ticks, frames, maxFrameGapMs: maxFrameGap, progressCalls, bigRoundTrip: same,
  });
  show("responsive", `publish ${(t1 - t0).toFixed(0)} ms, open ${(t2 - t1).toFixed(0)} ms; ` +
    `${frames} frames painted, longest between frames ${maxFrameGap.toFixed(0)} ms; ` +
    `10 ms timer ticked ${ticks} times, longest gap ${maxGap.toFixed(0)} ms; ${progressCalls} progress calls; round trip ${same ? "exact" : "WRONG"}`);
}

main().then(
  () => { $("status").dataset.state = "done"; show("status", "done"); },
  (e) => { results.error = `${e?.name}: ${e?.message}`; $("status").dataset.state = "error"; show("status", results.error); },
);
