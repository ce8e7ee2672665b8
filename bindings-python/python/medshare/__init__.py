"""medshare: share medical records between patients and doctors.

Records are encrypted (AES-256-GCM envelope, key wrapped with RSA-OAEP to each reader), stored
content-addressed (IPFS-identical CIDs), and every grant and revocation is a signed entry of a
quorum-certified ledger anyone can verify. This package is a thin layer over the Rust core:
`medshare.errors` holds the exceptions, `medshare.types` the returned values, `medshare.aio`
the asyncio API.
"""

from . import aio, errors, types
from ._native import (
    Endorsement,
    Identity,
    LightClient,
    PublicKey,
    Vault,
    cid,
    error_codes,
    open_envelope,
    purposes,
    store_conformance,
    verify_receipt,
)
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors
from .types import *  # noqa: F401,F403
from .types import __all__ as _types

__all__ = [
    "Endorsement",
    "Identity",
    "LightClient",
    "PublicKey",
    "Vault",
    "aio",
    "cid",
    "error_codes",
    "errors",
    "open_envelope",
    "purposes",
    "store_conformance",
    "types",
    "verify_receipt",
    *_errors,
    *_types,
]
