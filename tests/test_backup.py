"""Issue 19, finding 5: `watchkeeper backup` of a running platform under load, the data
directory destroyed, `watchkeeper restore`: every acknowledged row and every attachment is
back, and a backup that does not match its manifest is refused."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

LOAD = r"""
import os, sys, django
django.setup()
from pathlib import Path
from watchkeeper.core import actions as core_actions
from watchkeeper.helpdesk import actions
acks, stop = Path(sys.argv[1]), Path(sys.argv[2])
client = core_actions.create_client(actor="load", name="Load client")
n = 0
with acks.open("a") as out:
    while not stop.exists():
        n += 1
        ticket = actions.create_ticket(actor="load", subject=f"load {n}", client=client,
                                       notify=False)
        data = os.urandom(2048) + str(n).encode()
        actions.attach_file(actor="load", ticket=ticket, filename=f"f{n}.bin", data=data)
        out.write(f"{ticket.pk}\n")   # acknowledged: committed before this line is written
        out.flush()
        os.fsync(out.fileno())
"""


def run(env, *args, check=True, timeout=300):
    result = subprocess.run([sys.executable, "-m", "watchkeeper.cli", *args], env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode:
        pytest.fail(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def acked(path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split("\n")[:-1] if line]


def test_backup_under_load_then_restore_brings_back_every_row_and_attachment(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items()
           if k not in ("WATCHKEEPER_DATABASE_URL", "WATCHKEEPER_TASKS_URL")}
    env.update(WATCHKEEPER_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="watchkeeper.settings",
               WATCHKEEPER_TASKS_URL="immediate")
    run(env, "migrate", "--verbosity=0")
    run(env, "signer", "--init")  # a signing key file, to be backed up with the others

    # given a platform writing tickets with attachments as fast as it can
    acks, stop = tmp_path / "acks", tmp_path / "stop"
    load = subprocess.Popen([sys.executable, "-c", LOAD, str(acks), str(stop)], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(acked(acks)) < 5 and time.monotonic() < deadline:
            assert load.poll() is None, load.stderr.read()
            time.sleep(0.1)
        before_backup = acked(acks)
        assert len(before_backup) >= 5

        # when it is backed up while the writes go on
        backup = tmp_path / "backup"
        run(env, "backup", str(backup))
    finally:
        stop.touch()
        load.wait(timeout=60)
    assert load.returncode == 0, load.stderr.read()

    # and the data directory is destroyed
    keys = {name: (data / name).read_bytes() for name in ("secret_key", "master_key")}
    signer_key = (data / "signer" / "ed25519.key").read_bytes()
    shutil.rmtree(data)

    # then restore verifies the manifest and brings everything back
    result = run(env, "restore", str(backup))
    assert "manifest verified" in result.stdout
    for name, value in keys.items():
        assert (data / name).read_bytes() == value
    assert (data / "signer" / "ed25519.key").read_bytes() == signer_key
    db = sqlite3.connect(data / "watchkeeper.db")
    tickets = {row[0] for row in db.execute("SELECT id FROM helpdesk_ticket")}
    attachments = db.execute("SELECT ticket_id, sha256, size FROM helpdesk_attachment").fetchall()
    db.close()
    # every ticket acknowledged before the backup began, with its attachment
    assert set(before_backup) <= tickets
    assert {t for t, _, _ in attachments} >= set(before_backup)
    # and every attachment row of the snapshot has its file, byte for byte
    for _, sha, size in attachments:
        stored = data / "attachments" / sha[:2] / sha
        assert stored.is_file(), f"attachment {sha} missing after restore"
        content = stored.read_bytes()
        assert len(content) == size and hashlib.sha256(content).hexdigest() == sha

    # and the restored platform serves an attachment (the web reads the storage layer)
    check = run(env, "shell", "-c", (
        "from watchkeeper.helpdesk.models import Attachment\n"
        "from watchkeeper.helpdesk import attachments\n"
        "a = Attachment.objects.order_by('id').first()\n"
        "r = attachments.response(a)\n"
        "print('served', r.status_code, len(b''.join(r.streaming_content)) == a.size)"))
    assert "served 200 True" in check.stdout, check.stderr

    # and a restore over a database that holds data is refused
    again = run(env, "restore", str(backup), check=False)
    assert again.returncode != 0 and "not empty" in again.stderr

    # and a backup whose file was changed is refused before anything is touched
    some = next(p for p in (backup / "files").rglob("*") if p.is_file())
    some.write_bytes(b"tampered")
    bad = run(env, "restore", "--verify-only", str(backup), check=False)
    assert bad.returncode != 0 and "checksum mismatch" in bad.stderr
