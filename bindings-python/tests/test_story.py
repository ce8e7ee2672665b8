import io

import medshare


def test_full_story(vault, patient, doctor, doctor2):
    data = bytes(range(256)) * 20_000  # 5 MB
    rec = vault.publish(patient, data, media_type="application/dicom", name="ct.dcm")
    vault.grant(patient, rec, doctor, purpose="cardiology")
    vault.grant(patient, rec, doctor2.id)
    for who in (patient, doctor, doctor2):
        assert vault.open_record(who, rec) == data
    [info] = vault.records_for(doctor)
    assert (info.record, info.version, info.purpose) == (rec, 1, "cardiology")
    assert "RecordInfo(" in repr(info)
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
    # An empty store needs an authority to start a chain (a key nobody keeps could seal nothing later).
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


def test_reprs_are_python_literals(vault, patient, doctor):
    rec = vault.publish(patient, b"r")
    vault.grant(patient, rec, doctor)
    report = vault.revoke(patient, rec, doctor)
    assert repr(report) == f"RevokeReport(new_version=2, remaining=[], deleted_blocks={report.deleted_blocks})"
    event = vault.audit(rec)[1]
    assert repr(event).endswith(f"version=1, doctor='{doctor.id}')")
    assert "version=None, doctor=" in repr(vault.audit(rec)[2])
