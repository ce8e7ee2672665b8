"""The Python quick-start, run from an installed wheel (no Rust anywhere)."""

import medshare

hospital = medshare.Identity.generate("authority", bits=2048)
with medshare.Vault.memory(hospital) as vault:
    alice = medshare.Identity.generate("patient", bits=2048, name="alice")
    bob = medshare.Identity.generate("doctor", bits=2048, name="bob")
    vault.register(alice)
    vault.register(bob, medshare.Endorsement.sign(hospital, vault.genesis, bob, "GMC-7001234"))
    rec = vault.publish(alice, b'{"resourceType":"Bundle"}', media_type="application/fhir+json")
    vault.grant(alice, rec, bob, purpose="TREAT")
    assert vault.open_record(bob, rec) == b'{"resourceType":"Bundle"}'
    vault.revoke(alice, rec, bob)
    try:
        vault.open_record(bob, rec)
        raise SystemExit("the revoked doctor could read")
    except medshare.AccessRevoked:
        pass
    report = vault.verify()
hello = medshare.cid(b"hello IPFS\n")
print(f"wheel quick-start: {report.blocks} blocks verified; cid {hello}")
