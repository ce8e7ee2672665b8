"""Records cross between the Rust CLI and Python in both directions, over one CLI home."""

import os
import subprocess

import medshare

PASS = "interop passphrase"


def run(cli, home, *args):
    env = dict(os.environ, MEDSHARE_PASSPHRASE=PASS)
    out = subprocess.run([str(cli), "--home", str(home), "--json", *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cli_publishes_python_opens_and_back(tmp_path, cli):
    import json

    home = tmp_path / "home"
    run(cli, home, "init")
    run(cli, home, "identity", "new", "--role", "patient", "--name", "alice", "--bits", "2048")
    run(cli, home, "identity", "new", "--role", "doctor", "--name", "bob", "--bits", "2048", "--licence", "GMC-9")
    src = tmp_path / "labs.json"
    src.write_bytes(b'{"resourceType":"Bundle","id":"cli"}')
    rec = json.loads(run(cli, home, "record", "add", "--as", "alice", str(src)))["id"]
    run(cli, home, "grant", "--as", "alice", "--record", rec, "--doctor", "bob")

    # Python opens what the CLI published, as the doctor, from the CLI's key file.
    bob = medshare.Identity.load(home / "identities" / "bob.key", PASS)
    with medshare.Vault.open(home / "store") as v:
        assert v.open_record(bob, rec) == src.read_bytes()
        assert [r.record for r in v.records_for(bob)] == [rec]

    # Where the CLI keeps keys and the store: H/identities/NAME.key, H/authority.key, H/store.
    # Python publishes into the CLI's home with its authority; the CLI reads it back.
    authority = medshare.Identity.load(home / "authority.key", PASS)
    alice = medshare.Identity.load(home / "identities" / "alice.key", PASS)
    with medshare.Vault.open(home / "store", authority) as v:
        rec2 = v.publish(alice, b"written by Python", media_type="text/plain", name="note.txt")
        v.grant(alice, rec2, bob)
    out = tmp_path / "back.txt"
    run(cli, home, "record", "get", "--as", "bob", "--record", rec2, "-o", str(out))
    assert out.read_bytes() == b"written by Python"
    assert json.loads(run(cli, home, "verify"))["ok"] is True
