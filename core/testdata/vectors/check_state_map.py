#!/usr/bin/env python3
"""Independent checker of the state map (docs/FORMAT.md §12), written from the format document
alone with hashlib: rebuilds the root of the pinned entries by the tree's definition, verifies
every pinned proof of presence and absence, and checks that altered proofs fail.

It shares no code with the Rust implementation, so it catches a format document that drifted
from what the code computes.  Usage: check_state_map.py [state-map-v1.json]
"""
import base64
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EMPTY = bytes(32)


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def leaf(key, value_hash):
    return sha(b"\x00", key, value_hash)


def branch(left, right):
    return sha(b"\x01", left, right)


def bit(key, i):
    return (key[i // 8] >> (7 - i % 8)) & 1


def root_of(entries, depth=0):
    """The definition: a subtree of no leaf is EMPTY, of one leaf that leaf, else a branch."""
    if not entries:
        return EMPTY
    if len(entries) == 1:
        (k, vh), = entries
        return leaf(k, vh)
    left = [(k, vh) for k, vh in entries if bit(k, depth) == 0]
    right = [(k, vh) for k, vh in entries if bit(k, depth) == 1]
    return branch(root_of(left, depth + 1), root_of(right, depth + 1))


def b64(s):
    return base64.b64decode(s, validate=True)


def verify(root, key, value, proof):
    """§12.3: True iff `proof` shows `key` -> `value` (None: absent) under `root`."""
    siblings = [b64(s) for s in proof["siblings"]]
    if len(siblings) > 256 or any(len(s) != 32 for s in siblings):
        return False
    shown = proof["leaf"]
    if shown is None:
        if value is not None:
            return False
        h = EMPTY
    else:
        k, vh = b64(shown["key"]), b64(shown["value"])
        if value is not None:
            if k != key or vh != hashlib.sha256(value).digest():
                return False
        else:
            if k == key or any(bit(k, i) != bit(key, i) for i in range(len(siblings))):
                return False
        h = leaf(k, vh)
    for i in reversed(range(len(siblings))):
        h = branch(siblings[i], h) if bit(key, i) else branch(h, siblings[i])
    return h == root


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "state-map-v1.json"
    v = json.loads(path.read_text())
    entries = [
        (bytes.fromhex(e["key"]), hashlib.sha256(bytes.fromhex(e["value"])).digest())
        for e in v["entries"]
    ]
    root = bytes.fromhex(v["root"])
    assert root_of(entries) == root, "the root is not the definition's"
    kinds = set()
    for p in v["proofs"]:
        key = bytes.fromhex(p["key"])
        value = bytes.fromhex(p["value"]) if p["value"] is not None else None
        proof = p["proof"]
        assert verify(root, key, value, proof), f"pinned proof of {p['key']} fails"
        kinds.add((value is None, proof["leaf"] is None))
        # Negative: the other claim, a changed sibling, and one sibling too many all fail.
        other = None if value is not None else b"x"
        assert not verify(root, key, other, proof), "a proof showed the opposite claim"
        if proof["siblings"]:
            bad = dict(proof, siblings=list(proof["siblings"]))
            s = bytearray(b64(bad["siblings"][0]))
            s[0] ^= 1
            bad["siblings"][0] = base64.b64encode(bytes(s)).decode()
            assert not verify(root, key, value, bad), "a changed sibling still verified"
        longer = dict(proof, siblings=list(proof["siblings"]) + [base64.b64encode(EMPTY).decode()])
        assert not verify(root, key, value, longer), "an extra sibling still verified"
    # Presence, absence at another key's leaf, absence at an empty subtree.
    assert kinds == {(False, False), (True, False), (True, True)}, kinds
    print(f"state map: root of {len(entries)} entries and {len(v['proofs'])} proofs check out")


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(n)


def cbor(v):
    """Canonical DAG-CBOR of the few types a state-map value uses."""
    if isinstance(v, int):
        return cbor_head(0, v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        return cbor_head(3, len(v.encode())) + v.encode()
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        return cbor_head(5, len(keys)) + b"".join(cbor(k) + cbor(v[k]) for k in keys)
    raise TypeError(v)


def doctor_entry(path):
    """§12.2: every leaf value is the canonical map of its fields; the leaves under their keys
    make the tree whose root, with the doctor and the count, is the entry."""
    v = json.loads(path.read_text())
    leaves = []
    for r in v["records"]:
        fields = {"record": bytes.fromhex(r["record"]), "version": r["version"]}
        if r["expires"] is not None:
            fields["expires"] = r["expires"]
        value = cbor(fields)
        assert value.hex() == r["value"], f"record {r['record']}: the value is not the fields'"
        key = sha(b"medshare/state/doctor-record", b"\x00", fields["record"])
        leaves.append((key, sha(value)))
    doctor = bytes.fromhex(v["doctor"])
    entry = lambda ls: cbor({"doctor": doctor, "records": len(ls), "root": root_of(ls)})
    assert entry(leaves).hex() == v["entry"], "the entry is not the tree's"
    # Negative: a record left out, or one with another version, gives another entry.
    assert entry(leaves[1:]).hex() != v["entry"], "a record left out made the same entry"
    other = cbor({"record": bytes.fromhex(v["records"][0]["record"]), "version": 2})
    assert entry([(leaves[0][0], sha(other))] + leaves[1:]).hex() != v["entry"]
    print(f"doctor entry: {len(leaves)} records rebuild her tree and entry")


if __name__ == "__main__":
    main()
    if len(sys.argv) <= 1:
        doctor_entry(HERE / "doctor-entry-v1.json")
