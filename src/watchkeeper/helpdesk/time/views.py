"""Pages (form posts) for time on tickets: log an entry, start/stop/discard a timer, delete
an entry. Each posts back to the ticket page, whose side panel shows the time and timers
(templatetags/helpdesk_sla.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from watchkeeper.core.converters import parse_id
from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from .. import selectors
from ..models import Ticket
from . import actions as timeentries
from .models import TimeEntry, Timer, WorkType


def _ticket(request, pk: int) -> Ticket:
    return get_object_or_404(selectors.visible_tickets(request.user).select_related("client"),
                             pk=pk)


def _errors(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


def _work_type(value) -> WorkType | None:
    return WorkType.objects.filter(pk=parse_id(value), is_active=True).first() \
        if parse_id(value or "") is not None else None


def _minutes(text: str) -> int:
    """'90', '1:30' or '1.5h' -> minutes."""
    text = (text or "").strip().lower().replace(",", ".")
    try:
        if ":" in text:
            h, m = text.split(":", 1)
            return int(h or 0) * 60 + int(m or 0)
        if text.endswith("h"):
            return round(float(text[:-1]) * 60)
        return int(text)
    except ValueError as exc:
        raise ValidationError({"minutes": "Give minutes (90), hours:minutes (1:30) or "
                                          "hours (1.5h)."}) from exc


@requires("tickets.change")
@require_POST
def time_log(request, pk: int):
    ticket = _ticket(request, pk)
    post = request.POST
    try:
        rate = Decimal(post["rate"]) if post.get("rate", "").strip() else None
    except InvalidOperation:
        messages.error(request, "The rate must be a number.")
        return redirect("ticket", ticket.pk)
    try:
        work_type = _work_type(post.get("work_type"))
        if work_type is None:
            raise ValidationError({"work_type": "Choose a work type."})
        timeentries.log_time(actor=request.user, ticket=ticket,
                             minutes=_minutes(post.get("minutes", "")), work_type=work_type,
                             date=parse_date(post.get("date") or "") or None,
                             billable=post.get("billable") == "on", rate=rate,
                             note=post.get("note", ""))
        messages.success(request, "Time logged.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("ticket", ticket.pk)


@requires("tickets.change")
@require_POST
def timer_start(request, pk: int):
    ticket = _ticket(request, pk)
    try:
        timeentries.start_timer(actor=request.user, ticket=ticket,
                                work_type=_work_type(request.POST.get("work_type")),
                                note=request.POST.get("note", ""))
        messages.success(request, "Timer started.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("ticket", ticket.pk)


def _own_timer(request, pk: int) -> Timer:
    return get_object_or_404(scoped(Timer.objects.filter(technician_id=request.user.pk),
                                    request.user), pk=pk)


@requires("tickets.change")
@require_POST
def timer_stop(request, pk: int):
    timer = _own_timer(request, pk)
    try:
        entry = timeentries.stop_timer(
            actor=request.user, timer=timer,
            work_type=_work_type(request.POST.get("work_type")),
            note=request.POST.get("note") if "note" in request.POST else None,
            billable=request.POST.get("billable", "on") == "on")
        messages.success(request, f"Timer stopped: {entry.minutes} minutes logged.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("ticket", timer.ticket_id)


@requires("tickets.change")
@require_POST
def timer_discard(request, pk: int):
    timer = _own_timer(request, pk)
    timeentries.discard_timer(actor=request.user, timer=timer)
    messages.success(request, "Timer discarded.")
    return redirect("ticket", timer.ticket_id)


@requires("tickets.change")
@require_POST
def time_delete(request, pk: int):
    entry = get_object_or_404(scoped(TimeEntry.objects.all(), request.user), pk=pk)
    if entry.technician_id != request.user.pk and not has_capability(request.user,
                                                                     "billing.manage"):
        messages.error(request, "Only the technician who logged it may delete this time.")
        return redirect("ticket", entry.ticket_id)
    try:
        timeentries.delete_time_entry(actor=request.user, entry=entry)
        messages.success(request, "Time entry deleted.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("ticket", entry.ticket_id)


for _view in (time_log, timer_start):
    _view.wk_model = Ticket
for _view in (timer_stop, timer_discard):
    _view.wk_model = Timer
time_delete.wk_model = TimeEntry
