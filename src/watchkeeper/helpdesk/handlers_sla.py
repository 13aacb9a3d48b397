"""Outbox subscriptions of the SLA clocks: every ticket change recomputes its clocks.

Recomputing derives the clocks from the ticket's current state and status history, so a
redelivered or out-of-order event gives the same result (idempotent by construction).
"""

from __future__ import annotations

from watchkeeper.core.events import subscribe


@subscribe("ticket.created", name="helpdesk.sla.ticket_created")
@subscribe("ticket.changed", name="helpdesk.sla.ticket_changed")
def recompute_on_ticket_event(event, handler_name) -> None:
    from . import sla

    ticket_id = (event.payload or {}).get("id")
    if ticket_id:
        sla.recompute_ticket(int(ticket_id))
