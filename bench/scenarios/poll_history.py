"""poll_history: what network-check history costs as raw runs (before) and as rollups (after),
in one process on a fresh database.

- Storage: a week of one run a minute for `--chart-checks` checks (a state change twice a
  day), rolled up by the scheduled job (`rollups.run_rollups`, catching up in its own
  steps). Rows and bytes (table and its indexes: SQLite's dbstat, PostgreSQL's
  pg_total_relation_size) per check-day of each table, and what one check keeps under the
  old retention (30 days of raw runs) and the new defaults (2 days raw, 14 days of 5-minute
  buckets, 400 days of hourly buckets and of transitions).
- Chart query: a 7-day range of one check, read as raw runs (10,080 rows) and as the
  5-minute rollups the page and API now pick (`rollups.check_series`), median and p95 over
  one query per check.
- Pruning: one day of runs at `--checks` checks a minute (10,000: 14.4 M rows) with the
  next hour after it, pruned by the chunked job (`rollups.prune_chunked`, 10,000 rows a
  statement) and, on the same data inserted again, by one `DELETE` (the old job): total
  time and the longest single statement, i.e. how long the writers (SQLite's one lock) wait.
  Also one steady-state rollup run at that rate (15 minutes of runs: 5 new + 10 rolled again).

Run with `python -m bench.scenarios.poll_history [--db sqlite|postgres|both]
[--checks 10000] [--chart-checks 200] [--write-docs]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import (
    PG_ADMIN_URL,
    RESULTS_DIR,
    database,
    machine_lock,
    percentile,
    write_standalone_docs,
)

NAME = "poll_history"
PG_DB = "watchkeeper_bench_pollhistory"
DAY = 1440  # runs per check-day at one a minute
OLD_RAW_DAYS = 30
NEW_DAYS = {"raw": 2, "5m": 14, "1h": 400, "transitions": 400}


def _seed_checks(n: int, tag: str) -> tuple[int, list[int]]:
    from watchkeeper.core.models import Client
    from watchkeeper.monitoring import actions
    from watchkeeper.monitoring.models import Check

    client, _ = Client.objects.get_or_create(slug="bench-client",
                                             defaults={"name": "Bench client"})
    policy = actions.create_policy(actor=None, name=f"Bench {tag}", client=client)
    Check.objects.bulk_create([Check(policy=policy, name=f"{tag}-{i:05}", kind="http",
                                     config={"url": f"http://h{i}.bench.test/"},
                                     interval_seconds=60) for i in range(n)],
                              batch_size=5000)
    return client.pk, list(Check.objects.filter(policy=policy).order_by("id")
                           .values_list("id", flat=True))


def _insert_runs(policy_checks: list[int], client_id: int, start: datetime,
                 minutes: int) -> int:
    """One run a minute per check (spread over the minute by check id), set-based in SQL:
    ok with a latency-like value, critical (no value) for 5 minutes twice a day."""
    from django.db import connection, transaction

    lo, hi = policy_checks[0], policy_checks[-1]
    base = int(start.timestamp())
    state = ("CASE WHEN ((m.i + c.id) %% 720) < 5 THEN 'critical' ELSE 'ok' END")
    value = ("CASE WHEN ((m.i + c.id) %% 720) < 5 THEN NULL "
             "ELSE 20 + (c.id %% 97) + (m.i %% 13) * 1.5 END")
    message = ("CASE WHEN ((m.i + c.id) %% 720) < 5 THEN 'HTTP 503 Service Unavailable' "
               "ELSE 'HTTP 200 in 42 ms' END")
    if connection.vendor == "sqlite":
        ts = f"datetime({base} + m.i * 60 + (c.id %% 60), 'unixepoch')"
        minutes_sql = (f"WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m "
                       f"WHERE i < {minutes - 1}) ")
        source = "m"
    else:
        ts = f"to_timestamp({base} + m.i * 60 + (c.id %% 60))"
        minutes_sql = ""
        source = f"generate_series(0, {minutes - 1}) AS m(i)"
    sql = (f"{minutes_sql}INSERT INTO monitoring_pollsample (check_template_id, client_id, "
           f"ts, state, value, message) SELECT c.id, {int(client_id)}, {ts}, {state}, "
           f"{value}, {message} FROM {source} CROSS JOIN (SELECT id FROM monitoring_check "
           f"WHERE id >= %s AND id <= %s) c ORDER BY m.i, c.id")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # Filling only: a page cache that holds the indexes (2 MB by default: random
            # index inserts then spill and rewrite pages many times over). The measured
            # steps run with the default again.
            cursor.execute("PRAGMA cache_size = -2000000")
        try:
            with transaction.atomic():
                cursor.execute(sql, [lo, hi])
                return cursor.rowcount
        finally:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA cache_size = -2000")


def _bytes(model) -> int:
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE tbl_name = %s",
                           [table])
            names = [name for name, _ in cursor.fetchall()]
            marks = ", ".join(["%s"] * len(names))
            cursor.execute(f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({marks})", names)  # noqa: S608
        else:
            cursor.execute("VACUUM ANALYZE " + connection.ops.quote_name(table))
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        return int(cursor.fetchone()[0] or 0)


def _timed(func, *args, **kwargs):
    started = time.perf_counter()
    out = func(*args, **kwargs)
    return time.perf_counter() - started, out


def storage_and_charts(chart_checks: int, now: datetime) -> tuple[list[dict], list[dict],
                                                                   dict]:
    from watchkeeper.monitoring.history import actions as rollups
    from watchkeeper.monitoring.models import CheckRollup, PollSample, PollTransition

    days = 7
    client_id, ids = _seed_checks(chart_checks, "week")
    start = now - timedelta(days=days)
    _insert_runs(ids, client_id, start, days * DAY)
    inserted = PollSample.objects.count()
    rolled = 0
    roll_seconds = 0.0
    target = rollups.floor_time(now - rollups.SETTLE, rollups.FIVE_MIN)
    for _ in range(20):  # the job catches up in steps of at most two days
        secs, out = _timed(rollups.run_rollups, now=now)
        roll_seconds += secs
        rolled += out["poll_rollup_5m"] + out["poll_rollup_1h"]
        if (rollups.rolled_to(rollups.POLL, rollups.FIVE_MIN) == target
                and rollups.rolled_to(rollups.POLL, rollups.HOUR)
                == rollups.floor_time(target, rollups.HOUR)):
            break
    check_days = chart_checks * days
    tables = [("PollSample (raw runs)", PollSample, PollSample.objects.count()),
              ("CheckRollup 5 min (share of the table)", CheckRollup,
               CheckRollup.objects.filter(resolution=300).count()),
              ("CheckRollup 1 h (share of the table)", CheckRollup,
               CheckRollup.objects.filter(resolution=3600).count()),
              ("PollTransition", PollTransition, PollTransition.objects.count())]
    rollup_bytes = _bytes(CheckRollup)
    rollup_rows = CheckRollup.objects.count()
    storage = []
    for label, model, rows in tables:
        size = _bytes(model) if model is not CheckRollup else rollup_bytes * rows / rollup_rows
        storage.append({"table": label, "rows_per_check_day": round(rows / check_days, 1),
                        "bytes_per_check_day": round(size / check_days),
                        "bytes_per_row": round(size / rows) if rows else 0})
    raw, five, hour, trans = (s["bytes_per_check_day"] for s in storage)
    kept = {"old_days": OLD_RAW_DAYS, "old_bytes_per_check": round(raw * OLD_RAW_DAYS),
            "new_bytes_per_check": round(raw * NEW_DAYS["raw"] + five * NEW_DAYS["5m"]
                                         + hour * NEW_DAYS["1h"]
                                         + trans * NEW_DAYS["transitions"]),
            "new_bytes_per_check_per_30_days": round(raw * NEW_DAYS["raw"]
                                                     + five * NEW_DAYS["5m"]
                                                     + (hour + trans) * 30),
            "inserted": inserted, "rollup_rows_written": rolled,
            "rollup_catch_up_s": round(roll_seconds, 2)}

    charts = []
    since, until = now - timedelta(days=7), now
    for label, resolution in (("raw runs (before)", 0), ("5-minute rollups (after)", None)):
        times, points = [], 0
        for check_id in ids[: min(len(ids), 50)]:
            secs, (used, got) = _timed(rollups.check_series, check_id, since, until,
                                       resolution)
            times.append(secs * 1000)
            points = len(got)
        times.sort()
        charts.append({"query": f"7-day chart, {label}", "resolution": used,
                       "points": points, "p50_ms": round(statistics.median(times), 2),
                       "p95_ms": round(percentile(times, 95), 2), "queries": len(times)})
    return storage, charts, kept


def prune(checks: int, now: datetime) -> list[dict]:
    from django.db import connection

    from watchkeeper.monitoring.history import actions as rollups
    from watchkeeper.monitoring.models import PollSample, RollupCursor

    client_id, ids = _seed_checks(checks, "day")
    day = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    cutoff = day + timedelta(days=1)
    rows = []

    def fill() -> tuple[int, float]:
        secs, _ = _timed(_insert_runs, ids, client_id, day, DAY + 60)
        return PollSample.objects.count(), secs

    PollSample.objects.all()._raw_delete(PollSample.objects.db)
    n, fill_secs = fill()
    # One steady-state rollup run at this rate: the cursor 5 minutes behind, 10 rolled again
    RollupCursor.objects.all().delete()
    RollupCursor.objects.create(stream="poll", resolution=300,
                                position=cutoff - timedelta(minutes=5))
    secs, out = _timed(rollups._roll, rollups.POLL, 300, cutoff)
    rows.append({"row": f"rollup run, steady state ({checks:,} checks a minute: 15 min of "
                        f"runs)", "rows": out, "seconds": round(secs, 2), "longest_ms": None,
                 "statements": 1})
    newer = PollSample.objects.filter(ts__gte=cutoff).count()

    statements: list[float] = []

    def execute_wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.lstrip().upper().startswith("DELETE"):
                statements.append(time.perf_counter() - started)

    with connection.execute_wrapper(execute_wrapper):
        secs, deleted = _timed(rollups.prune_chunked, PollSample, "ts", cutoff)
    left = PollSample.objects.count()
    assert left == newer, (left, newer)
    rows.append({"row": f"prune one day in chunks of {rollups.PRUNE_CHUNK:,} (after)",
                 "rows": deleted, "seconds": round(secs, 2),
                 "longest_ms": round(max(statements) * 1000, 1),
                 "statements": len(statements), "fill_s": round(fill_secs, 1)})
    PollSample.objects.all()._raw_delete(PollSample.objects.db)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE monitoring_pollsample")
    fill()
    statements.clear()
    with connection.execute_wrapper(execute_wrapper):
        secs, deleted = _timed(lambda: PollSample.objects.filter(ts__lt=cutoff).delete()[0])
    rows.append({"row": "prune one day in one DELETE (before)", "rows": deleted,
                 "seconds": round(secs, 2), "longest_ms": round(max(statements) * 1000, 1),
                 "statements": len(statements)})
    assert PollSample.objects.count() == newer
    return rows


def run_db(db: str, checks: int, chart_checks: int) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="wk-bench-pollhistory-"))
    os.environ["WATCHKEEPER_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "watchkeeper.settings"
    try:
        with database(db, data_dir, PG_ADMIN_URL, name=PG_DB) as url:
            os.environ["WATCHKEEPER_DATABASE_URL"] = url
            import django
            from django.core.management import call_command
            from django.db import connection, connections

            try:
                django.setup()
                call_command("migrate", verbosity=0)
                now = datetime.now(UTC).replace(second=0, microsecond=0)
                storage, charts, kept = storage_and_charts(chart_checks, now)
                call_command("flush", interactive=False, verbosity=0)
                pruning = prune(checks, now)
                vendor_version = (connection.Database.sqlite_version
                                  if connection.vendor == "sqlite"
                                  else str(connection.cursor().connection.info.server_version))
            finally:
                connections.close_all()
        return {"meta": {"benchmark": NAME, "db": db, "db_version": vendor_version,
                         "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                         "cores": os.cpu_count(), "loadavg": round(os.getloadavg()[0], 2),
                         "python": platform.python_version(), "checks": checks,
                         "chart_checks": chart_checks},
                "storage": storage, "kept": kept, "charts": charts, "prune": pruning}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def render(result: dict) -> str:
    m, k = result["meta"], result["kept"]
    lines = [f"**{m['db']}** {m['db_version']}, {m['date']}, {m['cores']} cores (load "
             f"{m['loadavg']}), Python {m['python']}; storage and charts from 7 days of "
             f"{m['chart_checks']} checks at one run a minute ({k['inserted']:,} runs; the "
             f"rollup job caught up in {k['rollup_catch_up_s']} s), pruning at "
             f"{m['checks']:,} checks a minute.", "",
             "| table | rows per check-day | bytes per row | bytes per check-day |",
             "|---|---:|---:|---:|"]
    for s in result["storage"]:
        lines.append(f"| {s['table']} | {s['rows_per_check_day']:,} | {s['bytes_per_row']:,} "
                     f"| {s['bytes_per_check_day']:,} |")
    lines += ["", f"Kept per check: before (raw runs for {k['old_days']} days) "
                  f"{k['old_bytes_per_check'] / 1e6:.2f} MB; after (raw 2 days, 5-minute "
                  f"buckets 14 days, hourly buckets and transitions 400 days) "
                  f"{k['new_bytes_per_check'] / 1e6:.2f} MB, of which "
                  f"{k['new_bytes_per_check_per_30_days'] / 1e6:.2f} MB for the same 30 days.",
              "", "| chart query (one check) | resolution | points | p50 ms | p95 ms |",
              "|---|---:|---:|---:|---:|"]
    for c in result["charts"]:
        lines.append(f"| {c['query']} | {c['resolution']} | {c['points']:,} | {c['p50_ms']} | "
                     f"{c['p95_ms']} |")
    lines += ["", "| pruning and rollup | rows | seconds | rows/s | DELETE statements | "
                  "longest statement ms |", "|---|---:|---:|---:|---:|---:|"]
    for p in result["prune"]:
        longest = "" if p["longest_ms"] is None else f"{p['longest_ms']:,}"
        rate = f"{p['rows'] / p['seconds']:,.0f}" if p["seconds"] else ""
        lines.append(f"| {p['row']} | {p['rows']:,} | {p['seconds']} | {rate} | "
                     f"{p['statements'] if p['longest_ms'] is not None else ''} | {longest} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.poll_history")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--chart-checks", type=int, default=200)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true")
    args = parser.parse_args(argv)
    if args.checks < 1 or args.chart_checks < 1:
        parser.error("--checks and --chart-checks must be at least 1")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    dbs = [] if args.docs_only else ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for db in dbs:
        if len(dbs) > 1 and db != dbs[0]:
            code = os.spawnv(os.P_WAIT, sys.executable,
                             [sys.executable, "-m", "bench.scenarios.poll_history", "--db", db,
                              "--checks", str(args.checks), "--chart-checks",
                              str(args.chart_checks)])
            if code:
                return code
            continue
        with machine_lock():
            result = run_db(db, args.checks, args.chart_checks)
        (RESULTS_DIR / f"{NAME}-{db}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(NAME, "poll_history", __doc__, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
