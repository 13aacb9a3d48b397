"""Inbound mail: one raw message in, one outcome out, never a message lost.

`receive(raw, channel=...)` parses with the stdlib email package (policy.default), then:
- a Message-ID already on a timeline: a duplicate delivery, nothing more to do;
- an auto-reply, bulk or list mail, our own mail coming back, or a sender over the rate
  limit: kept as an *ignored* InboundMessage with the reason, never answered;
- a reply (In-Reply-To / References naming a message of a ticket, or [WK-000123] in the
  subject from someone of that ticket's client): a public entry on that ticket;
- otherwise a new ticket, its sender matched to a Contact by address or to a client by the
  domain list; unknown senders' tickets go to the triage queue.
Anything that cannot be processed is kept whole as a *quarantined* InboundMessage with the
reason, visible and re-processable. All of it is committed before `receive` returns, so the
SMTP receiver answers 250 only for a message that is stored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.html import strip_tags

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.models import Contact

from .. import actions, attachments
from ..choices import EntryKind, InboundState, Source
from ..models import (
    Attachment,
    ClientEmailDomain,
    InboundMessage,
    OutgoingMail,
    Ticket,
    TicketEntry,
    format_reference,
)

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
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            return ""
        content = part.get_content()
    except Exception as exc:
        raise Unprocessable(f"body cannot be decoded: {type(exc).__name__}: {exc}") from exc
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        content = strip_tags(re.sub(r"(?is)<(script|style).*?</\1>", "", content))
    return content.replace("\r\n", "\n").replace("\x00", "").strip()


def attachment_parts(msg: EmailMessage) -> list[tuple[str, str, bytes]]:
    found = []
    try:
        for part in msg.iter_attachments():
            if part.is_multipart():
                continue
            data = part.get_payload(decode=True) or b""
            found.append((attachments.safe_filename(part.get_filename()),
                          part.get_content_type(), data))
    except Exception as exc:
        raise Unprocessable(f"attachments cannot be decoded: {type(exc).__name__}: {exc}") \
            from exc
    return found


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


def _quarantine(raw: bytes, *, state: str, reason: str, channel: str, envelope_from: str,
                envelope_to: str, subject: str = "", message_id: str = "") -> InboundMessage:
    with transaction.atomic():
        row = InboundMessage.objects.create(
            state=state, reason=reason[:5000], raw=raw, size=len(raw), channel=channel,
            envelope_from=envelope_from[:998], envelope_to=envelope_to,
            subject=subject[:300], message_id=message_id[:998])
        audit.record(actor=f"mail-in ({channel})", action=AuditAction.CREATE, obj=row,
                     object_repr=f"{row.get_state_display()}: {subject or reason}"[:254],
                     changes={"reason": [None, reason[:500]]})
        events.emit("helpdesk.inbound", payload={"id": row.pk, "state": state})
    return row


def receive(raw: bytes, *, channel: str = "smtp", envelope_from: str = "",
            envelope_to: str = "") -> Outcome:
    """Process one message; everything it writes is committed when it returns."""
    subject = message_id = ""
    try:
        msg = parse(raw)
        subject = " ".join(header(msg, "Subject").split())[:300]
        message_id = (message_ids(header(msg, "Message-ID")) or [""])[0]
        if message_id and TicketEntry.objects.filter(message_id=message_id).exists():
            return Outcome("duplicate", ticket=TicketEntry.objects.get(
                message_id=message_id).ticket)
        name, sender = sender_of(msg)
        reason = auto_reason(msg, sender)
        if reason:
            row = _quarantine(raw, state=InboundState.IGNORED, reason=reason, channel=channel,
                              envelope_from=envelope_from or sender, envelope_to=envelope_to,
                              subject=subject, message_id=message_id)
            log.info("ignored mail from %s: %s", sender, reason)
            return Outcome("ignored", inbound=row, reason=reason)
        text = body_text(msg)
        files = attachment_parts(msg)
        return _store(msg, raw, sender=sender, name=name, subject=subject,
                      message_id=message_id, text=text, files=files)
    except Unprocessable as exc:
        row = _quarantine(raw, state=InboundState.QUARANTINED, reason=str(exc),
                          channel=channel, envelope_from=envelope_from,
                          envelope_to=envelope_to, subject=subject, message_id=message_id)
        log.warning("quarantined mail %s: %s", row.pk, exc)
        return Outcome("quarantined", inbound=row, reason=str(exc))
    except IntegrityError:
        # The same Message-ID committed concurrently (SMTP retry racing an IMAP poll).
        if message_id and TicketEntry.objects.filter(message_id=message_id).exists():
            return Outcome("duplicate")
        raise
    except DatabaseError:
        raise  # the database is unavailable: the sender is told to retry (SMTP 451)
    except Exception as exc:  # a message that trips a bug is kept, never lost or bounced
        log.exception("processing a message failed; quarantining it")
        reason = f"processing failed: {type(exc).__name__}: {exc}"
        row = _quarantine(raw, state=InboundState.QUARANTINED, reason=reason,
                          channel=channel, envelope_from=envelope_from,
                          envelope_to=envelope_to, subject=subject, message_id=message_id)
        return Outcome("quarantined", inbound=row, reason=reason)


def _store(msg: EmailMessage, raw: bytes, *, sender: str, name: str, subject: str,
           message_id: str, text: str, files: list) -> Outcome:
    mail_fields = {
        "message_id": message_id or None,
        "in_reply_to": header(msg, "In-Reply-To")[:2000],
        "references": header(msg, "References")[:5000],
    }
    with transaction.atomic():
        ticket = find_thread(msg, sender, subject)
        if ticket is not None:
            entry = actions.add_entry(actor=None, ticket=ticket, body=text or "(no text)",
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
                first_entry={"kind": EntryKind.EMAIL_IN, "is_public": True, "body": text,
                             "author_label": sender, **mail_fields})
            entry = ticket.entries.get(message_id=message_id) if message_id else \
                ticket.entries.filter(kind=EntryKind.EMAIL_IN).first()
            kind = "created"
        refused = _attach(ticket, entry, files)
        if refused:
            TicketEntry.objects.create(ticket=ticket, kind=EntryKind.SYSTEM,
                                       author_label="mail-in", body="\n".join(refused))
    return Outcome(kind, ticket=ticket)


def _attach(ticket: Ticket, entry: TicketEntry | None, files: list) -> list[str]:
    refused = []
    for filename, declared, data in files:
        try:
            digest, sniffed = attachments.store(data)
        except attachments.AttachmentRefused as exc:
            refused.append(f"Attachment {filename} not stored: {exc}.")
            continue
        Attachment.objects.create(ticket=ticket, entry=entry, filename=filename,
                                  declared_type=declared[:200], content_type=sniffed,
                                  size=len(data), sha256=digest)
    return refused


def reprocess(*, actor, inbound: InboundMessage, force: bool = False) -> Outcome:
    """Run a kept message through again (after a fix, or `force` past the auto-reply
    checks for an ignored one). The row stays, marked re-processed, with its result."""
    raw = bytes(inbound.raw)
    if force:
        msg = parse(raw)
        name, sender = sender_of(msg)
        subject = " ".join(header(msg, "Subject").split())[:300]
        message_id = (message_ids(header(msg, "Message-ID")) or [""])[0]
        outcome = _store(msg, raw, sender=sender, name=name, subject=subject,
                         message_id=message_id, text=body_text(msg),
                         files=attachment_parts(msg))
    else:
        outcome = receive(raw, channel=inbound.channel, envelope_from=inbound.envelope_from,
                          envelope_to=inbound.envelope_to)
    if outcome.kind in ("created", "replied", "duplicate"):
        with transaction.atomic():
            InboundMessage.objects.filter(pk=inbound.pk).update(
                state=InboundState.REPROCESSED, processed_at=timezone.now(),
                ticket=outcome.ticket)
            audit.record(actor=actor, action=AuditAction.UPDATE, obj=inbound,
                         changes={"state": [inbound.state, InboundState.REPROCESSED],
                                  "ticket": [None, getattr(outcome.ticket, "pk", None)]})
        if outcome.inbound is not None and outcome.inbound.pk != inbound.pk:
            InboundMessage.objects.filter(pk=outcome.inbound.pk).delete()
    elif outcome.inbound is not None and outcome.inbound.pk != inbound.pk:
        # Still not processable: keep the original row, drop the new copy, note the reason.
        InboundMessage.objects.filter(pk=outcome.inbound.pk).delete()
        InboundMessage.objects.filter(pk=inbound.pk).update(reason=outcome.reason)
    inbound.refresh_from_db()
    return outcome


def reference_subject(ticket: Ticket, subject: str) -> str:
    return f"[{format_reference(ticket.pk)}] {subject}"


def recipients(msg: EmailMessage) -> list[str]:
    return [a.lower() for _n, a in getaddresses([header(msg, "To"), header(msg, "Cc")]) if a]
