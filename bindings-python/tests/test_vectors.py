"""The pinned vectors of the core, read from the shared files and checked from Python."""

import medshare
from conftest import TESTDATA, fixture_key


def load_envelope_vectors():
    vectors = []
    for block in (TESTDATA / "vectors" / "envelope-v1.txt").read_text().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        if "name" in fields:
            vectors.append(fields)
    return vectors


def test_envelope_vector_cids_and_recipient():
    patient = medshare.Identity.from_pkcs8_pem("patient", fixture_key("patient"))
    vectors = load_envelope_vectors()
    assert len(vectors) == 3
    for v in vectors:
        env = bytes.fromhex(v["envelope"])
        assert env[:6] == b"MSHENV"
        assert medshare.cid(env) == v["cid_v1"]
        assert medshare.cid(env, profile="unixfs-v0-2015") == v["cid_v0"]
        assert v["recipient"] == patient.id


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
