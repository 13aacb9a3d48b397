"""IMAP polling of an existing mailbox (WATCHKEEPER_IMAP_*): every unseen message is fetched
without marking it, processed exactly like SMTP mail (mailin.receive commits it as a ticket
entry or a kept InboundMessage), and only then flagged \\Seen. A crash between the two means
the message is fetched again next time, and its Message-ID makes that a no-op."""

from __future__ import annotations

import imaplib
import logging
from dataclasses import dataclass

from django.conf import settings
from django_tasks import task

from watchkeeper.core.scheduler import register

from . import intake as mailin

log = logging.getLogger(__name__)

@dataclass
class Mailbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    ssl: bool = True
    timeout: float = 30

    @classmethod
    def from_settings(cls) -> Mailbox | None:
        if not settings.IMAP_HOST:
            return None
        return cls(host=settings.IMAP_HOST, port=settings.IMAP_PORT, user=settings.IMAP_USER,
                   password=settings.IMAP_PASSWORD, folder=settings.IMAP_FOLDER,
                   ssl=settings.IMAP_SSL)


class ImapError(RuntimeError):
    pass


def _check(result, what: str):
    typ, data = result
    if typ != "OK":
        raise ImapError(f"IMAP {what} failed: {data!r}")
    return data


def poll(box: Mailbox, limit: int = 200) -> dict[str, int]:
    """Fetch and process up to `limit` unseen messages; counts per outcome."""
    counts: dict[str, int] = {}
    klass = imaplib.IMAP4_SSL if box.ssl else imaplib.IMAP4
    conn = klass(box.host, box.port, timeout=box.timeout)
    try:
        _check(conn.login(box.user, box.password), "login")
        _check(conn.select(_quote(box.folder)), "select")
        data = _check(conn.uid("SEARCH", None, "UNSEEN"), "search")
        uids = (data[0] or b"").split()[:limit]
        for uid in uids:
            raw = _fetch(conn, uid)
            if raw is None:
                continue
            outcome = mailin.receive(raw, channel="imap",
                                     envelope_to=f"{box.user}@{box.host}/{box.folder}")
            _check(conn.uid("STORE", uid, "+FLAGS", "(\\Seen)"), "store")
            counts[outcome.kind] = counts.get(outcome.kind, 0) + 1
        counts["fetched"] = len(uids)
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    log.info("IMAP poll of %s@%s: %s", box.user, box.host, counts)
    return counts


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fetch(conn, uid: bytes) -> bytes | None:
    data = _check(conn.uid("FETCH", uid, "(BODY.PEEK[])"), "fetch")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    return None  # expunged meanwhile


@task()
def poll_imap() -> dict[str, int]:
    box = Mailbox.from_settings()
    if box is None:
        return {}
    return poll(box)


register("helpdesk.imap_poll", max(settings.IMAP_INTERVAL, 5), poll_imap,
         when=lambda: bool(settings.IMAP_HOST))
