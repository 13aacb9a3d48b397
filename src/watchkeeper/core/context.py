"""Per-request context (client address) that actions read when they write audit rows."""

from __future__ import annotations

from contextvars import ContextVar

current_ip: ContextVar[str | None] = ContextVar("watchkeeper_ip", default=None)


def client_ip(request) -> str | None:
    """The caller's address; X-Forwarded-For is trusted only from configured proxies."""
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote in settings.TRUSTED_PROXIES:
        return forwarded.split(",")[-1].strip() or remote
    return remote
