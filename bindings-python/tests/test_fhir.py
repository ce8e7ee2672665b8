import pytest

import medshare

from fhir.resources.bundle import Bundle as BundleR5  
from fhir.resources.R4B.bundle import Bundle as BundleR4  


def resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def story(vault, patient, doctor, doctor2):
    rec = vault.publish(patient, b"secret labs", media_type="application/fhir+json", name="labs.json")
    vault.grant(patient, rec, doctor, purpose="COC", note="confidential: cardiology")
    vault.grant(patient, rec, doctor2, purpose="ETREAT")
    vault.revoke(patient, rec, doctor2)
    return rec


def test_record_bundle_is_valid_r5_and_says_what_happened(vault, patient, doctor, doctor2):
    rec = story(vault, patient, doctor, doctor2)
    b = vault.fhir_record(rec)
    BundleR5.model_validate(b)  # raises on anything the R5 models refuse
    assert b["type"] == "collection"
    consents = resources(b, "Consent")
    # bob's grant, carol's grant (revoked), and bob's re-grant of version 2 after the re-key
    assert [c["status"] for c in consents] == ["inactive", "inactive", "active"]
    active = consents[2]
    assert active["grantee"] == [{"reference": f"Practitioner/{doctor.id}"}]
    assert active["provision"][0]["purpose"][0]["code"] == "COC"
    assert "end" not in active["provision"][0]["period"]
    events = resources(b, "AuditEvent")
    assert [e["action"] for e in events] == ["C", "C", "C", "D", "C", "C"]
    codes = [[c["code"] for c in e["code"]["coding"]] for e in events]
    assert "110127" in codes[2], "an emergency-purpose grant is an emergency override"
    assert len(resources(b, "Provenance")) == 2  # versions 1 and 2
    assert {p["id"] for p in resources(b, "Practitioner")} == {doctor.id, doctor2.id}
    lic = resources(b, "Practitioner")[0]["qualification"][0]["identifier"][0]
    assert lic["system"] == "urn:medshare:licence" and lic["value"].startswith("GMC")
    text = str(b)
    assert "confidential" not in text and "labs.json" not in text and "secret" not in text


def test_patient_bundle_in_r4(vault, patient, doctor, doctor2):
    rec = story(vault, patient, doctor, doctor2)
    other = vault.publish(patient, b"x", media_type="text/plain")
    b = vault.fhir_patient(patient, version="R4")
    BundleR4.model_validate(b)
    docs = resources(b, "DocumentReference")
    assert {d["id"] for d in docs} == {rec, other}
    assert all(c["provision"]["type"] == "permit" for c in resources(b, "Consent"))
    assert resources(b, "Patient")[0]["identifier"][0] == {"system": "urn:medshare:account", "value": patient.id}


def test_bad_requests(vault, authority, patient, doctor):
    elsewhere = medshare.Vault.memory(authority)
    elsewhere.register(patient)
    unknown = elsewhere.publish(patient, b"x", media_type="text/plain")
    with pytest.raises(medshare.UnknownRecord):
        vault.fhir_record(unknown)
    with pytest.raises(medshare.UnknownIdentity):
        vault.fhir_patient(doctor)
    with pytest.raises(medshare.InvalidInput):
        vault.fhir_patient(patient, version="R3")
