"""Long operations release the GIL: another Python thread keeps running meanwhile."""

import threading

import medshare


def test_cid_releases_the_gil():
    data = bytes(200 * 1024 * 1024)
    ticks = 0
    stop = threading.Event()

    def spin():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = ticks
        for _ in range(3):
            medshare.cid(data)  # ~0.1 s each with the GIL released
        during = ticks - before
    finally:
        stop.set()
        t.join()
    # With the GIL held, the spinning thread would get no time slice at all during the calls
    # (CPython switches threads only between bytecodes, never inside a native call).
    assert during > 10_000, during


def test_two_threads_open_records_concurrently(vault, patient, doctor):
    data = bytes(range(256)) * 40_000
    recs = [vault.publish(patient, data) for _ in range(2)]
    results = {}

    def read(i):
        results[i] = medshare.cid(vault.open_record(patient, recs[i]))

    threads = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == results[1] == medshare.cid(data)
