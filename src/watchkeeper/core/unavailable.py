"""One answer for "the database is unavailable", on every path: 503 + Retry-After.

A database that is down, restarting, unreachable, out of connections or out of disk makes
Django raise an OperationalError/InterfaceError (PostgreSQL: after the connect timeout or
the pool wait, both bounded in settings; SQLite: "database or disk is full", "unable to
open"). Wherever that happens — a view, the REST API, a middleware loading the session, the
agent API — the project's 500 handler (core/api/views.server_error) asks `response_for()`
first, and the client gets 503 with Retry-After: problem+json under /api/ and /agent/, a
short page elsewhere. A client retries a 503; nothing it sent was stored half (every write
is one transaction). The lean check-in path answers its own 503 the same way.
"""

from __future__ import annotations

import errno
import logging
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

log = logging.getLogger(__name__)

DETAIL = ("The service is temporarily unavailable (its database cannot be reached or is "
          "full); nothing was changed. Try again in a moment.")


def is_unavailable(exc: BaseException | None) -> bool:
    """A dependency failure worth a 503: the database unreachable or full, the disk full."""
    if exc is None:
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def retry_after() -> str:
    return str(settings.RETRY_AFTER_SECONDS)


def response(request) -> HttpResponse:
    path = request.path
    if path.startswith(("/api/", "/agent/")):
        body = {"type": "about:blank", "title": "Service unavailable", "status": 503,
                "detail": DETAIL, "instance": path}
        if path.startswith("/agent/"):
            body["code"] = "retry"  # what the agent acts on (agents/agent_api.problem)
        resp = JsonResponse(body, status=503, content_type="application/problem+json")
    else:
        resp = HttpResponse(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            "Temporarily unavailable</title></head><body><main><h1>Temporarily unavailable"
            f"</h1><p>{DETAIL}</p></main></body></html>", status=503,
            content_type="text/html; charset=utf-8")
    resp["Retry-After"] = retry_after()
    resp["Cache-Control"] = "no-store"
    return resp


def response_for_current_exception(request) -> HttpResponse | None:
    """Inside the 500 handler: the 503 answer when the exception being handled is an
    unavailable dependency, else None."""
    exc = sys.exc_info()[1]
    if not is_unavailable(exc):
        return None
    log.warning("503 for %s %s: %s: %s", request.method, request.path, type(exc).__name__,
                (str(exc).strip().splitlines() or [""])[0][:200])
    return response(request)


class QuietRequestLog:
    """Logging filter for `django.request`: leave out the deliberate answers (4xx, and the
    503s of an unavailable dependency or a not-ready /readyz, which log their own single
    warning), keep real server errors with their traceback."""

    def filter(self, record) -> bool:
        status = getattr(record, "status_code", None)
        return status is None or (status >= 500 and status != 503)
