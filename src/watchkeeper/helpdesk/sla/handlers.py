"""Outbox subscriptions of the SLA clocks: every ticket change recomputes its clocks.

Recomputing derives the clocks from the ticket's current state and status history, so a
redelivered or out-of-order event gives the same result (idempotent by construction).
"""

from __future__ import annotations

from watchkeeper.core.events import subscribe


@subscribe("ticket.created", name="helpdesk.sla.ticket_created")
@subscribe("ticket.changed", name="helpdesk.sla.ticket_changed")
def recompute_on_ticket_event(event, handler_name) -> None:
    from . import actions as sla

    ticket_id = (event.payload or {}).get("id")
    if ticket_id:
        sla.recompute_ticket(int(ticket_id))


@subscribe("sla_policy.saved", name="helpdesk.sla.policy_saved")
def recompute_on_policy(event, handler_name) -> None:
    """A new policy (or version) applies at once to open tickets that had none or followed
    a less specific scope; running clocks of the same scope keep their version."""
    from . import actions as sla

    scope = (event.payload or {}).get("scope")
    sla.recompute_open(client_id=event.client_id, scope=scope)


@subscribe("client.changed", name="helpdesk.sla.client_calendar_changed")
def recompute_on_calendar(event, handler_name) -> None:
    """New business hours or time zone move the due times of the client's open tickets."""
    from . import actions as sla

    changed = set((event.payload or {}).get("changed", []))
    if event.client_id and changed & {"business_hours", "timezone"}:
        sla.recompute_open(client_id=event.client_id)


@subscribe("holiday.*", name="helpdesk.sla.holiday_changed")
def recompute_on_holiday(event, handler_name) -> None:
    """A client's holiday added or removed moves its open tickets' due times. (Holidays of
    a shared calendar belong to no client; those apply at each ticket's next change.)"""
    from . import actions as sla

    if event.client_id:
        sla.recompute_open(client_id=event.client_id)
