"""Every exception class is raised where it should be, with the core's message and `.code`."""

import time

import pytest

import medshare
from conftest import DictStore


def test_hierarchy():
    assert issubclass(medshare.AccessRevoked, medshare.AccessError)
    assert issubclass(medshare.AccessError, medshare.MedshareError)
    assert issubclass(medshare.CidMismatch, medshare.IntegrityError)
    assert issubclass(medshare.InvalidChain, medshare.LedgerError)
    assert issubclass(medshare.StoreLocked, medshare.StoreError)
    assert issubclass(medshare.MedshareError, Exception)


def test_key_errors(tmp_path):
    with pytest.raises(medshare.WeakKey, match="too weak") as e:
        medshare.Identity.generate("patient", 1024)
    assert e.value.code == "WeakKey"
    with pytest.raises(medshare.UnsupportedKeySize):
        medshare.Identity.generate("patient", 2560)
    with pytest.raises(medshare.InvalidKey):
        medshare.Identity.from_pkcs8_pem("patient", "not a key")
    ident = medshare.Identity.generate("patient", 2048)
    ident.save(tmp_path / "k", "right")
    with pytest.raises(medshare.WrongPassphrase):
        medshare.Identity.load(tmp_path / "k", "wrong")
    with pytest.raises(medshare.BadSignature):
        ident.public().verify(b"m", b"\x00" * 256)
    with pytest.raises(ValueError):
        medshare.Identity.generate("nurse", 2048)


def test_access_errors(vault, patient, doctor, doctor2):
    rec = vault.publish(patient, b"lab")
    with pytest.raises(medshare.AccessDenied):
        vault.open_record(doctor, rec)
    vault.grant(patient, rec, doctor)
    vault.revoke(patient, rec, doctor)
    with pytest.raises(medshare.AccessRevoked):
        vault.open_record(doctor, rec)
    vault.grant(patient, rec, doctor2, expires=int(time.time()) + 2)
    assert vault.open_record(doctor2, rec) == b"lab"
    time.sleep(2.1)
    with pytest.raises(medshare.AccessExpired):
        vault.open_record(doctor2, rec)
    with pytest.raises(medshare.UnknownRecord):
        vault.open_record(patient, "baaaaaaaaaaaaaaaaaaaaaaaaaa")
    with pytest.raises(medshare.MalformedEnvelope):  # not a record id at all
        vault.open_record(patient, "nope")


def test_ledger_refusals(vault, patient, doctor):
    rec = vault.publish(patient, b"x")
    stranger = medshare.Identity.generate("doctor", 2048)
    with pytest.raises(medshare.Rejected) as e:
        vault.grant(patient, rec, stranger)
    assert e.value.rule == "Grantee"
    with pytest.raises(medshare.Rejected) as e:
        vault.grant(doctor, rec, doctor)
    assert e.value.rule == "NotOwner"
    with pytest.raises(medshare.Rejected) as e:
        vault.publish(doctor, b"x")
    assert e.value.rule == "Role"
    with pytest.raises(medshare.TooLarge):
        vault.publish(patient, b"x", name="n" * 2000)


def test_store_errors(tmp_path, authority):
    held = medshare.Vault.open(tmp_path / "s", authority)
    with pytest.raises(medshare.StoreLocked, match="locked"):
        medshare.Vault.open(tmp_path / "s")
    held.close()
    medshare.Vault.open(tmp_path / "s").close()


def test_integrity_errors_from_a_corrupt_store(authority, patient):
    store = DictStore()
    v = medshare.Vault.with_store(store, authority)
    v.register(patient)
    rec = v.publish(patient, b"y" * 100_000)
    # Flip a byte of every raw (record) block: opening the record detects it.
    for cid, data in list(store.blocks.items()):
        if cid.startswith("bafk"):
            store.blocks[cid] = bytes([data[0] ^ 1]) + data[1:]
    with pytest.raises(medshare.CidMismatch) as e:
        v.open_record(patient, rec)
    assert isinstance(e.value, medshare.IntegrityError)
    # Damage the head block: reopening the chain names the rule.
    store.blocks[store.head()] = b"\xa0"
    with pytest.raises(medshare.InvalidChain) as e2:
        medshare.Vault.with_store(store)
    assert e2.value.rule == "Cid" and e2.value.code == "InvalidChain"


def test_bad_profile():
    with pytest.raises(medshare.InvalidCid):
        medshare.cid(b"x", profile="unixfs-v9")
