"""Outgoing mail: the one SMTP sender of the platform (helpdesk notifications, monitoring
alert channels, and whatever sends mail next).

`message()` builds an `EmailMessage` with the platform's From, a Date and, for automated
notices, `Auto-Submitted: auto-generated` (RFC 3834) with Exchange's
`X-Auto-Response-Suppress`; `deliver()` sends it over the configured relay
(WATCHKEEPER_SMTP_HOST/PORT, STARTTLS and login when set) and returns the recipients the
relay accepted. A failure raises (`smtplib.SMTPException` or `OSError`): the caller's
outbox handler records it and retries.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from django.conf import settings


class NotConfigured(RuntimeError):
    """No SMTP relay is configured (WATCHKEEPER_SMTP_HOST is empty)."""


def configured() -> bool:
    return bool(settings.SMTP_HOST)


def message(*, to: list[str], subject: str, body: str, automated: bool = True,
            headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.MAIL_FROM
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    for name, value in (headers or {}).items():
        if value:
            msg[name] = value
    # Automated notices say so (RFC 3834); every mail asks Exchange not to auto-reply.
    if automated:
        msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(body)
    return msg


def deliver(msg: EmailMessage, to: list[str]) -> list[str]:
    """Send `msg` to `to` over the configured relay; the recipients it accepted."""
    if not to:
        raise ValueError("no recipients")
    if not configured():
        raise NotConfigured("WATCHKEEPER_SMTP_HOST is not set")
    with smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT,
                      timeout=settings.SMTP_TIMEOUT) as smtp:
        if settings.SMTP_STARTTLS:
            smtp.starttls()
        if settings.SMTP_USER:
            smtp.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
        refused = smtp.send_message(msg, from_addr=settings.MAIL_FROM, to_addrs=to)
    return sorted(set(to) - set(refused or {}))
