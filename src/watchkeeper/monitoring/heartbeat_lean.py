"""Heartbeat pings through the lean ASGI front (asgi.py), like agent check-ins: `/hb/<uid>`,
`/hb/<uid>/start`, `/hb/<uid>/fail` (GET, POST, HEAD) are answered here without Django's URL
resolution, middleware stack and per-request thread hand-off of a sync view.

Same semantics as the Django view (views_poller.heartbeat_ping), which stays the route for
everything this does not take: the same write (`heartbeats.record_ping`: one UPDATE, one
INSERT ... SELECT), the same answers ("OK" 200, "not found" 404, text/plain, no-store), the
headers Django's SecurityMiddleware and XFrameOptionsMiddleware add, the client address as
RequestContextMiddleware takes it. A request Django's middleware would answer itself (Host
not allowed, plain http when TLS is required) goes to Django untouched, and so does any path
the UUID pattern does not match (Django answers its 404).

The write runs in a few long-lived worker threads, each keeping its database connection (on
PostgreSQL borrowed once from the pool), not in a fresh thread with a fresh connection per
request (settings.py: CONN_MAX_AGE=0 under ASGI); a failed write closes that thread's
connection so the next one reconnects. `WATCHKEEPER_HEARTBEAT_LEAN=false` routes pings to the
Django view (the baseline of the heartbeat bench).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, connection

from watchkeeper.agents.checkin.fastpath import _ip, _middleware_would_answer, _security_headers

from .heartbeats import actions as heartbeats

log = logging.getLogger(__name__)
PATH = re.compile(r"/hb/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                  r"(/start|/fail)?")
METHODS = ("GET", "POST", "HEAD")
# Writers: enough to overlap one ping's commit (SQLite's fsync, a PostgreSQL round trip)
# with the next one's Python work; each keeps one database connection.
THREADS = 4
_executor: ThreadPoolExecutor | None = None


def lean_enabled() -> bool:
    return settings.HEARTBEAT_LEAN


def _worker() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="wk-heartbeat")
    return _executor


def _record(uid: uuid.UUID, kind: str, ip: str | None, agent: str, body: str) -> bool:
    try:
        return heartbeats.record_ping(uid, kind, remote_ip=ip, user_agent=agent, body=body)
    except Exception:
        # A broken connection must not fail the next ping: this thread reconnects.
        with contextlib.suppress(Exception):
            connection.close()
        raise


class HeartbeatApp:
    """ASGI: heartbeat pings to the lean handler, everything else to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") in METHODS \
                and not scope.get("root_path") and lean_enabled():
            match = PATH.fullmatch(scope["path"])
            if match is not None:
                await self.ping(scope, receive, send, match)
                return
        await self.app(scope, receive, send)

    async def ping(self, scope, receive, send, match) -> None:
        request = ASGIRequest(scope, io.BytesIO())
        if _middleware_would_answer(request):
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] == "POST":
            body = await _read_body(receive, heartbeats.BODY_LIMIT)
            if body is None:
                return
        meta = request.META
        kind = (match.group(2) or "/success")[1:]
        args = (uuid.UUID(match.group(1)), kind, _ip(meta),
                meta.get("HTTP_USER_AGENT", ""), body.decode("utf-8", "replace"))
        if settings.AGENT_BATCH_WRITER == "inline":
            # Tests: in the caller's thread and database connection (its transaction).
            from asgiref.sync import sync_to_async

            found = await sync_to_async(heartbeats.record_ping, thread_sensitive=True)(
                *args[:2], remote_ip=args[2], user_agent=args[3], body=args[4])
        else:
            try:
                found = await asyncio.get_running_loop().run_in_executor(_worker(), _record,
                                                                         *args)
            except DatabaseError:
                log.warning("heartbeat ping not stored: database unavailable", exc_info=True)
                found = None
        text = {True: b"OK\n", False: b"not found\n", None: b"unavailable, retry\n"}[found]
        status = {True: 200, False: 404, None: 503}[found]
        headers = [(b"content-type", b"text/plain"),
                   (b"content-length", str(len(text)).encode()),
                   (b"cache-control", b"no-store"), *_security_headers(request.is_secure())]
        if found is None:
            headers.append((b"retry-after", b"5"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else text})


async def _read_body(receive, limit: int) -> bytes | None:
    """The first `limit` bytes are kept (as the view's request.read(limit)); the rest is
    read and dropped so the connection stays usable."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if size < limit:
            chunks.append(chunk[:limit - size])
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
