// The public API of medshare-wasm, re-exported by both entry modules (index.js for browsers and
// bundlers, node.js for Node) once they have loaded the WebAssembly module.
//
// These classes are the binding's argument checks: every argument's type is checked here, in
// JavaScript, before anything reaches wasm memory (a wrong type is a TypeError, thrown or as a
// rejected Promise, never a crash or a hung vault), an Identity is accepted wherever an id is,
// and byte inputs may be a Uint8Array, any typed-array view or an ArrayBuffer. Everything else
// is the core's.
import * as wasm from "./wasm/medshare_wasm.js";

export * from "./errors.js";

const TOKEN = Symbol("medshare-internal");

function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `a ${v.constructor?.name ?? "object"}`;
  return `a ${typeof v}`;
}

function fail(what, expected, v) {
  throw new TypeError(`${what} must be ${expected}, not ${describe(v)}`);
}

function str(v, what) {
  if (typeof v !== "string") fail(what, "a string", v);
  return v;
}

function optStr(v, what) {
  return v === undefined || v === null ? undefined : str(v, what);
}

function optBool(v, what) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") fail(what, "a boolean", v);
  return v;
}

function bytes(v, what) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  fail(what, "a Uint8Array, a typed array or an ArrayBuffer", v);
}

function func(v, what) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "function") fail(what, "a function", v);
  return v;
}

function obj(v, what) {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) fail(what, "an options object", v);
  return v;
}

function identity(v, what) {
  if (!(v instanceof Identity)) fail(what, "an Identity", v);
  return v._raw;
}

/** An id from an Identity or an id string. */
function idOf(v, what) {
  if (v instanceof Identity) return v.id;
  if (typeof v === "string") return v;
  fail(what, "an Identity or an identity id string", v);
}

function seconds(v, what) {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(what, "a non-negative number of seconds", v);
  return v;
}

/** A patient's, doctor's or authority's RSA key pair. The private key never leaves this object
 * except as an encrypted key file (`toKeyFile`). */
export class Identity {
  constructor(raw, token) {
    if (token !== TOKEN) throw new TypeError("use Identity.generate, fromKeyFile or fromPkcs8Pem");
    this._raw = raw;
  }

  /** Generates a key pair: `bits` 2048, 3072 (default) or 4096. */
  static generate(role, bits = 3072, name = "") {
    if (typeof bits !== "number" || !Number.isInteger(bits)) fail("bits", "an integer", bits);
    return new Identity(wasm.WasmIdentity.generate(str(role, "role"), bits, str(name, "name")), TOKEN);
  }

  /** Imports an encrypted key file (the text `toKeyFile` or the CLI writes). */
  static fromKeyFile(text, passphrase) {
    return new Identity(wasm.WasmIdentity.fromKeyFile(str(text, "the key file text"), str(passphrase, "passphrase")), TOKEN);
  }

  /** Imports an unencrypted PKCS#8 PEM private key. */
  static fromPkcs8Pem(role, pem, name = "") {
    return new Identity(wasm.WasmIdentity.fromPkcs8Pem(str(role, "role"), str(pem, "pem"), str(name, "name")), TOKEN);
  }

  /** Exports the key pair as an encrypted key file (scrypt + AES-256-GCM), as text. */
  toKeyFile(passphrase) {
    return this._raw.toKeyFile(str(passphrase, "passphrase"));
  }

  /** A new key for the same account (see `Vault.rotateKey`). */
  rotated() {
    return new Identity(this._raw.rotated(), TOKEN);
  }

  /** The account id (stable across key rotations). */
  get id() { return this._raw.id(); }
  /** The id of the current key. */
  get keyId() { return this._raw.keyId(); }
  /** `patient`, `doctor` or `authority`. */
  get role() { return this._raw.role(); }
  /** The display name. */
  get name() { return this._raw.name(); }
  /** Modulus size in bits. */
  get bits() { return this._raw.bits(); }
  /** The public key as SPKI PEM. */
  get publicKeyPem() { return this._raw.publicKeyPem(); }
}

/** An authority's endorsement of a doctor's licence, made where the authority key is. */
export class Endorsement {
  constructor(raw, token) {
    if (token !== TOKEN) throw new TypeError("use Endorsement.sign or Endorsement.fromText");
    this._raw = raw;
  }

  /** `authority` endorses `doctor`'s `licence` on the network `genesis`. */
  static sign(authority, genesis, doctor, licence) {
    return new Endorsement(
      wasm.WasmEndorsement.sign(identity(authority, "authority"), str(genesis, "genesis"), idOf(doctor, "doctor"), str(licence, "licence")),
      TOKEN,
    );
  }

  /** Parses the text form (`medshare endorse` writes it). */
  static fromText(text) {
    return new Endorsement(wasm.WasmEndorsement.fromText(str(text, "text")), TOKEN);
  }

  toText() { return this._raw.toText(); }
  get doctor() { return this._raw.doctor(); }
  get licence() { return this._raw.licence(); }
  get authority() { return this._raw.authority(); }
}

function storeOf(v, what) {
  if (v === undefined || v === null) return undefined;
  for (const m of ["get", "put", "has", "delete", "head", "compareAndSwapHead"]) {
    if (typeof v[m] !== "function") fail(what, `a block store (it has no ${m} method)`, v);
  }
  return v;
}

/** A medshare vault: the verified chain and its records, over a block store and a sequencer.
 * Every method returns a Promise; calls on one vault run one at a time, in call order. */
export class Vault {
  constructor(raw, token) {
    if (token !== TOKEN) throw new TypeError("use Vault.memory, openOrCreate, withStore, connect or importCar");
    this._raw = raw;
  }

  /** A vault in memory with its own sequencer: certified by `authority`, or by a throwaway
   * authority (tests, demos). */
  static async memory(authority) {
    if (authority === undefined || authority === null) return new Vault(await wasm.WasmVault.memory(), TOKEN);
    return new Vault(await wasm.WasmVault.openOrCreate(identity(authority, "authority"), undefined), TOKEN);
  }

  /** A vault that can append, certified by `authority`: opens the chain in `store` (default: a
   * new memory store), or creates one there if the store is empty. */
  static async openOrCreate(authority, store) {
    const raw = identity(authority, "authority");
    return new Vault(await wasm.WasmVault.openOrCreate(raw, storeOf(store, "store")), TOKEN);
  }

  /** A read-and-verify vault over the chain in a JavaScript block store. */
  static async withStore(store) {
    if (storeOf(store, "store") === undefined) fail("store", "a block store", store);
    return new Vault(await wasm.WasmVault.withStore(store), TOKEN);
  }

  /** A vault on a medshare network: `nodes` (validators' CometBFT RPC URLs) take the
   * transactions; blocks go through `kubo` (a kubo RPC URL, read and write) or are read from
   * `gateways` (trustless IPFS gateways, read-only); `genesis` names the network. */
  static async connect(options) {
    const o = obj(options, "options");
    if (!Array.isArray(o.nodes) || o.nodes.length === 0) fail("options.nodes", "a non-empty array of URLs", o.nodes);
    o.nodes.forEach((n, i) => str(n, `options.nodes[${i}]`));
    const gateways = o.gateways ?? [];
    if (!Array.isArray(gateways)) fail("options.gateways", "an array of URLs", gateways);
    gateways.forEach((g, i) => str(g, `options.gateways[${i}]`));
    const timeout = o.timeout === undefined ? 30 : seconds(o.timeout, "options.timeout");
    const raw = await wasm.WasmVault.connect(o.nodes, str(o.genesis, "options.genesis"), optStr(o.kubo, "options.kubo"), gateways, timeout * 1000);
    return new Vault(raw, TOKEN);
  }

  /** Imports a CAR (`exportCar`, `medshare export --car`, `ipfs dag export`) into `store`
   * (default: a new memory store), verified before anything is stored; an empty store accepts
   * only the network `genesis`. */
  static async importCar(car, options) {
    const o = obj(options, "options");
    const raw = await wasm.WasmVault.importCar(bytes(car, "car"), storeOf(o.store, "options.store"), optStr(o.genesis, "options.genesis"));
    return new Vault(raw, TOKEN);
  }

  /** Registers a patient, or a doctor with an `Endorsement` (or its text). Resolves to the
   * transaction CID. */
  async register(who, endorsement) {
    const raw = identity(who, "identity");
    if (endorsement === undefined || endorsement === null) return this._raw.registerPatient(raw);
    const e = typeof endorsement === "string" ? Endorsement.fromText(endorsement) : endorsement;
    if (!(e instanceof Endorsement)) fail("endorsement", "an Endorsement or its text", endorsement);
    return this._raw.registerDoctor(raw, e._raw);
  }

  /** Seals `data` for `patient` and publishes it. Resolves to the new record id. */
  async publish(patient, data, options) {
    const o = obj(options, "options");
    return this._raw.publish(
      identity(patient, "patient"),
      bytes(data, "data"),
      optStr(o.name, "options.name") ?? "",
      optStr(o.mediaType, "options.mediaType") ?? "application/octet-stream",
      func(o.onProgress, "options.onProgress"),
      optBool(o.emergency, "options.emergency") ?? false,
    );
  }

  /** Opts the latest version of `record` into break-glass access (as its owner). */
  async enableEmergency(patient, record) {
    return this._raw.enableEmergency(identity(patient, "patient"), str(record, "record"));
  }

  /**
   * Breaks the glass: `doctor` asks for emergency access to `record`, with a `justification`
   * the patient, the doctor and the authorities read. `options.window`: seconds during which
   * shares may be released (default 24 h). Resolves to the request (its transaction CID).
   */
  async requestEmergency(doctor, record, justification, options) {
    const o = obj(options, "options");
    const window = o.window === undefined || o.window === null ? undefined : seconds(o.window, "options.window");
    return this._raw.requestEmergency(
      identity(doctor, "doctor"),
      str(record, "record"),
      str(justification, "justification"),
      window,
    );
  }

  /** Releases `authority`'s key share to the emergency request `request`. */
  async releaseShare(authority, request) {
    return this._raw.releaseShare(identity(authority, "authority"), str(request, "request"));
  }

  /** Records `authority`'s review of `request`: `outcome` is "justified" or "unjustified". */
  async reviewEmergency(authority, request, outcome) {
    return this._raw.reviewEmergency(
      identity(authority, "authority"),
      str(request, "request"),
      str(outcome, "outcome"),
    );
  }

  /** Every emergency access, oldest first (`{unreviewed: true}`: those awaiting review). */
  async emergencies(options) {
    const o = obj(options, "options");
    return this._raw.emergencies(optBool(o.unreviewed, "options.unreviewed") ?? false);
  }

  /** `request` as its doctor sees it: every released share checked, and whether it opens. */
  async emergencyStatus(doctor, request) {
    return this._raw.emergencyStatus(identity(doctor, "doctor"), str(request, "request"));
  }

  /** The justification of `request`, as the patient, the doctor or an authority. */
  async emergencyJustification(reader, request) {
    return this._raw.emergencyJustification(identity(reader, "reader"), str(request, "request"));
  }

  /** Re-keys `record` (its next version under a new key); resolves to the new version. */
  async rekey(patient, record) {
    return this._raw.rekey(identity(patient, "patient"), str(record, "record"));
  }

  /** Grants `doctor` (an Identity or an id) the latest version of `record`. Options:
   * `expires` (a Date or unix seconds), `expiresIn` (seconds from now, by the vault's clock),
   * `purpose` (an HL7 PurposeOfUse code, default "TREAT"), `note` (free text, encrypted to the
   * patient and the doctor only). */
  async grant(patient, record, doctor, options) {
    const o = obj(options, "options");
    let at;
    if (o.expires instanceof Date) at = Math.floor(o.expires.getTime() / 1000);
    else if (o.expires !== undefined && o.expires !== null) at = seconds(o.expires, "options.expires");
    const inSecs = o.expiresIn === undefined || o.expiresIn === null ? undefined : seconds(o.expiresIn, "options.expiresIn");
    return this._raw.grant(
      identity(patient, "patient"),
      str(record, "record"),
      idOf(doctor, "doctor"),
      at,
      inSecs,
      optStr(o.purpose, "options.purpose") ?? "TREAT",
      optStr(o.note, "options.note"),
    );
  }

  /** Revokes `doctor`: the record is re-encrypted under a new key for the remaining grantees. */
  async revoke(patient, record, doctor) {
    return this._raw.revoke(identity(patient, "patient"), str(record, "record"), idOf(doctor, "doctor"));
  }

  /** Replaces `old`'s key by `next` (= `old.rotated()`). */
  async rotateKey(old, next) {
    return this._raw.rotateKey(identity(old, "old"), identity(next, "next"));
  }

  /** Decrypts the latest version of `record` as `identity`. Resolves to the plaintext. */
  async openRecord(who, record, options) {
    const o = obj(options, "options");
    return this._raw.openRecord(identity(who, "identity"), str(record, "record"), func(o.onProgress, "options.onProgress"));
  }

  /** The decrypted name, media type and size (only the envelope's header is read). */
  async metadata(who, record) {
    return this._raw.metadata(identity(who, "identity"), str(record, "record"));
  }

  /** The encrypted note of `doctor`'s grant, as `who` (the patient or that doctor). */
  async grantNote(who, record, doctor) {
    return this._raw.grantNote(identity(who, "identity"), str(record, "record"), idOf(doctor, "doctor"));
  }

  /** What `who` can open: a patient's own records, a doctor's granted ones. */
  async recordsFor(who) {
    return this._raw.recordsFor(idOf(who, "who"));
  }

  /** A record's summary. */
  async record(record) {
    return this._raw.record(str(record, "record"));
  }

  /** Current grants on `record`. */
  async accessList(record) {
    return this._raw.accessList(str(record, "record"));
  }

  /** `record`'s audit trail, oldest first. */
  async audit(record) {
    return this._raw.audit(str(record, "record"));
  }

  /** What the ledger knows about `record` as an HL7 FHIR Bundle (an object; R5 or R4). */
  async fhirRecord(record, { version = "R5" } = {}) {
    return JSON.parse(await this._raw.fhir(str(record, "record"), "", str(version, "version")));
  }

  /** Every record `patient` owns as one HL7 FHIR Bundle (an object; R5 or R4). */
  async fhirPatient(patient, { version = "R5" } = {}) {
    return JSON.parse(await this._raw.fhir("", idOf(patient, "patient"), str(version, "version")));
  }

  /** Re-verifies the whole chain from genesis. */
  async verify() { return this._raw.verify(); }

  /** A receipt of transaction `tx` (JSON text): checkable offline with `verifyReceipt`. */
  async receipt(tx) { return this._raw.receipt(str(tx, "tx")); }

  /** The largest checkpoint this vault verified (JSON text), or null. */
  async trustedCheckpoint() { return this._raw.trustedCheckpoint(); }

  /** Trusts a checkpoint kept from an earlier session (what `trustedCheckpoint` returned): throws
   * `RollbackError`/`ForkError` if this vault's chain does not contain it. */
  async trustCheckpoint(checkpoint) { return this._raw.trustCheckpoint(str(checkpoint, "checkpoint")); }
  /** Checks that every current record version's content is present and intact. */
  async verifyContent() { return this._raw.verifyContent(); }
  /** Applies blocks appended since this vault last looked; resolves to how many. */
  async sync() { return this._raw.sync(); }
  /** The chain and the current records as a CARv1 file; resolves to `{ car, report }`. */
  async exportCar() { return this._raw.exportCar(); }
  /** The verified head (the latest block's certificate). */
  async head() { return this._raw.head(); }
  /** The network's genesis CID. */
  async genesis() { return this._raw.genesis(); }
  /** The latest block's height. */
  async height() { return this._raw.height(); }
}

/** A light client of a medshare network: asks a node for a record's access list or the records
 * a doctor can read, and believes only what is proven against a certificate of the network's
 * authorities. Holds nothing but the genesis CID and its trust (`trust()`, to keep). */
export class LightClient {
  constructor(raw, token) {
    if (token !== TOKEN) throw new TypeError("use LightClient.connect");
    this._raw = raw;
  }

  /** Connects through `nodes` (validators' CometBFT RPC URLs) to the network `genesis`;
   * `trust` is what `trust()` returned in an earlier session. */
  static async connect(options) {
    const o = obj(options, "options");
    if (!Array.isArray(o.nodes) || o.nodes.length === 0) fail("options.nodes", "a non-empty array of URLs", o.nodes);
    o.nodes.forEach((n, i) => str(n, `options.nodes[${i}]`));
    const raw = await wasm.WasmLightClient.connect(o.nodes, str(o.genesis, "options.genesis"), optStr(o.trust, "options.trust"));
    return new LightClient(raw, TOKEN);
  }

  /** The record's proven access list `{ record, owner, version, content, grants }`, or null. */
  async accessList(record) { return this._raw.accessList(str(record, "record")); }
  /** The records the doctor can read, proven: `[{ record, version, expires }]`. */
  async recordsOf(doctor) { return this._raw.recordsOf(idOf(doctor, "doctor")); }
  /** The largest checkpoint verified so far (JSON text), or null. */
  checkpoint() { return this._raw.checkpoint() ?? null; }
  /** What this client trusts (JSON text), to pass to `connect` next time. */
  trust() { return this._raw.trust(); }
}

/** Runs the core's block-store conformance suite against stores made by `factory`. */
export async function storeConformance(factory) {
  if (typeof factory !== "function") fail("factory", "a function", factory);
  return wasm.storeConformance(factory);
}

/**
 * Whether vaults seal, open and hash record content with the host's WebCrypto
 * (`crypto.subtle`: AES-256-GCM of the envelope's chunks, SHA-256 of its blocks), the default
 * where the host has it, or in the portable WebAssembly code (`false`). The bytes stored are the
 * same either way. Returns whether WebCrypto is used from now on.
 */
export function useWebCrypto(on = true) {
  if (typeof on !== "boolean") fail("on", "a boolean", on);
  return wasm.setWebCrypto(on);
}

/** The root CID `ipfs add` prints for `data` under `profile`. */
export function cid(data, profile = "unixfs-v1-2025") {
  return wasm.cid(bytes(data, "data"), str(profile, "profile"));
}

/** Opens a raw envelope as `identity`; returns the plaintext. */
export function openEnvelope(who, envelope) {
  return wasm.openEnvelope(identity(who, "identity"), bytes(envelope, "envelope"));
}

/** Every error code with its category: `[{ code, category }]`. */
export function errorCodes() {
  return wasm.errorCatalog().map(([code, category]) => ({ code, category }));
}

/** Checks a receipt (JSON text) offline against the network `genesis`; what it proves. */
export function verifyReceipt(receipt, genesis) {
  return wasm.verifyReceipt(str(receipt, "receipt"), str(genesis, "genesis"));
}

/** Every purpose code with its display name: `[{ code, display }]`. */
export function purposes() {
  return wasm.purposes().map(([code, display]) => ({ code, display }));
}
