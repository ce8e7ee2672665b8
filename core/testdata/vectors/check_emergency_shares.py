#!/usr/bin/env python3
"""Independent checker of break-glass key shares (docs/FORMAT.md §6.10), written from the
format document alone (hashlib, integer arithmetic): recomputes every pinned share's
commitment, interpolates the data key from every subset of `threshold` shares, checks that
fewer shares do not give it, and that an altered share fails its commitment.

It shares no code with the Rust implementation, so it catches a format document that drifted
from what the code computes.  Usage: check_emergency_shares.py [emergency-shares-v1.json]
"""
import hashlib
import itertools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
POLY = 0x11B  # x^8 + x^4 + x^3 + x + 1


def gf_mul(a, b):
    """Carry-less multiplication modulo POLY (the definition, not the Rust code's bit tricks)."""
    p = 0
    while b:
        if b & 1:
            p ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= POLY
    return p


def gf_inv(a):
    """The inverse by search: the x with a * x = 1."""
    for x in range(1, 256):
        if gf_mul(a, x) == 1:
            return x
    raise ValueError("0 has no inverse")


def commitment(record, version, index, share, salt):
    h = hashlib.sha256()
    h.update(b"medshare/v3/emergency-commitment")
    h.update(record)
    h.update(version.to_bytes(4, "big"))
    h.update(bytes([index]))
    h.update(share)
    h.update(salt)
    return h.digest()


def interpolate_at_zero(points):
    """Lagrange interpolation at x = 0, byte by byte: points are (x, 32-byte share)."""
    out = bytearray(32)
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = gf_mul(num, xj)
                den = gf_mul(den, xj ^ xi)
        basis = gf_mul(num, gf_inv(den))
        for b in range(32):
            out[b] ^= gf_mul(yi[b], basis)
    return bytes(out)


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "emergency-shares-v1.json"
    v = json.loads(path.read_text())
    record = bytes.fromhex(v["record"])
    version = v["version"]
    key = bytes.fromhex(v["key"])
    k = v["threshold"]
    shares = [
        (s["index"], bytes.fromhex(s["share"]), bytes.fromhex(s["salt"]), bytes.fromhex(s["commitment"]))
        for s in v["shares"]
    ]
    assert [s[0] for s in shares] == list(range(1, len(shares) + 1)), "indices 1..n"
    for index, share, salt, c in shares:
        assert commitment(record, version, index, share, salt) == c, f"commitment of share {index}"
        # Bound to its record, version and index.
        assert commitment(record, version + 1, index, share, salt) != c
        assert commitment(record, version, index % len(shares) + 1, share, salt) != c
    combos = 0
    for subset in itertools.combinations(shares, k):
        assert interpolate_at_zero([(s[0], s[1]) for s in subset]) == key, f"shares {[s[0] for s in subset]}"
        combos += 1
    for subset in itertools.combinations(shares, k - 1):
        if len(subset) >= 2:
            assert interpolate_at_zero([(s[0], s[1]) for s in subset]) != key, "k-1 shares gave the key"
    # An altered share: its commitment fails, and with it the key is not the key.
    index, share, salt, c = shares[0]
    bad = bytes([share[0] ^ 1]) + share[1:]
    assert commitment(record, version, index, bad, salt) != c
    others = [(s[0], s[1]) for s in shares[1:k]]
    assert interpolate_at_zero([(index, bad)] + others) != key
    # The pinned negative case: the same, as the vector states it.
    neg = v["altered"]
    assert commitment(record, version, neg["index"], bytes.fromhex(neg["share"]), bytes.fromhex(neg["salt"])) != bytes.fromhex(neg["commitment"])
    print(f"emergency shares: {len(shares)} commitments, {combos} subsets of {k} give the key, altered share refused")


if __name__ == "__main__":
    main()
