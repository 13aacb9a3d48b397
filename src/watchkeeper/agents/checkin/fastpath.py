"""The lean ingest path: a small ASGI app in front of Django (see asgi.py) that answers
`POST /agent/v1/checkin` for ordinary metric check-ins without Django's request path, and
stores them through the batch writer (batch.py), which hands them to the check-in writer
(writer.py) that the Django view stores with too.

It runs the checks of the Django view (agent_api.checkin) with the same functions, in the
same order of effect: body size limit (413), whole-payload validation, the signature
headers and timestamp window (401), then, in the writer, the agent lookup, signature,
agent status (403 revoked/rejected, 403 pending), nonce replay (401) and the per-agent
sequence claim. Answers and problem bodies are the view's, byte for byte.

What it does not handle it hands to Django unchanged — the same scope, the same body bytes —
before anything was written, and the view then runs every check itself: a body that does
not parse or validate (the view authenticates, then quarantines it), a batch carrying
inventory or command results, and (decided by the writer after verifying, still before any
write) an agent with commands waiting, a new agent version or new spool-drop totals.
So a hand-off can only lead to the full Django check, never around it. A request Django's
middleware would answer before the view (Host not allowed, plain http when TLS is
required) is handed over before anything is read.

`WATCHKEEPER_AGENT_LEAN_CHECKIN=false` routes every check-in to the Django view (the
baseline of bench/scenarios/agent_checkin.py).
"""

from __future__ import annotations

import io
import ipaddress
import json
from types import SimpleNamespace
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder

from watchkeeper.core.context import client_ip

from . import batch as batch_writer
from .auth import AuthError, parse_headers
from .validation import Invalid, validate_checkin
from .views import checkin_answer, declared_length_too_large, parse_body, problem_body, too_large

CHECKIN_PATH = "/agent/v1/checkin"
# Keys of a check-in that the lean path never stores: such a batch goes to the Django view.
HEAVY_KEYS = ("inventory", "results")


def lean_enabled() -> bool:
    return settings.AGENT_LEAN_CHECKIN


class AgentIngestApp:
    """ASGI: the check-in path to the lean handler, everything else to `app` (Django)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["path"] == CHECKIN_PATH
                and scope.get("method") == "POST" and not scope.get("root_path")
                and lean_enabled()):
            await self.checkin(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def checkin(self, scope, receive, send) -> None:
        # META exactly as Django builds it (repeated headers joined, "_" names ignored).
        request = ASGIRequest(scope, io.BytesIO())
        if _middleware_would_answer(request):
            # Django's middleware refuses or redirects this request before any view (a
            # Host outside ALLOWED_HOSTS, plain http when TLS is required, a refused
            # user agent): let it, with nothing read or written here.
            await self.app(scope, receive, send)
            return
        meta = request.META
        secure = request.is_secure()
        if declared_length_too_large(meta.get("CONTENT_LENGTH")):
            await _problem(send, too_large(), secure)
            return
        body = await _read_body(receive, settings.AGENT_MAX_BODY_BYTES)
        if body is None:
            return  # the client went away
        if len(body) > settings.AGENT_MAX_BODY_BYTES:
            await _problem(send, too_large(), secure)
            return
        try:
            data = validate_checkin(parse_body(body))
        except Invalid:
            await self.handoff(scope, receive, send, body)
            return
        if any(data.get(key) is not None for key in HEAVY_KEYS):
            await self.handoff(scope, receive, send, body)
            return
        try:
            headers = parse_headers(meta)
        except AuthError as exc:
            await _problem(send, exc, secure)
            return
        item = batch_writer.CheckinItem(headers=headers, method="POST", path=CHECKIN_PATH,
                                        body=body, batch=data, ip=_ip(meta))
        kind, value = await submit(item)
        if kind == "ok":
            await _send(send, 200, checkin_answer(value, []), b"application/json", secure)
        elif kind == "problem":
            await _problem(send, value, secure)
        elif kind == "handoff":
            await self.handoff(scope, receive, send, body)
        else:
            await _send(send, 503, problem_body(
                503, "The check-in could not be stored now; send it again later.",
                code="retry", path=CHECKIN_PATH), b"application/problem+json", secure,
                [(b"retry-after", str(batch_writer.RETRY_AFTER).encode())])

    async def handoff(self, scope, receive, send, body: bytes) -> None:
        """The Django view gets the request as it arrived: same scope, same body bytes."""
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def submit(item: batch_writer.CheckinItem) -> tuple[str, Any]:
    if settings.AGENT_BATCH_WRITER == "inline":
        # Tests: one item per batch, in the caller's thread and database connection.
        await sync_to_async(batch_writer.process, thread_sensitive=True)([item])
        return item.outcome
    return await batch_writer.writer().submit(item)


def _middleware_would_answer(request: ASGIRequest) -> bool:
    """True when Django's middleware (CommonMiddleware, SecurityMiddleware) would answer
    this check-in itself instead of calling the view."""
    try:
        request.get_host()
    except DisallowedHost:
        return True
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        return True
    return bool(settings.DISALLOWED_USER_AGENTS)


def _ip(meta: dict[str, str]) -> str | None:
    ip = client_ip(SimpleNamespace(META=meta))
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None  # a proxy's odd X-Forwarded-For must not fail a whole batch


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break  # answered 413 now; what the client still sends is not read
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _problem(send, exc: AuthError, secure: bool) -> None:
    await _send(send, exc.status, problem_body(exc.status, exc.detail, code=exc.code,
                                               path=CHECKIN_PATH), b"application/problem+json",
                secure)


def _security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers Django's SecurityMiddleware and XFrameOptionsMiddleware add."""
    headers = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        policy = policy if isinstance(policy, str) else ",".join(policy)
        headers.append((b"referrer-policy", policy.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy",
                        settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    return headers


async def _send(send, status: int, data: dict, content_type: bytes, secure: bool,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(data, cls=DjangoJSONEncoder).encode()
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               *_security_headers(secure), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
