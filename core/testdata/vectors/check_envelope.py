#!/usr/bin/env python3
"""Independent reader of envelope format v2, written from docs/FORMAT.md alone with the
`cryptography` package (OpenSSL): decrypts every pinned vector and checks the plaintext.

It shares no code with the Rust implementation, so it catches a format document that drifted
from what the code writes.  Usage: check_envelope.py [vectors.txt] [patient key PEM]
"""
import hashlib
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
import hmac

HERE = Path(__file__).resolve().parent


def load_vectors(path):
    vectors = []
    for block in path.read_text().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "name" in fields:
            vectors.append(fields)
    return vectors


def open_envelope(env, key):
    assert env[:6] == b"MSHENV", "magic"
    assert env[6] == 2, "version"
    e = env[7]
    chunk = 1 << e
    record = env[8:24]
    version = struct.unpack(">I", env[24:28])[0]
    salt = env[28:60]
    commitment = env[60:92]
    count = struct.unpack(">H", env[92:94])[0]
    pos = 94
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    my_id = b"\x12\x20" + hashlib.sha256(spki).digest()
    wrapped = None
    for _ in range(count):
        rid = env[pos:pos + 34]
        (length,) = struct.unpack(">H", env[pos + 34:pos + 36])
        if rid == my_id:
            wrapped = env[pos + 36:pos + 36 + length]
        pos += 36 + length
    assert wrapped is not None, "not a recipient"
    (meta_len,) = struct.unpack(">I", env[pos:pos + 4])
    pos += 4
    meta_aad = env[:pos]
    meta_ct = env[pos:pos + meta_len]
    header = env[:pos + meta_len]
    label = b"medshare/v2/dek" + record + struct.pack(">I", version)
    dek = key.decrypt(
        wrapped,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label),
    )
    prk = hmac.new(salt, dek, hashlib.sha256).digest()  # HKDF-Extract
    # The key commitment is checked before anything is decrypted.
    expected = HKDFExpand(hashes.SHA256(), 32, b"medshare/v2/key-commitment").derive(prk)
    assert hmac.compare_digest(expected, commitment), "key commitment"
    meta_key = HKDFExpand(hashes.SHA256(), 32, b"medshare/v2/metadata").derive(prk)
    payload_key = HKDFExpand(hashes.SHA256(), 32, b"medshare/v2/payload" + hashlib.sha256(header).digest()).derive(prk)
    meta = AESGCM(meta_key).decrypt(b"\x00" * 12, meta_ct, meta_aad)
    (size,) = struct.unpack(">Q", meta[:8])
    (n,) = struct.unpack(">H", meta[8:10])
    name = meta[10:10 + n].decode()
    (m,) = struct.unpack(">H", meta[10 + n:12 + n])
    media = meta[12 + n:12 + n + m].decode()
    assert not any(meta[12 + n + m:]), "padding must be zero"
    padded = padme(max(size, 256))
    chunks = max(1, -(-padded // chunk))
    payload = env[len(header):]
    assert len(payload) == padded + 16 * chunks, "payload length"
    out = bytearray()
    aes = AESGCM(payload_key)
    for i in range(chunks):
        last = i == chunks - 1
        plen = padded - (chunks - 1) * chunk if last else chunk
        start = i * (chunk + 16)
        nonce = b"\x00\x00\x00" + struct.pack(">Q", i) + (b"\x01" if last else b"\x00")
        out += aes.decrypt(nonce, payload[start:start + plen + 16], b"")
    assert not any(out[size:]), "payload padding must be zero"
    return bytes(out[:size]), name, media, version


def padme(length):
    """Padmé (Nikitin et al., PETS 2019): keep the top log2(log2(L))+1 bits of L."""
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


def main():
    vectors = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "envelope-v2.txt"
    key_path = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE.parent / "keys" / "patient-2048.pem"
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    count = 0
    for v in load_vectors(vectors):
        plain, name, media, version = open_envelope(bytes.fromhex(v["envelope"]), key)
        assert plain == bytes.fromhex(v["plaintext"]), v["name"]
        assert (name, media, version) == (v["file_name"], v["media_type"], int(v["version"])), v["name"]
        count += 1
    assert count >= 3
    print(f"{count} passed, 0 failed: envelope vectors open with an independent Python/OpenSSL reader")


if __name__ == "__main__":
    main()
