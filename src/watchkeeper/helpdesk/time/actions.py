"""Writes and reads of time on tickets: time entries and server-side timers.

A timer lives in the database (one per technician and ticket), so it survives a reload, a
second browser or a restart; stopping it writes a TimeEntry of the elapsed whole minutes
(rounded up, at least one). A time entry counted by an approved billing run is locked.
"""

from __future__ import annotations

import math
from datetime import date as date_type
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from watchkeeper.core import events
from watchkeeper.core.actions import create_object, delete_object, update_object

from ..models import Ticket
from . import events as ev
from .models import TimeEntry, Timer, WorkType

EDITABLE = {"work_type", "date", "minutes", "billable", "rate", "note"}
MAX_MINUTES = 24 * 60


def _user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def client_today(ticket: Ticket) -> date_type:
    """Today in the ticket's client's time zone (UTC for a ticket with no client)."""
    from zoneinfo import ZoneInfo

    zone = ticket.client.timezone if ticket.client_id else "UTC"
    return timezone.now().astimezone(ZoneInfo(zone)).date()


def _check_worker(technician, ticket: Ticket) -> None:
    from ..selectors import can_work_on

    if technician is None:
        raise ValidationError({"technician": "Time is logged by a person."})
    if not can_work_on(technician, ticket):
        raise ValidationError({"technician": "This technician does not work for this client."})


def _check_values(ticket: Ticket, values: dict[str, Any]) -> None:
    minutes = values.get("minutes")
    if minutes is not None and not (1 <= int(minutes) <= MAX_MINUTES):
        raise ValidationError({"minutes": f"Between 1 and {MAX_MINUTES} minutes."})
    if values.get("billable") and ticket.client_id is None:
        raise ValidationError({"billable": "Give the ticket a client before billing time."})
    work_type = values.get("work_type")
    if work_type is not None and not work_type.is_active:
        raise ValidationError({"work_type": "This work type is no longer in use."})
    rate = values.get("rate")
    if rate is not None and Decimal(rate) < 0:
        raise ValidationError({"rate": "A rate cannot be negative."})


def log_time(*, actor, ticket: Ticket, minutes: int, work_type: WorkType,
             date: date_type | None = None, billable: bool = True,
             rate: Decimal | None = None, note: str = "", technician=None,
             started_at=None) -> TimeEntry:
    """Record time spent on a ticket (by the actor, or by `technician` for them)."""
    technician = technician or _user(actor)
    _check_worker(technician, ticket)
    values = {"minutes": minutes, "work_type": work_type, "billable": billable, "rate": rate}
    _check_values(ticket, values)
    with transaction.atomic():
        entry = create_object(actor=actor, model=TimeEntry, emit=False, ticket=ticket,
                              technician=technician, work_type=work_type,
                              date=date or client_today(ticket), minutes=int(minutes),
                              billable=billable, rate=rate, note=note.strip(),
                              started_at=started_at)
        events.emit(ev.TimeEntryCreated.of(entry), client=ticket.client_id)
    return entry


def _check_unlocked(entry: TimeEntry) -> None:
    if entry.billed_run_id is not None:
        raise ValidationError("This time was billed in an approved billing run; it is locked.")


def update_time_entry(*, actor, entry: TimeEntry, **fields: Any) -> TimeEntry:
    unknown = set(fields) - EDITABLE
    if unknown:
        raise ValidationError(f"Cannot change: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        entry = TimeEntry.objects.select_for_update().get(pk=entry.pk)
        _check_unlocked(entry)
        _check_values(entry.ticket, {**{k: getattr(entry, k) for k in EDITABLE}, **fields})
        return update_object(actor=actor, obj=entry, updated_at=timezone.now(), **fields)


def delete_time_entry(*, actor, entry: TimeEntry) -> None:
    with transaction.atomic():
        entry = TimeEntry.objects.select_for_update().get(pk=entry.pk)
        _check_unlocked(entry)
        delete_object(actor=actor, obj=entry)


# --- Timers -------------------------------------------------------------------------------

def start_timer(*, actor, ticket: Ticket, work_type: WorkType | None = None,
                note: str = "") -> Timer:
    """Start the actor's timer on a ticket; starting one already running returns it."""
    technician = _user(actor)
    _check_worker(technician, ticket)
    existing = Timer.objects.filter(ticket=ticket, technician=technician).first()
    if existing is not None:
        return existing
    try:
        return create_object(actor=actor, model=Timer, ticket=ticket, technician=technician,
                             work_type=work_type, note=note.strip(),
                             started_at=timezone.now())
    except IntegrityError:  # a double click raced us: the other request started it
        return Timer.objects.get(ticket=ticket, technician=technician)


def stop_timer(*, actor, timer: Timer, work_type: WorkType | None = None,
               note: str | None = None, billable: bool = True) -> TimeEntry:
    """Stop a timer: one transaction writes the time entry and removes the timer."""
    with transaction.atomic():
        timer = (Timer.objects.select_for_update(of=("self",)).select_related("ticket")
                 .get(pk=timer.pk))
        work_type = work_type or timer.work_type
        if work_type is None:
            raise ValidationError({"work_type": "Choose a work type."})
        seconds = (timezone.now() - timer.started_at).total_seconds()
        minutes = min(max(1, math.ceil(seconds / 60)), MAX_MINUTES)
        entry = log_time(actor=actor, ticket=timer.ticket, minutes=minutes,
                         work_type=work_type, billable=billable,
                         note=timer.note if note is None else note,
                         technician=timer.technician, started_at=timer.started_at)
        delete_object(actor=actor, obj=timer, emit=False)
    return entry


def discard_timer(*, actor, timer: Timer) -> None:
    delete_object(actor=actor, obj=timer)


# --- Reads ----------------------------------------------------------------------------------

def ticket_totals(ticket: Ticket) -> dict[str, int]:
    """Minutes logged on a ticket: all, billable, and not billable."""
    agg = TimeEntry.objects.filter(ticket=ticket).aggregate(
        total=Sum("minutes"), billable=Sum("minutes", filter=Q(billable=True)))
    total, billable = agg["total"] or 0, agg["billable"] or 0
    return {"total": total, "billable": billable, "non_billable": total - billable}


def running_timer(ticket: Ticket, technician) -> Timer | None:
    if _user(technician) is None:
        return None
    return Timer.objects.filter(ticket=ticket, technician=technician).first()


def save_work_type(*, actor, name: str, default_rate: Decimal = Decimal("0"),
                   work_type: WorkType | None = None, is_active: bool = True) -> WorkType:
    if work_type is None:
        return create_object(actor=actor, model=WorkType, name=name.strip(),
                             default_rate=default_rate, is_active=is_active)
    return update_object(actor=actor, obj=work_type, name=name.strip(),
                         default_rate=default_rate, is_active=is_active)
