"""Checked by mypy --strict in test_typing.py: the stubs describe the API as used."""

import datetime
import io
from typing import Optional

import medshare


def story(authority: medshare.Identity) -> bytes:
    patient = medshare.Identity.generate("patient", 2048, name="p")
    doctor = medshare.Identity.generate("doctor")
    vault: medshare.Vault = medshare.Vault.memory(authority)
    vault.register(patient)
    vault.register(doctor, medshare.Endorsement.sign(authority, vault.genesis, doctor, "L"))
    rec: str = vault.publish(patient, b"data", media_type="text/plain")
    vault.grant(patient, rec, doctor, expires=datetime.timedelta(days=30), purpose="TREAT", note="care")
    data: bytes = vault.open_record(doctor, rec)
    nothing: None = vault.open_record(doctor, rec, io.BytesIO())
    infos: list[medshare.RecordInfo] = vault.records_for(doctor.id)
    expires: Optional[int] = infos[0].expires
    report: medshare.RevokeReport = vault.revoke(patient, rec, doctor)
    events: list[medshare.AuditEvent] = vault.audit(rec)
    kind: str = events[0].kind
    meta: medshare.Metadata = vault.metadata(patient, rec)
    note: Optional[str] = vault.grant_note(patient, rec, doctor)
    blocks: int = vault.verify().blocks
    try:
        vault.open_record(doctor, rec)
    except medshare.AccessRevoked as e:
        code: str = e.code
    del nothing, expires, report, kind, blocks, meta, note
    return data + medshare.cid(data, profile="unixfs-v0-2015").encode()
