"""Metric rollups (5 min and 1 h), their retention, and the range query charts use.

`run_rollups()` (a scheduler job every 5 minutes) turns raw samples (agents' MetricSample)
into 5-minute buckets and 5-minute buckets into hourly ones, each with one set-based
`INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE` per span: rerunning a bucket
recomputes it from its source (idempotent), so the last REROLL of buckets is rolled again
on every run to take in samples that arrived late (agent spool replays). A cursor row per
resolution, advanced by compare-and-set in the same transaction as the INSERT, keeps two
schedulers from rolling the same span at once.

Retention: raw samples are pruned by the agents app (WATCHKEEPER_METRIC_RETENTION_DAYS);
5-minute rollups after WATCHKEEPER_METRIC_ROLLUP_5M_DAYS, hourly after
WATCHKEEPER_METRIC_ROLLUP_1H_DAYS.

`series()` answers a chart's range with the right resolution: raw for spans up to
RAW_SPAN, 5-minute rollups up to FIVE_MIN_SPAN, hourly beyond (and never a resolution
whose retention no longer covers the start of the range).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from watchkeeper.agents.models import MetricName, MetricSample

from .models_poller import MetricRollup, RollupCursor

FIVE_MIN, HOUR = 300, 3600
RESOLUTIONS = (FIVE_MIN, HOUR)
REROLL = timedelta(minutes=30)   # recompute this much before the cursor on every run
SETTLE = timedelta(seconds=60)   # a bucket is rolled once it ended this long ago
MAX_SPAN = timedelta(days=2)     # at most this much new time per run (catch-up in steps)
RAW_SPAN = timedelta(hours=6)
FIVE_MIN_SPAN = timedelta(days=7)


def floor_time(at: datetime, resolution: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % resolution, tz=UTC)


def _bucket_sql(column: str, resolution: int) -> str:
    if connection.vendor == "postgresql":
        return f"to_timestamp(floor(extract(epoch from {column}) / {resolution}) * {resolution})"
    if connection.vendor == "sqlite":
        return (f"datetime((CAST(strftime('%%s', {column}) AS INTEGER) / {resolution}) "
                f"* {resolution}, 'unixepoch')")
    raise NotImplementedError(f"rollups on {connection.vendor}")


def _param(at: datetime):
    return connection.ops.adapt_datetimefield_value(at)


def _upsert(select_sql: str, params: list) -> int:
    rollups = connection.ops.quote_name(MetricRollup._meta.db_table)
    sql = (f"INSERT INTO {rollups} (resolution, device_id, metric_id, bucket, count, total, "  # noqa: S608 - names from models, values bound
           f"minimum, maximum) {select_sql} "
           "ON CONFLICT (resolution, device_id, metric_id, bucket) DO UPDATE SET "
           "count = excluded.count, total = excluded.total, minimum = excluded.minimum, "
           "maximum = excluded.maximum")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def roll_span(resolution: int, start: datetime, end: datetime) -> int:
    """Recompute every bucket of `resolution` in [start, end) from its source: raw samples
    for 5 minutes, 5-minute rollups for hours. Returns the rows written."""
    if resolution == FIVE_MIN:
        raw = connection.ops.quote_name(MetricSample._meta.db_table)
        select = (f"SELECT {FIVE_MIN}, device_id, metric_id, {_bucket_sql('ts', FIVE_MIN)}, "  # noqa: S608
                  f"COUNT(*), SUM(value), MIN(value), MAX(value) FROM {raw} "
                  "WHERE ts >= %s AND ts < %s GROUP BY 1, 2, 3, 4")
        return _upsert(select, [_param(start), _param(end)])
    if resolution == HOUR:
        table = connection.ops.quote_name(MetricRollup._meta.db_table)
        select = (f"SELECT {HOUR}, device_id, metric_id, {_bucket_sql('bucket', HOUR)}, "  # noqa: S608
                  f"SUM(count), SUM(total), MIN(minimum), MAX(maximum) FROM {table} "
                  f"WHERE resolution = {FIVE_MIN} AND bucket >= %s AND bucket < %s "
                  "GROUP BY 1, 2, 3, 4")
        return _upsert(select, [_param(start), _param(end)])
    raise ValueError(f"unknown resolution {resolution}")


def _first_position(resolution: int, now: datetime) -> datetime:
    if resolution == FIVE_MIN:
        first = MetricSample.objects.aggregate(first=Min("ts"))["first"]
    else:
        first = MetricRollup.objects.filter(resolution=FIVE_MIN).aggregate(
            first=Min("bucket"))["first"]
    return floor_time(first or now, resolution)


def _roll(resolution: int, limit: datetime, now: datetime) -> int:
    """Advance one resolution's cursor up to `limit` (a bucket boundary) and roll."""
    cursor = RollupCursor.objects.filter(resolution=resolution).first()
    if cursor is None:
        RollupCursor.objects.get_or_create(
            resolution=resolution, defaults={"position": _first_position(resolution, now)})
        cursor = RollupCursor.objects.get(resolution=resolution)
    old = cursor.position
    new = min(limit, old + MAX_SPAN)
    new = max(floor_time(new, resolution), old)
    start = floor_time(old - REROLL, resolution) if resolution == FIVE_MIN else \
        floor_time(old - timedelta(hours=1), resolution)
    if new <= start:
        return 0
    with transaction.atomic():
        if not RollupCursor.objects.filter(resolution=resolution, position=old).update(
                position=new):
            return 0  # another scheduler is rolling this resolution
        return roll_span(resolution, start, new)


def run_rollups(now: datetime | None = None) -> dict[str, int]:
    """The periodic job: roll every complete 5-minute bucket, then every complete hour."""
    now = now or timezone.now()
    five = _roll(FIVE_MIN, floor_time(now - SETTLE, FIVE_MIN), now)
    rolled_to = RollupCursor.objects.filter(resolution=FIVE_MIN).values_list(
        "position", flat=True).first() or now
    hour = _roll(HOUR, floor_time(rolled_to, HOUR), now)
    return {"rollup_5m": five, "rollup_1h": hour}


def enforce_retention(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    five = MetricRollup.objects.filter(
        resolution=FIVE_MIN,
        bucket__lt=now - timedelta(days=settings.METRIC_ROLLUP_5M_DAYS))._raw_delete(
        MetricRollup.objects.db)
    hour = MetricRollup.objects.filter(
        resolution=HOUR,
        bucket__lt=now - timedelta(days=settings.METRIC_ROLLUP_1H_DAYS))._raw_delete(
        MetricRollup.objects.db)
    return {"rollups_5m_pruned": five, "rollups_1h_pruned": hour}


# --- Range queries for charts ------------------------------------------------------------

@dataclass
class Point:
    ts: datetime
    avg: float
    min: float
    max: float
    count: int


def pick_resolution(since: datetime, until: datetime, now: datetime | None = None) -> int:
    """0 (raw), 300 or 3600 for a chart of [since, until], respecting retention."""
    now = now or timezone.now()
    span = until - since
    age = now - since
    if span <= RAW_SPAN and age <= timedelta(days=settings.METRIC_RETENTION_DAYS):
        return 0
    if span <= FIVE_MIN_SPAN and age <= timedelta(days=settings.METRIC_ROLLUP_5M_DAYS):
        return FIVE_MIN
    return HOUR


def series(device_id: int, metric: str, since: datetime, until: datetime | None = None,
           resolution: int | None = None) -> tuple[int, list[Point]]:
    """(resolution used, points oldest first) of one metric of one device."""
    until = until or timezone.now()
    if resolution is None:
        resolution = pick_resolution(since, until)
    metric_id = MetricName.objects.filter(name=metric).values_list("id", flat=True).first()
    if metric_id is None:
        return resolution, []
    if resolution == 0:
        rows = (MetricSample.objects.filter(device_id=device_id, metric_id=metric_id,
                                            ts__gte=since, ts__lte=until)
                .order_by("ts").values_list("ts", "value"))
        return 0, [Point(ts, v, v, v, 1) for ts, v in rows]
    rows = (MetricRollup.objects.filter(resolution=resolution, device_id=device_id,
                                        metric_id=metric_id,
                                        bucket__gte=floor_time(since, resolution),
                                        bucket__lte=until)
            .order_by("bucket").values_list("bucket", "count", "total", "minimum", "maximum"))
    return resolution, [Point(b, t / c if c else 0.0, lo, hi, c) for b, c, t, lo, hi in rows]
