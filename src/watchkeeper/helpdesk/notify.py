"""Client notifications by email: rendered from the current template of their kind when the
triggering change is written, stored as an OutgoingMail row, and sent after commit by the
outbox handler `helpdesk.send_mail` (retried by the outbox on failure; every attempt logged).
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from watchkeeper.core import events
from watchkeeper.core import mail as core_mail

from . import templating
from .choices import MailState
from .events import HelpdeskMail
from .models import NotificationTemplate, OutgoingMail, Ticket, TicketEntry

log = logging.getLogger(__name__)


def current_template(kind: str) -> tuple[int, str, str]:
    tpl = NotificationTemplate.objects.filter(kind=kind, is_current=True).first()
    if tpl is not None:
        return tpl.version, tpl.subject, tpl.body
    subject, body = templating.DEFAULTS[kind]
    return 0, subject, body


def context_for(ticket: Ticket, *, entry: TicketEntry | None = None,
                survey_token: str | None = None) -> dict:
    from .actions import msp_name

    base = settings.BASE_URL.rstrip("/")
    return {
        "ticket": {"reference": ticket.reference, "subject": ticket.subject,
                   "status": ticket.get_status_display(),
                   "priority": ticket.get_priority_display(),
                   "type": ticket.get_type_display(),
                   "url": base + reverse("portal_ticket", args=[ticket.pk]),
                   "created_at": ticket.created_at.strftime("%Y-%m-%d %H:%M UTC")},
        "client": {"name": ticket.client.name if ticket.client_id else ""},
        "requester": {"name": ticket.requester_name, "email": ticket.requester_email},
        "message": {"body": entry.body if entry else "",
                    "author": entry.author_label if entry else ""},
        "technician": {"name": ticket.assignee.display_name if ticket.assignee_id else ""},
        "survey_url": (f"{base}{reverse('csat_survey')}?t={survey_token}"
                       if survey_token else ""),
        "msp_name": msp_name(),
        "custom": ticket.custom_fields or {},
    }


def thread_ids(ticket: Ticket) -> list[str]:
    """Message-IDs of the ticket's mail so far, oldest first (for References)."""
    ids = list(ticket.entries.exclude(message_id=None).order_by("created_at", "id")
               .values_list("message_id", flat=True)[:20])
    ids += list(ticket.mails.order_by("created_at").values_list("message_id", flat=True)[:20])
    return ids


def queue_notification(ticket: Ticket, kind: str, *, entry: TicketEntry | None = None,
                       survey_token: str | None = None, in_reply_to: str = "") -> OutgoingMail:
    """Render and store the mail now (inside the caller's transaction); send after commit."""
    version, subject_src, body_src = current_template(kind)
    ctx = context_for(ticket, entry=entry, survey_token=survey_token)
    # A stored template that the sandbox now refuses falls back to the built-in one.
    default_subject, default_body = templating.DEFAULTS[kind][:2]
    subject = " ".join(templating.render(subject_src, ctx,
                                         fallback=default_subject).split())[:400]
    if ticket.reference not in subject:
        subject = f"[{ticket.reference}] {subject}"[:400]
    body = templating.render(body_src, ctx, fallback=default_body)
    refs = thread_ids(ticket)
    mail = OutgoingMail.objects.create(
        ticket=ticket, kind=kind, template_version=version, to=ticket.requester_email,
        subject=subject, body=body, in_reply_to=in_reply_to or (refs[-1] if refs else ""),
        # make_msgid's own random part comes from the `random` module, which can be seeded
        # (hypothesis does): two mails in the same 10 ms then got one Message-ID.
        message_id=make_msgid(idstring=secrets.token_hex(8), domain=settings.MAIL_DOMAIN))
    events.emit(HelpdeskMail(mail_id=mail.pk), client=ticket.client_id)
    return mail


def build_message(mail: OutgoingMail) -> EmailMessage:
    refs = [r for r in thread_ids(mail.ticket) if r != mail.message_id]
    # A reply written by a technician is not an automated notice (RFC 3834).
    return core_mail.message(
        to=[mail.to], subject=mail.subject, body=mail.body, automated=mail.kind != "replied",
        headers={"Message-ID": mail.message_id, "In-Reply-To": mail.in_reply_to,
                 "References": " ".join(refs),
                 "X-Watchkeeper-Ticket": mail.ticket.reference})


def send(mail_id: int) -> str:
    """Send one queued mail (idempotent: a sent mail is not sent again). Raises on an SMTP
    failure so the outbox retries it."""
    mail = OutgoingMail.objects.select_related("ticket").filter(pk=mail_id).first()
    if mail is None or mail.state in (MailState.SENT, MailState.SKIPPED):
        return "nothing to do"
    if not core_mail.configured():
        OutgoingMail.objects.filter(pk=mail.pk).update(
            state=MailState.SKIPPED, error="WATCHKEEPER_SMTP_HOST is not set")
        log.info("mail %s to %s not sent: no SMTP host configured", mail.pk, mail.to)
        return "skipped"
    msg = build_message(mail)
    try:
        core_mail.deliver(msg, [mail.to])
    except (smtplib.SMTPException, OSError) as exc:
        OutgoingMail.objects.filter(pk=mail.pk).update(
            state=MailState.FAILED, attempts=mail.attempts + 1, error=f"{exc}"[:2000])
        log.warning("mail %s to %s failed: %s", mail.pk, mail.to, exc)
        raise
    with transaction.atomic():
        OutgoingMail.objects.filter(pk=mail.pk).update(
            state=MailState.SENT, attempts=mail.attempts + 1, sent_at=timezone.now(),
            error="")
    log.info("mail %s (%s) sent to %s", mail.pk, mail.kind, mail.to)
    return "sent"
