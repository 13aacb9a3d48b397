"""Tables of the SLAs: holiday calendars, versioned SLA policies, and one clock per ticket and
metric with its stored due instants (found by the sweeps in helpdesk/sla/actions.py).

Imported by helpdesk/models.py so Django sees them as models of the helpdesk app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from watchkeeper.core.models import Client

from .choices import ClockState, Metric


class HolidayCalendar(models.Model):
    """A named list of holidays shared by several clients (e.g. "England bank holidays")."""

    name = models.CharField(max_length=200, unique=True)
    clients = models.ManyToManyField(Client, blank=True, related_name="holiday_calendars")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    """A local date with no business hours: of one client, or of a shared calendar."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="holidays")
    calendar = models.ForeignKey(HolidayCalendar, on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(client__isnull=False, calendar__isnull=True)
                           | Q(client__isnull=True, calendar__isnull=False)),
                name="holiday_client_xor_calendar"),
            models.UniqueConstraint(fields=["client", "date"], name="holiday_client_date",
                                    condition=Q(client__isnull=False)),
            models.UniqueConstraint(fields=["calendar", "date"], name="holiday_calendar_date",
                                    condition=Q(calendar__isnull=False)),
        ]
        indexes = [models.Index(fields=["client", "date"], name="holiday_client_idx")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaPolicy(models.Model):
    """One version of an SLA policy: first-response and resolution targets per priority, in
    business minutes on the client's calendar.

    A policy applies to one contract, to one client, or (neither) to every client as the
    default; the most specific current one wins. Editing writes a new version, so a ticket's
    clocks keep naming the version they were computed with. `scope` groups the versions.
    """

    tenant_path = "client"

    scope = models.CharField(max_length=40, editable=False)  # default | client:<id> | contract:<id>
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    name = models.CharField(max_length=200)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="sla_policies")
    contract = models.ForeignKey("helpdesk.Contract", on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="sla_policies")
    # {"p1": {"first_response": 30, "resolution": 240}, ...} in business minutes.
    targets = models.JSONField(default=dict)
    warning_percent = models.PositiveSmallIntegerField(
        default=75, help_text="Warn when this share of a target has elapsed.")
    escalate_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+",
                                    help_text="Assigned a breached ticket and notified.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["scope", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "version"], name="slapolicy_scope_version"),
            models.UniqueConstraint(fields=["scope"], condition=Q(is_current=True),
                                    name="slapolicy_one_current"),
            models.CheckConstraint(condition=Q(warning_percent__gte=1, warning_percent__lte=99),
                                   name="slapolicy_warning_range"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    def target_minutes(self, priority: str, metric: str) -> int | None:
        value = (self.targets or {}).get(priority, {}).get(metric)
        return int(value) if value else None


class SlaClock(models.Model):
    """The SLA clock of one ticket for one metric (first response or resolution).

    Derived from the ticket and its status history by sla.recompute_ticket(); the stored
    `due_at` / `warning_at` let one indexed sweep find every clock that is due, and
    `breached_at` / `warned_at` are claimed with a conditional UPDATE so each warning and
    breach is announced exactly once, however many sweeps run."""

    tenant_path = "ticket__client"

    ticket = models.ForeignKey("helpdesk.Ticket", on_delete=models.CASCADE,
                               related_name="sla_clocks")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, related_name="clocks")
    priority = models.CharField(max_length=4)
    target_seconds = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=ClockState.choices,
                             default=ClockState.RUNNING)
    # Business seconds counted so far (up to the last recompute, or until met).
    elapsed_seconds = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)  # null while paused
    warning_at = models.DateTimeField(null=True, blank=True)
    met_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    breach_reason = models.TextField(blank=True)
    breach_reason_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                         null=True, blank=True, related_name="+")
    breach_reason_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["ticket", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "metric"], name="slaclock_ticket_metric"),
        ]
        indexes = [
            # The sweeps: clocks past due not yet breached, and past warning not yet warned.
            models.Index(fields=["due_at"], condition=Q(breached_at__isnull=True),
                         name="slaclock_due_idx"),
            models.Index(fields=["warning_at"], condition=Q(warned_at__isnull=True),
                         name="slaclock_warning_idx"),
            models.Index(fields=["breached_at"], name="slaclock_breached_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} of ticket {self.ticket_id}"
