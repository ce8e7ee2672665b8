"""The pinned vectors and the negative testkit of the core, read from the shared files."""

import pytest

import medshare
from conftest import TESTDATA, fixture_key


def load_blocks(path):
    vectors = []
    for block in path.read_text().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        if "name" in fields:
            vectors.append(fields)
    return vectors


def test_envelope_vectors_open_and_match():
    patient = medshare.Identity.from_pkcs8_pem("patient", fixture_key("patient"))
    vectors = load_blocks(TESTDATA / "vectors" / "envelope-v2.txt")
    assert len(vectors) == 3
    for v in vectors:
        env = bytes.fromhex(v["envelope"])
        assert env[:6] == b"MSHENV" and env[6] == 2
        assert medshare.cid(env) == v["cid_v1"]
        assert medshare.cid(env, profile="unixfs-v0-2015") == v["cid_v0"]
        assert v["recipient"] == patient.key_id
        assert medshare.open_envelope(patient, env) == bytes.fromhex(v["plaintext"])


KEYS = TESTDATA / "keys"


def run_case(case):
    data = bytes.fromhex(case["data"])
    kind = case["kind"]
    if kind == "envelope":
        who = medshare.Identity.from_pkcs8_pem("patient", (KEYS / f"{case['key']}.pem").read_text())
        medshare.open_envelope(who, data)
    elif kind == "keyfile":
        medshare.Identity.from_key_file(data.decode(), case["passphrase"])
    elif kind == "pkcs8":
        medshare.Identity.from_pkcs8_pem("patient", data.decode())
    elif kind == "car":
        medshare.Vault.import_car(_MemStore(), data, genesis=case["genesis"])
    else:
        raise AssertionError(kind)


class _MemStore:
    def __init__(self):
        self.blocks, self.h = {}, None

    def get(self, c):
        return self.blocks.get(c)

    def put(self, c, d):
        self.blocks[c] = bytes(d)

    def has(self, c):
        return c in self.blocks

    def delete(self, c):
        self.blocks.pop(c, None)

    def head(self):
        return self.h

    def compare_and_swap_head(self, e, n):
        if self.h != e:
            return False
        self.h = n
        return True


CASES = load_blocks(TESTDATA / "testkit" / "cases.txt")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_testkit_case(case):
    with pytest.raises(medshare.MedshareError) as e:
        run_case(case)
    assert e.value.code == case["expect"], str(e.value)


def test_ipfs_add_vectors():
    n = 0
    for line in (TESTDATA / "cid-public.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        profile, size, expected = line.split("\t")
        data = bytes(i % 251 for i in range(int(size)))
        assert medshare.cid(data, profile=profile) == expected, (profile, size)
        n += 1
    assert n == 12
