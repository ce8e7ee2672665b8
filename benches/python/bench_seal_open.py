#!/usr/bin/env python3
"""Python: medshare seal+open (Vault.publish + Vault.open_record, memory store) next to the
`cryptography` package's AESGCM encrypt+decrypt of the same bytes, in the same run.

    .tools/venv/bin/python benches/python/bench_seal_open.py

medshare does more per byte than the peer: chunked STREAM AES-256-GCM, UnixFS blocks with a
SHA-256 per block (CIDs), the store, and a signed ledger block per publish; the peer is one
AES-GCM call over the buffer. The ratio is the price of all that.
"""
import os
import statistics
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import medshare

KEYS = Path(__file__).resolve().parents[2] / "core" / "testdata" / "keys"


def best(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main():
    authority = medshare.Identity.from_pkcs8_pem("authority", (KEYS / "authority-2048.pem").read_text())
    patient = medshare.Identity.from_pkcs8_pem("patient", (KEYS / "patient-2048.pem").read_text())
    print(f"{'size':>8}  {'medshare seal+open':>20}  {'cryptography AESGCM':>20}  ratio")
    for size, runs in ((1 << 20, 20), (100 << 20, 5)):
        data = os.urandom(size)
        vault = medshare.Vault.memory(authority)
        vault.register(patient)

        def ours():
            rec = vault.publish(patient, data)
            assert len(vault.open_record(patient, rec)) == size

        key = AESGCM(AESGCM.generate_key(256))
        nonce = os.urandom(12)

        def peer():
            ct = key.encrypt(nonce, data, None)
            assert len(key.decrypt(nonce, ct, None)) == size

        ours_best, _ = best(ours, runs)
        peer_best, _ = best(peer, runs)
        mb = size / 1e6
        print(
            f"{size >> 20:>6}Mi  {mb / ours_best:>14.0f} MB/s  {mb / peer_best:>15.0f} MB/s  {ours_best / peer_best:5.2f}x time"
        )


if __name__ == "__main__":
    main()
