"""Outgoing webhooks: the outbox's first handler.

Each active endpoint that wants an event gets its own delivery row (handler name
`webhook:<id>`), so one slow or failing endpoint retries on its own schedule. The body is
JSON; `X-Watchkeeper-Signature: t=<unix>,v1=<hex>` is HMAC-SHA256 over "<t>.<body>" with the
endpoint's secret, the scheme Stripe and GitHub receivers already know how to check.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
from django.conf import settings
from django.db.models import Q

from . import catalogue, crypto, events
from .canonical import canonical_json
from .models import Event, WebhookDelivery, WebhookEndpoint

SECRET_PURPOSE = "webhook-secret"
# What an attempt row says until its outcome is known (and forever, if the sender died).
INTERRUPTED = "interrupted — outcome unknown (the sender stopped before an answer came)"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """Receiver-side check, shipped for integrators and used by our tests."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def body_for(event: Event) -> bytes:
    """The JSON a receiver gets: the envelope, the kind's schema `version` and the payload
    its declaration promises (docs/events.md)."""
    return canonical_json(
        {"id": str(event.id), "kind": event.kind, "version": event.version,
         "client": event.client_id, "created_at": event.created_at.isoformat(),
         "payload": event.payload})


def _provider(kind: str, client_id: int | None) -> list[str]:
    endpoints = WebhookEndpoint.objects.filter(is_active=True).filter(
        Q(client__isnull=True) | Q(client_id=client_id)
    ).only("id", "event_kinds")
    return [f"webhook:{ep.pk}" for ep in endpoints if ep.wants(kind)]


def _deliver(declared, handler_name: str) -> None:
    event = catalogue.row_of(declared)
    endpoint_id = int(handler_name.split(":", 1)[1])
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True).first()
    if endpoint is None:
        return  # deleted or disabled since: nothing to deliver
    secret = crypto.decrypt(endpoint.secret_enc, SECRET_PURPOSE)
    body = body_for(event)
    attempt = WebhookDelivery.objects.filter(endpoint=endpoint, event=event).count() + 1
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Watchkeeper-Webhook/1",
        "X-Watchkeeper-Event": event.kind,
        # Receivers deduplicate on this id: delivery is at least once.
        "X-Watchkeeper-Delivery": str(event.id),
        "X-Watchkeeper-Signature": sign(secret, body, int(time.time())),
    }
    # The attempt is logged before the request leaves: a worker killed mid-send leaves this
    # row as it is, so the log shows an attempt whose outcome is unknown (the outbox sends
    # again, with the same event id, once the lease expires).
    logged = WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, attempt=attempt, status_code=None, success=False,
        duration_ms=0, error=INTERRUPTED)
    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = httpx.post(endpoint.url, content=body, headers=headers,
                              timeout=settings.WEBHOOK_TIMEOUT, follow_redirects=False)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {response.text[:500]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    WebhookDelivery.objects.filter(pk=logged.pk).update(
        status_code=status_code, success=not error,
        duration_ms=int((time.monotonic() - started) * 1000), error=error,
    )
    if error:
        raise RuntimeError(error)


events.add_provider(_provider)
events.add_resolver("webhook", _deliver)
