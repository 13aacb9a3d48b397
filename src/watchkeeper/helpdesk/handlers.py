"""Outbox subscriptions of the helpdesk: monitoring alerts become tickets, queued client
mail is sent. Handlers are idempotent (the outbox delivers at least once)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from watchkeeper.core.events import subscribe
from watchkeeper.core.models import Client

from . import actions, notify
from .choices import EntryKind, Level, Source, Status
from .mailin import imap  # noqa: F401  (imap registers its poll job)
from .models import Ticket, TicketEntry

log = logging.getLogger(__name__)

SEVERITY_IMPACT = {"critical": Level.HIGH, "error": Level.HIGH, "high": Level.HIGH,
                   "warning": Level.MEDIUM, "medium": Level.MEDIUM}


@subscribe("helpdesk.mail", name="helpdesk.send_mail")
def send_mail(event, handler_name) -> None:
    notify.send(event.payload["mail"])


def _device(payload: dict, client_id: int | None):
    from watchkeeper.inventory.models import Device

    device_id = payload.get("device_id") or payload.get("device")
    if not device_id:
        return None
    return Device.objects.filter(pk=device_id, client_id=client_id).first()


@subscribe("alert.*", name="helpdesk.alerts")
def on_alert(event, handler_name) -> None:
    """alert.opened -> one ticket per alert (unique origin_key); alert.changed -> a note on
    it (or the ticket, if the alert only now wants one); alert.resolved -> a recovery note
    and, when the policy says so and nobody has started work (new/open), resolve.
    Each event adds at most one entry (unique dedupe_key = the event id), so a redelivered
    event changes nothing."""
    kind = event.kind
    if kind not in ("alert.opened", "alert.changed", "alert.resolved"):
        return
    payload = event.payload or {}
    alert_id = payload.get("alert_id") or payload.get("id")
    if alert_id is None:
        raise ValueError(f"{kind} event {event.id} has no alert id")
    key = f"alert:{alert_id}"
    dedupe = f"event:{event.id}"
    if TicketEntry.objects.filter(dedupe_key=dedupe).exists():
        return
    client_id = payload.get("client_id") or payload.get("client") or event.client_id
    check = payload.get("check") or payload.get("check_name") or "check"
    severity = str(payload.get("severity") or "warning").lower()
    summary = payload.get("summary") or ""
    # The monitoring policy says whether this severity wants a ticket ("ticket") and whether
    # recovery resolves it ("resolve_ticket"); suppressed alerts (maintenance, flapping)
    # open none. Without those keys every alert opens one.
    wants_ticket = payload.get("ticket", True) and not payload.get("suppressed")
    ticket = Ticket.objects.filter(origin_key=key).first()
    if ticket is None and wants_ticket and kind in ("alert.opened", "alert.changed"):
        ticket = _open_alert_ticket(key, client_id, check, severity, summary, payload, dedupe)
        if ticket is not None:
            return
        ticket = Ticket.objects.filter(origin_key=key).first()
    if ticket is None:
        log.info("%s for alert %s: no ticket wanted or none open", kind, alert_id)
        return
    if kind == "alert.resolved":
        body = f"Recovered: {check}{f' — {summary}' if summary else ''}"
    elif kind == "alert.opened":
        body = f"Alert raised again: {check} ({severity}){f' — {summary}' if summary else ''}"
    else:
        body = f"Alert changed: {check} ({severity}){f' — {summary}' if summary else ''}"
    try:
        with transaction.atomic():
            actions.add_entry(actor=None, ticket=ticket, body=body, public=False,
                              kind=EntryKind.SYSTEM, author_label="monitoring",
                              dedupe_key=dedupe, notify=False)
            ticket.refresh_from_db()
            resolve = payload.get("resolve_ticket", settings.HELPDESK_ALERT_AUTORESOLVE)
            if kind == "alert.resolved" and resolve and \
                    ticket.status in (Status.NEW, Status.OPEN):
                actions.change_ticket(actor=None, ticket=ticket, status=Status.RESOLVED,
                                      note="Resolved automatically: the alert recovered.")
    except IntegrityError:
        return  # the same event delivered concurrently: its entry is already there


def _open_alert_ticket(key, client_id, check, severity, summary, payload, dedupe):
    client = Client.objects.filter(pk=client_id).first() if client_id else None
    device = _device(payload, client_id)
    subject = f"{check} on {device.name if device else 'a device'}"
    if summary:
        subject = f"{subject}: {summary}"
    impact = SEVERITY_IMPACT.get(severity, Level.LOW)
    try:
        with transaction.atomic():
            return actions.create_ticket(
                actor=None, subject=subject[:300], client=client, source=Source.ALERT,
                description="", impact=impact, urgency=impact,
                devices=[device] if device else [], origin_key=key, notify=False,
                tags=["alert", f"severity:{severity}"],
                first_entry={"kind": EntryKind.SYSTEM, "is_public": False,
                             "author_label": "monitoring", "dedupe_key": dedupe,
                             "body": f"Alert opened: {check} ({severity})"
                                     f"{f' — {summary}' if summary else ''}"})
    except IntegrityError:
        return None  # another delivery opened it first; the caller adds a repeat note
    except ValidationError:
        log.warning("alert %s could not open a ticket", key, exc_info=True)
        raise
