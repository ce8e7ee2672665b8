/** The core's error codes. */
export type ErrorCode =
  | "WeakKey"
  | "UnsupportedKeySize"
  | "InvalidKey"
  | "WrongPassphrase"
  | "BadSignature"
  | "MalformedEnvelope"
  | "UnsupportedVersion"
  | "KeyUnwrap"
  | "KeyCommitment"
  | "ChunkAuthentication"
  | "Truncated"
  | "TrailingData"
  | "SizeMismatch"
  | "InvalidCid"
  | "CidMismatch"
  | "MalformedNode"
  | "MalformedCar"
  | "InvalidProof"
  | "Rollback"
  | "Fork"
  | "NotARecipient"
  | "AccessRevoked"
  | "AccessExpired"
  | "AccessDenied"
  | "EmergencyPending"
  | "UnknownRecord"
  | "UnknownIdentity"
  | "InvalidChain"
  | "Rejected"
  | "WrongGenesis"
  | "ReadOnly"
  | "NoChain"
  | "NotFound"
  | "StoreLocked"
  | "HeadConflict"
  | "StoreCorrupt"
  | "Backend"
  | "Timeout"
  | "Unavailable"
  | "InvalidInput"
  | "TooLarge"
  | "RangeOutOfBounds"
  | "Io"
  | "Rng"
;
/** The core's error categories. */
export type ErrorCategory =
  | "Identity"
  | "Integrity"
  | "Access"
  | "Ledger"
  | "Store"
  | "Network"
  | "InvalidInput"
  | "Io"
;

export class MedshareError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  /** The broken ledger rule (InvalidChain, Rejected). */
  readonly rule?: string;
  /** The block height (InvalidChain). */
  readonly height?: number;
  /** The transaction index in the block (InvalidChain). */
  readonly tx?: number;
  /** The failed chunk (ChunkAuthentication; absent for the metadata). */
  readonly chunk?: number;
}
export class IdentityError extends MedshareError {}
export class IntegrityError extends MedshareError {}
export class AccessError extends MedshareError {}
export class LedgerError extends MedshareError {}
export class StoreError extends MedshareError {}
export class NetworkError extends MedshareError {}
export class InputError extends MedshareError {}
export class HostError extends MedshareError {}
export class WeakKeyError extends IdentityError {
  readonly code: "WeakKey";
}
export class UnsupportedKeySizeError extends IdentityError {
  readonly code: "UnsupportedKeySize";
}
export class InvalidKeyError extends IdentityError {
  readonly code: "InvalidKey";
}
export class WrongPassphraseError extends IdentityError {
  readonly code: "WrongPassphrase";
}
export class BadSignatureError extends IdentityError {
  readonly code: "BadSignature";
}
export class MalformedEnvelopeError extends IntegrityError {
  readonly code: "MalformedEnvelope";
}
export class UnsupportedVersionError extends IntegrityError {
  readonly code: "UnsupportedVersion";
}
export class KeyUnwrapError extends IntegrityError {
  readonly code: "KeyUnwrap";
}
export class KeyCommitmentError extends IntegrityError {
  readonly code: "KeyCommitment";
}
export class ChunkAuthenticationError extends IntegrityError {
  readonly code: "ChunkAuthentication";
}
export class TruncatedError extends IntegrityError {
  readonly code: "Truncated";
}
export class TrailingDataError extends IntegrityError {
  readonly code: "TrailingData";
}
export class SizeMismatchError extends IntegrityError {
  readonly code: "SizeMismatch";
}
export class InvalidCidError extends IntegrityError {
  readonly code: "InvalidCid";
}
export class CidMismatchError extends IntegrityError {
  readonly code: "CidMismatch";
}
export class MalformedNodeError extends IntegrityError {
  readonly code: "MalformedNode";
}
export class MalformedCarError extends IntegrityError {
  readonly code: "MalformedCar";
}
export class InvalidProofError extends IntegrityError {
  readonly code: "InvalidProof";
}
export class RollbackError extends IntegrityError {
  readonly code: "Rollback";
}
export class ForkError extends IntegrityError {
  readonly code: "Fork";
}
export class NotARecipientError extends AccessError {
  readonly code: "NotARecipient";
}
export class AccessRevokedError extends AccessError {
  readonly code: "AccessRevoked";
}
export class AccessExpiredError extends AccessError {
  readonly code: "AccessExpired";
}
export class AccessDeniedError extends AccessError {
  readonly code: "AccessDenied";
}
export class EmergencyPendingError extends AccessError {
  readonly code: "EmergencyPending";
}
export class UnknownRecordError extends AccessError {
  readonly code: "UnknownRecord";
}
export class UnknownIdentityError extends AccessError {
  readonly code: "UnknownIdentity";
}
export class InvalidChainError extends LedgerError {
  readonly code: "InvalidChain";
}
export class RejectedError extends LedgerError {
  readonly code: "Rejected";
}
export class WrongGenesisError extends LedgerError {
  readonly code: "WrongGenesis";
}
export class ReadOnlyError extends LedgerError {
  readonly code: "ReadOnly";
}
export class NoChainError extends LedgerError {
  readonly code: "NoChain";
}
export class NotFoundError extends StoreError {
  readonly code: "NotFound";
}
export class StoreLockedError extends StoreError {
  readonly code: "StoreLocked";
}
export class HeadConflictError extends StoreError {
  readonly code: "HeadConflict";
}
export class StoreCorruptError extends StoreError {
  readonly code: "StoreCorrupt";
}
export class BackendError extends StoreError {
  readonly code: "Backend";
}
export class TimeoutError extends NetworkError {
  readonly code: "Timeout";
}
export class UnavailableError extends NetworkError {
  readonly code: "Unavailable";
}
export class InvalidInputError extends InputError {
  readonly code: "InvalidInput";
}
export class TooLargeError extends InputError {
  readonly code: "TooLarge";
}
export class RangeOutOfBoundsError extends InputError {
  readonly code: "RangeOutOfBounds";
}
export class IoError extends HostError {
  readonly code: "Io";
}
export class RngError extends HostError {
  readonly code: "Rng";
}
export declare const errorClasses: Record<ErrorCode | "MedshareError", typeof MedshareError>;
export declare const categoryClasses: Record<ErrorCategory, typeof MedshareError>;
