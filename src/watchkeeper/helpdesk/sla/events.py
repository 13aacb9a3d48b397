"""The events of the SLA clocks and policies (see core.catalogue)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare, declare_crud, shape


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


@declare("sla_policy.saved")
class SlaPolicySaved(EventData):
    """An SLA policy (or a new version of one) was saved for a scope."""

    id: int
    scope: str
    version: int


@declare("sla.changed")
class SlaChanged(EventData):
    """A ticket's SLA clock was started, moved, paused, met or removed."""

    ticket_id: int
    metric: str
    state: str
    due_at: str | None

    @classmethod
    def of(cls, clock) -> SlaChanged:
        return cls(ticket_id=clock.ticket_id, metric=clock.metric, state=clock.state,
                   due_at=_iso(clock.due_at))


@shape
class SlaClockEvent(EventData):
    """What SLA warnings and breaches tell of the clock (one builder: `of`)."""

    ticket_id: int
    reference: str
    metric: str
    priority: str
    policy_id: int
    policy_version: int
    due_at: str | None
    target_seconds: int
    assignee_id: int | None
    queue_id: int | None

    @classmethod
    def of(cls, clock, **extra):
        ticket = clock.ticket
        return cls(ticket_id=ticket.pk, reference=ticket.reference, metric=clock.metric,
                   priority=clock.priority, policy_id=clock.policy_id,
                   policy_version=clock.policy.version,
                   due_at=_iso(clock.due_at), target_seconds=clock.target_seconds,
                   assignee_id=ticket.assignee_id, queue_id=ticket.queue_id, **extra)


@declare("sla.warning")
class SlaWarning(SlaClockEvent):
    """An SLA clock passed its warning point (the policy's percentage of the target)."""

    warning_at: str | None


@declare("sla.breached")
class SlaBreached(SlaClockEvent):
    """An SLA target was missed; `late`: it was met, but after its due time."""

    breached_at: str | None
    escalated_to_id: int | None
    late: bool


@declare("sla.breach_reason")
class SlaBreachReason(EventData):
    """A technician gave the reason for an SLA breach."""

    ticket_id: int
    metric: str


for _model in ("helpdesk.Holiday", "helpdesk.HolidayCalendar"):
    declare_crud(_model, module=__name__)
