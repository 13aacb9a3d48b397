"""Choices of the helpdesk: ticket types, statuses and their workflow, priorities, sources."""

from django.db import models


class TicketType(models.TextChoices):
    INCIDENT = "incident", "Incident"
    SERVICE_REQUEST = "service_request", "Service request"
    PROBLEM = "problem", "Problem"
    CHANGE = "change", "Change"


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING_CLIENT = "waiting_client", "Waiting on client"
    WAITING_THIRD_PARTY = "waiting_third_party", "Waiting on third party"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# The workflow: from each status, the statuses a ticket may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.IN_PROGRESS, Status.WAITING_CLIENT,
                           Status.WAITING_THIRD_PARTY, Status.RESOLVED, Status.CLOSED}),
    Status.OPEN: frozenset({Status.IN_PROGRESS, Status.WAITING_CLIENT,
                            Status.WAITING_THIRD_PARTY, Status.RESOLVED, Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.OPEN, Status.WAITING_CLIENT,
                                   Status.WAITING_THIRD_PARTY, Status.RESOLVED}),
    Status.WAITING_CLIENT: frozenset({Status.OPEN, Status.IN_PROGRESS,
                                      Status.WAITING_THIRD_PARTY, Status.RESOLVED,
                                      Status.CLOSED}),
    Status.WAITING_THIRD_PARTY: frozenset({Status.OPEN, Status.IN_PROGRESS,
                                           Status.WAITING_CLIENT, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset({Status.OPEN}),
}

OPEN_STATUSES = frozenset({Status.NEW, Status.OPEN, Status.IN_PROGRESS, Status.WAITING_CLIENT,
                           Status.WAITING_THIRD_PARTY})
# SLA clocks (helpdesk/sla/actions.py) stop while a ticket is in one of these.
PAUSED_STATUSES = frozenset({Status.WAITING_CLIENT})


class Level(models.TextChoices):
    """Impact and urgency share one scale."""

    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Priority(models.TextChoices):
    P1 = "p1", "P1 critical"
    P2 = "p2", "P2 high"
    P3 = "p3", "P3 medium"
    P4 = "p4", "P4 low"


# The built-in impact x urgency matrix (version 1); PriorityMatrix rows supersede it.
DEFAULT_MATRIX = {
    "high": {"high": "p1", "medium": "p2", "low": "p3"},
    "medium": {"high": "p2", "medium": "p3", "low": "p4"},
    "low": {"high": "p3", "medium": "p4", "low": "p4"},
}


class Source(models.TextChoices):
    EMAIL = "email", "Email"
    PORTAL = "portal", "Client portal"
    API = "api", "API"
    ALERT = "alert", "Alert"
    PHONE = "phone", "Phone / logged call"


class EntryKind(models.TextChoices):
    PUBLIC_REPLY = "reply", "Public reply"
    INTERNAL_NOTE = "note", "Internal note"
    EMAIL_IN = "email_in", "Email received"
    EMAIL_OUT = "email_out", "Email sent"
    STATUS = "status", "Status change"
    FIELDS = "fields", "Field change"
    SYSTEM = "system", "System"


class InboundState(models.TextChoices):
    ACCEPTED = "accepted", "Accepted (became a ticket or a reply)"
    QUARANTINED = "quarantined", "Quarantined"
    IGNORED = "ignored", "Ignored (auto-reply or loop)"
    REPROCESSED = "reprocessed", "Re-processed"


class MailState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Not sent"


class NotificationKind(models.TextChoices):
    CREATED = "created", "Ticket created"
    REPLIED = "replied", "Technician replied"
    RESOLVED = "resolved", "Ticket resolved"


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    CHOICE = "choice", "Choice"
    BOOLEAN = "boolean", "Yes / no"
    DATE = "date", "Date"
