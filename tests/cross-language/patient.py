"""The patient, in Python: register, publish a record and grant it to the doctor, over the
network (node 0's RPC, node 0's kubo). Usage: patient.py WORKDIR RPC KUBO GENESIS"""

import sys
from pathlib import Path

import medshare

work, rpc, kubo, genesis = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
alice = medshare.Identity.generate("patient", bits=2048, name="alice")
alice.save(work / "alice.key", "cross-language passphrase")
v = medshare.Vault.connect([rpc], genesis, store=f"kubo={kubo}")
v.register(alice)
data = b'{"resourceType":"Bundle","type":"collection","entry":[]}' * 20_000
(work / "expected.json").write_bytes(data)
doctor = (work / "doctor.id").read_text().strip()
rec = v.publish(alice, data, media_type="application/fhir+json", name="bundle.json")
v.grant(alice, rec, doctor, purpose="TREAT", note="from Python")
(work / "record.id").write_text(rec)
(work / "height").write_text(str(v.height))
print(f"python: alice {alice.id} published {rec} ({len(data)} bytes) and granted it to {doctor}")
