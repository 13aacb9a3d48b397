"""monitoring_eval: agent-side alert evaluation throughput on check-in data, at 10,000 and
100,000 devices, in one process.

Each device has one check-in slice of samples (disk used % and free bytes per mount, CPU,
memory) and one global policy with a disk, a CPU (10 min window) and a memory check.
Rows, one after the other on the same data:
- baseline: reading the slice (the devices with new samples, then their newest samples) —
  the least any evaluation has to do;
- evaluation alone: effective checks and results computed, nothing written;
- the scheduled evaluation (evaluate.run_evaluation: cursor claim, slice, evaluation,
  alerts.record_results) on the first slice (every state row created);
- the same on a steady slice (every check still ok: state rows updated, no alert);
- the same on a slice where 10 % of the devices cross the disk threshold (alerts opened,
  with their events).

Run with `python -m bench.scenarios.monitoring_eval [--db sqlite|postgres|both]
[--devices 10000,100000] [--write-docs]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
    write_standalone_docs,
)

NAME = "monitoring_eval"
PG_DB = "watchkeeper_bench_eval"


def seed(n: int) -> None:
    from django.db import connection

    from watchkeeper.core.models import Client
    from watchkeeper.inventory.models import Device
    from watchkeeper.monitoring import actions
    from watchkeeper.monitoring.choices import CheckKind, Scope

    clients = [Client.objects.create(name=f"Client {i}", slug=f"client-{i}")
               for i in range(max(1, n // 1000))]
    batch = []
    for i in range(n):
        batch.append(Device(client=clients[i % len(clients)], name=f"dev-{i:06}"))
        if len(batch) == 5000:
            Device.objects.bulk_create(batch)
            batch = []
    if batch:
        Device.objects.bulk_create(batch)
    policy = actions.create_policy(actor=None, name="Baseline")
    actions.add_check(actor=None, policy=policy, name="Disk", kind=CheckKind.DISK,
                      config={"warning": 85, "critical": 95})
    actions.add_check(actor=None, policy=policy, name="CPU", kind=CheckKind.CPU,
                      config={"warning": 90, "window_minutes": 10})
    actions.add_check(actor=None, policy=policy, name="Memory", kind=CheckKind.MEMORY,
                      config={"warning": 90, "window_minutes": 10})
    actions.assign_policy(actor=None, policy=policy, scope=Scope.GLOBAL)
    connection.close()


def write_slice(at: datetime, disk_for) -> int:
    """One check-in per device at `at`, through the agents app's own multi-row writer."""
    from django.db import transaction

    from watchkeeper.agents.checkin.writer import insert_samples
    from watchkeeper.inventory.models import Device

    ids = list(Device.objects.order_by("id").values_list("id", flat=True))
    with transaction.atomic():
        for i, device_id in enumerate(ids):
            insert_samples(device_id, at, {
                "disk.used_percent:/": disk_for(i), "disk.free_bytes:/": 50e9,
                "disk.used_percent:/boot": 30.0, "disk.free_bytes:/boot": 4e8,
                "cpu.percent": 20.0 + i % 7, "mem.percent": 40.0 + i % 11})
    return len(ids)


def read_slice(since: datetime, until: datetime) -> int:
    from watchkeeper.agents.models import MetricSample
    from watchkeeper.monitoring.evaluate import devices_with_new_samples

    ids = devices_with_new_samples(since, until)
    rows = 0
    for start in range(0, len(ids), 1000):
        rows += len(list(MetricSample.objects.filter(
            device_id__in=ids[start:start + 1000], ts__gt=since, ts__lte=until)
            .values_list("device_id", "metric_id", "ts", "value")))
    return rows


def evaluate_only(since: datetime, until: datetime) -> int:
    from watchkeeper.monitoring.evaluate import devices_with_new_samples, evaluate_devices

    ids = devices_with_new_samples(since, until)
    return sum(len(evaluate_devices(ids[s:s + 1000], until)) for s in range(0, len(ids), 1000))


def _timed(func, *args):
    started = time.perf_counter()
    out = func(*args)
    return time.perf_counter() - started, out


def run_size(n: int) -> list[dict]:
    from watchkeeper.monitoring.evaluate import run_evaluation
    from watchkeeper.monitoring.models import Alert, CheckState, EvalCursor

    seed(n)
    rows = []
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    EvalCursor.objects.update_or_create(name="agent-metrics",
                                        defaults={"position": base - timedelta(seconds=1)})

    def row(label, seconds, extra=None):
        rows.append({"devices": n, "row": label, "seconds": round(seconds, 3),
                     "devices_per_s": round(n / seconds), **(extra or {})})

    t1 = base
    write_slice(t1, lambda i: 50.0)
    secs, samples = _timed(read_slice, base - timedelta(seconds=1), t1 + timedelta(seconds=1))
    row("baseline: read the slice (devices with new samples, their rows)", secs,
        {"samples": samples})
    secs, results = _timed(evaluate_only, base - timedelta(seconds=1), t1 + timedelta(seconds=1))
    row("evaluation only (effective checks + results, no writes)", secs,
        {"results": results})
    secs, out = _timed(run_evaluation, t1 + timedelta(seconds=1))
    row("scheduled evaluation, first slice (state rows created)", secs,
        {"results": out.get("results", 0), "check_states": CheckState.objects.count()})
    t2 = base + timedelta(minutes=1)
    write_slice(t2, lambda i: 51.0)
    secs, out = _timed(run_evaluation, t2 + timedelta(seconds=1))
    row("scheduled evaluation, steady slice (all ok, rows updated)", secs,
        {"results": out.get("results", 0)})
    t3 = base + timedelta(minutes=2)
    write_slice(t3, lambda i: 97.0 if i % 10 == 0 else 52.0)
    secs, out = _timed(run_evaluation, t3 + timedelta(seconds=1))
    row("scheduled evaluation, 10 % cross the threshold (alerts opened)", secs,
        {"results": out.get("results", 0), "opened": out.get("opened", 0),
         "alerts": Alert.objects.count()})
    return rows


def run_db(db: str, sizes: list[int]) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="wk-bench-eval-"))
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
                rows = []
                call_command("migrate", verbosity=0)
                for n in sizes:
                    # Empty tables per size, so the larger run does not start on the
                    # smaller's (a flush, not a new database: PostgreSQL connections may be
                    # pooled).
                    call_command("flush", interactive=False, verbosity=0)
                    rows += run_size(n)
                vendor_version = (connection.Database.sqlite_version
                                  if connection.vendor == "sqlite"
                                  else str(connection.cursor().connection.info.server_version))
            finally:
                connections.close_all()  # before the database is dropped
        return {"meta": {"benchmark": NAME, "db": db, "db_version": vendor_version,
                         "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                         "cores": os.cpu_count(), "loadavg": round(os.getloadavg()[0], 2),
                         "python": platform.python_version(), "sizes": sizes},
                "rows": rows}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def render(result: dict) -> str:
    m = result["meta"]
    lines = [f"**{m['db']}** {m['db_version']}, {m['date']}, {m['cores']} cores (load "
             f"{m['loadavg']}), Python {m['python']}; three checks per device.", "",
             "| devices | row | seconds | devices/s | results |", "|---:|---|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['devices']:,} | {r['row']} | {r['seconds']} | "
                     f"{r['devices_per_s']:,} | {r.get('results', r.get('samples', ''))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.monitoring_eval")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--devices", default="10000,100000")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.devices.split(",") if s.strip()]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    dbs = [] if args.docs_only else ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for db in dbs:
        if len(dbs) > 1 and db != dbs[0]:
            code = os.spawnv(os.P_WAIT, sys.executable,
                             [sys.executable, "-m", "bench.scenarios.monitoring_eval",
                              "--db", db, "--devices", args.devices])
            if code:
                return code
            continue
        with machine_lock():
            result = run_db(db, sizes)
        (RESULTS_DIR / f"{NAME}-{db}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(NAME, "monitoring_eval", __doc__, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
