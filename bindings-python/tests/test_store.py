"""A Python object as the block store: the core's conformance suite, then a full story on it."""

import pytest

import medshare
from conftest import DictStore


def test_dict_store_passes_the_core_conformance_suite():
    medshare.store_conformance(DictStore)


def test_a_broken_store_fails_the_suite():
    class Forgetful(DictStore):
        def put(self, cid: str, data: bytes) -> None:
            pass

    with pytest.raises(AssertionError, match="put_get_round_trip"):
        medshare.store_conformance(Forgetful)


def test_vault_over_a_python_store(authority, patient, doctor):
    store = DictStore()
    v = medshare.Vault.with_store(store, authority)
    v.register(patient)
    v.register(doctor, medshare.Endorsement.sign(authority, v.genesis, doctor, "L-1"))
    rec = v.publish(patient, b"stored in Python" * 1000)
    v.grant(patient, rec, doctor)
    assert v.open_record(doctor, rec) == b"stored in Python" * 1000
    assert len(store.blocks) > 5
    # A second vault over the same Python store sees the same chain.
    again = medshare.Vault.with_store(store)
    assert again.head == v.head
    assert again.verify().blocks == 5


def test_store_exceptions_surface_as_backend_errors(authority):
    class Broken(DictStore):
        def head(self):
            raise RuntimeError("disk on fire")

    with pytest.raises(medshare.Backend, match="disk on fire"):
        medshare.Vault.with_store(Broken(), authority)
