"""Tickets of a monitoring alert, as a person asks for them from the alert's page: open a
ticket for the alert (the one ticket its origin key allows), or link the alert to a ticket
already open (an internal note on the ticket naming the alert, keyed so linking twice adds
nothing). Automatic tickets stay the job of the alert.* handler (handlers.py).

Monitoring reads and writes these only through this module's functions (alert data passed
as plain values), never through the helpdesk's models."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from .choices import OPEN_STATUSES, EntryKind, Level, Source
from .events import alert_origin_key
from .handlers import SEVERITY_IMPACT
from .models import Ticket, TicketEntry
from .selectors import can_work_on, visible_tickets

origin_key = alert_origin_key  # the one spelling of "alert:<id>" (helpdesk/events.py)


def _link_key(alert_id: int, ticket_id: int) -> str:
    return f"alert-link:{alert_id}:{ticket_id}"


def tickets_of_alert(user, alert_id: int) -> QuerySet:
    """The ticket opened for the alert and the tickets it was linked to (visible ones)."""
    linked = TicketEntry.objects.filter(
        dedupe_key__startswith=f"alert-link:{alert_id}:").values("ticket_id")
    return visible_tickets(user).filter(Q(origin_key=origin_key(alert_id))
                                        | Q(pk__in=linked)).order_by("id")


def linkable_tickets(user, client_id: int | None, limit: int = 100) -> list[Ticket]:
    """Open tickets of the alert's client the user may link it to."""
    return list(visible_tickets(user).filter(client_id=client_id, status__in=OPEN_STATUSES)
                .order_by("-id")[:limit])


def open_ticket(*, actor, alert_id: int, client, device, check_name: str, severity: str,
                summary: str) -> tuple[Ticket, bool]:
    """(the alert's ticket, created now?). An existing one (opened by the handler or a
    colleague a moment ago) is returned as it is."""
    from . import actions

    existing = Ticket.objects.filter(origin_key=origin_key(alert_id)).first()
    if existing is not None:
        return existing, False
    impact = SEVERITY_IMPACT.get(severity, Level.LOW)
    subject = f"{check_name} on {device.name if device else 'a device'}"
    if summary:
        subject = f"{subject}: {summary}"
    try:
        with transaction.atomic():
            ticket = actions.create_ticket(
                actor=actor, subject=subject[:300], client=client, source=Source.ALERT,
                impact=impact, urgency=impact, devices=[device] if device else [],
                origin_key=origin_key(alert_id), notify=False,
                tags=["alert", f"severity:{severity}"],
                description=f"Opened from alert #{alert_id}: {check_name} ({severity})"
                            f"{f' — {summary}' if summary else ''}.")
    except IntegrityError:  # opened concurrently
        return Ticket.objects.get(origin_key=origin_key(alert_id)), False
    return ticket, True


def link_ticket(*, actor, alert_id: int, ticket: Ticket, check_name: str, severity: str,
                summary: str, device=None) -> bool:
    """Link the alert to `ticket`: an internal note, and the device on the ticket. False
    when it was linked already."""
    from django.core.exceptions import ValidationError

    from . import actions

    if not can_work_on(actor, ticket):
        raise ValidationError("You do not work on this ticket's client.")
    key = _link_key(alert_id, ticket.pk)
    if TicketEntry.objects.filter(dedupe_key=key).exists():
        return False
    with transaction.atomic():
        actions.add_entry(actor=actor, ticket=ticket, public=False, kind=EntryKind.INTERNAL_NOTE,
                          dedupe_key=key, notify=False,
                          body=f"Linked alert #{alert_id}: {check_name} ({severity})"
                               f"{f' — {summary}' if summary else ''}")
        if device is not None and device.client_id == ticket.client_id and \
                not ticket.devices.filter(pk=device.pk).exists():
            actions.set_devices(actor=actor, ticket=ticket,
                                devices=[*ticket.devices.all(), device])
    return True
