"""Every exception class is raised where it should be, with the core's message and `.code`."""

import concurrent.futures
import io
import pickle
import time

import pytest

import medshare
from conftest import DictStore, endorse


def test_hierarchy():
    assert issubclass(medshare.AccessRevoked, medshare.AccessError)
    assert issubclass(medshare.AccessError, medshare.MedshareError)
    assert issubclass(medshare.CidMismatch, medshare.IntegrityError)
    assert issubclass(medshare.InvalidChain, medshare.LedgerError)
    assert issubclass(medshare.StoreLocked, medshare.StoreError)
    assert issubclass(medshare.InvalidInput, ValueError)
    assert issubclass(medshare.Io, OSError)
    assert issubclass(medshare.MedshareError, Exception)


def test_classes_mirror_the_cores_codes_and_categories():
    codes = medshare.error_codes()
    assert {c for c, _ in codes} == set(medshare.errors.CODES)
    for code, category in codes:
        cls = medshare.errors.CODES[code]
        assert cls.code == code and cls.__name__ == code
        assert issubclass(cls, medshare.errors.CATEGORIES[category]), (code, category)


def _raise_revoked(rec: str) -> None:
    raise medshare.AccessRevoked(f"access to record {rec} was revoked by its owner")


def test_exceptions_pickle_and_cross_processes(vault, patient):
    with pytest.raises(medshare.InvalidInput) as e:
        vault.open_record(patient, "not-a-record-id")
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is medshare.InvalidInput and back.code == "InvalidInput"
    assert str(back) == str(e.value)
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(medshare.AccessRevoked, match="revoked"):
            pool.submit(_raise_revoked, "brec").result()


def test_a_callers_mistakes_are_type_and_value_errors(vault, patient, doctor):
    with pytest.raises(TypeError):
        vault.publish(patient, 12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary"):
        vault.publish(patient, io.StringIO("x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError) as e:
        vault.open_record(doctor, "not-a-record-id")
    assert isinstance(e.value, medshare.InvalidInput)
    with pytest.raises(TypeError):
        vault.open_record(doctor, 42)  # type: ignore[arg-type]
    rec = vault.publish(patient, b"x")
    with pytest.raises(TypeError):
        vault.grant(patient, rec, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vault.grant(patient, rec, doctor, expires="2030-01-01")  # type: ignore[arg-type]
    with pytest.raises(medshare.InvalidInput, match="purpose"):
        vault.grant(patient, rec, doctor, purpose="HIV follow-up")
    with pytest.raises(medshare.InvalidInput):
        medshare.cid(b"x", profile="unixfs-v9")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        medshare.cid("text")  # type: ignore[arg-type]
    with pytest.raises(medshare.InvalidInput):
        medshare.Identity.generate("nurse", 2048)  # type: ignore[arg-type]


def test_io_errors_are_oserrors(tmp_path):
    with pytest.raises(FileNotFoundError.__mro__[1]) as e:  # OSError
        medshare.Identity.load(tmp_path / "missing.key", "x")
    assert isinstance(e.value, medshare.Io) and e.value.errno == 2
    ident = medshare.Identity.generate("patient", 2048)
    ident.save(tmp_path / "k", "a passphrase")
    with pytest.raises(medshare.Io) as e2:
        ident.save(tmp_path / "k", "a passphrase")
    assert e2.value.errno == 17


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
        medshare.Identity.generate("nurse", 2048)  # type: ignore[arg-type]


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
    with pytest.raises(medshare.InvalidInput):  # not a record id at all
        vault.open_record(patient, "nope")


def test_a_doctor_needs_an_endorsement(authority):
    v = medshare.Vault.memory(authority)
    eve = medshare.Identity.generate("doctor", 2048)
    with pytest.raises(medshare.InvalidInput, match="endorsement"):
        v.register(eve)
    with pytest.raises(medshare.InvalidInput):
        medshare.Endorsement.sign(authority, v.genesis, eve, "")


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
    # Damage the head object: reopening the chain names the rule.
    store.blocks[store.head()] = b"\xa0"
    with pytest.raises(medshare.InvalidChain) as e2:
        medshare.Vault.with_store(store)
    assert e2.value.rule == "Cid" and e2.value.code == "InvalidChain"


def test_a_store_whose_swap_always_fails_is_named():
    class Stubborn(DictStore):
        def compare_and_swap_head(self, expected, new):
            return False

    with pytest.raises(medshare.Backend, match="refused to move its head"):
        medshare.Vault.with_store(Stubborn(), medshare.Identity.generate("authority", 2048))
