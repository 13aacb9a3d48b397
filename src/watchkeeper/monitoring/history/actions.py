"""Rollups (5 min and 1 h) of two streams, their retention, and the range queries charts use.

Streams: "metrics" (agents' MetricSample -> MetricRollup per device and metric) and "poll"
(the server-side checks' PollSample runs -> CheckRollup per check, plus PollTransition:
the runs whose state differs from the run before). One mechanism serves both:

`run_rollups()` (a scheduler job every 5 minutes) turns raw rows into 5-minute buckets and
5-minute buckets into hourly ones, each with one set-based
`INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE` per span: rerunning a bucket
recomputes it from its source (idempotent), so the last REROLL of buckets is rolled again
on every run to take in rows that arrived late (agent spool replays; a poller flushing
after the database was away). A cursor row per (stream, resolution), advanced by
compare-and-set in the same transaction as the INSERT, keeps two schedulers from rolling
the same span at once. Poll transitions of the rerolled span are deleted and derived again
(a window function, LAG over each check's runs) in that same transaction.

Retention: raw agent samples are pruned by the agents app (WATCHKEEPER_METRIC_RETENTION_DAYS);
metric rollups after WATCHKEEPER_METRIC_ROLLUP_5M_DAYS / _1H_DAYS; check runs after
WATCHKEEPER_POLL_SAMPLE_DAYS, check rollups after WATCHKEEPER_POLL_ROLLUP_5M_DAYS / _1H_DAYS,
transitions after WATCHKEEPER_POLL_TRANSITION_DAYS. Every prune deletes in bounded chunks
of the time index (`prune_chunked`), and never deletes a poll row its rollup has not taken
in yet.

`series()` (a device's metric) and `check_series()` (a check's values and states) answer a
chart's range with the right resolution: raw for spans up to RAW_SPAN, 5-minute rollups up
to FIVE_MIN_SPAN, hourly beyond (and never a resolution whose retention no longer covers
the start of the range).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from watchkeeper.agents.selectors import all_metric_names, all_metric_samples

from .models import CheckRollup, MetricRollup, PollSample, PollTransition, RollupCursor

FIVE_MIN, HOUR = 300, 3600
RESOLUTIONS = (FIVE_MIN, HOUR)
REROLL = timedelta(minutes=30)   # metrics: recompute this much before the cursor every run
POLL_REROLL = timedelta(minutes=10)  # poll: the poller writes within seconds, not hours
SETTLE = timedelta(seconds=60)   # a bucket is rolled once it ended this long ago
MAX_SPAN = timedelta(days=2)     # at most this much new time per run (catch-up in steps)
RAW_SPAN = timedelta(hours=6)
FIVE_MIN_SPAN = timedelta(days=7)
PRUNE_CHUNK = 10_000             # rows per DELETE statement (each its own short transaction)
STATES = ("ok", "warning", "critical")  # anything else counts as unknown


def floor_time(at: datetime, resolution: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % resolution, tz=UTC)


def _bucket_sql(column: str, resolution: int) -> str:
    if connection.vendor == "postgresql":
        return f"to_timestamp(floor(extract(epoch from {column}) / {resolution}) * {resolution})"
    if connection.vendor == "sqlite":
        # Whole seconds first: strftime rounds fractions to milliseconds, which put a row at
        # hh:04:59.9999 into the next bucket.
        return (f"datetime((CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER) "
                f"/ {resolution}) * {resolution}, 'unixepoch')")
    raise NotImplementedError(f"rollups on {connection.vendor}")


def _param(at: datetime):
    return connection.ops.adapt_datetimefield_value(at)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _upsert(model, columns: list[str], key: list[str], select_sql: str, params: list) -> int:
    """INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE every other column."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    sql = (f"INSERT INTO {_table(model)} ({', '.join(columns)}) {select_sql} "  # noqa: S608 - names from models, values bound
           f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- The metrics stream (agents' samples) -------------------------------------------------

_METRIC_COLUMNS = ["resolution", "device_id", "metric_id", "bucket", "count", "total",
                   "minimum", "maximum"]
_METRIC_KEY = ["resolution", "device_id", "metric_id", "bucket"]


def roll_span(resolution: int, start: datetime, end: datetime) -> int:
    """Recompute every metric bucket of `resolution` in [start, end) from its source: raw
    samples for 5 minutes, 5-minute rollups for hours. Returns the rows written."""
    if resolution == FIVE_MIN:
        select = (f"SELECT {FIVE_MIN}, device_id, metric_id, {_bucket_sql('ts', FIVE_MIN)}, "  # noqa: S608
                  f"COUNT(*), SUM(value), MIN(value), MAX(value) "
                  f"FROM {_table(all_metric_samples().model)} "
                  "WHERE ts >= %s AND ts < %s GROUP BY 1, 2, 3, 4")
    elif resolution == HOUR:
        select = (f"SELECT {HOUR}, device_id, metric_id, {_bucket_sql('bucket', HOUR)}, "  # noqa: S608
                  f"SUM(count), SUM(total), MIN(minimum), MAX(maximum) "
                  f"FROM {_table(MetricRollup)} "
                  f"WHERE resolution = {FIVE_MIN} AND bucket >= %s AND bucket < %s "
                  "GROUP BY 1, 2, 3, 4")
    else:
        raise ValueError(f"unknown resolution {resolution}")
    return _upsert(MetricRollup, _METRIC_COLUMNS, _METRIC_KEY, select,
                   [_param(start), _param(end)])


def _metric_first(resolution: int) -> datetime | None:
    if resolution == FIVE_MIN:
        return all_metric_samples().aggregate(first=Min("ts"))["first"]
    return MetricRollup.objects.filter(resolution=FIVE_MIN).aggregate(
        first=Min("bucket"))["first"]


# --- The poll stream (server-side check runs) ---------------------------------------------

_CHECK_COLUMNS = ["resolution", "check_template_id", "client_id", "bucket", "runs", "ok",
                  "warning", "critical", "unknown", "count", "total", "minimum", "maximum"]
_CHECK_KEY = ["resolution", "check_template_id", "bucket"]


def _state_sums(source: str) -> str:
    if source == "raw":
        known = ", ".join(f"'{s}'" for s in STATES)
        return (", ".join(f"SUM(CASE WHEN state = '{s}' THEN 1 ELSE 0 END)" for s in STATES)
                + f", SUM(CASE WHEN state IN ({known}) THEN 0 ELSE 1 END)")
    return ", ".join(f"SUM({s})" for s in (*STATES, "unknown"))


def roll_poll_span(resolution: int, start: datetime, end: datetime) -> int:
    """Recompute every check bucket of `resolution` in [start, end) (runs per state and
    count/sum/min/max of the values) and, for 5 minutes, the span's state transitions.
    Returns the rows written."""
    params = [_param(start), _param(end)]
    if resolution == FIVE_MIN:
        select = (f"SELECT {FIVE_MIN}, check_template_id, MAX(client_id), "  # noqa: S608
                  f"{_bucket_sql('ts', FIVE_MIN)}, COUNT(*), {_state_sums('raw')}, "
                  f"COUNT(value), SUM(value), MIN(value), MAX(value) "
                  f"FROM {_table(PollSample)} WHERE ts >= %s AND ts < %s GROUP BY 2, 4")
        written = _upsert(CheckRollup, _CHECK_COLUMNS, _CHECK_KEY, select, params)
        return written + roll_transitions(start, end)
    if resolution == HOUR:
        select = (f"SELECT {HOUR}, check_template_id, MAX(client_id), "  # noqa: S608
                  f"{_bucket_sql('bucket', HOUR)}, SUM(runs), {_state_sums('rollup')}, "
                  f"SUM(count), SUM(total), MIN(minimum), MAX(maximum) "
                  f"FROM {_table(CheckRollup)} WHERE resolution = {FIVE_MIN} "
                  "AND bucket >= %s AND bucket < %s GROUP BY 2, 4")
        return _upsert(CheckRollup, _CHECK_COLUMNS, _CHECK_KEY, select, params)
    raise ValueError(f"unknown resolution {resolution}")


def roll_transitions(start: datetime, end: datetime) -> int:
    """Derive again the transitions of the runs in [start, end): a run is one when its state
    differs from the check's run before it (LAG over the span; for a check's first run in
    the span, its last earlier run, else its last recorded transition; none: the first run
    known, `previous` empty). Idempotent: the span's old transitions are replaced."""
    samples, transitions = _table(PollSample), _table(PollTransition)
    PollTransition.objects.filter(ts__gte=start, ts__lt=end)._raw_delete(
        PollTransition.objects.db)
    sql = (f"INSERT INTO {transitions} (check_template_id, client_id, ts, state, previous, "  # noqa: S608
           "value, message) "
           "SELECT check_template_id, client_id, ts, state, COALESCE(prev, ''), value, "
           "message FROM (SELECT w.check_template_id, w.client_id, w.ts, w.state, w.value, "
           "w.message, CASE WHEN w.lag_state IS NOT NULL THEN w.lag_state ELSE COALESCE("
           f"(SELECT p2.state FROM {samples} p2 "
           "WHERE p2.check_template_id = w.check_template_id AND p2.ts < %s "
           "ORDER BY p2.ts DESC, p2.id DESC LIMIT 1), "
           f"(SELECT t.state FROM {transitions} t "
           "WHERE t.check_template_id = w.check_template_id AND t.ts < %s "
           "ORDER BY t.ts DESC LIMIT 1)) END AS prev "
           "FROM (SELECT check_template_id, client_id, ts, state, value, message, "
           "LAG(state) OVER (PARTITION BY check_template_id ORDER BY ts, id) AS lag_state "
           f"FROM {samples} WHERE ts >= %s AND ts < %s) w) x "
           "WHERE prev IS NULL OR prev <> state "
           "ON CONFLICT (check_template_id, ts) DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, [_param(start), _param(start), _param(start), _param(end)])
        return cursor.rowcount


def _poll_first(resolution: int) -> datetime | None:
    if resolution == FIVE_MIN:
        return PollSample.objects.aggregate(first=Min("ts"))["first"]
    return CheckRollup.objects.filter(resolution=FIVE_MIN).aggregate(
        first=Min("bucket"))["first"]


# --- The mechanism both streams share -----------------------------------------------------

@dataclass(frozen=True)
class Stream:
    name: str                                          # the cursor rows' key
    reroll: timedelta                                  # 5-minute buckets recomputed per run
    roll: Callable[[int, datetime, datetime], int]     # (resolution, start, end) -> rows
    first: Callable[[int], datetime | None]            # the oldest source row's time


METRICS = Stream("metrics", REROLL, roll_span, _metric_first)
POLL = Stream("poll", POLL_REROLL, roll_poll_span, _poll_first)
STREAMS = (METRICS, POLL)


def rolled_to(stream: Stream, resolution: int) -> datetime | None:
    """Where the stream's cursor of `resolution` stands (None: nothing rolled yet)."""
    return RollupCursor.objects.filter(stream=stream.name, resolution=resolution).values_list(
        "position", flat=True).first()


def _roll(stream: Stream, resolution: int, limit: datetime) -> int:
    """Advance one cursor up to `limit` (a bucket boundary) and roll the span."""
    old = rolled_to(stream, resolution)
    if old is None:
        first = stream.first(resolution)
        if first is None:
            return 0  # nothing to roll yet: the cursor starts at the first row
        RollupCursor.objects.get_or_create(
            stream=stream.name, resolution=resolution,
            defaults={"position": floor_time(first, resolution)})
        old = rolled_to(stream, resolution)
    new = min(limit, old + MAX_SPAN)
    new = max(floor_time(new, resolution), old)
    back = stream.reroll if resolution == FIVE_MIN else timedelta(hours=1)
    start = floor_time(old - back, resolution)
    if new <= start:
        return 0
    with transaction.atomic():
        if not RollupCursor.objects.filter(stream=stream.name, resolution=resolution,
                                           position=old).update(position=new):
            return 0  # another scheduler is rolling this resolution
        return stream.roll(resolution, start, new)


def run_rollups(now: datetime | None = None) -> dict[str, int]:
    """The periodic job: per stream, roll every complete 5-minute bucket, then every
    complete hour."""
    now = now or timezone.now()
    counters = {}
    for stream in STREAMS:
        prefix = "" if stream is METRICS else f"{stream.name}_"
        counters[f"{prefix}rollup_5m"] = _roll(stream, FIVE_MIN,
                                               floor_time(now - SETTLE, FIVE_MIN))
        five = rolled_to(stream, FIVE_MIN)
        counters[f"{prefix}rollup_1h"] = _roll(stream, HOUR, floor_time(five, HOUR)) \
            if five else 0
    return counters


# --- Retention ------------------------------------------------------------------------------

def prune_chunked(model, field_name: str, cutoff: datetime, *, chunk: int = PRUNE_CHUNK,
                  **filters) -> int:
    """Delete the rows of `model` (matching `filters`) whose `field_name` is before `cutoff`,
    in statements of about `chunk` rows each, so no single DELETE holds the database
    (SQLite's one writer lock, PostgreSQL's WAL burst) for long.

    The walk goes up the time column's index in ranges: the end of each range is the time
    `chunk` rows further on (one index read), and each range is one
    `DELETE ... WHERE field >= a AND field < b` in its own short transaction. Ranges never
    reach `cutoff`, so a newer row is never touched; and since each range starts where the
    last one ended, no scan walks over the rows deleted before it (PostgreSQL keeps their
    index entries until vacuum). Needs an index on (filters..., field_name)."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    rows = model.objects.filter(**filters)
    old = rows.filter(**{f"{field_name}__lt": cutoff})
    times = old.order_by(field_name).values_list(field_name, flat=True)
    db = model.objects.db
    start = times.first()
    deleted = 0
    while start is not None:
        ahead = list(times.filter(**{f"{field_name}__gte": start})[chunk:chunk + 1])
        if not ahead:  # the last range: everything left before the cutoff
            return deleted + old.filter(**{f"{field_name}__gte": start})._raw_delete(db)
        end = ahead[0]
        if end == start:  # more than `chunk` rows share one time: take them together
            deleted += old.filter(**{field_name: start})._raw_delete(db)
            start = times.filter(**{f"{field_name}__gt": start}).first()
            continue
        deleted += old.filter(**{f"{field_name}__gte": start,
                                 f"{field_name}__lt": end})._raw_delete(db)
        start = end
    return deleted


def enforce_retention(now: datetime | None = None) -> dict[str, int]:
    """Metric rollups past their retention."""
    now = now or timezone.now()
    five = prune_chunked(MetricRollup, "bucket",
                         now - timedelta(days=settings.METRIC_ROLLUP_5M_DAYS),
                         resolution=FIVE_MIN)
    hour = prune_chunked(MetricRollup, "bucket",
                         now - timedelta(days=settings.METRIC_ROLLUP_1H_DAYS),
                         resolution=HOUR)
    return {"rollups_5m_pruned": five, "rollups_1h_pruned": hour}


def enforce_poll_retention(now: datetime | None = None, *,
                           chunk: int = PRUNE_CHUNK) -> dict[str, int]:
    """Check runs, check rollups and transitions past their retention. Runs the 5-minute
    rollup has not taken in yet (its cursor minus the reroll span) are kept whatever their
    age, and so are 5-minute buckets the hourly rollup has not; nothing is lost when the
    rollup job is behind."""
    now = now or timezone.now()
    counters = {"poll_samples": 0, "poll_rollups_5m_pruned": 0}
    five = rolled_to(POLL, FIVE_MIN)
    if five is not None:
        cutoff = min(now - timedelta(days=settings.POLL_SAMPLE_DAYS), five - POLL_REROLL)
        counters["poll_samples"] = prune_chunked(PollSample, "ts", cutoff, chunk=chunk)
    hour = rolled_to(POLL, HOUR)
    if hour is not None:
        cutoff = min(now - timedelta(days=settings.POLL_ROLLUP_5M_DAYS),
                     hour - timedelta(hours=1))
        counters["poll_rollups_5m_pruned"] = prune_chunked(
            CheckRollup, "bucket", cutoff, chunk=chunk, resolution=FIVE_MIN)
    counters["poll_rollups_1h_pruned"] = prune_chunked(
        CheckRollup, "bucket", now - timedelta(days=settings.POLL_ROLLUP_1H_DAYS),
        chunk=chunk, resolution=HOUR)
    counters["poll_transitions_pruned"] = prune_chunked(
        PollTransition, "ts", now - timedelta(days=settings.POLL_TRANSITION_DAYS), chunk=chunk)
    return counters


# --- Range queries for charts ------------------------------------------------------------

@dataclass
class Point:
    ts: datetime
    avg: float
    min: float
    max: float
    count: int


def pick_resolution(since: datetime, until: datetime, now: datetime | None = None, *,
                    raw_days: int | None = None, five_min_days: int | None = None) -> int:
    """0 (raw), 300 or 3600 for a chart of [since, until], respecting retention (the metric
    settings unless given)."""
    now = now or timezone.now()
    raw_days = settings.METRIC_RETENTION_DAYS if raw_days is None else raw_days
    five_min_days = settings.METRIC_ROLLUP_5M_DAYS if five_min_days is None else five_min_days
    span = until - since
    age = now - since
    if span <= RAW_SPAN and age <= timedelta(days=raw_days):
        return 0
    if span <= FIVE_MIN_SPAN and age <= timedelta(days=five_min_days):
        return FIVE_MIN
    return HOUR


def series(device_id: int, metric: str, since: datetime, until: datetime | None = None,
           resolution: int | None = None) -> tuple[int, list[Point]]:
    """(resolution used, points oldest first) of one metric of one device."""
    until = until or timezone.now()
    if resolution is None:
        resolution = pick_resolution(since, until)
    metric_id = all_metric_names().filter(name=metric).values_list("id", flat=True).first()
    if metric_id is None:
        return resolution, []
    if resolution == 0:
        rows = (all_metric_samples().filter(device_id=device_id, metric_id=metric_id,
                                            ts__gte=since, ts__lte=until)
                .order_by("ts").values_list("ts", "value"))
        return 0, [Point(ts, v, v, v, 1) for ts, v in rows]
    rows = (MetricRollup.objects.filter(resolution=resolution, device_id=device_id,
                                        metric_id=metric_id,
                                        bucket__gte=floor_time(since, resolution),
                                        bucket__lte=until)
            .order_by("bucket").values_list("bucket", "count", "total", "minimum", "maximum"))
    return resolution, [Point(b, t / c if c else 0.0, lo, hi, c) for b, c, t, lo, hi in rows]


@dataclass
class CheckPoint:
    """One point of a check's chart: a run (resolution 0) or a bucket of runs. `avg`,
    `min` and `max` are None when no run of the point had a value."""

    ts: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int                      # runs with a value
    runs: int
    states: dict[str, int] = field(default_factory=dict)

    @property
    def availability(self) -> float | None:
        """Share of the runs that were ok (None: no runs)."""
        return self.states.get("ok", 0) / self.runs if self.runs else None


def pick_check_resolution(since: datetime, until: datetime,
                          now: datetime | None = None) -> int:
    return pick_resolution(since, until, now, raw_days=settings.POLL_SAMPLE_DAYS,
                           five_min_days=settings.POLL_ROLLUP_5M_DAYS)


def _bucketed(rows, resolution: int) -> list[CheckPoint]:
    """Raw runs (ts, state, value) aggregated into buckets, as the rollup would."""
    points: dict[datetime, CheckPoint] = {}
    for ts, state, value in rows:
        bucket = floor_time(ts, resolution)
        p = points.get(bucket)
        if p is None:
            p = points[bucket] = CheckPoint(bucket, None, None, None, 0, 0, {})
        p.runs += 1
        key = state if state in STATES else "unknown"
        p.states[key] = p.states.get(key, 0) + 1
        if value is not None:
            p.avg = (p.avg or 0.0) + value  # a running sum until the end
            p.min = value if p.min is None else min(p.min, value)
            p.max = value if p.max is None else max(p.max, value)
            p.count += 1
    for p in points.values():
        p.avg = p.avg / p.count if p.count else None
    return sorted(points.values(), key=lambda p: p.ts)


def check_series(check_id: int, since: datetime, until: datetime | None = None,
                 resolution: int | None = None) -> tuple[int, list[CheckPoint]]:
    """(resolution used, points oldest first) of one server-side check. Rolled-up ranges
    end with the buckets the rollup job has not reached yet, computed from the raw runs,
    so a chart is never missing its last minutes."""
    until = until or timezone.now()
    if resolution is None:
        resolution = pick_check_resolution(since, until)
    raw = PollSample.objects.filter(check_template_id=check_id)
    if resolution == 0:
        rows = (raw.filter(ts__gte=since, ts__lte=until).order_by("ts", "id")
                .values_list("ts", "state", "value"))
        return 0, [CheckPoint(ts, v, v, v, 0 if v is None else 1, 1,
                              {s if s in STATES else "unknown": 1}) for ts, s, v in rows]
    start = floor_time(since, resolution)
    reached = rolled_to(POLL, resolution)
    points = []
    if reached is not None:
        rows = (CheckRollup.objects.filter(resolution=resolution, check_template_id=check_id,
                                           bucket__gte=start, bucket__lte=until,
                                           bucket__lt=reached)
                .order_by("bucket").values_list("bucket", "runs", "ok", "warning", "critical",
                                                "unknown", "count", "total", "minimum",
                                                "maximum"))
        for b, runs, ok, warning, critical, unknown, count, total, lo, hi in rows:
            states = {k: n for k, n in (("ok", ok), ("warning", warning),
                                        ("critical", critical), ("unknown", unknown)) if n}
            points.append(CheckPoint(b, total / count if count else None, lo, hi, count, runs,
                                     states))
    tail_from = max(start, reached) if reached is not None else start
    tail = (raw.filter(ts__gte=tail_from, ts__lte=until).order_by("ts", "id")
            .values_list("ts", "state", "value"))
    return resolution, points + _bucketed(tail, resolution)


def check_transitions(check_id: int, since: datetime, until: datetime | None = None,
                      limit: int = 100) -> list[PollTransition]:
    """A check's state changes in [since, until], newest first (at most `limit`). Runs not
    rolled yet are compared here, so the newest change shows before the job has run."""
    until = until or timezone.now()
    found = list(PollTransition.objects.filter(check_template_id=check_id, ts__gte=since,
                                               ts__lte=until).order_by("-ts", "-id")[:limit])
    reached = rolled_to(POLL, FIVE_MIN)
    fresh_from = max(since, reached) if reached is not None else since
    recent = list(PollSample.objects.filter(check_template_id=check_id, ts__gte=fresh_from,
                                            ts__lte=until).order_by("ts", "id"))
    if not recent:
        return found
    before = (PollSample.objects.filter(check_template_id=check_id, ts__lt=fresh_from)
              .order_by("-ts", "-id").values_list("state", flat=True).first())
    if before is None:
        before = (PollTransition.objects.filter(check_template_id=check_id,
                                                ts__lt=fresh_from)
                  .order_by("-ts", "-id").values_list("state", flat=True).first())
    known = {t.ts for t in found}
    fresh = []
    for s in recent:
        if s.state != before and s.ts not in known:
            fresh.append(PollTransition(check_template_id=check_id, client_id=s.client_id,
                                        ts=s.ts, state=s.state, previous=before or "",
                                        value=s.value, message=s.message))
        before = s.state
    return sorted(found + fresh, key=lambda t: t.ts, reverse=True)[:limit]
