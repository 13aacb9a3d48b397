"""Request limits enforced before a body is read (the outermost ASGI layer, see asgi.py).

Django's ASGI handler reads a whole request body into a spooled temporary file before any
view runs, so a view's own size check comes after the disk was used. Here, in front of it:

- A declared Content-Length over the limit is answered 413 at once; nothing is read.
- A body without a length (chunked) is counted as it streams and answered 413 the moment it
  passes the limit; the rest is never read.
- Limits by path and by who is asking: enrollment (unauthenticated) a few KB, other requests
  carrying neither a session cookie nor an Authorization header a small limit, the agent API
  AGENT_MAX_BODY_BYTES, signed-in users REQUEST_MAX_BODY_BYTES (attachments, imports).
- A client that stops sending its body for BODY_IDLE_TIMEOUT seconds, or takes longer than
  BODY_TOTAL_TIMEOUT for all of it, is answered 408 and the connection closed.

`GuardedH11Protocol` (used by `watchkeeper web`) closes connections that never complete
their request headers within HEADER_TIMEOUT seconds (uvicorn has no such timeout: 200 slow
clients once held 200 connections open for good).
"""

from __future__ import annotations

import asyncio
import json
import time

from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def limit_for(scope) -> int:
    path = scope.get("path", "")
    if path == "/agent/v1/enroll":
        return settings.ENROLL_MAX_BODY_BYTES
    if path.startswith("/agent/"):
        return settings.AGENT_MAX_BODY_BYTES
    names = {name for name, _ in scope.get("headers", ())}
    if b"cookie" not in names and b"authorization" not in names:
        return settings.ANON_MAX_BODY_BYTES
    return settings.REQUEST_MAX_BODY_BYTES


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send, status: int, detail: str, scope) -> None:
    path = scope.get("path", "")
    title = {413: "Request body too large", 408: "Request timeout"}[status]
    if path.startswith(("/api/", "/agent/")):
        body = json.dumps({"type": "about:blank", "title": title, "status": status,
                           "detail": detail, "instance": path,
                           "code": "too_large" if status == 413 else "timeout"}).encode()
        ctype = b"application/problem+json"
    else:
        body = f"{title}: {detail}\n".encode()
        ctype = b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: size and time limits on request bodies, checked before reading."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, 413, f"The body may be at most {limit} bytes.", scope)
            return
        state = {"read": 0, "complete": False, "answered": False, "started": False}
        deadline = time.monotonic() + settings.BODY_TOTAL_TIMEOUT

        async def guarded_send(message):
            if state["answered"]:
                return  # we answered 413/408 already; the app's late answer is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        async def refuse(status: int, detail: str):
            if not state["started"] and not state["answered"]:
                state["answered"] = True
                await _answer(send, status, detail, scope)
            return {"type": "http.disconnect"}

        async def guarded_receive():
            if state["complete"] or state["answered"]:
                return await receive()  # after the body: the app waits for a disconnect
            timeout = min(settings.BODY_IDLE_TIMEOUT, max(deadline - time.monotonic(), 0))
            try:
                message = await asyncio.wait_for(receive(), timeout=timeout)
            except TimeoutError:
                return await refuse(408, "The request body arrived too slowly.")
            if message["type"] != "http.request":
                return message
            state["read"] += len(message.get("body", b""))
            if state["read"] > limit:
                return await refuse(413, f"The body may be at most {limit} bytes.")
            if not message.get("more_body", False):
                state["complete"] = True
            return message

        await self.app(scope, guarded_receive, guarded_send)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request's headers do not
    complete within HEADER_TIMEOUT seconds (a slow-loris client)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._wk_timer = None
        self._wk_arm()

    def _wk_arm(self) -> None:
        timeout = settings.HEADER_TIMEOUT
        if timeout > 0:
            self._wk_timer = self.loop.call_later(timeout, self._wk_check, self.cycle)

    def _wk_check(self, cycle_then) -> None:
        if self.transport.is_closing():
            return
        idle = self.cycle is cycle_then and (self.cycle is None or
                                             self.cycle.response_complete)
        if idle:
            self.transport.close()  # no request began within the timeout
            return
        self._wk_arm()

    def connection_lost(self, exc) -> None:
        if getattr(self, "_wk_timer", None) is not None:
            self._wk_timer.cancel()
        super().connection_lost(exc)
