"""Tables of the poller side of monitoring: network check history (raw runs, rollups, state
transitions), passive heartbeats, metric rollups. Imported by models.py, so they belong to
the monitoring app."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from watchkeeper.core.models import Client


class PollSample(models.Model):
    """One run of a server-side check (the "last runs" list and short-range charts). Kept
    briefly (WATCHKEEPER_POLL_SAMPLE_DAYS): longer ranges read CheckRollup, and state
    changes are kept in PollTransition."""

    tenant_path = "client"

    check_template = models.ForeignKey("monitoring.Check", on_delete=models.CASCADE,
                                       related_name="poll_samples")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    ts = models.DateTimeField()
    state = models.CharField(max_length=10)
    value = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-ts", "-id"]
        indexes = [models.Index(fields=["check_template", "ts"], name="pollsample_check_idx"),
                   models.Index(fields=["ts"], name="pollsample_ts_idx")]


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


class MetricRollup(models.Model):
    """Aggregates of raw metric samples per bucket: `resolution` is 300 (5 min) or 3600
    (1 h) seconds. Unique per (resolution, device, metric, bucket); a rerun of a bucket
    overwrites it (idempotent)."""

    tenant_path = "device__client"

    resolution = models.PositiveIntegerField()
    device = models.ForeignKey("inventory.Device", on_delete=models.CASCADE, related_name="+",
                               db_constraint=False)
    metric = models.ForeignKey("agents.MetricName", on_delete=models.CASCADE,
                               related_name="+", db_constraint=False)
    bucket = models.DateTimeField()
    count = models.PositiveIntegerField()
    total = models.FloatField()
    minimum = models.FloatField()
    maximum = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["resolution", "device", "metric", "bucket"], name="rollup_unique")]
        indexes = [models.Index(fields=["resolution", "bucket"], name="rollup_bucket_idx")]

    @property
    def average(self) -> float:
        return self.total / self.count if self.count else 0.0


class CheckRollup(models.Model):
    """Aggregates of a server-side check's runs per bucket: `resolution` is 300 (5 min) or
    3600 (1 h) seconds. `runs` and the runs per state (availability); `count`, `total`,
    `minimum`, `maximum` over the runs that had a value (a failed connect has none).
    Unique per (resolution, check, bucket); a rerun of a bucket overwrites it."""

    tenant_path = "client"

    resolution = models.PositiveIntegerField()
    check_template = models.ForeignKey("monitoring.Check", on_delete=models.CASCADE,
                                       related_name="+", db_constraint=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+", db_constraint=False)
    bucket = models.DateTimeField()
    runs = models.PositiveIntegerField()
    ok = models.PositiveIntegerField(default=0)
    warning = models.PositiveIntegerField(default=0)
    critical = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    count = models.PositiveIntegerField(default=0)
    total = models.FloatField(null=True, blank=True)
    minimum = models.FloatField(null=True, blank=True)
    maximum = models.FloatField(null=True, blank=True)

    class Meta:
        # Check first: it serves a check's chart and the delete of a check's rows.
        constraints = [models.UniqueConstraint(
            fields=["check_template", "resolution", "bucket"], name="checkrollup_unique")]
        indexes = [models.Index(fields=["resolution", "bucket"],
                                name="checkrollup_bucket_idx")]

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.count else None


class PollTransition(models.Model):
    """A run of a server-side check whose state differs from the run before it (`previous`
    empty: the first run known). Derived from PollSample by the rollup job and kept for
    WATCHKEEPER_POLL_TRANSITION_DAYS, long after the runs themselves are pruned."""

    tenant_path = "client"

    check_template = models.ForeignKey("monitoring.Check", on_delete=models.CASCADE,
                                       related_name="poll_transitions", db_constraint=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+", db_constraint=False)
    ts = models.DateTimeField()
    state = models.CharField(max_length=10)
    previous = models.CharField(max_length=10, blank=True)
    value = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-ts", "-id"]
        constraints = [models.UniqueConstraint(fields=["check_template", "ts"],
                                               name="polltransition_unique")]
        indexes = [models.Index(fields=["ts"], name="polltransition_ts_idx")]


class RollupCursor(models.Model):
    """Up to where each stream ("metrics": agents' samples, "poll": server-side check runs)
    has been rolled up per resolution (a compare-and-set keeps two schedulers from rolling
    the same span at once)."""

    stream = models.CharField(max_length=20, default="metrics")
    resolution = models.PositiveIntegerField()
    position = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "resolution"],
                                               name="rollupcursor_unique")]
