"""IMAP polling against a real Dovecot started by the test (Debian's dovecot-imapd, a
minimal config with a passwd-file in a temporary directory, plain IMAP on a free loopback
port). Skipped, with the reason, where /usr/sbin/dovecot is not installed."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpdesk_helpers import free_port, mail
from watchkeeper.core import actions as core_actions
from watchkeeper.core.scheduler import registered
from watchkeeper.helpdesk.choices import InboundState, Source
from watchkeeper.helpdesk.mailin.imap import Mailbox, poll, poll_imap
from watchkeeper.helpdesk.models import InboundMessage, Ticket

DOVECOT = "/usr/sbin/dovecot"
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not os.path.exists(DOVECOT), reason="dovecot is not installed"),
]
USER, PASSWORD = "helpdesk", "s3cret-imap-pass"

CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
first_valid_uid = {uid}
{extra}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@pytest.fixture
def dovecot():
    # Not pytest's tmp_path: its parents are private to us, and dovecot's own processes
    # (its auth worker and mail user) must read the passwd file and the mail directory.
    d = Path(tempfile.mkdtemp(prefix="wk-dovecot-"))
    for sub in ("run", "state", "mail"):
        (d / sub).mkdir(parents=True)
    d.chmod(0o755)
    if os.getuid() == 0:  # mail processes may not run as root: use the package's user
        account = pwd.getpwnam("dovecot")
        uid, gid, extra = account.pw_uid, account.pw_gid, ""
        shutil.chown(d / "mail", uid, gid)
    else:  # unprivileged: every dovecot process runs as us
        me = pwd.getpwuid(os.getuid()).pw_name
        uid, gid = os.getuid(), os.getgid()
        extra = (f"default_internal_user = {me}\ndefault_internal_group = {me}\n"
                 f"default_login_user = {me}\n")
    port = free_port()
    (d / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    conf = d / "dovecot.conf"
    conf.write_text(CONFIG.format(d=d, uid=uid, gid=gid, port=port, extra=extra))
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = (d / "dovecot.log").read_text() if (d / "dovecot.log").exists() else ""
                pytest.skip(f"dovecot could not start here: {out} {log}"[:500])
            time.sleep(0.1)
    yield Mailbox(host="127.0.0.1", port=port, user=USER, password=PASSWORD, ssl=False)
    proc.terminate()
    proc.wait(timeout=20)
    shutil.rmtree(d, ignore_errors=True)


def append(box: Mailbox, raw: bytes) -> None:
    conn = imaplib.IMAP4(box.host, box.port)
    conn.login(box.user, box.password)
    conn.append("INBOX", None, None, raw)
    conn.logout()


def unseen(box: Mailbox) -> list[bytes]:
    conn = imaplib.IMAP4(box.host, box.port)
    conn.login(box.user, box.password)
    conn.select("INBOX")
    _typ, data = conn.uid("SEARCH", None, "UNSEEN")
    conn.logout()
    return data[0].split()


def test_polling_turns_each_unseen_message_into_one_outcome(dovecot, client_a):
    # Given a mailbox with a request from a contact, an out-of-office and a broken message
    core_actions.create_contact(actor=None, client=client_a, name="Kim", email="kim@acme.test")
    append(dovecot, mail(sender="kim@acme.test", subject="Monitor flickers").as_bytes())
    append(dovecot, mail(sender="kim@acme.test", subject="Away",
                         headers={"Auto-Submitted": "auto-replied"}).as_bytes())
    append(dovecot, b"Subject: no sender\r\n\r\nwho am I\r\n")

    # When the mailbox is polled
    counts = poll(dovecot)

    # Then one ticket, one ignored and one quarantined message, all marked seen
    assert counts == {"fetched": 3, "created": 1, "ignored": 1, "quarantined": 1}
    ticket = Ticket.objects.get()
    assert ticket.client == client_a and ticket.source == Source.EMAIL
    states = sorted(InboundMessage.objects.values_list("state", "channel"))
    # (every message is kept whole, the accepted one linked to its ticket)
    assert states == [(InboundState.ACCEPTED, "imap"), (InboundState.IGNORED, "imap"),
                      (InboundState.QUARANTINED, "imap")]
    assert InboundMessage.objects.get(state=InboundState.ACCEPTED).ticket == ticket
    assert unseen(dovecot) == []
    # And the next poll finds nothing new
    assert poll(dovecot) == {"fetched": 0}


def test_a_message_seen_twice_is_processed_once(dovecot, client_a):
    raw = mail(sender="kim@acme.test", subject="Twice").as_bytes()
    append(dovecot, raw)
    poll(dovecot)
    # When the same message is in the mailbox again (a crash before \\Seen, or a copy)
    append(dovecot, raw)
    counts = poll(dovecot)
    # Then it is recognised by its Message-ID
    assert counts == {"fetched": 1, "duplicate": 1}
    assert Ticket.objects.count() == 1


def test_messages_without_message_id_and_kept_ones_are_processed_once(dovecot, client_a):
    # Given a request with no Message-ID and a broken message, each in the mailbox twice
    # (a copy, or a crash before \\Seen)
    no_id = b"From: kim@acme.test\r\nSubject: No id\r\n\r\nThe VPN is down.\r\n"
    broken = b"Subject: no sender\r\n\r\nwho am I\r\n"
    for raw in (no_id, broken, no_id, broken):
        append(dovecot, raw)
    # When the mailbox is polled
    counts = poll(dovecot)
    # Then each is recognised by its content: one ticket, one quarantined message
    assert counts == {"fetched": 4, "created": 1, "quarantined": 1, "duplicate": 2}
    assert Ticket.objects.count() == 1
    assert sorted(InboundMessage.objects.values_list("state", flat=True)) == [
        InboundState.ACCEPTED, InboundState.QUARANTINED]


def test_the_scheduled_job_polls_the_configured_mailbox(dovecot, settings):
    # Given the mailbox configured through settings (WATCHKEEPER_IMAP_*)
    settings.IMAP_HOST, settings.IMAP_PORT = dovecot.host, dovecot.port
    settings.IMAP_USER, settings.IMAP_PASSWORD = dovecot.user, dovecot.password
    settings.IMAP_SSL = False
    append(dovecot, mail(sender="x@unknown.test", subject="Via job").as_bytes())
    # When the registered periodic job runs
    job = registered()["helpdesk.imap_poll"]
    assert job.task is poll_imap and job.when()
    result = poll_imap.call()
    # Then the message became a (triage) ticket
    assert result["created"] == 1
    assert Ticket.objects.get().queue.is_triage
