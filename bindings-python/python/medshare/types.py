"""The values medshare returns, as frozen dataclasses.

The native module hands over the core's own serde JSON of each value and `from_json` builds
these; their fields are exactly the core's (a field the core adds or drops makes `from_json`
raise, which the test suite would catch). Ids, CIDs and record ids are strings; byte fields
(notes) are base64 strings, as in the core's JSON.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class KeyRef:
    """Where a doctor's wrapped data key is on the chain: the transaction that carried it (her
    grant, or the rewrap that last replaced it) and its index among that transaction's keys."""

    tx: str
    index: int


@dataclass(frozen=True)
class AccessGrant:
    """One grant of a record version to a doctor."""

    doctor: str
    version: int
    expires: Optional[int]
    purpose: str
    note: Optional[str]
    granted_at: int
    key: KeyRef


@dataclass(frozen=True)
class RecordInfo:
    """A record as the chain knows it (`grant`: the asking doctor's grant, if any)."""

    record: str
    owner: str
    version: int
    content: str
    size: int
    commitment: str
    grant: Optional[AccessGrant] = None

    @property
    def expires(self) -> Optional[int]:
        return self.grant.expires if self.grant else None

    @property
    def purpose(self) -> Optional[str]:
        return self.grant.purpose if self.grant else None


@dataclass(frozen=True)
class AuditEvent:
    """One entry of a record's audit trail; `event` is published, granted, revoked,
    emergency-enabled, emergency (a break-glass request), share-released or reviewed."""

    height: int
    block: str
    time: int
    tx: str
    author: str
    event: str
    version: Optional[int] = None
    content: Optional[str] = None
    doctor: Optional[str] = None
    expires: Optional[int] = None
    purpose: Optional[str] = None
    threshold: Optional[int] = None
    shares: Optional[int] = None
    request: Optional[str] = None
    index: Optional[int] = None
    outcome: Optional[str] = None

    @property
    def kind(self) -> str:
        return self.event


@dataclass(frozen=True)
class Metadata:
    """Decrypted record metadata."""

    name: str
    media_type: str
    size: int


@dataclass(frozen=True)
class VerifyReport:
    """What a verification checked."""

    genesis: str
    network: str
    blocks: int
    transactions: int
    height: int
    head: str
    authorities: int


@dataclass(frozen=True)
class RevokeReport:
    """What a revocation did."""

    new_version: int
    remaining: list[str]
    deleted_blocks: int


@dataclass(frozen=True)
class RotateReport:
    """What a key rotation did."""

    rewrapped: int
    rekeyed: list[str]


@dataclass(frozen=True)
class ContentReport:
    """What a content check found (`missing`: (record, reason) pairs)."""

    records: int
    blocks: int
    missing: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection did."""

    live: int
    deleted: int


@dataclass(frozen=True)
class DamagedRecord:
    """A record an export could not write whole."""

    record: str
    error: str


@dataclass(frozen=True)
class ExportReport:
    """What a CAR export wrote."""

    blocks: int
    head: str
    damaged: list[DamagedRecord] = field(default_factory=list)


@dataclass(frozen=True)
class ReceiptFacts:
    """What a verified receipt proves (`medshare.verify_receipt`)."""

    genesis: str
    network: str
    tx: str
    kind: str
    author: str
    time: int
    record: Optional[str]
    doctor: Optional[str]
    version: Optional[int]
    purpose: Optional[str]
    expires: Optional[int]
    index: int
    log_size: int
    height: int
    block: str
    signers: list[str]
    authorities: int


@dataclass(frozen=True)
class ProvenGrant:
    """One grant in a light client's proven access list (no wrapped key, no note)."""

    doctor: str
    version: int
    purpose: str
    granted_at: int
    expires: Optional[int]


@dataclass(frozen=True)
class RecordAccess:
    """A record's access list as a light client proved it (`LightClient.access_list`)."""

    record: str
    owner: str
    version: int
    content: str
    grants: list[ProvenGrant]


@dataclass(frozen=True)
class DoctorRecord:
    """A record a doctor can read, as a light client proved it (`LightClient.records_of`)."""

    record: str
    version: int
    expires: Optional[int]


@dataclass(frozen=True)
class Release:
    """A key share an authority released to an emergency request."""

    authority: str
    index: int
    height: int
    tx: str
    wrapped: str


@dataclass(frozen=True)
class ReviewInfo:
    """An authority's review of an emergency access: `outcome` is justified or unjustified."""

    authority: str
    outcome: str
    height: int
    tx: str


@dataclass(frozen=True)
class Emergency:
    """A break-glass emergency access as the chain knows it (`request` is its transaction)."""

    request: str
    record: str
    version: int
    owner: str
    doctor: str
    purpose: str
    justification: str
    height: int
    time: int
    expires: int
    threshold: int
    holders: list[str]
    releases: list[Release]
    review: Optional[ReviewInfo] = None


@dataclass(frozen=True)
class ShareCheck:
    """One released share as the requesting doctor checked it against its commitment."""

    authority: str
    index: int
    valid: bool


@dataclass(frozen=True)
class EmergencyStatus(Emergency):
    """An emergency request as its doctor sees it: each share checked, and whether the record
    opens now."""

    shares: list[ShareCheck] = field(default_factory=list)
    open: bool = False


def _emergency_parts(data: dict[str, Any]) -> dict[str, Any]:
    data = {**data, "releases": [Release(**r) for r in data["releases"]]}
    if data.get("review") is not None:
        data["review"] = ReviewInfo(**data["review"])
    if "shares" in data:
        data["shares"] = [ShareCheck(**s) for s in data["shares"]]
    return data


def _grant(data: dict[str, Any]) -> "AccessGrant":
    return AccessGrant(**{**data, "key": KeyRef(**data["key"])})


def _build(kind: str, data: Any) -> Any:
    if kind == "AccessGrant":
        return _grant(data)
    cls = globals()[kind]
    if kind in ("Emergency", "EmergencyStatus"):
        data = _emergency_parts(data)
    if kind == "RecordAccess":
        data = {**data, "grants": [ProvenGrant(**g) for g in data["grants"]]}
    if kind == "RecordInfo" and data.get("grant") is not None:
        data = {**data, "grant": _grant(data["grant"])}
    if kind == "ExportReport":
        data = {**data, "damaged": [DamagedRecord(**d) for d in data["damaged"]]}
    if kind == "ContentReport":
        data = {**data, "missing": [tuple(m) for m in data["missing"]]}
    return cls(**data)


def from_json(kind: str, text: str) -> Any:
    """Builds the dataclass `kind` from the core's JSON of that value."""
    return _build(kind, json.loads(text))


__all__ = [
    "AccessGrant",
    "AuditEvent",
    "ContentReport",
    "DamagedRecord",
    "DoctorRecord",
    "Emergency",
    "EmergencyStatus",
    "ExportReport",
    "GcReport",
    "KeyRef",
    "Metadata",
    "ProvenGrant",
    "ReceiptFacts",
    "Release",
    "RecordAccess",
    "RecordInfo",
    "ReviewInfo",
    "RevokeReport",
    "RotateReport",
    "ShareCheck",
    "VerifyReport",
]
