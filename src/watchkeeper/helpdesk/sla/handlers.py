"""Outbox subscriptions of the SLA clocks: every ticket change recomputes its clocks.

Recomputing derives the clocks from the ticket's current state and status history, so a
redelivered or out-of-order event gives the same result (idempotent by construction).
"""

from __future__ import annotations

from watchkeeper.core.event_kinds import ClientChanged
from watchkeeper.core.events import subscribe
from watchkeeper.helpdesk.events import TicketChanged, TicketCreated

from .events import SlaPolicySaved


@subscribe("ticket.created", name="helpdesk.sla.ticket_created")
@subscribe("ticket.changed", name="helpdesk.sla.ticket_changed")
def recompute_on_ticket_event(event: TicketCreated | TicketChanged, handler_name) -> None:
    from . import actions as sla

    sla.recompute_ticket(event.id)


@subscribe("sla_policy.saved", name="helpdesk.sla.policy_saved")
def recompute_on_policy(event: SlaPolicySaved, handler_name) -> None:
    """A new policy (or version) applies at once to open tickets that had none or followed
    a less specific scope; running clocks of the same scope keep their version."""
    from . import actions as sla

    sla.recompute_open(client_id=event.envelope.client_id, scope=event.scope)


@subscribe("client.changed", name="helpdesk.sla.client_calendar_changed")
def recompute_on_calendar(event: ClientChanged, handler_name) -> None:
    """New business hours or time zone move the due times of the client's open tickets."""
    from . import actions as sla

    client_id = event.envelope.client_id
    if client_id and set(event.changed) & {"business_hours", "timezone"}:
        sla.recompute_open(client_id=client_id)


@subscribe("holiday.*", name="helpdesk.sla.holiday_changed")
def recompute_on_holiday(event, handler_name) -> None:  # holiday.created / .deleted
    """A client's holiday added or removed moves its open tickets' due times. (Holidays of
    a shared calendar belong to no client; those apply at each ticket's next change.)"""
    from . import actions as sla

    if event.envelope.client_id:
        sla.recompute_open(client_id=event.envelope.client_id)
