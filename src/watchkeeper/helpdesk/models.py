"""Tables of the helpdesk: tickets and their timeline, attachments, queues, routing rules,
canned responses, notification templates, custom field definitions, the priority matrix,
inbound mail that could not become a ticket entry, outgoing mail, and CSAT surveys.

Tenant-owned rows declare `tenant_path` and are read through core.tenancy.scoped(). A ticket
from an unknown sender has no client yet (triage): only roles that see every client see it.
SLA clocks (helpdesk/sla/actions.py) are computed from Ticket.created_at / first_responded_at /
resolved_at and the TicketStatusChange rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from watchkeeper.core.models import Client, Contact

from .choices import (
    EntryKind,
    FieldType,
    InboundState,
    Level,
    MailState,
    NotificationKind,
    Priority,
    Source,
    Status,
    TicketType,
)

REFERENCE_PREFIX = "WK-"


def format_reference(number: int) -> str:
    return f"{REFERENCE_PREFIX}{number:06d}"


class ClientEmailDomain(models.Model):
    """A mail domain of a client: senders at it are matched to that client."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="email_domains")
    domain = models.CharField(max_length=253, unique=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class Queue(models.Model):
    """A work queue of the MSP (service desk, projects, triage...)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_triage = models.BooleanField(default=False,
                                    help_text="Tickets from unknown senders land here.")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["is_triage"],
                                               condition=models.Q(is_triage=True),
                                               name="queue_single_triage")]

    def __str__(self) -> str:
        return self.name


class PriorityMatrix(models.Model):
    """One version of the impact x urgency -> priority matrix; the highest version rules."""

    version = models.PositiveIntegerField(unique=True)
    matrix = models.JSONField()
    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Priority matrix v{self.version}"


class CustomFieldDefinition(models.Model):
    """One version of a custom ticket field. Editing writes a new version; `references`
    lists the templates and routing rules that use the field (kept up to date on save)."""

    key = models.SlugField(max_length=60)
    version = models.PositiveIntegerField(default=1)
    label = models.CharField(max_length=100)
    field_type = models.CharField(max_length=10, choices=FieldType.choices,
                                  default=FieldType.TEXT)
    choices = models.JSONField(default=list, blank=True)
    required = models.BooleanField(default=False)
    is_current = models.BooleanField(default=True)
    references = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="customfield_key_version"),
            models.UniqueConstraint(fields=["key"], condition=models.Q(is_current=True),
                                    name="customfield_one_current"),
        ]

    def __str__(self) -> str:
        return f"{self.label} (v{self.version})"


class Ticket(models.Model):
    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="tickets")
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="tickets")
    requester_email = models.EmailField(blank=True)
    requester_name = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=20, choices=TicketType.choices,
                            default=TicketType.INCIDENT)
    impact = models.CharField(max_length=10, choices=Level.choices, default=Level.MEDIUM)
    urgency = models.CharField(max_length=10, choices=Level.choices, default=Level.MEDIUM)
    priority = models.CharField(max_length=4, choices=Priority.choices, default=Priority.P3)
    matrix_version = models.PositiveIntegerField(default=1)
    priority_overridden = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    queue = models.ForeignKey(Queue, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="tickets")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                 null=True, blank=True, related_name="assigned_tickets")
    tags = models.JSONField(default=list, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="children")
    merged_into = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="merged")
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                      related_name="watched_tickets")
    devices = models.ManyToManyField("inventory.Device", blank=True, related_name="tickets")
    # "alert:<id>" for a ticket opened by a monitoring alert: one ticket per alert, enforced
    # by the database, so a redelivered event can never open a second one.
    origin_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="ticket_status_idx"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_idx"),
            models.Index(fields=["queue", "status"], name="ticket_queue_idx"),
            models.Index(fields=["client", "created_at"], name="ticket_client_idx"),
            models.Index(fields=["requester_email"], name="ticket_requester_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def reference(self) -> str:
        return format_reference(self.pk or 0)

    @property
    def is_open(self) -> bool:
        from .choices import OPEN_STATUSES

        return self.status in OPEN_STATUSES


class TicketStatusChange(models.Model):
    """Every status transition, in order (the SLA clock is computed from these)."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    at = models.DateTimeField(default=now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["ticket", "at"], name="ticket_status_change_idx")]


class TicketEntry(models.Model):
    """One row of a ticket's timeline: replies, notes, mail in and out, changes."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    is_public = models.BooleanField(default=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+")
    author_label = models.CharField(max_length=254, blank=True)
    body = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)
    # Mail threading
    message_id = models.CharField(max_length=998, null=True, blank=True, unique=True)
    in_reply_to = models.TextField(blank=True)
    references = models.TextField(blank=True)
    # Idempotence of automated entries, e.g. "event:<uuid>" for an alert event.
    dedupe_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_entry_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.ticket_id}"


class Attachment(models.Model):
    """A file of a ticket, stored under DATA_DIR/attachments by its SHA-256. Always served
    as a download with the sniffed type (never inline, never as HTML)."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    entry = models.ForeignKey(TicketEntry, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="attachments")
    filename = models.CharField(max_length=255)
    declared_type = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.filename


class CannedResponse(models.Model):
    title = models.CharField(max_length=200, unique=True)
    body = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class RoutingRule(models.Model):
    """Conditions -> queue, assignee, priority, tags. Rules run in `position` order on a new
    ticket; every matching rule applies (later ones win on the same field) unless a rule
    says `stop`. `version` counts saves; the audit log keeps each version's changes."""

    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    match_all = models.BooleanField(default=True, help_text="All conditions (else any).")
    # [{"field": "subject", "op": "contains", "value": "printer"}, ...]
    conditions = models.JSONField(default=list)
    set_queue = models.ForeignKey(Queue, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    set_assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    set_priority = models.CharField(max_length=4, choices=Priority.choices, blank=True)
    add_tags = models.JSONField(default=list, blank=True)
    stop = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class NotificationTemplate(models.Model):
    """One version of a client notification; the current one of each kind is sent."""

    kind = models.CharField(max_length=10, choices=NotificationKind.choices)
    version = models.PositiveIntegerField(default=1)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    variables = models.JSONField(default=list, blank=True)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="template_kind_version"),
            models.UniqueConstraint(fields=["kind"], condition=models.Q(is_current=True),
                                    name="template_one_current"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.version}"


class InboundMessage(models.Model):
    """Every message mail-in accepted, kept whole (zlib-compressed) with what it became:
    accepted (the ticket and entry it became), quarantined (could not be processed) or
    ignored (auto-reply, list mail, loop, rate), each with the reason; re-processable.
    `content_hash` (SHA-256 of the message without its trace headers) is unique, so a
    re-sent message is recognised whatever it became. The raw bytes are dropped after
    MAIL_RAW_RETENTION_DAYS (the row and its hash stay). Quarantined and ignored rows belong
    to no tenant (tickets.admin); an accepted message is downloadable by whoever sees its
    ticket."""

    state = models.CharField(max_length=12, choices=InboundState.choices,
                             default=InboundState.QUARANTINED)
    reason = models.TextField()
    raw = models.BinaryField()
    compression = models.CharField(max_length=8, blank=True)  # "" (plain) | "zlib"
    raw_purged_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    size = models.PositiveIntegerField(default=0)
    channel = models.CharField(max_length=10, default="smtp")  # smtp | imap | api
    envelope_from = models.CharField(max_length=998, blank=True)
    envelope_to = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    received_at = models.DateTimeField(default=now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="inbound_messages")
    entry = models.ForeignKey(TicketEntry, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="inbound_messages")

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_state_display()}: {self.subject or self.reason[:60]}"

    def raw_bytes(self) -> bytes:
        """The message as received (b"" once the retention period dropped it)."""
        data = bytes(self.raw or b"")
        if self.compression == "zlib" and data:
            import zlib

            return zlib.decompress(data)
        return data


class OutgoingMail(models.Model):
    """A notification to a client, sent by the outbox handler after commit; the log."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="mails")
    kind = models.CharField(max_length=10, choices=NotificationKind.choices)
    template_version = models.PositiveIntegerField(default=0)
    to = models.EmailField()
    subject = models.CharField(max_length=400)
    body = models.TextField()
    message_id = models.CharField(max_length=998, unique=True)
    in_reply_to = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=MailState.choices,
                             default=MailState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class CsatSurvey(models.Model):
    """A satisfaction survey sent after resolution: a token link, one answer."""

    tenant_path = "client"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)  # 1..5
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(
            condition=models.Q(score__isnull=True) | models.Q(score__gte=1, score__lte=5),
            name="csat_score_range")]

from .sla.models import HolidayCalendar, Holiday, SlaPolicy, SlaClock  # noqa: E402,F401,I001  (SLAs)
from .time.models import WorkType, TimeEntry, Timer  # noqa: E402,F401,I001  (time)
from .billing.models import Contract, BillingRun, BillingLine  # noqa: E402,F401,I001  (billing)
