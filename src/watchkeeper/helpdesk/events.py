"""The events of the helpdesk (tickets, mail, settings); its sub-domains declare theirs in
their own `events.py` (sla/, billing/, time/). See core.catalogue."""

from __future__ import annotations

from typing import Literal

from watchkeeper.core.catalogue import EventData, declare, declare_crud, shape

ALERT_ORIGIN = "alert:"  # Ticket.origin_key of a ticket opened for a monitoring alert
AlertAction = Literal["keep", "snooze", "resolve"]
ALERT_ACTIONS = ("keep", "snooze", "resolve")


def alert_origin_key(alert_id: int) -> str:
    return f"{ALERT_ORIGIN}{alert_id}"


def alert_id_of(ticket) -> int | None:
    key = ticket.origin_key or ""
    return int(key[len(ALERT_ORIGIN):]) if key.startswith(ALERT_ORIGIN) else None


@shape
class TicketEvent(EventData):
    """What every ticket event tells of the ticket (one builder: `of`)."""

    id: int
    reference: str
    status: str
    priority: str
    client_id: int | None
    queue_id: int | None
    assignee_id: int | None
    source: str
    # The monitoring alert this ticket was opened for, if any.
    alert_id: int | None

    @classmethod
    def of(cls, ticket, **extra):
        return cls(id=ticket.pk, reference=ticket.reference, status=ticket.status,
                   priority=ticket.priority, client_id=ticket.client_id,
                   queue_id=ticket.queue_id, assignee_id=ticket.assignee_id,
                   source=ticket.source, alert_id=alert_id_of(ticket), **extra)


@declare("ticket.created")
class TicketCreated(TicketEvent):
    """A ticket was opened (by mail, the portal, the API, a technician or an alert)."""


@declare("ticket.changed")
class TicketChanged(TicketEvent):
    """A ticket changed; `changed` names what (fields, `entries`, `watchers`, `devices`,
    `attachments`), `by_id` is the user who changed it (null: the system)."""

    changed: list[str]
    by_id: int | None = None
    # Resolving an alert's ticket while the alert is still active: what the person chose
    # for the alert (keep it, snooze it for `snooze_minutes`, resolve it too).
    alert_action: AlertAction | None = None
    snooze_minutes: int | None = None
    entry_id: int | None = None
    entry_kind: str | None = None
    merged_id: int | None = None
    attachment_id: int | None = None


@declare("ticket.csat")
class TicketCsat(EventData):
    """A requester answered the satisfaction survey of a resolved ticket (score 1-5)."""

    ticket_id: int
    score: int | None
    technician_id: int | None


@declare("helpdesk.mail")
class HelpdeskMail(EventData):
    """A mail to a requester was queued; the helpdesk's handler sends it."""

    mail_id: int


@declare("helpdesk.inbound")
class HelpdeskInbound(EventData):
    """An incoming mail was processed: attached to a ticket, opened one, or held back."""

    id: int
    state: str


for _model in ("helpdesk.Queue", "helpdesk.RoutingRule", "helpdesk.CannedResponse",
               "helpdesk.NotificationTemplate", "helpdesk.CustomFieldDefinition",
               "helpdesk.ClientEmailDomain", "helpdesk.PriorityMatrix"):
    declare_crud(_model, module=__name__)
