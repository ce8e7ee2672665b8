/** Every `code` a medshare error can carry (the core's Error::code). */
export type ErrorCode =
  | "WeakKey"
  | "UnsupportedKeySize"
  | "InvalidKey"
  | "WrongPassphrase"
  | "BadSignature"
  | "MalformedEnvelope"
  | "UnsupportedVersion"
  | "NotARecipient"
  | "KeyUnwrap"
  | "ChunkAuthentication"
  | "Truncated"
  | "TrailingData"
  | "SizeMismatch"
  | "RangeOutOfBounds"
  | "TooLarge"
  | "InvalidCid"
  | "CidMismatch"
  | "MalformedNode"
  | "MalformedCar"
  | "NotFound"
  | "StoreLocked"
  | "HeadConflict"
  | "StoreCorrupt"
  | "Backend"
  | "Io"
  | "InvalidChain"
  | "Rejected"
  | "AccessRevoked"
  | "AccessExpired"
  | "AccessDenied"
  | "UnknownRecord"
  | "UnknownIdentity"
  | "ReadOnly"
  | "NoChain"
  | "Rng";

/** Base class of every error the package throws or rejects with. */
export class MedshareError extends Error {
  constructor(message: string);
  /** Stable, machine-readable kind. */
  readonly code: ErrorCode;
  /** Ledger errors (InvalidChain, Rejected): the rule broken. */
  readonly rule?: string;
  /** InvalidChain: the block height. */
  readonly height?: number;
  /** InvalidChain: the offending transaction's CID, when there is one. */
  readonly tx?: string;
  /** ChunkAuthentication: the chunk index. */
  readonly index?: number;
  static readonly code: ErrorCode | undefined;
}

export class WeakKeyError extends MedshareError {
  readonly code: "WeakKey";
  static readonly code: "WeakKey";
}

export class UnsupportedKeySizeError extends MedshareError {
  readonly code: "UnsupportedKeySize";
  static readonly code: "UnsupportedKeySize";
}

export class InvalidKeyError extends MedshareError {
  readonly code: "InvalidKey";
  static readonly code: "InvalidKey";
}

export class WrongPassphraseError extends MedshareError {
  readonly code: "WrongPassphrase";
  static readonly code: "WrongPassphrase";
}

export class BadSignatureError extends MedshareError {
  readonly code: "BadSignature";
  static readonly code: "BadSignature";
}

export class MalformedEnvelopeError extends MedshareError {
  readonly code: "MalformedEnvelope";
  static readonly code: "MalformedEnvelope";
}

export class UnsupportedVersionError extends MedshareError {
  readonly code: "UnsupportedVersion";
  static readonly code: "UnsupportedVersion";
}

export class NotARecipientError extends MedshareError {
  readonly code: "NotARecipient";
  static readonly code: "NotARecipient";
}

export class KeyUnwrapError extends MedshareError {
  readonly code: "KeyUnwrap";
  static readonly code: "KeyUnwrap";
}

export class ChunkAuthenticationError extends MedshareError {
  readonly code: "ChunkAuthentication";
  static readonly code: "ChunkAuthentication";
}

export class TruncatedError extends MedshareError {
  readonly code: "Truncated";
  static readonly code: "Truncated";
}

export class TrailingDataError extends MedshareError {
  readonly code: "TrailingData";
  static readonly code: "TrailingData";
}

export class SizeMismatchError extends MedshareError {
  readonly code: "SizeMismatch";
  static readonly code: "SizeMismatch";
}

export class RangeOutOfBoundsError extends MedshareError {
  readonly code: "RangeOutOfBounds";
  static readonly code: "RangeOutOfBounds";
}

export class TooLargeError extends MedshareError {
  readonly code: "TooLarge";
  static readonly code: "TooLarge";
}

export class InvalidCidError extends MedshareError {
  readonly code: "InvalidCid";
  static readonly code: "InvalidCid";
}

export class CidMismatchError extends MedshareError {
  readonly code: "CidMismatch";
  static readonly code: "CidMismatch";
}

export class MalformedNodeError extends MedshareError {
  readonly code: "MalformedNode";
  static readonly code: "MalformedNode";
}

export class MalformedCarError extends MedshareError {
  readonly code: "MalformedCar";
  static readonly code: "MalformedCar";
}

export class NotFoundError extends MedshareError {
  readonly code: "NotFound";
  static readonly code: "NotFound";
}

export class StoreLockedError extends MedshareError {
  readonly code: "StoreLocked";
  static readonly code: "StoreLocked";
}

export class HeadConflictError extends MedshareError {
  readonly code: "HeadConflict";
  static readonly code: "HeadConflict";
}

export class StoreCorruptError extends MedshareError {
  readonly code: "StoreCorrupt";
  static readonly code: "StoreCorrupt";
}

export class BackendError extends MedshareError {
  readonly code: "Backend";
  static readonly code: "Backend";
}

export class IoError extends MedshareError {
  readonly code: "Io";
  static readonly code: "Io";
}

export class InvalidChainError extends MedshareError {
  readonly code: "InvalidChain";
  static readonly code: "InvalidChain";
}

export class RejectedError extends MedshareError {
  readonly code: "Rejected";
  static readonly code: "Rejected";
}

export class AccessRevokedError extends MedshareError {
  readonly code: "AccessRevoked";
  static readonly code: "AccessRevoked";
}

export class AccessExpiredError extends MedshareError {
  readonly code: "AccessExpired";
  static readonly code: "AccessExpired";
}

export class AccessDeniedError extends MedshareError {
  readonly code: "AccessDenied";
  static readonly code: "AccessDenied";
}

export class UnknownRecordError extends MedshareError {
  readonly code: "UnknownRecord";
  static readonly code: "UnknownRecord";
}

export class UnknownIdentityError extends MedshareError {
  readonly code: "UnknownIdentity";
  static readonly code: "UnknownIdentity";
}

export class ReadOnlyError extends MedshareError {
  readonly code: "ReadOnly";
  static readonly code: "ReadOnly";
}

export class NoChainError extends MedshareError {
  readonly code: "NoChain";
  static readonly code: "NoChain";
}

export class RngError extends MedshareError {
  readonly code: "Rng";
  static readonly code: "Rng";
}

/** The classes by code. */
export const errorClasses: Readonly<{ MedshareError: typeof MedshareError } & Record<ErrorCode, typeof MedshareError>>;
