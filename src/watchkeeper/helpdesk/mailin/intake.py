"""Inbound mail: one raw message in, one outcome out, never a message lost, never one
processed twice.

`receive(raw, channel=...)` parses with the stdlib email package (policy.default), then:
- the same message received before (same content hash, or a Message-ID already on a
  timeline or on a kept message), whatever it became: a duplicate, nothing more to do;
- an auto-reply, bulk or list mail (List-Id, List-Unsubscribe, Precedence: bulk/list/junk,
  a multipart/digest), our own mail coming back, or a sender over the rate limit: kept as an
  *ignored* InboundMessage with the reason, never answered;
- a reply (In-Reply-To / References naming a message of a ticket, or [WK-000123] in the
  subject from someone of that ticket's client): a public entry on that ticket;
- otherwise a new ticket, its sender matched to a Contact by address or to a client by the
  domain list; unknown senders' tickets go to the triage queue and are not acknowledged
  unless MAIL_ACK_UNKNOWN_SENDERS is on.
The whole MIME tree becomes the entry's text and attachments (mime.extract): forwarded
messages as .eml files with a summary on the timeline, parser defects noted, never an empty
ticket. Anything that cannot be processed is kept as a *quarantined* InboundMessage with the
reason, visible and re-processable. Every message, whatever it became, is kept whole
(compressed) as an InboundMessage linked to its ticket and entry. All of it is committed
before `receive` returns, so the SMTP receiver answers 250 only for a message that is stored.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.models import Contact
from watchkeeper.helpdesk.events import HelpdeskInbound

from .. import actions, attachments
from ..choices import EntryKind, InboundState, NotificationKind, Source
from ..models import (
    Attachment,
    ClientEmailDomain,
    InboundMessage,
    OutgoingMail,
    Ticket,
    TicketEntry,
    format_reference,
)
from . import mime

log = logging.getLogger(__name__)

REF_RE = re.compile(r"\[WK-(\d{1,12})\]", re.I)
MSGID_RE = re.compile(r"<[^<>\s]+>")


class Unprocessable(ValueError):
    """The message cannot become a ticket entry; the text is the quarantine reason."""


@dataclass
class Outcome:
    kind: str  # created | replied | duplicate | ignored | quarantined
    ticket: Ticket | None = None
    inbound: InboundMessage | None = None
    reason: str = ""


def parse(raw: bytes) -> EmailMessage:
    if not raw or not raw.strip():
        raise Unprocessable("empty message")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it raises is quarantined
        raise Unprocessable(f"unparseable: {type(exc).__name__}: {exc}") from exc
    if not msg.keys():
        raise Unprocessable("no headers")
    return msg


def header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception as exc:  # a malformed header the policy cannot decode
        raise Unprocessable(f"malformed {name} header: {exc}") from exc
    # NUL cannot be stored in PostgreSQL text; it carries nothing a person would read.
    return str(value or "").replace("\x00", "").strip()


def sender_of(msg: EmailMessage) -> tuple[str, str]:
    raw_from = header(msg, "From")
    if not raw_from:
        raise Unprocessable("no From header")
    name, addr = parseaddr(raw_from)
    addr = addr.strip().lower()
    if "@" not in addr or " " in addr or addr.startswith("@") or addr.endswith("@"):
        raise Unprocessable(f"no valid sender address in From: {raw_from[:200]!r}")
    return name.strip(), addr


def message_ids(value: str) -> list[str]:
    return MSGID_RE.findall(value or "")


def auto_reason(msg: EmailMessage, sender: str) -> str:
    """Why this message must not be answered or turned into a ticket ("" if it is fine)."""
    auto = header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return f"auto-submitted ({auto})"
    if header(msg, "X-Auto-Response-Suppress"):
        return "X-Auto-Response-Suppress is set (an automatic message)"
    precedence = header(msg, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if header(msg, "X-Autoreply") or header(msg, "X-Autorespond"):
        return "auto-responder header"
    if header(msg, "List-Id") or header(msg, "List-Unsubscribe"):
        return "mailing list message"
    if msg.get_content_type() == "multipart/digest":
        return "a digest (list mail)"
    if header(msg, "X-Watchkeeper-Ticket"):
        return "a message sent by Watchkeeper came back (mail loop)"
    own = f"@{settings.MAIL_DOMAIN}>".lower()
    if header(msg, "Message-ID").lower().endswith(own):
        return "Message-ID of our own domain (mail loop)"
    local = sender.partition("@")[0]
    if local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply") or \
            sender == settings.MAIL_FROM.lower():
        return f"system sender {sender}"
    since = timezone.now() - timedelta(hours=1)
    recent = TicketEntry.objects.filter(kind=EntryKind.EMAIL_IN, author_label=sender,
                                        created_at__gte=since).count()
    if recent >= settings.MAIL_SENDER_RATE:
        return f"{recent} messages from {sender} in the last hour (rate limit, possible loop)"
    return ""


def body_text(msg: EmailMessage) -> str:
    """The ticket text of a message (every inline text part; see mime.extract)."""
    return mime.extract(msg).text


def find_thread(msg: EmailMessage, sender: str, subject: str) -> Ticket | None:
    refs = message_ids(header(msg, "In-Reply-To")) + message_ids(header(msg, "References"))
    if refs:
        entry = TicketEntry.objects.filter(message_id__in=refs).select_related("ticket") \
            .order_by("-created_at").first()
        if entry is not None:
            return _follow_merge(entry.ticket)
        mail = OutgoingMail.objects.filter(message_id__in=refs).select_related("ticket") \
            .first()
        if mail is not None:
            return _follow_merge(mail.ticket)
    match = REF_RE.search(subject)
    if match:
        ticket = Ticket.objects.filter(pk=int(match.group(1))).first()
        if ticket is not None and _sender_belongs(ticket, sender):
            return _follow_merge(ticket)
    return None


def _follow_merge(ticket: Ticket) -> Ticket:
    seen = set()
    while ticket.merged_into_id and ticket.pk not in seen:
        seen.add(ticket.pk)
        ticket = ticket.merged_into
    return ticket


def _sender_belongs(ticket: Ticket, sender: str) -> bool:
    """A subject reference alone threads only mail from the requester or the ticket's
    client (so a guessed number cannot post into another client's ticket)."""
    if sender == (ticket.requester_email or "").lower():
        return True
    _contact, client = match_sender(sender)
    return ticket.client_id is not None and client is not None and client.pk == ticket.client_id


def match_sender(sender: str):
    """(contact, client) of a sender address; (None, None) for an unknown sender.

    The client that registered the sender's mail domain owns that domain: a contact with
    the exact address is used only when it belongs to that same client (or when nobody
    registered the domain). A contact filed under another client is ignored and the mail
    goes to the domain owner, so creating a contact in one client with an address at
    another client's domain cannot divert that client's mail."""
    domain = sender.rpartition("@")[2].lower()
    row = ClientEmailDomain.objects.filter(domain__iexact=domain).select_related("client") \
        .first() if domain else None
    contacts = Contact.objects.filter(email__iexact=sender).select_related("client")
    if row is not None:
        contacts = contacts.filter(client_id=row.client_id)
    contact = contacts.order_by("id").first()
    if contact is not None:
        return contact, contact.client
    return None, (row.client if row else None)


# Headers a relay adds on the way (trace and filter results): left out of the content hash,
# so the same message received again over another path or after a retry has the same hash.
TRACE_HEADERS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "x-envelope-from",
    "x-envelope-to", "x-received", "arc-seal", "arc-message-signature",
    "arc-authentication-results", "authentication-results", "received-spf",
    "x-spam-status", "x-spam-score", "x-spam-flag", "x-spam-level", "x-virus-scanned",
})


def content_hash(raw: bytes) -> str:
    """SHA-256 of a message as its author sent it: line endings normalised, trailing blank
    lines and the trace headers of TRACE_HEADERS left out."""
    head, _sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept: list[bytes] = []
    keep = True
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the previous header
            if keep:
                kept.append(line)
            continue
        name = line.partition(b":")[0].strip().lower().decode("latin-1")
        keep = name not in TRACE_HEADERS
        if keep:
            kept.append(line)
    return hashlib.sha256(b"\n".join(kept) + b"\n\n" + body.rstrip(b"\n")).hexdigest()


def _duplicate_of(digest: str, message_id: str, exclude: int | None = None) -> Outcome | None:
    """The earlier copy of this message, whatever it became (by content hash, then by
    Message-ID on a timeline or on a kept message)."""
    rows = InboundMessage.objects.filter(content_hash=digest)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    row = rows.select_related("ticket").first()
    if row is None and message_id:
        entry = TicketEntry.objects.filter(message_id=message_id).select_related("ticket") \
            .first()
        if entry is not None:
            return Outcome("duplicate", ticket=entry.ticket,
                           reason=f"Message-ID {message_id} is already on a ticket")
        rows = InboundMessage.objects.filter(message_id=message_id)
        if exclude is not None:
            rows = rows.exclude(pk=exclude)
        row = rows.select_related("ticket").first()
    if row is None:
        return None
    return Outcome("duplicate", ticket=row.ticket, inbound=row,
                   reason=f"the same message was received before (#{row.pk}, {row.state})")


def _keep(raw: bytes, digest: str, *, existing: InboundMessage | None, state: str,
          reason: str, meta: dict, subject: str = "", message_id: str = "",
          ticket: Ticket | None = None, entry: TicketEntry | None = None) -> InboundMessage:
    """Record the message and what it became (inside the caller's transaction for an
    accepted one). A re-processed message updates its own row."""
    fields = {"state": state, "reason": reason[:5000], "ticket": ticket, "entry": entry}
    if state in (InboundState.ACCEPTED, InboundState.REPROCESSED):
        fields["processed_at"] = timezone.now()
    with transaction.atomic():
        if existing is not None:
            for key, value in fields.items():
                setattr(existing, key, value)
            existing.save(update_fields=list(fields))
            return existing
        row = InboundMessage.objects.create(
            raw=zlib.compress(raw, 6), compression="zlib", content_hash=digest,
            size=len(raw), channel=meta.get("channel", "smtp"),
            envelope_from=(meta.get("envelope_from") or "")[:998],
            envelope_to=meta.get("envelope_to") or "", subject=subject[:300],
            message_id=message_id[:998], **fields)
        if state in (InboundState.QUARANTINED, InboundState.IGNORED):
            channel = meta.get("channel", "smtp")
            audit.record(actor=f"mail-in ({channel})", action=AuditAction.CREATE, obj=row,
                         object_repr=f"{row.get_state_display()}: {subject or reason}"[:254],
                         changes={"reason": [None, reason[:500]]})
            events.emit(HelpdeskInbound(id=row.pk, state=state))
    return row


def receive(raw: bytes, *, channel: str = "smtp", envelope_from: str = "",
            envelope_to: str = "") -> Outcome:
    """Process one message; everything it writes is committed when it returns."""
    return _process(raw, meta={"channel": channel, "envelope_from": envelope_from,
                               "envelope_to": envelope_to})


def _process(raw: bytes, *, meta: dict, existing: InboundMessage | None = None,
             force: bool = False) -> Outcome:
    digest = content_hash(raw)
    exclude = existing.pk if existing is not None else None
    subject = message_id = ""
    duplicate = _duplicate_of(digest, "", exclude)
    if duplicate is not None:
        return duplicate
    try:
        msg = parse(raw)
        subject = " ".join(header(msg, "Subject").split())[:300]
        message_id = (message_ids(header(msg, "Message-ID")) or [""])[0]
        duplicate = _duplicate_of(digest, message_id, exclude)
        if duplicate is not None:
            return duplicate
        name, sender = sender_of(msg)
        reason = "" if force else auto_reason(msg, sender)
        if reason:
            meta = {**meta, "envelope_from": meta.get("envelope_from") or sender}
            row = _keep(raw, digest, existing=existing, state=InboundState.IGNORED,
                        reason=reason, meta=meta, subject=subject, message_id=message_id)
            log.info("ignored mail from %s: %s", sender, reason)
            return Outcome("ignored", inbound=row, reason=reason)
        content = mime.extract(msg, raw=raw)
        return _store(msg, raw, digest, existing=existing, meta=meta, sender=sender,
                      name=name, subject=subject, message_id=message_id, content=content)
    except Unprocessable as exc:
        reason = str(exc)
        log.warning("quarantining mail: %s", reason)
    except IntegrityError:
        # The same message committed concurrently (an SMTP retry racing an IMAP poll).
        duplicate = _duplicate_of(digest, message_id, exclude)
        if duplicate is not None:
            return duplicate
        raise
    except DatabaseError:
        raise  # the database is unavailable: the sender is told to retry (SMTP 451)
    except Exception as exc:  # a message that trips a bug is kept, never lost or bounced
        log.exception("processing a message failed; quarantining it")
        reason = f"processing failed: {type(exc).__name__}: {exc}"
    try:
        row = _keep(raw, digest, existing=existing, state=InboundState.QUARANTINED,
                    reason=reason, meta=meta, subject=subject, message_id=message_id)
    except IntegrityError:
        duplicate = _duplicate_of(digest, message_id, exclude)
        if duplicate is not None:
            return duplicate
        raise
    return Outcome("quarantined", inbound=row, reason=reason)


NO_TEXT = "(The message has no text; see its attachments.)"
NOTHING = ("(The message has no readable text and no attachment. The original message is "
           "kept: download it from this timeline.)")


def _acknowledge(contact: Contact | None, sender: str) -> bool:
    """Whether a new ticket from `sender` is acknowledged by mail: always for a contact;
    for anyone else only with MAIL_ACK_UNKNOWN_SENDERS, and then at most
    MAIL_ACK_UNKNOWN_PER_HOUR times per address per hour (no backscatter)."""
    if contact is not None:
        return True
    if not settings.MAIL_ACK_UNKNOWN_SENDERS:
        return False
    since = timezone.now() - timedelta(hours=1)
    sent = OutgoingMail.objects.filter(to__iexact=sender, kind=NotificationKind.CREATED,
                                       created_at__gte=since).count()
    return sent < settings.MAIL_ACK_UNKNOWN_PER_HOUR


def _store(msg: EmailMessage, raw: bytes, digest: str, *, existing: InboundMessage | None,
           meta: dict, sender: str, name: str, subject: str, message_id: str,
           content: mime.Extracted) -> Outcome:
    mail_fields = {
        "message_id": message_id or None,
        "in_reply_to": header(msg, "In-Reply-To")[:2000],
        "references": header(msg, "References")[:5000],
    }
    text = content.text or (NO_TEXT if content.files else NOTHING)
    with transaction.atomic():
        ticket = find_thread(msg, sender, subject)
        if ticket is not None:
            entry = actions.add_entry(actor=None, ticket=ticket, body=text,
                                      public=True, kind=EntryKind.EMAIL_IN,
                                      author_label=sender, notify=False, **mail_fields)
            kind = "replied"
        else:
            contact, client = match_sender(sender)
            ticket = actions.create_ticket(
                actor=None, subject=REF_RE.sub("", subject).strip() or "(no subject)",
                client=client, contact=contact, requester_email=sender,
                requester_name=name or (contact.name if contact else ""),
                description=text, source=Source.EMAIL,
                notify=_acknowledge(contact, sender),
                first_entry={"kind": EntryKind.EMAIL_IN, "is_public": True, "body": text,
                             "author_label": sender, **mail_fields})
            entry = ticket.entries.get(message_id=message_id) if message_id else \
                ticket.entries.filter(kind=EntryKind.EMAIL_IN).order_by("-id").first()
            kind = "created"
        notes = _attach(ticket, entry, content.files)
        for forward in content.forwards:
            notes.append(f"Forwarded message, attached as {forward.filename}:\n\n"
                         f"{forward.summary}")
        if content.defects:
            shown = "; ".join(dict.fromkeys(content.defects))[:2000]
            notes.append(
                f"The message's MIME structure is damaged ({shown}). "
                + ("Its text was recovered from the raw message. " if content.fallback
                   else "The text shown is what could be read. ")
                + "The original message is kept: download it from this timeline.")
        for note in notes:
            TicketEntry.objects.create(ticket=ticket, kind=EntryKind.SYSTEM,
                                       author_label="mail-in", body=note)
        state = InboundState.REPROCESSED if existing is not None else InboundState.ACCEPTED
        _keep(raw, digest, existing=existing, state=state,
              reason=f"{kind} {ticket.reference}", meta=meta, subject=subject,
              message_id=message_id, ticket=ticket, entry=entry)
    return Outcome(kind, ticket=ticket)


def _attach(ticket: Ticket, entry: TicketEntry | None, files: list) -> list[str]:
    refused = []
    for filename, declared, data in files:
        try:
            digest, sniffed = attachments.store(data)
        except attachments.AttachmentRefused as exc:
            refused.append(f"Attachment {filename} not stored: {exc}. It is kept in the "
                           "original message (download it from this timeline).")
            continue
        if declared == "message/rfc822" and sniffed == "text/plain":
            sniffed = "message/rfc822"
        Attachment.objects.create(ticket=ticket, entry=entry, filename=filename,
                                  declared_type=declared[:200], content_type=sniffed,
                                  size=len(data), sha256=digest)
    return refused


def reprocess(*, actor, inbound: InboundMessage, force: bool = False) -> Outcome:
    """Run a kept message through again (after a fix, or `force` past the auto-reply and
    list checks for an ignored one). The row stays, with its new state and result."""
    if inbound.ticket_id and inbound.state in (InboundState.ACCEPTED,
                                               InboundState.REPROCESSED):
        # Already on a ticket: running it again would only make a second one.
        return Outcome("duplicate", ticket=inbound.ticket, inbound=inbound,
                       reason=f"already on {inbound.ticket.reference}")
    raw = inbound.raw_bytes()
    if not raw:
        raise Unprocessable("the message's bytes were dropped after the retention period")
    before = inbound.state
    meta = {"channel": inbound.channel, "envelope_from": inbound.envelope_from,
            "envelope_to": inbound.envelope_to}
    outcome = _process(raw, meta=meta, existing=inbound, force=force)
    with transaction.atomic():
        if outcome.kind == "duplicate" and outcome.ticket is not None:
            InboundMessage.objects.filter(pk=inbound.pk).update(
                state=InboundState.REPROCESSED, processed_at=timezone.now(),
                ticket=outcome.ticket)
        inbound.refresh_from_db()
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=inbound,
                     changes={"state": [before, inbound.state],
                              "ticket": [None, inbound.ticket_id]})
    return outcome


def purge_raw(now=None) -> int:
    """Drop the bytes of messages older than MAIL_RAW_RETENTION_DAYS (0: keep forever);
    rows, outcomes and content hashes stay."""
    days = settings.MAIL_RAW_RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    return InboundMessage.objects.filter(
        received_at__lt=now - timedelta(days=days), raw_purged_at=None).update(
        raw=b"", raw_purged_at=now)


def reference_subject(ticket: Ticket, subject: str) -> str:
    return f"[{format_reference(ticket.pk)}] {subject}"


def recipients(msg: EmailMessage) -> list[str]:
    return [a.lower() for _n, a in getaddresses([header(msg, "To"), header(msg, "Cc")]) if a]
