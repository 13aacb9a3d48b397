"""Tables of passive heartbeats (cron jobs that ping us): the job and its recent pings.
Imported by monitoring/models.py, so they belong to the monitoring app."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from watchkeeper.core.models import Client


class HeartbeatSchedule(models.TextChoices):
    PERIOD = "period", "Every period"
    CRON = "cron", "Cron schedule"


class HeartbeatStatus(models.TextChoices):
    NEW = "new", "Waiting for the first ping"
    UP = "up", "Up"
    STARTED = "started", "Running"
    LATE = "late", "Late"
    DOWN = "down", "Down"
    FAILED = "failed", "Failed"
    PAUSED = "paused", "Paused"


class HeartbeatJob(models.Model):
    """A scheduled job (backup, cron) that calls its own unguessable URL /hb/<uid>.

    `next_due_at` is the deadline (expected time + grace) after which the job is late; the
    sweep finds every job past it with one indexed query and claims each transition with a
    conditional UPDATE on `next_due_at`, so two sweepers never both alert. Alerts go through
    the linked monitoring Check (kind heartbeat)."""

    tenant_path = "client"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    check_template = models.OneToOneField("monitoring.Check", on_delete=models.CASCADE,
                                          related_name="heartbeat")
    device = models.ForeignKey("inventory.Device", on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+")
    name = models.CharField(max_length=200)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    schedule = models.CharField(max_length=10, choices=HeartbeatSchedule.choices,
                                default=HeartbeatSchedule.PERIOD)
    period_seconds = models.PositiveIntegerField(default=86400)
    cron = models.CharField(max_length=100, blank=True)
    tz = models.CharField(max_length=64, default="UTC")
    grace_seconds = models.PositiveIntegerField(default=3600)
    status = models.CharField(max_length=10, choices=HeartbeatStatus.choices,
                              default=HeartbeatStatus.NEW)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_start_at = models.DateTimeField(null=True, blank=True)
    last_fail_at = models.DateTimeField(null=True, blank=True)
    # When the next call is expected (the job is late after it, down after it + grace).
    expected_at = models.DateTimeField(null=True, blank=True)
    # The next time the sweep must look at this job (a deadline, or "now" after a call).
    next_due_at = models.DateTimeField(null=True, blank=True)
    # A call the sweep has not applied yet (success, start, fail); set by the ping UPDATE.
    pending = models.CharField(max_length=10, blank=True)
    pings = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["next_due_at"], name="heartbeat_due_idx",
                                condition=Q(next_due_at__isnull=False))]

    def __str__(self) -> str:
        return self.name


class HeartbeatPing(models.Model):
    """One call of a heartbeat URL (the last N per job are kept)."""

    tenant_path = "job__client"

    class Kind(models.TextChoices):
        SUCCESS = "success", "Success"
        START = "start", "Start"
        FAIL = "fail", "Failure"

    job = models.ForeignKey(HeartbeatJob, on_delete=models.CASCADE, related_name="ping_log")
    at = models.DateTimeField(default=now)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    body = models.CharField(max_length=1000, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["job", "at"], name="heartbeatping_job_idx")]
