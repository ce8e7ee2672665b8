"""The exceptions medshare raises: one class per core error code, under one class per category.

Defined here in Python (not in the native module) so that they pickle and cross
`multiprocessing` / `ProcessPoolExecutor`. `tests/test_errors.py` checks that this module names
exactly the core's codes and categories (`_native.error_codes()`).
"""

from typing import Optional


class MedshareError(Exception):
    """Base class of every medshare error; `.code` names the kind."""

    code: str = "MedshareError"


class IdentityError(MedshareError):
    """Keys, key files, signatures."""


class IntegrityError(MedshareError):
    """Data that is not what it claims to be: envelopes, CIDs, DAGs, CARs, proofs, rollbacks."""


class AccessError(MedshareError):
    """Who may read what."""


class LedgerError(MedshareError):
    """Ledger rules and chain state."""


class StoreError(MedshareError):
    """Block stores."""


class NetworkError(MedshareError):
    """Nodes, gateways, timeouts."""


class InvalidInputError(MedshareError, ValueError):
    """A caller's malformed or oversized argument (also a ValueError)."""


class IoError(MedshareError, OSError):
    """The operating system (files, randomness); also an OSError with `.errno`."""


class WeakKey(IdentityError):
    """RSA key under 2048 bits."""

    code = "WeakKey"


class UnsupportedKeySize(IdentityError):
    """RSA key size not supported."""

    code = "UnsupportedKeySize"


class InvalidKey(IdentityError):
    """Key or key file could not be parsed."""

    code = "InvalidKey"


class WrongPassphrase(IdentityError):
    """The passphrase does not open the key file."""

    code = "WrongPassphrase"


class BadSignature(IdentityError):
    """A signature does not verify."""

    code = "BadSignature"


class MalformedEnvelope(IntegrityError):
    """The envelope is not well formed."""

    code = "MalformedEnvelope"


class UnsupportedVersion(IntegrityError):
    """Envelope format version not supported."""

    code = "UnsupportedVersion"


class KeyUnwrap(IntegrityError):
    """The wrapped key does not open with this key for this record version."""

    code = "KeyUnwrap"


class KeyCommitment(IntegrityError):
    """The data key is not the one the record was published with."""

    code = "KeyCommitment"


class ChunkAuthentication(IntegrityError):
    """A chunk failed authentication (altered, swapped, reordered)."""

    code = "ChunkAuthentication"


class Truncated(IntegrityError):
    """Data ends early."""

    code = "Truncated"


class TrailingData(IntegrityError):
    """Data after the end."""

    code = "TrailingData"


class SizeMismatch(IntegrityError):
    """Size differs from the declared one."""

    code = "SizeMismatch"


class InvalidCid(IntegrityError):
    """A CID's bytes could not be parsed."""

    code = "InvalidCid"


class CidMismatch(IntegrityError):
    """Bytes do not match their CID."""

    code = "CidMismatch"


class MalformedNode(IntegrityError):
    """A UnixFS/dag-pb node is malformed."""

    code = "MalformedNode"


class MalformedCar(IntegrityError):
    """A CAR file is malformed."""

    code = "MalformedCar"


class InvalidProof(IntegrityError):
    """A checkpoint, receipt or proof does not verify."""

    code = "InvalidProof"


class Rollback(IntegrityError):
    """An older state than one already verified was offered (`.trusted`, `.offered`)."""

    code = "Rollback"

    trusted: int
    offered: int


class Fork(IntegrityError):
    """Two certified checkpoints of the same size differ."""

    code = "Fork"


class NotARecipient(AccessError):
    """The identity is not a recipient of the envelope."""

    code = "NotARecipient"


class AccessRevoked(AccessError):
    """The owner revoked this reader's access."""

    code = "AccessRevoked"


class AccessExpired(AccessError):
    """The reader's grant expired."""

    code = "AccessExpired"


class AccessDenied(AccessError):
    """The record was never granted to this reader."""

    code = "AccessDenied"


class EmergencyPending(AccessError):
    """An emergency (break-glass) access is not open: fewer genuine key shares released than
    needed, a share that fails its commitment, or the window is over."""

    code = "EmergencyPending"


class UnknownRecord(AccessError):
    """No such record on the chain."""

    code = "UnknownRecord"


class UnknownIdentity(AccessError):
    """No such identity on the chain."""

    code = "UnknownIdentity"


class InvalidChain(LedgerError):
    """The chain breaks a validation rule (`.rule`, `.height`, `.tx`)."""

    code = "InvalidChain"

    rule: str
    height: Optional[int]
    tx: Optional[int]


class Rejected(LedgerError):
    """The ledger refused a new transaction (`.rule`)."""

    code = "Rejected"

    rule: str


class WrongGenesis(LedgerError):
    """The chain belongs to another network."""

    code = "WrongGenesis"


class ReadOnly(LedgerError):
    """The vault has no sequencer to submit to."""

    code = "ReadOnly"


class NoChain(LedgerError):
    """The store holds no chain."""

    code = "NoChain"


class NotFound(StoreError):
    """A block is missing from the store."""

    code = "NotFound"


class StoreLocked(StoreError):
    """Another process holds the store."""

    code = "StoreLocked"


class HeadConflict(StoreError):
    """The head changed concurrently."""

    code = "HeadConflict"


class StoreCorrupt(StoreError):
    """The store's files are damaged."""

    code = "StoreCorrupt"


class Backend(StoreError):
    """A store backend failed."""

    code = "Backend"


class Timeout(NetworkError):
    """A node did not answer, or did not commit, in time."""

    code = "Timeout"


class Unavailable(NetworkError):
    """A node or gateway could not be reached."""

    code = "Unavailable"


class InvalidInput(InvalidInputError):
    """A malformed argument: an id, a role, a profile, a purpose code."""

    code = "InvalidInput"


class TooLarge(InvalidInputError):
    """An input exceeds a size limit."""

    code = "TooLarge"


class RangeOutOfBounds(InvalidInputError):
    """A byte range is outside the plaintext."""

    code = "RangeOutOfBounds"


class Io(IoError):
    """An operating-system I/O error (an OSError, with `.errno`)."""

    code = "Io"


class Rng(IoError):
    """The system random number generator failed."""

    code = "Rng"


CATEGORIES: dict[str, type] = {
    "Identity": IdentityError,
    "Integrity": IntegrityError,
    "Access": AccessError,
    "Ledger": LedgerError,
    "Store": StoreError,
    "Network": NetworkError,
    "InvalidInput": InvalidInputError,
    "Io": IoError,
}

CODES: dict[str, type] = {
    "WeakKey": WeakKey,
    "UnsupportedKeySize": UnsupportedKeySize,
    "InvalidKey": InvalidKey,
    "WrongPassphrase": WrongPassphrase,
    "BadSignature": BadSignature,
    "MalformedEnvelope": MalformedEnvelope,
    "UnsupportedVersion": UnsupportedVersion,
    "KeyUnwrap": KeyUnwrap,
    "KeyCommitment": KeyCommitment,
    "ChunkAuthentication": ChunkAuthentication,
    "Truncated": Truncated,
    "TrailingData": TrailingData,
    "SizeMismatch": SizeMismatch,
    "InvalidCid": InvalidCid,
    "CidMismatch": CidMismatch,
    "MalformedNode": MalformedNode,
    "MalformedCar": MalformedCar,
    "InvalidProof": InvalidProof,
    "Rollback": Rollback,
    "Fork": Fork,
    "NotARecipient": NotARecipient,
    "AccessRevoked": AccessRevoked,
    "AccessExpired": AccessExpired,
    "AccessDenied": AccessDenied,
    "EmergencyPending": EmergencyPending,
    "UnknownRecord": UnknownRecord,
    "UnknownIdentity": UnknownIdentity,
    "InvalidChain": InvalidChain,
    "Rejected": Rejected,
    "WrongGenesis": WrongGenesis,
    "ReadOnly": ReadOnly,
    "NoChain": NoChain,
    "NotFound": NotFound,
    "StoreLocked": StoreLocked,
    "HeadConflict": HeadConflict,
    "StoreCorrupt": StoreCorrupt,
    "Backend": Backend,
    "Timeout": Timeout,
    "Unavailable": Unavailable,
    "InvalidInput": InvalidInput,
    "TooLarge": TooLarge,
    "RangeOutOfBounds": RangeOutOfBounds,
    "Io": Io,
    "Rng": Rng,
}

__all__ = [
    "MedshareError",
    "IdentityError",
    "IntegrityError",
    "AccessError",
    "LedgerError",
    "StoreError",
    "NetworkError",
    "InvalidInputError",
    "IoError",
    "WeakKey",
    "UnsupportedKeySize",
    "InvalidKey",
    "WrongPassphrase",
    "BadSignature",
    "MalformedEnvelope",
    "UnsupportedVersion",
    "KeyUnwrap",
    "KeyCommitment",
    "ChunkAuthentication",
    "Truncated",
    "TrailingData",
    "SizeMismatch",
    "InvalidCid",
    "CidMismatch",
    "MalformedNode",
    "MalformedCar",
    "InvalidProof",
    "Rollback",
    "Fork",
    "NotARecipient",
    "AccessRevoked",
    "AccessExpired",
    "AccessDenied",
    "EmergencyPending",
    "UnknownRecord",
    "UnknownIdentity",
    "InvalidChain",
    "Rejected",
    "WrongGenesis",
    "ReadOnly",
    "NoChain",
    "NotFound",
    "StoreLocked",
    "HeadConflict",
    "StoreCorrupt",
    "Backend",
    "Timeout",
    "Unavailable",
    "InvalidInput",
    "TooLarge",
    "RangeOutOfBounds",
    "Io",
    "Rng",
    "CATEGORIES",
    "CODES",
]
