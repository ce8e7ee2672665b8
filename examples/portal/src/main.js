// The doctor portal: everything runs in this page. The key file is decrypted here (scrypt,
// in WebAssembly), records are fetched from a trustless IPFS gateway (every block checked
// against its CID) and decrypted here; the chain comes from the same gateway and is verified
// here from the network's genesis, with the head named by a validator's RPC.
import { Identity, MedshareError, Vault, verifyReceipt } from "medshare-wasm";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const k of ["rpc", "gateway", "genesis"]) {
  $(k).value = params.get(k) ?? localStorage.getItem(`medshare.${k}`) ?? "";
}

let me = null; // the unlocked Identity
let vault = null; // a read-only vault over the network
const RECENT = "medshare.recent";

function status(text) {
  $("status").textContent = text;
}

function showError(e) {
  const el = $("error");
  el.hidden = false;
  if (e instanceof MedshareError) {
    el.dataset.code = e.code;
    el.className = `refused ${e.category}`;
    const why = {
      AccessRevoked: "Your access to this record was revoked by the patient.",
      AccessExpired: "Your access to this record has expired.",
      AccessDenied: "This record was never granted to you.",
      WrongPassphrase: "Wrong passphrase for this key file.",
    }[e.code];
    el.textContent = `${e.code}: ${why ?? e.message}`;
  } else {
    el.dataset.code = "Error";
    el.className = "refused";
    el.textContent = String(e?.message ?? e);
  }
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
  delete $("error").dataset.code;
}

function size(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function when(unix) {
  return unix ? new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "never";
}

function recent() {
  try {
    return JSON.parse(localStorage.getItem(RECENT) ?? "[]");
  } catch {
    return [];
  }
}

function remember(record, name) {
  const list = recent().filter((r) => r.record !== record);
  list.unshift({ record, name });
  localStorage.setItem(RECENT, JSON.stringify(list.slice(0, 10)));
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

async function unlock() {
  clearError();
  const file = $("keyfile").files[0];
  if (!file) return showError(new Error("choose your key file first"));
  for (const k of ["rpc", "gateway", "genesis"]) localStorage.setItem(`medshare.${k}`, $(k).value.trim());
  try {
    status("Decrypting your key…");
    const text = await file.text();
    // Let the status paint before scrypt runs.
    await new Promise((r) => setTimeout(r, 0));
    me = Identity.fromKeyFile(text, $("passphrase").value);
    $("passphrase").value = "";
    $("who").textContent = `${me.name || "you"} · ${me.role} · ${me.id}`;
    status("Connecting and verifying the chain…");
    vault = await Vault.connect({
      nodes: [$("rpc").value.trim()],
      genesis: $("genesis").value.trim(),
      gateways: [$("gateway").value.trim()],
    });
    // Never an older history than this browser saw before (a stale gateway or a lying node).
    const saved = localStorage.getItem(checkpointKey());
    if (saved) await vault.trustCheckpoint(saved);
    await list();
  } catch (e) {
    status("");
    showError(e);
  }
}

function checkpointKey() {
  return `medshare.checkpoint.${$("genesis").value.trim()}`;
}

/** Keeps the newest checkpoint this page verified, for the next visit. */
async function keepCheckpoint() {
  const cp = await vault.trustedCheckpoint();
  if (cp) localStorage.setItem(checkpointKey(), cp);
}

async function list() {
  const rows = await vault.recordsFor(me);
  const tbody = $("records").querySelector("tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.record = r.record;
    let meta = { name: "?", mediaType: "?", size: 0 };
    try {
      meta = await vault.metadata(me, r.record);
    } catch (e) {
      meta.name = `(${e.code ?? "unreadable"})`;
    }
    const cells = [r.record, meta.name, meta.mediaType, size(meta.size), `v${r.version}`, r.grant?.purpose ?? "", when(r.grant?.expires)];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    const actions = document.createElement("td");
    actions.append(button("Open", "open", () => open(r.record)), button("Audit", "audit", () => audit(r.record)));
    tr.append(actions);
    tbody.append(tr);
  }
  const ul = $("recent");
  ul.replaceChildren();
  for (const r of recent()) {
    const li = document.createElement("li");
    li.dataset.record = r.record;
    li.append(`${r.name} (${r.record}) `, button("Open", "open", () => open(r.record)));
    ul.append(li);
  }
  $("records-section").hidden = false;
  await keepCheckpoint();
  const height = await vault.height();
  status(`${rows.length} record${rows.length === 1 ? "" : "s"} granted to you · chain verified to block ${height}`);
}

async function open(record) {
  clearError();
  $("viewer").hidden = false;
  $("viewer-id").textContent = record;
  $("hash").textContent = "";
  $("meta").textContent = "";
  $("fhir").replaceChildren();
  $("download").hidden = true;
  const progress = $("progress");
  progress.value = 0;
  const started = performance.now();
  try {
    await vault.sync();
    const meta = await vault.metadata(me, record);
    remember(record, meta.name);
    progress.max = Math.max(1, meta.size);
    status(`Opening ${meta.name}…`);
    // Decryption yields to the event loop between blocks: the progress bar moves.
    const bytes = await vault.openRecord(me, record, { onProgress: (n) => (progress.value = n) });
    progress.value = progress.max;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    $("hash").textContent = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
    const ms = Math.round(performance.now() - started);
    $("meta").textContent = `${meta.name} · ${meta.mediaType} · ${size(meta.size)} · opened in ${ms} ms`;
    $("viewer").dataset.ms = String(ms);
    if (meta.mediaType.includes("json")) showFhir(bytes);
    const a = $("download");
    a.href = URL.createObjectURL(new Blob([bytes], { type: meta.mediaType }));
    a.download = meta.name || `${record}.bin`;
    a.hidden = false;
    status(`Opened ${meta.name}`);
  } catch (e) {
    status("");
    showError(e);
  }
}

/** A FHIR bundle (or any resource) shown as a readable table of its entries. */
function showFhir(bytes) {
  let doc;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return;
  }
  const box = $("fhir");
  const h = document.createElement("h3");
  h.textContent = `${doc.resourceType ?? "JSON"}${doc.type ? ` (${doc.type})` : ""}${doc.id ? ` ${doc.id}` : ""}`;
  box.append(h);
  const entries = (doc.entry ?? []).map((e) => e.resource ?? e);
  if (entries.length) {
    const t = document.createElement("table");
    t.className = "fhir-entries";
    for (const r of entries) {
      const tr = document.createElement("tr");
      const value = r.valueQuantity ? `${r.valueQuantity.value} ${r.valueQuantity.unit ?? ""}` : r.valueString ?? "";
      for (const c of [r.resourceType ?? "", r.code?.text ?? r.code?.coding?.[0]?.display ?? r.id ?? "", value, r.effectiveDateTime ?? ""]) {
        const td = document.createElement("td");
        td.textContent = c;
        tr.append(td);
      }
      t.append(tr);
    }
    box.append(t);
  }
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(doc, null, 2);
  box.append(pre);
}

/** Makes the receipt of transaction `tx`, verifies it here from the genesis alone, offers it. */
async function receipt(tx) {
  clearError();
  try {
    const text = await vault.receipt(tx);
    const f = verifyReceipt(text, $("genesis").value.trim());
    $("receipt-text").textContent =
      `Receipt verified: ${f.kind} of ${f.record} to ${f.doctor === me.id ? "you" : f.doctor}` +
      ` (${f.purpose}), in block ${f.height}, signed by ${f.signers.length} of ${f.authorities} authorities · ${text.length} bytes.`;
    const link = $("receipt-download");
    URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    link.download = `grant-${tx}.receipt.json`;
    $("receipt").hidden = false;
  } catch (e) {
    showError(e);
  }
}

async function audit(record) {
  clearError();
  try {
    const events = await vault.audit(record);
    $("audit-id").textContent = record;
    const ol = $("audit");
    ol.replaceChildren();
    for (const e of events) {
      const li = document.createElement("li");
      li.dataset.event = e.event;
      const who = e.doctor ? ` → ${e.doctor}` : "";
      const extra = e.purpose ? ` (${e.purpose}${e.expires ? `, until ${when(e.expires)}` : ""})` : "";
      li.textContent = `block ${e.height} · ${when(e.time)} · ${e.event}${e.version ? ` v${e.version}` : ""}${who}${extra}`;
      // A grant to me: keep a receipt of it, provable to anyone who knows the network.
      if (e.event === "granted" && e.doctor === me.id) li.append(" ", button("Receipt", "receipt", () => receipt(e.tx)));
      ol.append(li);
    }
    $("audit-section").hidden = false;
  } catch (e) {
    showError(e);
  }
}

$("unlock").addEventListener("click", unlock);
