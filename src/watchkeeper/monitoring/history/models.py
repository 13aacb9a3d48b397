"""Tables of check and metric history: network check runs (PollSample) and their state
transitions (PollTransition), 5-minute and hourly rollups of metrics and check runs, and the
cursor the rollup job advances. Imported by monitoring/models.py, so they belong to the
monitoring app."""

from __future__ import annotations

from django.db import models

from watchkeeper.core.models import Client


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
