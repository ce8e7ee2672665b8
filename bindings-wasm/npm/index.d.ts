// Types of medshare-wasm (hand-written over api.js; checked by tsc in the test suite).
export * from "./errors.js";

/** A key's role on the chain. */
export type Role = "patient" | "doctor" | "authority";
export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView;
export type Who = Identity | string;

/** A block store written in JavaScript. Every method may return a value or a Promise of it.
 * CIDs are passed as CIDv1 text; the vault hash-checks every block it reads back. */
export interface BlockStore {
  get(cid: string): Promise<Uint8Array | null | undefined> | Uint8Array | null | undefined;
  put(cid: string, data: Uint8Array): Promise<void> | void;
  has(cid: string): Promise<boolean> | boolean;
  delete(cid: string): Promise<void> | void;
  head(): Promise<string | null | undefined> | string | null | undefined;
  /** Sets the head to `next` only if it is `expected` now (null = no head); returns whether it did. */
  compareAndSwapHead(expected: string | null, next: string | null): Promise<boolean> | boolean;
}

export interface PublishOptions {
  /** File name, stored encrypted. */
  name?: string;
  /** Media type, stored encrypted (default application/octet-stream). */
  mediaType?: string;
  /** Called with the plaintext bytes sealed so far. */
  onProgress?: (bytes: number) => void;
  /** Opt into break-glass emergency access: the key is split among the network's
   * authorities (more than two thirds needed to open it for a doctor). */
  emergency?: boolean;
}

/** A key share an authority released to an emergency request. */
export interface Release {
  authority: string;
  index: number;
  height: number;
  tx: string;
  wrapped: string;
}

/** A break-glass emergency access as the chain knows it (`request` is its transaction). */
export interface Emergency {
  request: string;
  record: string;
  version: number;
  owner: string;
  doctor: string;
  purpose: string;
  justification: string;
  height: number;
  time: number;
  expires: number;
  threshold: number;
  holders: string[];
  releases: Release[];
  review: { authority: string; outcome: "justified" | "unjustified"; height: number; tx: string } | null;
}

/** An emergency request as its doctor sees it: each share checked, and whether it opens. */
export interface EmergencyStatus extends Emergency {
  shares: { authority: string; index: number; valid: boolean }[];
  open: boolean;
}

export interface GrantOptions {
  /** When the grant ends: a Date or unix seconds. */
  expires?: Date | number;
  /** When the grant ends, in seconds from now by the vault's clock. */
  expiresIn?: number;
  /** Why: an HL7 PurposeOfUse code (default "TREAT"), the only reason in clear on the ledger. */
  purpose?: string;
  /** A free-text reason, encrypted to the patient and the doctor only. */
  note?: string;
}

export interface OpenOptions {
  /** Called with the plaintext bytes decrypted so far. */
  onProgress?: (bytes: number) => void;
}

export interface ConnectOptions {
  /** Validators' CometBFT RPC URLs, tried in order. */
  nodes: string[];
  /** The network's genesis CID. */
  genesis: string;
  /** A kubo RPC URL to read and write blocks (publishing needs one). */
  kubo?: string;
  /** Trustless IPFS gateways to read blocks from. */
  gateways?: string[];
  /** Seconds to wait for a transaction to be certified (default 30). */
  timeout?: number;
}

export interface ImportOptions {
  /** Where the blocks go (default: a new memory store). */
  store?: BlockStore;
  /** The network to accept (required for an empty store). */
  genesis?: string;
}

/** Where a doctor's wrapped data key is on the chain: the transaction that carried it (her grant,
 * or the rewrap that last replaced it) and its index among that transaction's keys. */
export interface KeyRef {
  tx: string;
  index: number;
}

export interface AccessGrant {
  doctor: string;
  version: number;
  expires: number | null;
  purpose: string;
  /** The encrypted note (base64), if any: read it with `grantNote`. */
  note: string | null;
  grantedAt: number;
  key: KeyRef;
}

export interface RecordInfo {
  record: string;
  owner: string;
  version: number;
  content: string;
  size: number;
  commitment: string;
  /** For a doctor's records: that doctor's grant. */
  grant: AccessGrant | null;
}

export interface AuditEvent {
  height: number;
  block: string;
  time: number;
  tx: string;
  author: string;
  event:
    | "published"
    | "granted"
    | "revoked"
    | "emergency-enabled"
    | "emergency"
    | "share-released"
    | "reviewed";
  version?: number;
  content?: string;
  doctor?: string;
  expires?: number | null;
  purpose?: string;
  threshold?: number;
  shares?: number;
  request?: string;
  index?: number;
  outcome?: "justified" | "unjustified";
}

/** A FHIR `Bundle` of type `collection` (FHIR JSON, R5 or R4). */
export interface FhirBundle {
  resourceType: "Bundle";
  id: string;
  type: "collection";
  timestamp: string;
  entry: { resource: { resourceType: string; id: string; [field: string]: unknown } }[];
  [field: string]: unknown;
}

export interface ReceiptFacts {
  genesis: string;
  network: string;
  tx: string;
  kind: string;
  author: string;
  time: number;
  record: string | null;
  doctor: string | null;
  version: number | null;
  purpose: string | null;
  expires: number | null;
  index: number;
  logSize: number;
  height: number;
  block: string;
  signers: string[];
  authorities: number;
}

export interface RecordMetadata {
  name: string;
  mediaType: string;
  size: number;
}

export interface VerifyReport {
  genesis: string;
  network: string;
  blocks: number;
  transactions: number;
  height: number;
  head: string;
  authorities: number;
}

export interface ContentReport {
  records: number;
  blocks: number;
  missing: [string, string][];
}

export interface RevokeReport {
  newVersion: number;
  remaining: string[];
  deletedBlocks: number;
}

export interface RotateReport {
  rewrapped: number;
  rekeyed: string[];
}

export interface ExportReport {
  blocks: number;
  head: string;
  damaged: { record: string; error: string }[];
}

export declare class Identity {
  private constructor();
  static generate(role: Role, bits?: number, name?: string): Identity;
  static fromKeyFile(text: string, passphrase: string): Identity;
  static fromPkcs8Pem(role: Role, pem: string, name?: string): Identity;
  toKeyFile(passphrase: string): string;
  rotated(): Identity;
  readonly id: string;
  readonly keyId: string;
  readonly role: Role;
  readonly name: string;
  readonly bits: number;
  readonly publicKeyPem: string;
}

export declare class Endorsement {
  private constructor();
  static sign(authority: Identity, genesis: string, doctor: Who, licence: string): Endorsement;
  static fromText(text: string): Endorsement;
  toText(): string;
  readonly doctor: string;
  readonly licence: string;
  readonly authority: string;
}

export declare class Vault {
  private constructor();
  static memory(authority?: Identity): Promise<Vault>;
  static openOrCreate(authority: Identity, store?: BlockStore): Promise<Vault>;
  static withStore(store: BlockStore): Promise<Vault>;
  static connect(options: ConnectOptions): Promise<Vault>;
  static importCar(car: Bytes, options?: ImportOptions): Promise<Vault>;
  register(identity: Identity, endorsement?: Endorsement | string): Promise<string>;
  publish(patient: Identity, data: Bytes, options?: PublishOptions): Promise<string>;
  grant(patient: Identity, record: string, doctor: Who, options?: GrantOptions): Promise<void>;
  revoke(patient: Identity, record: string, doctor: Who): Promise<RevokeReport>;
  enableEmergency(patient: Identity, record: string): Promise<string>;
  requestEmergency(
    doctor: Identity,
    record: string,
    justification: string,
    options?: { window?: number },
  ): Promise<string>;
  releaseShare(authority: Identity, request: string): Promise<string>;
  reviewEmergency(
    authority: Identity,
    request: string,
    outcome: "justified" | "unjustified",
  ): Promise<string>;
  emergencies(options?: { unreviewed?: boolean }): Promise<Emergency[]>;
  emergencyStatus(doctor: Identity, request: string): Promise<EmergencyStatus>;
  emergencyJustification(reader: Identity, request: string): Promise<string>;
  rekey(patient: Identity, record: string): Promise<number>;
  rotateKey(old: Identity, next: Identity): Promise<RotateReport>;
  openRecord(identity: Identity, record: string, options?: OpenOptions): Promise<Uint8Array>;
  metadata(identity: Identity, record: string): Promise<RecordMetadata>;
  grantNote(identity: Identity, record: string, doctor: Who): Promise<string | null>;
  recordsFor(who: Who): Promise<RecordInfo[]>;
  record(record: string): Promise<RecordInfo>;
  accessList(record: string): Promise<AccessGrant[]>;
  audit(record: string): Promise<AuditEvent[]>;
  /** What the ledger knows about `record` as an HL7 FHIR Bundle (FHIR JSON; docs/FHIR.md). */
  fhirRecord(record: string, options?: { version?: "R5" | "R4" }): Promise<FhirBundle>;
  /** Every record `patient` owns as one HL7 FHIR Bundle. */
  fhirPatient(patient: Who, options?: { version?: "R5" | "R4" }): Promise<FhirBundle>;
  verify(): Promise<VerifyReport>;
  /** A receipt of transaction `tx` (JSON text), checkable offline with `verifyReceipt`. */
  receipt(tx: string): Promise<string>;
  /** The largest checkpoint this vault verified (JSON text), or null. */
  trustedCheckpoint(): Promise<string | null>;
  /** Trusts a checkpoint kept from an earlier session; rejects with RollbackError/ForkError if
   * this vault's chain does not contain it. */
  trustCheckpoint(checkpoint: string): Promise<void>;
  verifyContent(): Promise<ContentReport>;
  sync(): Promise<number>;
  exportCar(): Promise<{ car: Uint8Array; report: ExportReport }>;
  head(): Promise<string>;
  genesis(): Promise<string>;
  height(): Promise<number>;
}

/** One grant in a light client's proven access list. */
export interface ProvenGrant {
  doctor: string;
  version: number;
  purpose: string;
  granted_at: number;
  expires: number | null;
}

/** A record's access list as a light client proved it. */
export interface RecordAccess {
  record: string;
  owner: string;
  version: number;
  content: string;
  grants: ProvenGrant[];
}

/** A record a doctor can read, as a light client proved it. */
export interface DoctorRecord {
  record: string;
  version: number;
  expires: number | null;
}

export interface LightConnectOptions {
  /** Validators' CometBFT RPC URLs, tried in order. */
  nodes: string[];
  /** The network's genesis CID. */
  genesis: string;
  /** What `trust()` returned in an earlier session. */
  trust?: string;
}

/** A light client: proven answers about the access state from a node, checked against a
 * certificate of the network's authorities (docs/FORMAT.md §12). */
export declare class LightClient {
  private constructor();
  static connect(options: LightConnectOptions): Promise<LightClient>;
  accessList(record: string): Promise<RecordAccess | null>;
  recordsOf(doctor: Who): Promise<DoctorRecord[]>;
  checkpoint(): string | null;
  trust(): string;
}

export declare function storeConformance(factory: () => BlockStore): Promise<void>;
/**
 * Whether vaults seal, open and hash record content with the host's WebCrypto (`crypto.subtle`),
 * the default where the host has it, or in the portable WebAssembly code (`false`). The bytes
 * stored are the same either way. Returns whether WebCrypto is used from now on.
 */
export declare function useWebCrypto(on?: boolean): boolean;
export declare function cid(data: Bytes, profile?: "unixfs-v1-2025" | "unixfs-v0-2015"): string;
export declare function openEnvelope(identity: Identity, envelope: Bytes): Uint8Array;
export declare function errorCodes(): { code: import("./errors.js").ErrorCode; category: import("./errors.js").ErrorCategory }[];
export declare function purposes(): { code: string; display: string }[];
export declare function verifyReceipt(receipt: string, genesis: string): ReceiptFacts;
