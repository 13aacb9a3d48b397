"""Outbox subscriptions of the helpdesk: monitoring alerts become tickets, queued client
mail is sent. Handlers are idempotent (the outbox delivers at least once)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from watchkeeper.core.events import subscribe
from watchkeeper.core.models import Client

from . import actions, notify
from .choices import EntryKind, Level, Source, Status
from .events import HelpdeskMail, alert_origin_key
from .mailin import imap  # noqa: F401  (imap registers its poll job)
from .models import Ticket, TicketEntry

if TYPE_CHECKING:  # monitoring's event contract, for the handlers' signatures
    from watchkeeper.monitoring.events import (
        AlertChanged,
        AlertEvent,
        AlertOpened,
        AlertResolved,
    )

log = logging.getLogger(__name__)

SEVERITY_IMPACT = {"critical": Level.HIGH, "error": Level.HIGH, "high": Level.HIGH,
                   "warning": Level.MEDIUM, "medium": Level.MEDIUM}


@subscribe("helpdesk.mail", name="helpdesk.send_mail")
def send_mail(event: HelpdeskMail, handler_name) -> None:
    notify.send(event.mail_id)


def _device(device_id: int | None, client_id: int | None):
    from watchkeeper.inventory.selectors import all_devices

    if not device_id:
        return None
    return all_devices().filter(pk=device_id, client_id=client_id).first()


def _alert_ticket(event: AlertEvent) -> Ticket | None:
    return Ticket.objects.filter(origin_key=alert_origin_key(event.alert_id)).first()


def _summary(event: AlertEvent) -> str:
    return f" — {event.summary}" if event.summary else ""


@subscribe("alert.opened", name="helpdesk.alerts.opened")
def on_alert_opened(event: AlertOpened, handler_name) -> None:
    """One ticket per alert (unique origin_key) when its policy wants one and nothing
    suppresses it; a repeated opening is a note on it."""
    if _seen(event):
        return
    ticket = _alert_ticket(event)
    if ticket is None and event.wants_ticket and not event.suppressed:
        if _open_alert_ticket(event) is not None:
            return
        ticket = _alert_ticket(event)
    if ticket is not None:
        _note(event, ticket, f"Alert raised again: {event.check} ({event.severity})"
                             f"{_summary(event)}")


@subscribe("alert.changed", name="helpdesk.alerts.changed")
def on_alert_changed(event: AlertChanged, handler_name) -> None:
    """A note on the alert's ticket. Only a worse severity (or flapping) may open the
    ticket of an alert that did not want one before; acknowledging, snoozing and waking
    never open one."""
    if _seen(event):
        return
    ticket = _alert_ticket(event)
    if ticket is None:
        if event.change in ("severity", "flapping") and event.wants_ticket \
                and not event.suppressed:
            _open_alert_ticket(event)
        return
    if event.change == "acknowledged":
        body = f"Alert acknowledged by {event.by}."
    elif event.change == "snoozed":
        body = f"Alert snoozed by {event.by} until {event.snoozed_until}."
    elif event.change == "woke":
        body = f"Alert active again: its snooze ended ({event.check}{_summary(event)})."
    else:
        body = f"Alert changed: {event.check} ({event.severity}){_summary(event)}"
    _note(event, ticket, body)


@subscribe("alert.resolved", name="helpdesk.alerts.resolved")
def on_alert_resolved(event: AlertResolved, handler_name) -> None:
    """A recovery note on the alert's ticket (whatever its status), and — when the policy
    says so and nobody has started work (new/open) — the ticket resolved."""
    if _seen(event):
        return
    ticket = _alert_ticket(event)
    if ticket is None:
        log.info("alert %s resolved: no ticket", event.alert_id)
        return
    if event.recovered:
        body = f"Recovered: {event.check}" + (
            f" — {event.recovery_summary}" if event.recovery_summary else _summary(event))
    else:
        body = f"Alert resolved by {event.by}."
    if ticket.status in (Status.RESOLVED, Status.CLOSED):
        body += " (This ticket was already resolved.)"
    resolve = event.recovered and event.resolve_ticket and \
        settings.HELPDESK_ALERT_AUTORESOLVE and \
        ticket.status in (Status.NEW, Status.OPEN)
    _note(event, ticket, body, resolve=resolve)


def _seen(event) -> bool:
    """Each event adds at most one entry (unique dedupe_key = the event id), so a
    redelivered event changes nothing."""
    return TicketEntry.objects.filter(dedupe_key=f"event:{event.envelope.id}").exists()


def _note(event, ticket: Ticket, body: str, *, resolve: bool = False) -> None:
    try:
        with transaction.atomic():
            actions.add_entry(actor=None, ticket=ticket, body=body, public=False,
                              kind=EntryKind.SYSTEM, author_label="monitoring",
                              dedupe_key=f"event:{event.envelope.id}", notify=False)
            if resolve:
                ticket.refresh_from_db()
                actions.change_ticket(actor=None, ticket=ticket, status=Status.RESOLVED,
                                      note="Resolved automatically: the alert recovered.")
    except IntegrityError:
        return  # the same event delivered concurrently: its entry is already there


def _open_alert_ticket(event: AlertEvent) -> Ticket | None:
    client_id = event.envelope.client_id
    client = Client.objects.filter(pk=client_id).first() if client_id else None
    device = _device(event.device_id, client_id)
    severity = event.severity.lower()
    subject = f"{event.check} on {device.name if device else 'a device'}"
    if event.summary:
        subject = f"{subject}: {event.summary}"
    impact = SEVERITY_IMPACT.get(severity, Level.LOW)
    try:
        with transaction.atomic():
            return actions.create_ticket(
                actor=None, subject=subject[:300], client=client, source=Source.ALERT,
                description="", impact=impact, urgency=impact,
                devices=[device] if device else [],
                origin_key=alert_origin_key(event.alert_id), notify=False,
                tags=["alert", f"severity:{severity}"],
                first_entry={"kind": EntryKind.SYSTEM, "is_public": False,
                             "author_label": "monitoring",
                             "dedupe_key": f"event:{event.envelope.id}",
                             "body": f"Alert opened: {event.check} ({severity})"
                                     f"{_summary(event)}"})
    except IntegrityError:
        return None  # another delivery opened it first; the caller adds a repeat note
    except ValidationError:
        log.warning("alert %s could not open a ticket", event.alert_id, exc_info=True)
        raise
