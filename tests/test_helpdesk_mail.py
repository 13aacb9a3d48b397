"""Email in and out, end to end over real SMTP on loopback: the `mail-in` receiver (aiosmtpd,
started on a free port) turns messages into tickets and threaded replies, stores
attachments safely, ignores auto-replies and loops, quarantines what it cannot process;
client notifications leave through the outbox to a real SMTP sink."""

from __future__ import annotations

import os
import smtplib
import sqlite3
import subprocess
import sys

import pytest
from django.test import override_settings

from tests.helpdesk_helpers import free_port, mail, smtp_sink
from watchkeeper.core import actions as core_actions
from watchkeeper.core import events
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.choices import EntryKind, InboundState, MailState, Source, Status
from watchkeeper.helpdesk.mailin import intake as mailin
from watchkeeper.helpdesk.mailin.smtp import controller
from watchkeeper.helpdesk.models import (
    Attachment,
    ClientEmailDomain,
    InboundMessage,
    OutgoingMail,
    Ticket,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mail_in():
    """The real receiver, as `watchkeeper mail-in` runs it, on a free loopback port."""
    smtp = controller("127.0.0.1", free_port())
    smtp.start()
    yield smtp
    smtp.stop()


@pytest.fixture
def acme(client_a):
    core_actions.create_object(actor=None, model=ClientEmailDomain, client=client_a,
                               domain="acme.test")
    contact = core_actions.create_contact(actor=None, client=client_a, name="Dana Smile",
                                          email="dana@acme.test")
    return client_a, contact


def send(smtp, msg) -> None:
    with smtplib.SMTP(smtp.hostname, smtp.port, timeout=10) as client:
        client.send_message(msg)


def send_raw(smtp, raw: bytes, sender="x@nowhere.test") -> None:
    with smtplib.SMTP(smtp.hostname, smtp.port, timeout=10) as client:
        client.sendmail(sender, ["help@msp.test"], raw)


def test_new_mail_from_a_contact_opens_a_ticket_for_their_client(mail_in, acme):
    client, contact = acme
    # Given a message from a known contact
    msg = mail(sender="Dana Smile <Dana@Acme.test>", subject="Printer on fire",
               body="The printer in room 2 is smoking.")

    # When it is delivered over SMTP
    send(mail_in, msg)

    # Then (already committed when the server said 250) a ticket exists for that client
    ticket = Ticket.objects.get()
    assert ticket.client == client and ticket.contact == contact
    assert ticket.source == Source.EMAIL and ticket.status == Status.NEW
    assert ticket.subject == "Printer on fire"
    entry = ticket.entries.get(kind=EntryKind.EMAIL_IN)
    assert entry.message_id == msg["Message-ID"] and "smoking" in entry.body
    assert ticket.status_changes.get().to_status == Status.NEW


def test_sender_matched_by_domain_and_unknown_sender_goes_to_triage(mail_in, acme):
    client, _ = acme
    # Given one message from an unknown person at the client's domain, one from nowhere
    send(mail_in, mail(sender="new.hire@acme.test", subject="VPN access"))
    send(mail_in, mail(sender="stranger@elsewhere.test", subject="Hello?"))

    # Then the first belongs to the client, the second waits in triage without a client
    by_domain = Ticket.objects.get(subject="VPN access")
    assert by_domain.client == client and by_domain.contact is None
    triage = Ticket.objects.get(subject="Hello?")
    assert triage.client is None and triage.queue.is_triage


def test_replies_thread_by_headers_and_by_reference_and_duplicates_are_dropped(mail_in, acme):
    # Given a ticket opened by mail
    first = mail(sender="dana@acme.test", subject="Email slow")
    send(mail_in, first)
    ticket = Ticket.objects.get()

    # When the client replies (In-Reply-To), a colleague writes with [WK-…] in the subject,
    # and the first message is delivered a second time
    send(mail_in, mail(sender="dana@acme.test", subject="Re: Email slow",
                       body="Still slow today.", in_reply_to=first["Message-ID"]))
    send(mail_in, mail(sender="boss@acme.test", subject=f"Re: [{ticket.reference}] Email slow",
                       body="Please prioritise."))
    send(mail_in, first)

    # Then all of it is on the one ticket, once each
    assert Ticket.objects.count() == 1
    bodies = list(ticket.entries.filter(kind=EntryKind.EMAIL_IN).values_list("body", flat=True))
    assert len(bodies) == 3
    assert any("Still slow" in b for b in bodies) and any("prioritise" in b for b in bodies)


def test_a_reference_from_another_client_does_not_thread(mail_in, acme, client_b):
    # Given A's ticket
    send(mail_in, mail(sender="dana@acme.test", subject="Disk full"))
    ticket = Ticket.objects.get()
    # When a stranger mails with its reference in the subject
    send(mail_in, mail(sender="eve@evil.test", subject=f"[{ticket.reference}] gimme"))
    # Then it is a new triage ticket, not an entry on A's ticket
    assert Ticket.objects.count() == 2
    assert ticket.entries.filter(kind=EntryKind.EMAIL_IN).count() == 1


def test_client_reply_reopens_a_ticket_waiting_on_them(mail_in, acme, tech_a):
    first = mail(sender="dana@acme.test", subject="Scanner")
    send(mail_in, first)
    ticket = Ticket.objects.get()
    actions.add_entry(actor=tech_a, ticket=ticket, body="Which model is it?", public=True,
                      set_status=Status.WAITING_CLIENT)
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING_CLIENT and ticket.first_responded_at

    # When the client answers the technician's mail
    outgoing = OutgoingMail.objects.filter(kind="replied").get()
    send(mail_in, mail(sender="dana@acme.test", subject="Re: Scanner", body="An HP 5000",
                       in_reply_to=outgoing.message_id))

    # Then the ticket is open again and the status history shows the pause
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert list(ticket.status_changes.values_list("to_status", flat=True)) == [
        Status.NEW, Status.WAITING_CLIENT, Status.OPEN]


def test_attachments_are_stored_sniffed_and_only_downloaded(mail_in, acme, as_user, tech_a):
    # Given a message with a PNG and an HTML page that claims to be plain text
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    html = b"<html><script>alert(document.cookie)</script></html>"
    send(mail_in, mail(sender="dana@acme.test", subject="Screenshots",
                       attachments=[("screen.png", "image/png", png),
                                    ("notes.txt", "text/plain", html)]))

    # Then both are stored with the type their bytes have, linked to the mail's entry
    ticket = Ticket.objects.get()
    stored = {a.filename: a for a in Attachment.objects.filter(ticket=ticket)}
    assert stored["screen.png"].content_type == "image/png"
    assert stored["notes.txt"].content_type == "text/html"
    assert stored["notes.txt"].declared_type == "text/plain"
    assert stored["screen.png"].entry.kind == EntryKind.EMAIL_IN

    # And the HTML one downloads as an opaque file, never inline, never sniffed
    response = as_user(tech_a).get(f"/tickets/attachments/{stored['notes.txt'].pk}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == html


@override_settings(ATTACHMENT_MAX_BYTES=1000)
def test_an_oversized_attachment_is_refused_but_the_mail_kept(mail_in, acme):
    send(mail_in, mail(sender="dana@acme.test", subject="Big log",
                       attachments=[("huge.log", "text/plain", b"x" * 5000)]))
    ticket = Ticket.objects.get()
    assert not ticket.attachments.exists()
    assert "huge.log not stored" in ticket.entries.get(kind=EntryKind.SYSTEM).body


@pytest.mark.parametrize("headers,reason", [
    ({"Auto-Submitted": "auto-replied"}, "auto-submitted"),
    ({"Precedence": "bulk"}, "Precedence: bulk"),
    ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress"),
    ({"X-Watchkeeper-Ticket": "WK-000001"}, "mail loop"),
])
def test_auto_replies_and_loops_are_kept_but_never_ticketed_or_answered(mail_in, acme, headers,
                                                                        reason):
    # Given an out-of-office (or bulk, or our own mail come back)
    send(mail_in, mail(sender="dana@acme.test", subject="Out of office", headers=headers))

    # Then no ticket and no mail to answer it; the message is kept with the reason
    assert not Ticket.objects.exists()
    assert not OutgoingMail.objects.exists()
    kept = InboundMessage.objects.get()
    assert kept.state == InboundState.IGNORED and reason in kept.reason


def test_our_own_message_id_is_a_loop(mail_in, acme, settings):
    send(mail_in, mail(sender="dana@acme.test", subject="Bounce",
                       msgid=f"<abc@{settings.MAIL_DOMAIN}>"))
    assert not Ticket.objects.exists()
    assert "mail loop" in InboundMessage.objects.get().reason


@override_settings(MAIL_SENDER_RATE=3)
def test_a_sender_over_the_rate_is_ignored(mail_in, acme):
    for n in range(5):
        send(mail_in, mail(sender="dana@acme.test", subject=f"Spam {n}"))
    assert Ticket.objects.count() == 3
    assert "rate limit" in InboundMessage.objects.get(subject="Spam 4").reason


def test_unparseable_messages_are_quarantined_whole_and_reprocessable(mail_in, acme, owner):
    # Given a message with no sender at all, and one whose From is garbage
    raw1 = b"Subject: no sender here\r\n\r\nbody only\r\n"
    raw2 = b"From: <<<not an address\r\nSubject: broken\r\n\r\nhi\r\n"
    send_raw(mail_in, raw1)
    send_raw(mail_in, raw2)

    # Then both were accepted, none became a ticket, both are kept byte for byte
    assert not Ticket.objects.exists()
    rows = {r.subject: r for r in InboundMessage.objects.all()}
    assert rows["no sender here"].state == InboundState.QUARANTINED
    assert "no From header" in rows["no sender here"].reason
    assert rows["no sender here"].raw_bytes().replace(b"\r\n", b"\n") == raw1.replace(
        b"\r\n", b"\n")
    assert "no valid sender" in rows["broken"].reason

    # When one is re-processed as is, it stays quarantined (no duplicate row)
    mailin.reprocess(actor=owner, inbound=rows["broken"])
    assert InboundMessage.objects.count() == 2 and not Ticket.objects.exists()


def test_an_ignored_message_can_be_forced_into_a_ticket(mail_in, acme, owner):
    send(mail_in, mail(sender="dana@acme.test", subject="Real request",
                       headers={"Precedence": "bulk"}))
    row = InboundMessage.objects.get()
    outcome = mailin.reprocess(actor=owner, inbound=row, force=True)
    row.refresh_from_db()
    assert outcome.kind == "created" and row.state == InboundState.REPROCESSED
    assert row.ticket == outcome.ticket and outcome.ticket.subject == "Real request"


def test_notifications_leave_through_the_outbox_and_thread_back(mail_in, acme, tech_a,
                                                                settings):
    # Given a real SMTP relay for outgoing mail
    with smtp_sink() as (sink, port):
        settings.SMTP_HOST, settings.SMTP_PORT = "127.0.0.1", port
        # When a ticket arrives by mail and a technician replies and resolves it
        send(mail_in, mail(sender="dana@acme.test", subject="Laptop"))
        ticket = Ticket.objects.get()
        actions.add_entry(actor=tech_a, ticket=ticket, body="Fixed the driver.", public=True)
        actions.add_entry(actor=tech_a, ticket=ticket, body="Internal: driver v2", public=False)
        actions.change_ticket(actor=tech_a, ticket=ticket, status=Status.RESOLVED)
        events.dispatch_due()

    # Then the client got three mails (created, replied, resolved), none with the note
    assert [m.kind for m in OutgoingMail.objects.order_by("created_at")] == [
        "created", "replied", "resolved"]
    assert all(m.state == MailState.SENT for m in OutgoingMail.objects.all())
    assert len(sink.messages) == 3
    texts = [raw.decode() for _f, _to, raw in sink.messages]
    assert all(to == ["dana@acme.test"] for _f, to, _r in sink.messages)
    assert all(ticket.reference in t for t in texts)
    assert "Fixed the driver." in texts[1] and "driver v2" not in "".join(texts)
    assert "Auto-Submitted: auto-generated" in texts[0]
    assert "survey/?t=" in texts[2]

    # And the client's answer to the resolution mail reopens the same ticket
    resolved = OutgoingMail.objects.get(kind="resolved")
    send(mail_in, mail(sender="dana@acme.test", subject="Re: resolved",
                       in_reply_to=resolved.message_id, body="Broken again"))
    ticket.refresh_from_db()
    assert Ticket.objects.count() == 1 and ticket.status == Status.OPEN


def test_mail_in_command_receives_mail_into_its_database(tmp_path):
    # Given a fresh data directory, migrated, and `watchkeeper mail-in` started on a free port
    env = {**os.environ, "WATCHKEEPER_DATA_DIR": str(tmp_path)}
    env.pop("WATCHKEEPER_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "watchkeeper.cli", "migrate", "-v", "0"], env=env,
                   check=True, timeout=300)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "watchkeeper.cli", "mail-in", "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in proc.stdout:
            if "listening on" in line:
                break
        assert f"listening on 127.0.0.1:{port}" in line
        # When a message is sent to it
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(mail(sender="someone@somewhere.test", subject="Via command"))
    finally:
        proc.terminate()
        # Then it stops cleanly on SIGTERM
        assert proc.wait(timeout=20) == 0
    # And the ticket is in that process's database
    with sqlite3.connect(tmp_path / "watchkeeper.db") as db:
        rows = db.execute("select subject, source from helpdesk_ticket").fetchall()
    assert rows == [("Via command", "email")]


@pytest.mark.django_db
def test_any_bytes_get_an_outcome_and_are_kept_when_not_a_ticket(acme):
    """Fuzz: whatever arrives, receive() answers with an outcome and keeps the message
    (as a ticket entry or an InboundMessage with its exact bytes) — it never raises."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    header_lines = st.lists(st.sampled_from([
        b"From: dana@acme.test", b"From: =?utf-8?q?D=C3=A1na?= <dana@acme.test>",
        b"From: <<>>", b"Subject: =?utf-8?b?invalid?=", b"Subject: Hello",
        b"Message-ID: <a@b>", b"Message-ID: <<<", b"In-Reply-To: <nope@x>",
        b"Content-Type: multipart/mixed; boundary=\"zz\"", b"Content-Type: text/html",
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
        b"Auto-Submitted: no", b"\x00\xff\xfe", b"Subject: [WK-000001] x"]), max_size=8)

    @hsettings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(headers=header_lines, body=st.binary(max_size=300))
    def check(headers, body):
        raw = b"\r\n".join(headers) + b"\r\n\r\n" + body
        before = InboundMessage.objects.count()
        outcome = mailin.receive(raw)
        assert outcome.kind in ("created", "replied", "duplicate", "ignored", "quarantined")
        if outcome.kind != "duplicate":  # every other outcome keeps the exact bytes
            assert InboundMessage.objects.count() == before + 1
            row = InboundMessage.objects.get(content_hash=mailin.content_hash(raw))
            assert row.raw_bytes() == raw
        if outcome.kind in ("created", "replied"):
            assert outcome.ticket.entries.filter(kind="email_in").exclude(body="").exists()

    check()
