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


@pytest.fixture(scope="session")
def testnet():
    """A local medshare network: the one the test command started (MEDSHARE_TESTNET), or a new
    two-validator one started here with the CLI and stopped at the end of the session."""
    import json
    import signal
    import subprocess
    import tempfile

    cli = os.environ.get("MEDSHARE_CLI", str(ROOT / "target" / "release" / "medshare"))
    given = os.environ.get("MEDSHARE_TESTNET")
    if given:
        yield Testnet(Path(given), os.environ.get("MEDSHARE_TESTNET_PASSPHRASE", ""), cli)
        return
    passphrase = "testnet passphrase of a test"
    d = Path(tempfile.mkdtemp(prefix="medshare-net-")) / "net"
    env = {**os.environ, "MEDSHARE_PASSPHRASE": passphrase}
    subprocess.run([cli, "testnet", "init", "--dir", str(d), "--validators", "2", "--base-port", "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    up = subprocess.Popen([cli, "testnet", "up", "--dir", str(d)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert up.stdout is not None
    for line in up.stdout:
        if "is up" in line:
            break
    else:
        raise RuntimeError(f"testnet up failed: {up.stderr.read() if up.stderr else ''}")
    try:
        yield Testnet(d, passphrase, cli)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)


class Testnet:
    def __init__(self, directory: Path, passphrase: str, cli: str) -> None:
        import json

        self.dir = directory
        self.passphrase = passphrase
        self.cli = cli
        self.layout = json.loads((directory / "testnet.json").read_text())
        self.genesis: str = self.layout["genesis"]

    def rpc(self, i: int) -> str:
        return f"http://127.0.0.1:{self.layout['nodes'][i]['ports']['rpc']}"

    def kubo(self, i: int) -> str:
        return f"http://127.0.0.1:{self.layout['nodes'][i]['ports']['kubo_api']}"

    def gateway(self, i: int) -> str:
        return f"http://127.0.0.1:{self.layout['nodes'][i]['ports']['kubo_gateway']}"

    def authority(self, i: int) -> medshare.Identity:
        return medshare.Identity.load(Path(self.layout["nodes"][i]["dir"]) / "authority.key", self.passphrase)
