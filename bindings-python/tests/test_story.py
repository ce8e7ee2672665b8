import io
import pickle

import medshare
from conftest import endorse


def test_full_story(vault, patient, doctor, doctor2):
    data = bytes(range(256)) * 20_000  # 5 MB
    rec = vault.publish(patient, data, media_type="application/dicom", name="ct.dcm")
    vault.grant(patient, rec, doctor, purpose="COC", note="cardiology second opinion")
    vault.grant(patient, rec, doctor2.id)
    for who in (patient, doctor, doctor2):
        assert vault.open_record(who, rec) == data
    [info] = vault.records_for(doctor)
    assert (info.record, info.version, info.purpose) == (rec, 1, "COC")
    assert "RecordInfo(" in repr(info)
    assert vault.grant_note(doctor, rec, doctor) == "cardiology second opinion"
    assert vault.grant_note(patient, rec, doctor) == "cardiology second opinion"
    report = vault.revoke(patient, rec, doctor.public())
    assert report.new_version == 2 and report.remaining == [doctor2.id] and report.deleted_blocks > 0
    try:
        vault.open_record(doctor, rec)
        raise AssertionError("revoked doctor read the record")
    except medshare.AccessRevoked as e:
        assert e.code == "AccessRevoked"
    assert vault.open_record(doctor2, rec) == data
    assert vault.records_for(doctor) == []
    v = vault.verify()
    assert (v.blocks, v.transactions) == (8, 9)
    assert v.genesis == vault.genesis and v.network == "medshare-local"
    kinds = [e.kind for e in vault.audit(rec)]
    assert kinds == ["published", "granted", "granted", "revoked", "published", "granted"]
    meta = vault.metadata(doctor2, rec)
    assert (meta.name, meta.media_type, meta.size) == ("ct.dcm", "application/dicom", len(data))


def test_file_objects_stream(vault, patient, doctor):
    data = b"x" * 3_000_000 + b"end"
    src = io.BytesIO(b"HEADER" + data)
    src.seek(6)  # publishes from the current position to the end
    rec = vault.publish(patient, src, media_type="application/pdf", name="report.pdf")
    vault.grant(patient, rec, doctor)
    out = io.BytesIO()
    assert vault.open_record(doctor, rec, out) is None
    assert out.getvalue() == data


def test_filesystem_vault_is_a_context_manager(tmp_path, authority, patient):
    # An empty store needs an authority to start a chain (a key nobody keeps could certify nothing later).
    try:
        medshare.Vault.open(tmp_path / "empty")
        raise AssertionError("an empty store opened without an authority")
    except medshare.NoChain:
        pass
    with medshare.Vault.open(tmp_path / "store", authority) as v:
        v.register(patient)
        rec = v.publish(patient, b"{}", media_type="application/fhir+json")
        head = v.head
    # Reopened read-only: the chain and the record are there.
    with medshare.Vault.open(tmp_path / "store") as v:
        assert v.head == head and v.height == 2
        assert v.open_record(patient, rec) == b"{}"
        out = tmp_path / "out.json"
        assert v.open_record(patient, rec, out) is None
        assert out.read_bytes() == b"{}"
        try:
            v.register(medshare.Identity.generate("patient", 2048))
            raise AssertionError("a read-only vault appended")
        except medshare.ReadOnly:
            pass
    try:
        v.verify()
        raise AssertionError("closed vault still answered")
    except medshare.MedshareError:
        pass


def test_a_long_chain_opens_from_its_snapshot(tmp_path, authority, patient, doctor):
    # 256 blocks plus transactions since the last snapshot make the filesystem store keep one
    # (FORMAT §13); the next open starts from it and verifies only the blocks after it.
    with medshare.Vault.open(tmp_path / "store", authority) as v:
        assert v.opened == {"from": "genesis"}
        v.register(patient)
        v.register(doctor, endorse(v, authority, doctor, "GMC-1"))
        rec = v.publish(patient, b"{}", media_type="application/fhir+json")
        for _ in range(130):  # a block of one transaction each: 2 units
            v.grant(patient, rec, doctor)
        height = v.height
    with medshare.Vault.open(tmp_path / "store") as v:
        opened = v.opened
        assert opened["from"] == "snapshot", opened
        assert opened["height"] + opened["replayed"] == height == v.height
        assert v.open_record(doctor, rec) == b"{}"
    # A damaged snapshot is set aside: the chain is verified from genesis, and says why.
    snap = tmp_path / "store" / "SNAPSHOT"
    snap.write_bytes(snap.read_bytes()[:-1] + b"\x00")
    with medshare.Vault.open(tmp_path / "store") as v:
        assert v.opened == {"from": "genesis", "rejected": "invalid"}
        assert v.height == height


def test_identity_round_trip(tmp_path):
    ident = medshare.Identity.generate("doctor", 2048, name="dr-x")
    path = tmp_path / "dr.key"
    ident.save(path, "correct horse")
    back = medshare.Identity.load(str(path), "correct horse")
    assert (back.id, back.role, back.name) == (ident.id, "doctor", "dr-x")
    assert back.public() == ident.public()
    pub = medshare.PublicKey.from_pem(ident.public().to_pem())
    assert pub.id == ident.id and pub.bits == 2048
    sig = ident.sign(b"m")
    pub.verify(b"m", sig)
    assert "PRIVATE" not in repr(ident)
    assert repr(ident).startswith("Identity(role='doctor'")


def test_cid_matches_ipfs_add_profiles():
    assert medshare.cid(b"hello IPFS\n") == "bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"
    assert medshare.cid(b"", profile="unixfs-v0-2015") == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def test_values_are_dataclasses_that_pickle(vault, patient, doctor):
    rec = vault.publish(patient, b"r")
    vault.grant(patient, rec, doctor)
    report = vault.revoke(patient, rec, doctor)
    assert repr(report) == f"RevokeReport(new_version=2, remaining=[], deleted_blocks={report.deleted_blocks})"
    event = vault.audit(rec)[1]
    assert (event.kind, event.version, event.doctor, event.purpose) == ("granted", 1, doctor.id, "TREAT")
    assert pickle.loads(pickle.dumps(event)) == event


def test_rotation_keeps_the_account(vault, patient, doctor):
    rec = vault.publish(patient, b"before")
    vault.grant(patient, rec, doctor)
    new = patient.rotated()
    assert new.id == patient.id and new.key_id != patient.key_id
    report = vault.rotate_key(patient, new)
    assert report.rekeyed == [rec]
    assert vault.open_record(new, rec) == b"before"
    assert vault.open_record(doctor, rec) == b"before"
    vault.revoke(new, rec, doctor)


def test_car_export_and_import(tmp_path, vault, patient, doctor):
    rec = vault.publish(patient, b"exported")
    report = vault.export_car(tmp_path / "chain.car")
    assert report.damaged == [] and report.head == vault.head
    copy = medshare.Vault.import_car(tmp_path / "copy", tmp_path / "chain.car", genesis=vault.genesis)
    assert copy.head == vault.head
    assert copy.open_record(patient, rec) == b"exported"
