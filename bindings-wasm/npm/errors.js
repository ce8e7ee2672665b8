// Error classes of medshare-wasm: one subclass of MedshareError per core error kind.
// Every error the package throws or rejects with is one of these, with a stable `code`
// (the core's Error::code). Ledger errors also carry `rule`, `height` and `tx`; chunk
// authentication failures carry `index`.

export class MedshareError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
    this.code = new.target.code;
  }
}

export class WeakKeyError extends MedshareError {
  static code = "WeakKey";
}

export class UnsupportedKeySizeError extends MedshareError {
  static code = "UnsupportedKeySize";
}

export class InvalidKeyError extends MedshareError {
  static code = "InvalidKey";
}

export class WrongPassphraseError extends MedshareError {
  static code = "WrongPassphrase";
}

export class BadSignatureError extends MedshareError {
  static code = "BadSignature";
}

export class MalformedEnvelopeError extends MedshareError {
  static code = "MalformedEnvelope";
}

export class UnsupportedVersionError extends MedshareError {
  static code = "UnsupportedVersion";
}

export class NotARecipientError extends MedshareError {
  static code = "NotARecipient";
}

export class KeyUnwrapError extends MedshareError {
  static code = "KeyUnwrap";
}

export class ChunkAuthenticationError extends MedshareError {
  static code = "ChunkAuthentication";
}

export class TruncatedError extends MedshareError {
  static code = "Truncated";
}

export class TrailingDataError extends MedshareError {
  static code = "TrailingData";
}

export class SizeMismatchError extends MedshareError {
  static code = "SizeMismatch";
}

export class RangeOutOfBoundsError extends MedshareError {
  static code = "RangeOutOfBounds";
}

export class TooLargeError extends MedshareError {
  static code = "TooLarge";
}

export class InvalidCidError extends MedshareError {
  static code = "InvalidCid";
}

export class CidMismatchError extends MedshareError {
  static code = "CidMismatch";
}

export class MalformedNodeError extends MedshareError {
  static code = "MalformedNode";
}

export class MalformedCarError extends MedshareError {
  static code = "MalformedCar";
}

export class NotFoundError extends MedshareError {
  static code = "NotFound";
}

export class StoreLockedError extends MedshareError {
  static code = "StoreLocked";
}

export class HeadConflictError extends MedshareError {
  static code = "HeadConflict";
}

export class StoreCorruptError extends MedshareError {
  static code = "StoreCorrupt";
}

export class BackendError extends MedshareError {
  static code = "Backend";
}

export class IoError extends MedshareError {
  static code = "Io";
}

export class InvalidChainError extends MedshareError {
  static code = "InvalidChain";
}

export class RejectedError extends MedshareError {
  static code = "Rejected";
}

export class AccessRevokedError extends MedshareError {
  static code = "AccessRevoked";
}

export class AccessExpiredError extends MedshareError {
  static code = "AccessExpired";
}

export class AccessDeniedError extends MedshareError {
  static code = "AccessDenied";
}

export class UnknownRecordError extends MedshareError {
  static code = "UnknownRecord";
}

export class UnknownIdentityError extends MedshareError {
  static code = "UnknownIdentity";
}

export class ReadOnlyError extends MedshareError {
  static code = "ReadOnly";
}

export class NoChainError extends MedshareError {
  static code = "NoChain";
}

export class RngError extends MedshareError {
  static code = "Rng";
}

/** The classes by code, as the wasm module looks them up. */
export const errorClasses = Object.freeze({
  MedshareError,
  WeakKey: WeakKeyError,
  UnsupportedKeySize: UnsupportedKeySizeError,
  InvalidKey: InvalidKeyError,
  WrongPassphrase: WrongPassphraseError,
  BadSignature: BadSignatureError,
  MalformedEnvelope: MalformedEnvelopeError,
  UnsupportedVersion: UnsupportedVersionError,
  NotARecipient: NotARecipientError,
  KeyUnwrap: KeyUnwrapError,
  ChunkAuthentication: ChunkAuthenticationError,
  Truncated: TruncatedError,
  TrailingData: TrailingDataError,
  SizeMismatch: SizeMismatchError,
  RangeOutOfBounds: RangeOutOfBoundsError,
  TooLarge: TooLargeError,
  InvalidCid: InvalidCidError,
  CidMismatch: CidMismatchError,
  MalformedNode: MalformedNodeError,
  MalformedCar: MalformedCarError,
  NotFound: NotFoundError,
  StoreLocked: StoreLockedError,
  HeadConflict: HeadConflictError,
  StoreCorrupt: StoreCorruptError,
  Backend: BackendError,
  Io: IoError,
  InvalidChain: InvalidChainError,
  Rejected: RejectedError,
  AccessRevoked: AccessRevokedError,
  AccessExpired: AccessExpiredError,
  AccessDenied: AccessDeniedError,
  UnknownRecord: UnknownRecordError,
  UnknownIdentity: UnknownIdentityError,
  ReadOnly: ReadOnlyError,
  NoChain: NoChainError,
  Rng: RngError,
});
