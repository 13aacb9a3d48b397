"""Mail intake keeps everything a message carries (issue 10) and processes a message once
whatever it became (issue 19, item 4).

Every non-empty leaf part of hand-made messages (forwarded, nested, malformed, HTML-only,
digests; built with the `email` package) and of generated ones (hypothesis) is found in the
ticket's text or among its attachments (inside an attached .eml for a forwarded message);
no accepted message ends as an empty ticket; the raw message is kept, compressed, and
downloadable from the ticket by whoever sees it; a re-sent message is recognised by its
content whatever it became; unknown senders get no acknowledgement unless asked for."""

from __future__ import annotations

import html
import re
import smtplib
import uuid
from datetime import timedelta
from email import policy
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.image import MIMEImage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.factories import make_user
from tests.helpdesk_helpers import free_port, mail
from watchkeeper.core import actions as core_actions
from watchkeeper.core.choices import Role
from watchkeeper.helpdesk import attachments
from watchkeeper.helpdesk.choices import EntryKind, InboundState
from watchkeeper.helpdesk.mailin import intake as mailin
from watchkeeper.helpdesk.mailin.smtp import controller
from watchkeeper.helpdesk.models import ClientEmailDomain, InboundMessage, OutgoingMail, Ticket

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
WORD = re.compile(r"[^\W_]+")


# --- The checker: every leaf of a message is on its ticket --------------------------------

def words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def leaf_payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def leaf_words(part: Message, data: bytes) -> set[str]:
    text = data.decode(part.get_content_charset() or "utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = re.sub(r"(?is)<(script|style).*?</\1>", "", text)
        text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    return words(text)


def eml_leaves(files: list[bytes]) -> list[bytes]:
    """Decoded payloads of every leaf inside the attached .eml files (recursively)."""
    found = []
    for data in files:
        inner = BytesParser(policy=policy.default).parsebytes(data)
        for part in inner.walk():
            if not part.is_multipart():  # (line endings are the transport's)
                found.append(leaf_payload(part).replace(b"\r\n", b"\n"))
    return found


def ticket_content(ticket: Ticket) -> tuple[str, list[bytes], list[bytes]]:
    text = "\n".join(ticket.entries.values_list("body", flat=True))
    files = [attachments.path_for(a.sha256).read_bytes() for a in ticket.attachments.all()]
    emls = [attachments.path_for(a.sha256).read_bytes()
            for a in ticket.attachments.filter(declared_type="message/rfc822")]
    return text, files, eml_leaves(emls)


def missing_leaves(msg: Message, ticket: Ticket) -> list[str]:
    """Non-empty leaf parts of `msg` found neither in the ticket's text nor among its
    attachments (nor inside an attached forwarded message)."""
    text, files, forwarded = ticket_content(ticket)
    have = words(text)
    missing = []

    def visit(part: Message, inside_forward: bool) -> None:
        if part.get_content_type() in ("message/rfc822", "message/global") and \
                part.is_multipart():
            for inner in part.get_payload():
                visit(inner, True)
            return
        if part.is_multipart():
            for kid in part.get_payload():
                visit(kid, inside_forward)
            return
        data = leaf_payload(part)
        if not data.strip():
            return
        if inside_forward:
            if data.replace(b"\r\n", b"\n") not in forwarded:
                missing.append(f"forwarded {part.get_content_type()}")
            return
        if data in files:
            return
        is_text = part.get_content_maintype() in ("text", "multipart")
        if not (is_text and leaf_words(part, data) <= have):
            missing.append(f"{part.get_content_type()}: {data[:60]!r}")

    visit(msg, False)
    return missing


def assert_whole(raw: bytes, outcome) -> Ticket:
    assert outcome.kind in ("created", "replied"), outcome
    ticket = outcome.ticket
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert missing_leaves(msg, ticket) == []
    first = ticket.entries.filter(kind=EntryKind.EMAIL_IN).order_by("-id").first()
    assert first.body.strip(), "an accepted message never ends as an empty ticket"
    kept = InboundMessage.objects.get(content_hash=mailin.content_hash(raw))
    # (as sent: SMTP may only turn line endings into CRLF and end the data with one)
    assert kept.raw_bytes().replace(b"\r\n", b"\n").rstrip(b"\n") == \
        raw.replace(b"\r\n", b"\n").rstrip(b"\n")
    assert kept.ticket == ticket and kept.entry == first
    return ticket


def headers(msg: Message, subject: str, sender: str = "dana@acme.test") -> Message:
    msg["From"] = sender
    msg["To"] = "help@msp.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@client.test>"
    return msg


# --- Hand-made messages -------------------------------------------------------------------

def forwarded() -> bytes:
    inner = MIMEMultipart("mixed")
    headers(inner, "Invoice overdue", sender="billing@vendor.test")
    inner.attach(MIMEText("Please pay invoice 4711 today.", "plain"))
    inner.attach(MIMEApplication(b"%PDF-1.4 fake invoice", Name="invoice.pdf"))
    outer = MIMEMultipart("mixed")
    headers(outer, "Fwd: Invoice overdue")
    outer.attach(MIMEText("Is this phishing? Forwarding it as an attachment.", "plain"))
    outer.attach(MIMEMessage(inner))
    return outer.as_bytes()


def nested() -> bytes:
    alt = MIMEMultipart("alternative")
    alt.attach(MIMEText("Screen is blank after the update.", "plain"))
    alt.attach(MIMEText("<p>Screen is <b>blank</b> after the update.</p>", "html"))
    related = MIMEMultipart("related")
    related.attach(alt)
    related.attach(MIMEImage(PNG, "png"))
    outer = MIMEMultipart("mixed")
    headers(outer, "Blank screen")
    outer.attach(related)
    outer.attach(MIMEText("<p>Extra notes from the <i>second</i> HTML part</p>", "html"))
    outer.attach(MIMEApplication(b"log line 1\nlog line 2\n", Name="update.log"))
    return outer.as_bytes()


def html_only() -> bytes:
    msg = MIMEText("<html><body><p>Caf&eacute; &amp; kitchen printer</p><p>Second "
                   "paragraph</p><ul><li>toner</li><li>paper</li></ul></body></html>",
                   "html")
    return headers(msg, "Printer").as_bytes()


def boundary_never_used() -> bytes:
    return (b"From: dana@acme.test\r\nTo: help@msp.test\r\nSubject: Broken boundary\r\n"
            b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
            b"The server room is too hot, the boundary of this mail never comes.\r\n")


def unclosed_multipart() -> bytes:
    return (b"From: dana@acme.test\r\nTo: help@msp.test\r\nSubject: Unclosed\r\n"
            b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@client.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n"
            b"--B1\r\nContent-Type: text/plain\r\n\r\nFirst part text\r\n"
            b"--B1\r\nContent-Type: application/pdf; name=a.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n")


def digest() -> bytes:
    outer = MIMEMultipart("digest")
    headers(outer, "Weekly digest")
    for n in (1, 2):
        inner = EmailMessage()
        headers(inner, f"Digest item {n}", sender=f"member{n}@list.test")
        inner.set_content(f"Digest body number {n}")
        outer.attach(MIMEMessage(inner))
    return outer.as_bytes()


@pytest.fixture
def acme(db, client_a):
    core_actions.create_object(actor=None, model=ClientEmailDomain, client=client_a,
                               domain="acme.test")
    core_actions.create_contact(actor=None, client=client_a, name="Dana", email="dana@acme.test")
    return client_a


@pytest.mark.django_db
@pytest.mark.parametrize("build", [forwarded, nested, html_only, unclosed_multipart,
                                   boundary_never_used])
def test_every_leaf_of_a_hand_made_message_is_on_its_ticket(acme, build):
    raw = build()
    assert_whole(raw, mailin.receive(raw))


@pytest.mark.django_db(transaction=True)
def test_hand_made_messages_arrive_whole_over_smtp(mail_in, acme):
    # The real receiver: each message answered 250, then found whole on its ticket
    for build in (forwarded, nested, html_only, unclosed_multipart, boundary_never_used):
        raw = build().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP's CRLF
        send_raw(mail_in, raw)
        kept = InboundMessage.objects.get(content_hash=mailin.content_hash(raw))
        assert kept.channel == "smtp" and kept.state == InboundState.ACCEPTED
        outcome = mailin.Outcome("created", ticket=kept.ticket)
        assert_whole(raw, outcome)
    assert Ticket.objects.count() == 5


@pytest.mark.django_db
def test_a_forwarded_message_is_an_eml_attachment_with_a_summary_on_the_timeline(acme):
    ticket = assert_whole(raw := forwarded(), mailin.receive(raw))
    eml = ticket.attachments.get(declared_type="message/rfc822")
    assert eml.filename == "Invoice overdue.eml" and eml.content_type == "message/rfc822"
    note = ticket.entries.get(kind=EntryKind.SYSTEM, body__startswith="Forwarded message")
    assert "From: billing@vendor.test" in note.body and "Subject: Invoice overdue" in note.body
    assert "Please pay invoice 4711 today." in note.body


@pytest.mark.django_db
def test_html_only_mail_reads_as_text_with_entities_and_paragraphs(acme):
    ticket = mailin.receive(html_only()).ticket
    body = ticket.entries.get(kind=EntryKind.EMAIL_IN).body
    assert "Café & kitchen printer\n\nSecond paragraph" in body
    assert "&amp;" not in body and "<p>" not in body and "toner" in body


@pytest.mark.django_db
@pytest.mark.parametrize("build,defect", [(boundary_never_used, "StartBoundaryNotFound"),
                                          (unclosed_multipart, "CloseBoundaryNotFound")])
def test_malformed_mime_gives_readable_text_and_notes_the_defect(acme, build, defect):
    ticket = mailin.receive(build()).ticket
    body = ticket.entries.get(kind=EntryKind.EMAIL_IN).body
    assert "server room is too hot" in body or "First part text" in body
    note = ticket.entries.get(kind=EntryKind.SYSTEM, body__contains="MIME structure")
    assert defect in note.body


@pytest.mark.django_db
def test_a_digest_is_list_mail_kept_ignored_and_whole_when_forced(acme, owner):
    raw = digest()
    outcome = mailin.receive(raw)
    assert outcome.kind == "ignored" and "digest" in outcome.reason
    assert not Ticket.objects.exists()
    forced = mailin.reprocess(actor=owner, inbound=outcome.inbound, force=True)
    ticket = assert_whole(raw, forced)
    assert sorted(ticket.attachments.values_list("filename", flat=True)) == [
        "Digest item 1.eml", "Digest item 2.eml"]


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [{"List-Id": "<users.lists.test>"},
                                   {"Precedence": "bulk"}, {"Precedence": "list"}])
def test_list_mail_is_ignored_never_a_ticket_nor_answered(acme, extra):
    outcome = mailin.receive(mail(sender="dana@acme.test", subject="news",
                                  headers=extra).as_bytes())
    assert outcome.kind == "ignored" and not Ticket.objects.exists()
    assert not OutgoingMail.objects.exists()


# --- Generated messages -------------------------------------------------------------------

TEXT = st.lists(st.text("abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=8),
                min_size=1, max_size=6).map(" ".join)
LEAVES = st.one_of(
    TEXT.map(lambda t: MIMEText(t, "plain", "utf-8")),
    TEXT.map(lambda t: MIMEText("<p>" + html.escape(t).replace(" ", " &amp; ") + "</p>",
                                "html", "utf-8")),
    st.binary(min_size=1, max_size=48).map(
        lambda b: MIMEApplication(b, Name=f"file-{uuid.uuid4().hex[:6]}.bin")),
    st.just(None).map(lambda _: MIMEImage(PNG + uuid.uuid4().bytes, "png")),
)


def _multipart(args) -> MIMEBase:
    subtype, kids = args
    part = MIMEMultipart(subtype)
    for kid in kids:
        part.attach(kid)
    return part


def _forward(part: MIMEBase) -> MIMEBase:
    inner = MIMEMultipart("mixed")
    headers(inner, "inner", sender="someone@elsewhere.test")
    inner.attach(part)
    return MIMEMessage(inner)


TREES = st.recursive(
    LEAVES,
    lambda kids: st.one_of(
        st.tuples(st.sampled_from(["mixed", "alternative", "related"]),
                  st.lists(kids, min_size=1, max_size=3)).map(_multipart),
        kids.map(_forward)),
    max_leaves=6)


@pytest.mark.django_db
def test_every_leaf_of_generated_messages_is_on_its_ticket(acme):
    @hsettings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])
    @given(body=TREES)
    def check(body):
        if body.get_content_type() == "message/rfc822":
            top = MIMEMultipart("mixed")
            top.attach(body)
            body = top
        headers(body, "generated", sender=f"u{uuid.uuid4().hex[:8]}@acme.test")
        raw = body.as_bytes()
        assert_whole(raw, mailin.receive(raw))

    check()


# --- One outcome per message, whatever it became (issue 19, item 4) -----------------------

@pytest.fixture
def mail_in():
    smtp = controller("127.0.0.1", free_port())
    smtp.start()
    yield smtp
    smtp.stop()


def send_raw(smtp, raw: bytes) -> None:
    with smtplib.SMTP(smtp.hostname, smtp.port, timeout=10) as client:
        client.sendmail("x@nowhere.test", ["help@msp.test"], raw)


NO_ID = b"From: dana@acme.test\r\nSubject: No id\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n" \
        b"\r\nThe VPN is down.\r\n"
IGNORED = b"From: dana@acme.test\r\nSubject: Away\r\nAuto-Submitted: auto-replied\r\n" \
          b"Message-ID: <away-1@acme.test>\r\n\r\nI am out.\r\n"
QUARANTINED = b"Subject: who sent this\r\n\r\nno sender at all\r\n"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("raw,state", [(NO_ID, InboundState.ACCEPTED),
                                       (IGNORED, InboundState.IGNORED),
                                       (QUARANTINED, InboundState.QUARANTINED)])
def test_a_resent_message_is_recognised_whatever_it_became(mail_in, acme, raw, state):
    # Given a message delivered over SMTP, then sent again (the sender missed the 250),
    # once more with a relay's trace headers and CRLF turned into LF
    send_raw(mail_in, raw)
    send_raw(mail_in, raw)
    relayed = b"Received: from relay.test by mx.test; Mon, 7 Dec 2026 10:01:00 +0000\r\n" \
              b"Return-Path: <x@nowhere.test>\r\n" + raw
    assert mailin.receive(relayed.replace(b"\r\n", b"\n")).kind == "duplicate"

    # Then it is stored once, in the state it first got, and at most one ticket exists
    assert list(InboundMessage.objects.values_list("state", flat=True)) == [state]
    assert Ticket.objects.count() == (1 if state == InboundState.ACCEPTED else 0)


@pytest.mark.django_db
def test_reprocessing_a_message_that_became_a_ticket_makes_no_second_one(acme, owner):
    outcome = mailin.receive(NO_ID)
    kept = InboundMessage.objects.get()
    again = mailin.reprocess(actor=owner, inbound=kept, force=True)
    assert again.kind == "duplicate" and again.ticket == outcome.ticket
    assert Ticket.objects.count() == 1


@pytest.mark.django_db
def test_a_changed_message_without_message_id_is_a_new_one(acme):
    first = mailin.receive(NO_ID)
    second = mailin.receive(NO_ID.replace(b"VPN is down", b"VPN is down again"))
    assert first.kind == second.kind == "created" and Ticket.objects.count() == 2


# --- Acknowledgements --------------------------------------------------------------------

@pytest.mark.django_db
def test_unknown_senders_get_no_acknowledgement_unless_asked_then_rate_limited(acme, settings):
    def new_ticket(sender: str, n: int):
        return mailin.receive(mail(sender=sender, subject=f"Help {n}").as_bytes())

    # A contact is acknowledged; an unknown sender (forged, spam) is not
    assert new_ticket("dana@acme.test", 1).kind == "created"
    assert new_ticket("stranger@spam.test", 2).kind == "created"
    assert list(OutgoingMail.objects.values_list("to", flat=True)) == ["dana@acme.test"]

    # When the setting asks for it, an unknown address gets one per hour
    settings.MAIL_ACK_UNKNOWN_SENDERS = True
    new_ticket("other@else.test", 3)
    new_ticket("other@else.test", 4)
    assert OutgoingMail.objects.filter(to="other@else.test").count() == 1


# --- The raw message, downloadable by whoever sees the ticket -----------------------------

@pytest.mark.django_db
def test_the_original_message_downloads_from_the_ticket_scoped_to_its_client(
        acme, as_user, tech_a, client_b):
    tech_b = make_user("tech-b@msp.test", Role.TECHNICIAN)
    tech_b.assigned_clients.add(client_b)
    raw = nested()
    ticket = mailin.receive(raw).ticket
    kept = InboundMessage.objects.get(ticket=ticket)
    assert kept.compression == "zlib" and len(bytes(kept.raw)) < len(raw)

    # The ticket page links it; UI and API both serve the exact bytes to A's technician
    web = as_user(tech_a)
    page = web.get(f"/tickets/{ticket.pk}/").content.decode()
    url = f"/tickets/{ticket.pk}/original-mail/{kept.pk}"
    assert url in page
    res = web.get(url)
    assert res.status_code == 200 and b"".join(res.streaming_content if res.streaming
                                               else [res.content]) == raw
    assert res["Content-Disposition"].startswith("attachment")
    entries = web.get(f"/api/v1/tickets/{ticket.pk}/entries/").json()["results"]
    assert [e["original_mail"] for e in entries if e["kind"] == "email_in"] == [[kept.pk]]
    api = web.get(f"/api/v1/tickets/{ticket.pk}/original-mail/{kept.pk}/")
    assert api.status_code == 200 and api.content == raw

    # A technician of another client reaches neither
    other = as_user(tech_b)
    assert other.get(url).status_code == 404
    assert other.get(f"/api/v1/tickets/{ticket.pk}/original-mail/{kept.pk}/").status_code \
        == 404


@pytest.mark.django_db
def test_raw_mail_is_dropped_after_retention_but_dedup_still_holds(acme, settings):
    settings.MAIL_RAW_RETENTION_DAYS = 30
    raw = mail(sender="dana@acme.test", subject="old").as_bytes()
    mailin.receive(raw)
    InboundMessage.objects.update(received_at=timezone.now() - timedelta(days=31))
    assert mailin.purge_raw() == 1
    row = InboundMessage.objects.get()
    assert row.raw_bytes() == b"" and row.raw_purged_at is not None
    assert mailin.receive(raw).kind == "duplicate"
