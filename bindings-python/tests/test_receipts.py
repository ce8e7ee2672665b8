import json

import medshare


def test_receipts_prove_grant_and_revocation_offline(vault, patient, doctor):
    rec = vault.publish(patient, b'{"resourceType":"Bundle"}', media_type="application/fhir+json")
    vault.grant(patient, rec, doctor, purpose="COC")
    grant_tx = [e.tx for e in vault.audit(rec) if e.kind == "granted"][0]
    kept = vault.receipt(grant_tx)  # what the doctor's app keeps
    vault.revoke(patient, rec, doctor)
    revoke_tx = [e.tx for e in vault.audit(rec) if e.kind == "revoked"][0]
    proof = vault.receipt(revoke_tx)  # what the patient shows

    # Checked with the genesis CID alone: no vault, no store.
    g = medshare.verify_receipt(kept, vault.genesis)
    assert isinstance(g, medshare.ReceiptFacts)
    assert (g.kind, g.record, g.doctor, g.purpose, g.tx) == ("Grant", rec, doctor.id, "COC", grant_tx)
    assert g.author == patient.id and g.genesis == vault.genesis
    r = medshare.verify_receipt(proof, vault.genesis)
    assert (r.kind, r.record, r.doctor, r.tx) == ("Revoke", rec, doctor.id, revoke_tx)
    assert r.index > g.index and r.log_size > r.index and len(r.signers) == r.authorities == 1
    assert len(proof) < 8192

    # A receipt for another network, or with one changed byte, proves nothing.
    other = medshare.Vault.memory(medshare.Identity.generate("authority", 2048))
    try:
        medshare.verify_receipt(proof, other.genesis)
        raise AssertionError("a receipt verified against another network")
    except medshare.WrongGenesis:
        pass
    doc = json.loads(proof)
    doc["transaction"]["index"] += 1
    try:
        medshare.verify_receipt(json.dumps(doc), vault.genesis)
        raise AssertionError("a moved index verified")
    except medshare.InvalidProof as e:
        assert "leaf" in str(e)
    try:
        medshare.verify_receipt("not json", vault.genesis)
        raise AssertionError("garbage verified")
    except medshare.MedshareError:
        pass


def test_vault_remembers_its_checkpoint(tmp_path, authority, patient):
    with medshare.Vault.open(tmp_path / "s", authority) as v:
        v.register(patient)
        cp = json.loads(v.trusted_checkpoint())
        assert cp["size"] == 1 and cp["height"] == 1 and cp["genesis"] == v.genesis


def test_a_kept_checkpoint_refuses_an_older_chain(tmp_path, authority, patient):
    v = medshare.Vault.memory(authority)
    v.register(patient)
    old = tmp_path / "old.car"
    v.export_car(old)
    v.publish(patient, b"x", media_type="text/plain")
    kept = v.trusted_checkpoint()
    stale = medshare.Vault.import_car(tmp_path / "stale", old)
    try:
        stale.trust_checkpoint(kept)
        raise AssertionError("an older chain was accepted against a kept checkpoint")
    except medshare.Rollback as e:
        assert (e.trusted, e.offered) == (json.loads(kept)["size"], json.loads(kept)["size"] - 1)
    try:
        stale.trust_checkpoint("{}")
        raise AssertionError("garbage trusted")
    except medshare.InvalidInput:
        pass
