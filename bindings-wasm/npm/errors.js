// Error classes of medshare-wasm: one class per core error code (`${code}Error`), under one
// class per category. Every error the package rejects with is one of these, with the core's
// stable `code` and `category`; ledger errors also carry `rule` (and `height`, `tx`),
// chunk authentication failures `chunk`. A wrong argument type is a plain TypeError instead.
// tests/node/errors.test.mjs checks these classes against the core's catalogue.

export class MedshareError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
    this.code = new.target.code;
    this.category = new.target.category;
  }
}

/** Keys, key files, signatures. */
export class IdentityError extends MedshareError {
  static category = "Identity";
}

/** Data that is not what it claims to be: envelopes, CIDs, DAGs, CARs, proofs, rollbacks. */
export class IntegrityError extends MedshareError {
  static category = "Integrity";
}

/** Who may read what. */
export class AccessError extends MedshareError {
  static category = "Access";
}

/** Ledger rules and chain state (`rule` names the rule). */
export class LedgerError extends MedshareError {
  static category = "Ledger";
}

/** Block stores. */
export class StoreError extends MedshareError {
  static category = "Store";
}

/** Nodes, gateways, timeouts. */
export class NetworkError extends MedshareError {
  static category = "Network";
}

/** A malformed or oversized argument value (a wrong argument *type* is a TypeError). */
export class InputError extends MedshareError {
  static category = "InvalidInput";
}

/** The host: files, randomness. */
export class HostError extends MedshareError {
  static category = "Io";
}

export class WeakKeyError extends IdentityError {
  static code = "WeakKey";
}

export class UnsupportedKeySizeError extends IdentityError {
  static code = "UnsupportedKeySize";
}

export class InvalidKeyError extends IdentityError {
  static code = "InvalidKey";
}

export class WrongPassphraseError extends IdentityError {
  static code = "WrongPassphrase";
}

export class BadSignatureError extends IdentityError {
  static code = "BadSignature";
}

export class MalformedEnvelopeError extends IntegrityError {
  static code = "MalformedEnvelope";
}

export class UnsupportedVersionError extends IntegrityError {
  static code = "UnsupportedVersion";
}

export class KeyUnwrapError extends IntegrityError {
  static code = "KeyUnwrap";
}

export class KeyCommitmentError extends IntegrityError {
  static code = "KeyCommitment";
}

export class ChunkAuthenticationError extends IntegrityError {
  static code = "ChunkAuthentication";
}

export class TruncatedError extends IntegrityError {
  static code = "Truncated";
}

export class TrailingDataError extends IntegrityError {
  static code = "TrailingData";
}

export class SizeMismatchError extends IntegrityError {
  static code = "SizeMismatch";
}

export class InvalidCidError extends IntegrityError {
  static code = "InvalidCid";
}

export class CidMismatchError extends IntegrityError {
  static code = "CidMismatch";
}

export class MalformedNodeError extends IntegrityError {
  static code = "MalformedNode";
}

export class MalformedCarError extends IntegrityError {
  static code = "MalformedCar";
}

export class InvalidProofError extends IntegrityError {
  static code = "InvalidProof";
}

export class RollbackError extends IntegrityError {
  static code = "Rollback";
}

export class ForkError extends IntegrityError {
  static code = "Fork";
}

export class NotARecipientError extends AccessError {
  static code = "NotARecipient";
}

export class AccessRevokedError extends AccessError {
  static code = "AccessRevoked";
}

export class AccessExpiredError extends AccessError {
  static code = "AccessExpired";
}

export class AccessDeniedError extends AccessError {
  static code = "AccessDenied";
}

export class EmergencyPendingError extends AccessError {
  static code = "EmergencyPending";
}

export class UnknownRecordError extends AccessError {
  static code = "UnknownRecord";
}

export class UnknownIdentityError extends AccessError {
  static code = "UnknownIdentity";
}

export class InvalidChainError extends LedgerError {
  static code = "InvalidChain";
}

export class RejectedError extends LedgerError {
  static code = "Rejected";
}

export class WrongGenesisError extends LedgerError {
  static code = "WrongGenesis";
}

export class ReadOnlyError extends LedgerError {
  static code = "ReadOnly";
}

export class NoChainError extends LedgerError {
  static code = "NoChain";
}

export class NotFoundError extends StoreError {
  static code = "NotFound";
}

export class StoreLockedError extends StoreError {
  static code = "StoreLocked";
}

export class HeadConflictError extends StoreError {
  static code = "HeadConflict";
}

export class StoreCorruptError extends StoreError {
  static code = "StoreCorrupt";
}

export class BackendError extends StoreError {
  static code = "Backend";
}

export class TimeoutError extends NetworkError {
  static code = "Timeout";
}

export class UnavailableError extends NetworkError {
  static code = "Unavailable";
}

export class InvalidInputError extends InputError {
  static code = "InvalidInput";
}

export class TooLargeError extends InputError {
  static code = "TooLarge";
}

export class RangeOutOfBoundsError extends InputError {
  static code = "RangeOutOfBounds";
}

export class IoError extends HostError {
  static code = "Io";
}

export class RngError extends HostError {
  static code = "Rng";
}

/** Every code's class, by code (the binding constructs errors from it). */
export const errorClasses = {
  MedshareError,
  WeakKey: WeakKeyError,
  UnsupportedKeySize: UnsupportedKeySizeError,
  InvalidKey: InvalidKeyError,
  WrongPassphrase: WrongPassphraseError,
  BadSignature: BadSignatureError,
  MalformedEnvelope: MalformedEnvelopeError,
  UnsupportedVersion: UnsupportedVersionError,
  KeyUnwrap: KeyUnwrapError,
  KeyCommitment: KeyCommitmentError,
  ChunkAuthentication: ChunkAuthenticationError,
  Truncated: TruncatedError,
  TrailingData: TrailingDataError,
  SizeMismatch: SizeMismatchError,
  InvalidCid: InvalidCidError,
  CidMismatch: CidMismatchError,
  MalformedNode: MalformedNodeError,
  MalformedCar: MalformedCarError,
  InvalidProof: InvalidProofError,
  Rollback: RollbackError,
  Fork: ForkError,
  NotARecipient: NotARecipientError,
  AccessRevoked: AccessRevokedError,
  AccessExpired: AccessExpiredError,
  AccessDenied: AccessDeniedError,
  EmergencyPending: EmergencyPendingError,
  UnknownRecord: UnknownRecordError,
  UnknownIdentity: UnknownIdentityError,
  InvalidChain: InvalidChainError,
  Rejected: RejectedError,
  WrongGenesis: WrongGenesisError,
  ReadOnly: ReadOnlyError,
  NoChain: NoChainError,
  NotFound: NotFoundError,
  StoreLocked: StoreLockedError,
  HeadConflict: HeadConflictError,
  StoreCorrupt: StoreCorruptError,
  Backend: BackendError,
  Timeout: TimeoutError,
  Unavailable: UnavailableError,
  InvalidInput: InvalidInputError,
  TooLarge: TooLargeError,
  RangeOutOfBounds: RangeOutOfBoundsError,
  Io: IoError,
  Rng: RngError,
};

/** Every category's class, by the core's category name. */
export const categoryClasses = {
  Identity: IdentityError,
  Integrity: IntegrityError,
  Access: AccessError,
  Ledger: LedgerError,
  Store: StoreError,
  Network: NetworkError,
  InvalidInput: InputError,
  Io: HostError,
};
