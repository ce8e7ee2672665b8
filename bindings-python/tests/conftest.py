import os
import sys
from pathlib import Path

import pytest

import medshare

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "core" / "testdata"


def fixture_key(name: str) -> str:
    files = {
        "patient": "patient-2048.pem",
        "doctor": "doctor-2048.pem",
        "doctor2": "doctor2-2048.pem",
        "authority": "authority-2048.pem",
        "doctor3072": "doctor-3072.pem",
    }
    return (TESTDATA / "keys" / files[name]).read_text()


@pytest.fixture
def patient() -> medshare.Identity:
    return medshare.Identity.from_pkcs8_pem("patient", fixture_key("patient"), "alice")


@pytest.fixture
def doctor() -> medshare.Identity:
    return medshare.Identity.from_pkcs8_pem("doctor", fixture_key("doctor"), "bob")


@pytest.fixture
def doctor2() -> medshare.Identity:
    return medshare.Identity.from_pkcs8_pem("doctor", fixture_key("doctor2"), "carol")


@pytest.fixture
def authority() -> medshare.Identity:
    return medshare.Identity.from_pkcs8_pem("authority", fixture_key("authority"), "hospital")


def endorse(vault: medshare.Vault, authority: medshare.Identity, doctor: medshare.Identity, licence: str) -> medshare.Endorsement:
    return medshare.Endorsement.sign(authority, vault.genesis, doctor, licence)


@pytest.fixture
def vault(authority, patient, doctor, doctor2) -> medshare.Vault:
    v = medshare.Vault.memory(authority)
    v.register(patient)
    v.register(doctor, endorse(v, authority, doctor, "GMC-1"))
    v.register(doctor2, endorse(v, authority, doctor2, "GMC-2"))
    return v


class DictStore:
    """A block store in a Python dict: what an app's own backend would implement."""

    def __init__(self) -> None:
        self.blocks: dict[str, bytes] = {}
        self._head: "str | None" = None

    def get(self, cid: str) -> "bytes | None":
        return self.blocks.get(cid)

    def put(self, cid: str, data: bytes) -> None:
        self.blocks.setdefault(cid, bytes(data))

    def has(self, cid: str) -> bool:
        return cid in self.blocks

    def delete(self, cid: str) -> None:
        self.blocks.pop(cid, None)

    def head(self) -> "str | None":
        return self._head

    def compare_and_swap_head(self, expected: "str | None", new: "str | None") -> bool:
        if self._head != expected:
            return False
        self._head = new
        return True


@pytest.fixture
def cli() -> Path:
    exe = Path(os.environ.get("MEDSHARE_CLI", ROOT / "target" / "release" / "medshare"))
    if not exe.exists():
        pytest.fail(f"the medshare CLI is not built at {exe} (scripts/test.sh builds it)")
    return exe
