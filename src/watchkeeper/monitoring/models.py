"""Monitoring tables.

A `Policy` groups `Check` templates; a `PolicyAssignment` applies it globally, to a client,
a site, a device group or a device, and a `CheckOverride` changes one check at one level.
What a device really runs is computed from those rows (policies.effective_checks).

`CheckState` is the state machine of one (check, device) pair: the hot row written by
every result. `Alert` is one problem: at most one open alert per condition key (a partial
unique constraint), repeats counted on it with a single UPDATE.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from watchkeeper.core.models import Client, Site

from .choices import (
    AlertStatus,
    CheckKind,
    Scope,
    State,
    Suppression,
)


class DeviceGroup(models.Model):
    """A named set of a client's devices that policies can be assigned to."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    devices = models.ManyToManyField("inventory.Device", related_name="monitoring_groups",
                                     blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["client", "name"],
                                               name="devicegroup_unique_name")]

    def __str__(self) -> str:
        return self.name


class Policy(models.Model):
    """A versioned set of check templates. No client: an MSP-wide policy (global roles)."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    # Alert -> ticket: the severities whose alerts open a ticket (["critical"]; empty:
    # none), and whether the ticket is resolved when the alert recovers.
    ticket_severities = models.JSONField(default=list, blank=True)
    ticket_resolve_on_recovery = models.BooleanField(default=True)
    # Escalation: unacknowledged for this many minutes -> alert.escalated (empty: never).
    escalate_after_minutes = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name


class PolicyVersion(models.Model):
    """A frozen copy of a policy and its checks at one version, with the names it
    references (check kinds, metrics, services, scripts), so a rename is one query."""

    tenant_path = "policy__client"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField(default=dict)
    references = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["policy", "-version"]
        constraints = [models.UniqueConstraint(fields=["policy", "version"],
                                               name="policyversion_unique")]


class Check(models.Model):
    """One check template of a policy: kind, its configuration (thresholds, target) and how
    many consecutive readings it takes to change state.

    Server-side kinds run once per check against `config["target"]` (or the primary IP of
    `device`), scheduled by `next_run_at`; agent-side kinds run on every device the policy
    applies to."""

    tenant_path = "policy__client"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CheckKind.choices)
    config = models.JSONField(default=dict, blank=True)
    interval_seconds = models.PositiveIntegerField(default=60)
    fail_after = models.PositiveSmallIntegerField(default=1)
    recover_after = models.PositiveSmallIntegerField(default=1)
    is_enabled = models.BooleanField(default=True)
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+")
    # Server-side checks: when the poller runs this next (swept by one indexed query,
    # claimed by a conditional UPDATE).
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["policy", "name", "id"]
        constraints = [models.UniqueConstraint(fields=["policy", "name"],
                                               name="check_unique_name")]
        indexes = [models.Index(fields=["next_run_at"], name="check_next_run_idx",
                                condition=Q(next_run_at__isnull=False))]

    def __str__(self) -> str:
        return self.name


class PolicyAssignment(models.Model):
    """A policy applied at one level. `client` is set for every level but global, so the
    row is scoped like its target."""

    tenant_path = "client"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="assignments")
    scope = models.CharField(max_length=10, choices=Scope.choices)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="assignments")
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["policy", "scope", "id"]
        constraints = [models.UniqueConstraint(
            fields=["policy", "scope", "client", "site", "group", "device"],
            name="assignment_unique")]


class CheckOverride(models.Model):
    """A per-level change to one inherited check: disable it or replace config keys."""

    tenant_path = "client"

    check_template = models.ForeignKey(Check, on_delete=models.CASCADE,
                                       related_name="overrides")
    scope = models.CharField(max_length=10, choices=Scope.choices)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="+")
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+")
    is_enabled = models.BooleanField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["check_template", "scope", "client", "site", "group", "device"],
            name="override_unique")]


class CheckState(models.Model):
    """The state machine of one check on one device (device empty: a check of its own
    target). Written in bulk by alerts.record_results."""

    tenant_path = "client"

    check_template = models.ForeignKey(Check, on_delete=models.CASCADE,
                                       related_name="states")
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+", db_constraint=False)
    # device_id or 0: a unique key that also works for checks with no device.
    device_key = models.BigIntegerField(default=0)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    pending_state = models.CharField(max_length=10, blank=True)
    pending_count = models.PositiveIntegerField(default=0)
    value = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    output = models.TextField(blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    # Times of recent state changes (flap detection), newest last.
    recent_changes = models.JSONField(default=list, blank=True)
    is_flapping = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["check_template", "device_key"],
                                               name="checkstate_unique")]
        indexes = [models.Index(fields=["device", "state"], name="checkstate_device_idx")]


class Alert(models.Model):
    """One problem of one condition. `key` names the condition ("c12:d34"); the partial
    unique constraint allows one unresolved alert per key, and a repeat is one UPDATE
    of `count`."""

    tenant_path = "client"

    key = models.CharField(max_length=100)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+", db_constraint=False)
    check_template = models.ForeignKey(Check, on_delete=models.SET_NULL, null=True,
                                       blank=True, related_name="alerts")
    check_name = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=State.choices)
    status = models.CharField(max_length=15, choices=AlertStatus.choices,
                              default=AlertStatus.OPEN)
    summary = models.CharField(max_length=500, blank=True)
    count = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(default=now)
    last_seen_at = models.DateTimeField(default=now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                        null=True, blank=True, related_name="+")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    suppressed = models.CharField(max_length=15, choices=Suppression.choices, blank=True)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="children")
    is_flapping = models.BooleanField(default=False)
    # Escalation sweep: unacknowledged past this -> alert.escalated (then cleared).
    escalate_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Alerts posted by another tool (ingest/): the source, what it is about, its labels.
    source = models.ForeignKey("monitoring.IngestSource", on_delete=models.SET_NULL,
                               null=True, blank=True, related_name="+")
    resource = models.CharField(max_length=200, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [models.UniqueConstraint(
            fields=["key"], condition=~Q(status="resolved"), name="alert_one_open_per_key")]
        indexes = [
            models.Index(fields=["status", "severity", "-opened_at"], name="alert_console_idx"),
            models.Index(fields=["client", "status"], name="alert_client_idx"),
            models.Index(fields=["device", "status"], name="alert_device_idx"),
            models.Index(fields=["escalate_at"], name="alert_escalate_idx",
                         condition=Q(escalate_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.summary}"[:200]

    @property
    def is_open(self) -> bool:
        return self.status != AlertStatus.RESOLVED


class MaintenanceWindow(models.Model):
    """A time when notifications for a client, a site or a device are suppressed (alerts
    are still recorded). Recurring with an RFC 5545 RRULE starting at `starts_at`."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, null=True,
                               blank=True, related_name="+")
    name = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField()
    rrule = models.CharField(max_length=500, blank=True,
                             help_text="e.g. FREQ=WEEKLY;BYDAY=SU (empty: once)")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["client", "starts_at"], name="maint_client_idx")]

    def __str__(self) -> str:
        return self.name




class EvalCursor(models.Model):
    """How far the agent-side evaluation has read the metric samples (one row per name),
    advanced by a compare-and-set so two evaluators never take the same slice."""

    name = models.CharField(max_length=50, unique=True)
    position = models.DateTimeField()


# The poller side's tables (network check history, heartbeats, metric rollups).
from .channels.models import Notification, NotificationAttempt, NotificationChannel  # noqa: E402,F401,I001  (channels)
from .heartbeats.models import HeartbeatJob, HeartbeatPing  # noqa: E402,F401,I001  (heartbeats)
from .history.models import CheckRollup, MetricRollup, PollSample, PollTransition, RollupCursor  # noqa: E402,F401,I001,E501  (history)
from .ingest.models import IngestSource  # noqa: E402,F401,I001  (ingest)
