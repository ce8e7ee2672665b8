"""Python on a medshare network: a patient and a doctor who hold only their own keys, connected
to validators' RPC, writing ciphertext to a kubo node and reading through a trustless gateway;
the same with the asyncio API."""

import asyncio
import hashlib
import os

import pytest

import medshare
from medshare import aio


def eventually(check, seconds=20.0):
    """Another hospital's node commits the same heights a moment later than the one a client
    used: what that client did is visible there within a block or two."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (AssertionError, medshare.MedshareError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_patient_publishes_and_doctor_reads_through_the_gateway(testnet, patient, doctor2):
    # The patient's process: her key, node 0's RPC and kubo. No authority key anywhere here.
    v = medshare.Vault.connect([testnet.rpc(0)], testnet.genesis, store=f"kubo={testnet.kubo(0)}")
    assert v.genesis == testnet.genesis
    try:
        v.register(patient)
    except medshare.Rejected as e:  # registered by an earlier test of this session
        assert e.rule == "DuplicateRegistration", e
    # The hospital endorses the doctor where its key is; the doctor registers with it.
    e = medshare.Endorsement.sign(testnet.authority(0), testnet.genesis, doctor2, "GMC-2")
    d = medshare.Vault.connect([testnet.rpc(1)], testnet.genesis, store=f"kubo={testnet.kubo(1)}")
    try:
        d.register(doctor2, e)
    except medshare.Rejected as err:
        assert err.rule == "DuplicateRegistration", err
    data = os.urandom(3_000_000)
    rec = v.publish(patient, data, media_type="application/dicom", name="ct.dcm")
    v.grant(patient, rec, doctor2, purpose="COC", note="compare with last year")
    # The doctor's process reads through node 1's gateway only (read-only, every block checked).
    reader = medshare.Vault.connect([testnet.rpc(1)], testnet.genesis, gateways=[testnet.gateway(1)])

    def read():
        reader.sync()
        return reader.open_record(doctor2, rec)

    assert hashlib.sha256(eventually(read)).digest() == hashlib.sha256(data).digest()
    assert reader.grant_note(doctor2, rec, doctor2) == "compare with last year"
    with pytest.raises(medshare.ReadOnly):
        reader.publish(patient, b"x")
    # A refusal names its rule, at once.
    with pytest.raises(medshare.Rejected) as refused:
        d.grant(doctor2, rec, doctor2)
    assert refused.value.rule == "NotOwner"
    v.revoke(patient, rec, doctor2)

    def refused():
        reader.sync()
        try:
            reader.open_record(doctor2, rec)
        except medshare.AccessRevoked:
            return
        raise AssertionError("the revoked doctor can still read")

    eventually(refused)


def test_a_network_that_is_not_the_one_asked_for_is_refused(testnet):
    other = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    with pytest.raises(medshare.LedgerError):
        medshare.Vault.connect([testnet.rpc(0)], other, gateways=[testnet.gateway(0)])


def test_nodes_that_do_not_answer_are_a_network_error():
    with pytest.raises(medshare.NetworkError):
        medshare.Vault.connect(["http://127.0.0.1:9"], "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
                               gateways=["http://127.0.0.1:9"], timeout=2)


def test_asyncio_api_on_the_network_keeps_the_loop_free(testnet, patient):
    async def main():
        v = await aio.Vault.connect([testnet.rpc(0)], testnet.genesis, store=f"kubo={testnet.kubo(0)}")
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        try:
            await v.register(patient)
        except medshare.Rejected:
            pass
        rec = await v.publish(patient, b"async bytes", media_type="text/plain")
        t.cancel()
        assert await v.open_record(patient, rec) == b"async bytes"
        # The loop ran while the transactions were being certified (about a second each).
        assert ticks > 20, ticks
        return rec

    rec = asyncio.run(main())
    assert isinstance(rec, str)


def test_a_light_client_believes_only_proven_answers(testnet, patient, doctor2):
    # Full replica: publish and grant, as the patient.
    v = medshare.Vault.connect([testnet.rpc(0)], testnet.genesis, store=f"kubo={testnet.kubo(0)}")
    try:
        v.register(patient)
    except medshare.Rejected as e:
        assert e.rule == "DuplicateRegistration", e
    e = medshare.Endorsement.sign(testnet.authority(0), testnet.genesis, doctor2, "GMC-2")
    try:
        v.register(doctor2, e)
    except medshare.Rejected as err:
        assert err.rule == "DuplicateRegistration", err
    rec = v.publish(patient, b"light", name="l.txt")
    v.grant(patient, rec, doctor2, purpose="TREAT")
    # A light client with only the genesis CID, through the other node.
    light = medshare.LightClient.connect([testnet.rpc(1)], testnet.genesis)

    def granted():
        a = light.access_list(rec)
        assert a is not None and [g.doctor for g in a.grants] == [doctor2.id], a
        return a

    a = eventually(granted)
    assert isinstance(a, medshare.RecordAccess)
    assert a.owner == patient.id and a.version == 1 and a.grants[0].purpose == "TREAT"
    assert rec in [r.record for r in light.records_of(doctor2.id)]
    # Another (valid) record id that is on no chain: its absence is proven.
    absent = rec[:5] + ("a" if rec[5] != "a" else "b") + rec[6:]
    assert light.access_list(absent) is None
    height = __import__("json").loads(light.checkpoint())["height"]
    assert height >= 1
    # The trust carries to a new session; another network's genesis is refused.
    again = medshare.LightClient.connect([testnet.rpc(0)], testnet.genesis, trust=light.trust())
    assert again.access_list(rec) is not None
    with pytest.raises(medshare.WrongGenesis):
        medshare.LightClient.connect(
            [testnet.rpc(0)], "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        )
    with pytest.raises(medshare.MedshareError):
        medshare.LightClient.connect([testnet.rpc(0)], testnet.genesis, trust="{}")


def test_break_glass_on_the_network(testnet, patient, doctor):
    """A doctor with no grant breaks the glass; both hospitals' nodes release their key shares
    by themselves (2 of 2 needed); the doctor reads; a hospital reviews; the patient re-keys."""
    v = medshare.Vault.connect([testnet.rpc(0)], testnet.genesis, store=f"kubo={testnet.kubo(0)}")
    try:
        v.register(patient)
    except medshare.Rejected as e:
        assert e.rule == "DuplicateRegistration", e
    e = medshare.Endorsement.sign(testnet.authority(0), testnet.genesis, doctor, "GMC-1")
    d = medshare.Vault.connect([testnet.rpc(1)], testnet.genesis, store=f"kubo={testnet.kubo(1)}")
    try:
        d.register(doctor, e)
    except medshare.Rejected as err:
        assert err.rule == "DuplicateRegistration", err
    data = os.urandom(200_000)
    rec = v.publish(patient, data, media_type="application/pdf", name="allergies.pdf", emergency=True)
    with pytest.raises(medshare.InvalidInput):
        d.request_emergency(doctor, rec, " ")

    # The doctor's process talks to node 1, which commits the publication a moment later.
    def known():
        d.sync()
        d.record(rec)

    eventually(known)
    request = d.request_emergency(doctor, rec, "unconscious, allergies unknown", window=3600)

    def opened():
        d.sync()
        return d.open_record(doctor, rec)

    assert eventually(opened, 60) == data
    status = d.emergency_status(doctor, request)
    assert isinstance(status, medshare.EmergencyStatus)
    assert status.open and status.threshold == 2 and all(s.valid for s in status.shares)
    assert d.emergency_justification(doctor, request) == "unconscious, allergies unknown"

    # The patient's process talks to node 0, which commits those heights a moment later.
    def seen_by_the_patient():
        v.sync()
        events = [x.event for x in v.audit(rec)]
        assert "emergency" in events and events.count("share-released") >= 2, events

    eventually(seen_by_the_patient)
    assert v.emergency_justification(patient, request) == "unconscious, allergies unknown"
    assert request in [x.request for x in v.emergencies(unreviewed=True)]
    # Hospital 0 endorsed the doctor: another hospital reviews.
    with pytest.raises(medshare.Rejected) as refused:
        v.review_emergency(testnet.authority(0), request, "justified")
    assert refused.value.rule == "Emergency"
    v.review_emergency(testnet.authority(1), request, "justified")
    assert request not in [x.request for x in v.emergencies(unreviewed=True)]
    review = [x for x in v.emergencies() if x.request == request][0].review
    assert review is not None and review.outcome == "justified"
    assert v.rekey(patient, rec) == 2

    # The doctor's node commits the re-key a moment later: until then she still reads version 1.
    def shut_out():
        d.sync()
        try:
            d.open_record(doctor, rec)
        except medshare.AccessDenied:
            return
        raise AssertionError("the emergency doctor still opens the record after the re-key")

    eventually(shut_out)
