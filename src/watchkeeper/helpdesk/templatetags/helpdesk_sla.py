"""The SLA and time panel of the ticket page: `{% load helpdesk_sla %}{% ticket_sla_time %}`
reads the ticket's clocks, time entries and the viewer's timer (so the ticket view itself
needs no change)."""

from __future__ import annotations

from django import template
from django.utils import timezone

from watchkeeper.core.permissions import has_capability

from ..sla import actions as sla
from ..sla.choices import ClockState
from ..sla.models import SlaClock
from ..time import actions as timeentries
from ..time.models import TimeEntry, WorkType

register = template.Library()


def duration(seconds: int | None) -> str:
    """3725 -> '1 h 02 min' (negative: overdue)."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else ""
    minutes = abs(int(seconds)) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes:02d} min" if hours else f"{sign}{minutes} min"


register.filter("sla_duration", duration)


@register.filter
def minutes_duration(minutes: int | None) -> str:
    return duration((minutes or 0) * 60)


@register.inclusion_tag("helpdesk/_ticket_sla_time.html", takes_context=True)
def ticket_sla_time(context, ticket):
    request = context.get("request")
    user = getattr(request, "user", None)
    now = timezone.now()
    clocks = []
    for clock in SlaClock.objects.filter(ticket=ticket).select_related("policy", "ticket",
                                                                       "ticket__client"):
        remaining = sla.remaining_seconds(clock, now)
        clocks.append({"clock": clock, "remaining": remaining,
                       "overdue": clock.breached_at is not None
                       or (remaining is not None and remaining < 0),
                       "paused": clock.state == ClockState.PAUSED})
    return {
        "ticket": ticket, "clocks": clocks, "csrf_token": context.get("csrf_token"),
        "can_change": user is not None and has_capability(user, "tickets.change"),
        "entries": list(TimeEntry.objects.filter(ticket=ticket)
                        .select_related("technician", "work_type")[:50]),
        "totals": timeentries.ticket_totals(ticket),
        "timer": timeentries.running_timer(ticket, user),
        "work_types": list(WorkType.objects.filter(is_active=True)),
        "today": timeentries.client_today(ticket), "user": user, "now": now,
    }
