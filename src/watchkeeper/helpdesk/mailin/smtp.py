"""The built-in SMTP receiver (aiosmtpd). A message is answered 250 only after `mailin.receive`
committed it (as a ticket entry or a kept InboundMessage); if even that fails the client is
told 451 and retries, so no message is acknowledged and then lost."""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import close_old_connections, connection

from . import intake as mailin

log = logging.getLogger(__name__)


def _process(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> str:
    close_old_connections()
    try:
        outcome = mailin.receive(raw, channel="smtp", envelope_from=mail_from or "",
                                 envelope_to=", ".join(rcpt_tos))
        return outcome.kind
    finally:
        connection.close()


class Handler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            kind = await loop.run_in_executor(None, _process, raw, envelope.mail_from,
                                              list(envelope.rcpt_tos))
        except Exception:
            log.exception("could not store a message from %s", envelope.mail_from)
            return "451 4.3.0 Message not stored; try again later"
        log.info("message from %s: %s", envelope.mail_from, kind)
        return "250 2.0.0 Message accepted"


def controller(host: str | None = None, port: int | None = None) -> Controller:
    # aiosmtpd logs every SMTP command at INFO; our own log line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    return Controller(Handler(), hostname=host or settings.MAIL_IN_HOST,
                      port=port if port is not None else settings.MAIL_IN_PORT,
                      data_size_limit=settings.MAIL_MAX_BYTES, decode_data=False,
                      enable_SMTPUTF8=True, server_hostname=settings.MAIL_DOMAIN,
                      ident="Watchkeeper mail-in")
