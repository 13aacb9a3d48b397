"""monitoring_poller: server-side check throughput of one poller process against many
loopback targets (TCP and HTTP servers in a separate process), with the concurrency bound.

Rows, all in this one process, one after the other on the same targets:
- baseline: raw asyncio connects (open + close), the ceiling of the event loop here;
- the poller's TCP check and HTTP check functions (no database);
- the whole poller path: one sweep query for the due checks, a conditional-UPDATE claim
  each, the checks under the semaphore, results written in batches through
  alerts.record_results plus a history row each (SQLite or PostgreSQL).
Target: 10,000 server-side checks per minute (≈167/s) from one poller process.

Run with `python -m bench.scenarios.monitoring_poller [--db sqlite|postgres|both]
[--targets N] [--checks N] [--concurrency C] [--write-docs]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import (
    PG_ADMIN_URL,
    RESULTS_DIR,
    database,
    machine_lock,
    write_standalone_docs,
)

NAME = "monitoring_poller"
TARGET_PER_MINUTE = 10_000
PG_DB = "watchkeeper_bench_poller"


# --- Loopback targets (their own process, so they do not share the poller's loop) ------

def _serve(count: int, conn) -> None:
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 11\r\n\r\nall good ok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        servers = [await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
                   for _ in range(count)]
        conn.send([s.sockets[0].getsockname()[1] for s in servers])
        await asyncio.Event().wait()

    asyncio.run(main())


class Targets:
    def __init__(self, count: int):
        self.count = count

    def __enter__(self) -> list[int]:
        parent, child = multiprocessing.Pipe()
        self.proc = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(self.count, child), daemon=True)
        self.proc.start()
        return parent.recv()

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.join(5)


# --- Rows ----------------------------------------------------------------------------------

async def _bounded(n: int, concurrency: int, make) -> tuple[float, int, int, dict]:
    """Run make(i) for i < n with at most `concurrency` in flight; (seconds, max in
    flight, failures, states)."""
    sem = asyncio.Semaphore(concurrency)
    in_flight = peak = failures = 0
    states: dict[str, int] = {}

    async def one(i: int):
        nonlocal in_flight, peak, failures
        async with sem:
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                state = await make(i)
                states[state] = states.get(state, 0) + 1
                if state != "ok":
                    failures += 1
            finally:
                in_flight -= 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started, peak, failures, states


async def baseline(ports: list[int], n: int, concurrency: int):
    async def connect(i: int) -> str:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", ports[i % len(ports)])
            w.close()
            await w.wait_closed()
            return "ok"
        except OSError:
            return "critical"

    return await _bounded(n, concurrency, connect)


async def check_functions(kind: str, ports: list[int], n: int, concurrency: int):
    from watchkeeper.monitoring.poller.checks import PollerContext, run_check, validate

    configs = [validate(kind, {"host": "127.0.0.1", "port": p} if kind == "tcp" else
                        {"url": f"http://127.0.0.1:{p}/", "keyword": "good"}) for p in ports]
    async with PollerContext(concurrency=concurrency) as ctx:
        async def one(i: int) -> str:
            return (await run_check(kind, configs[i % len(configs)], ctx)).state

        return await _bounded(n, concurrency, one)


def seed_checks(ports: list[int], n: int) -> None:
    """A client, a policy (through the actions) and n due checks, half TCP and half HTTP
    (bulk-inserted: adding them one by one through add_check would snapshot the policy n
    times, which measures the policy editor, not the poller)."""
    from django.utils import timezone

    from watchkeeper.core import actions as core_actions
    from watchkeeper.monitoring import actions
    from watchkeeper.monitoring.models import Check

    client = core_actions.create_client(actor=None, name="Bench Network Client")
    policy = actions.create_policy(actor=None, name="Bench network", client=client)
    now = timezone.now()
    rows = []
    for i in range(n):
        port = ports[i % len(ports)]
        kind = "tcp" if i % 2 == 0 else "http"
        config = ({"host": "127.0.0.1", "port": port} if kind == "tcp"
                  else {"url": f"http://127.0.0.1:{port}/", "keyword": "good"})
        rows.append(Check(policy=policy, name=f"bench {kind} {i}", kind=kind, config=config,
                          interval_seconds=60, next_run_at=now))
    Check.objects.bulk_create(rows, batch_size=1000)


def full_poller(n: int, concurrency: int) -> dict:
    """Run every seeded check once through Poller.run_once(); the first round creates the
    state rows, so it is run and timed apart from the second (the steady state)."""
    from django.utils import timezone

    from watchkeeper.monitoring.models import Check, CheckState, PollSample
    from watchkeeper.monitoring.poller.engine import Poller

    rounds = []
    for _ in range(2):
        Check.objects.update(next_run_at=timezone.now())
        poller = Poller(concurrency=concurrency, batch=n)
        started = time.perf_counter()
        stats = asyncio.run(poller.run_once())
        rounds.append({"seconds": time.perf_counter() - started,
                       "in_flight_max": stats.in_flight_max, "ran": stats.ran,
                       "recorded": stats.recorded, "states": dict(stats.by_state)})
    return {"rounds": rounds, "check_states": CheckState.objects.count(),
            "history_rows": PollSample.objects.count()}


def _row(label: str, n: int, seconds: float, peak: int, failures: int, extra=None) -> dict:
    return {"row": label, "checks": n, "seconds": round(seconds, 3),
            "checks_per_s": round(n / seconds, 1), "per_minute": round(n / seconds * 60),
            "in_flight_max": peak, "failures": failures, **(extra or {})}


def run_db(db: str, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="wk-bench-poller-"))
    os.environ["WATCHKEEPER_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "watchkeeper.settings"
    try:
        with database(db, data_dir, PG_ADMIN_URL, name=PG_DB) as url:
            os.environ["WATCHKEEPER_DATABASE_URL"] = url
            from django.db import connections

            try:
                rows, vendor_version = _measure(args)
            finally:
                connections.close_all()  # before the database is dropped
        return {"meta": {"benchmark": NAME, "db": db, "db_version": vendor_version,
                         "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                         "cores": os.cpu_count(), "loadavg": round(os.getloadavg()[0], 2),
                         "python": platform.python_version(), "targets": args.targets,
                         "checks": args.checks, "concurrency": args.concurrency},
                "rows": rows}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _measure(args) -> tuple[list[dict], str]:
    """Every row, on the database WATCHKEEPER_DATABASE_URL names; and its server version."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    rows = []
    with Targets(args.targets) as ports:
        asyncio.run(baseline(ports, min(args.checks, 1000), args.concurrency))  # warm-up
        b = asyncio.run(baseline(ports, args.checks, args.concurrency))
        rows.append(_row("baseline: raw asyncio connect + close", args.checks, b[0],
                         b[1], b[2]))
        t = asyncio.run(check_functions("tcp", ports, args.checks, args.concurrency))
        rows.append(_row("TCP check function", args.checks, t[0], t[1], t[2]))
        h = asyncio.run(check_functions("http", ports, args.checks, args.concurrency))
        rows.append(_row("HTTP check function (GET + keyword)", args.checks, h[0], h[1],
                         h[2]))
        seed_checks(ports, args.checks)
        full = full_poller(args.checks, args.concurrency)
        for label, rnd in zip(("first run: state rows created",
                               "steady state: state rows updated"), full["rounds"],
                              strict=True):
            rows.append(_row(f"poller, {label} (sweep + claim + check + record)",
                             args.checks, rnd["seconds"], rnd["in_flight_max"],
                             args.checks - rnd["states"].get("ok", 0),
                             {"recorded": rnd["recorded"],
                              "check_states": full["check_states"],
                              "history_rows": full["history_rows"]}))
    from django.db import connection

    vendor_version = (connection.Database.sqlite_version if connection.vendor == "sqlite"
                      else str(connection.cursor().connection.info.server_version))
    return rows, vendor_version


def render(result: dict) -> str:
    m = result["meta"]
    lines = [f"**{m['db']}** {m['db_version']}, {m['date']}, {m['cores']} cores (load "
             f"{m['loadavg']}), Python {m['python']}: {m['checks']:,} checks over "
             f"{m['targets']} loopback targets, at most {m['concurrency']} in flight.", "",
             "| row | checks/s | per minute | in flight (max) | not ok |",
             "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['row']} | {r['checks_per_s']:,.0f} | {r['per_minute']:,} | "
                     f"{r['in_flight_max']} | {r['failures']} |")
    full = result["rows"][-1]
    lines += ["", f"In the steady state the whole poller path runs **{full['per_minute']:,} "
                  f"checks per minute** ({full['per_minute'] / TARGET_PER_MINUTE:.1f}× the "
                  f"10,000/min target); {full['check_states']:,} state rows and "
                  f"{full['history_rows']:,} history rows after both runs."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.monitoring_poller")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true",
                        help="render the stored results into docs/benchmarks.md, run nothing")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    dbs = [] if args.docs_only else ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for db in dbs:
        if len(dbs) > 1 and db != dbs[0]:
            # Django is set up once per process: the next database runs in a child (which
            # takes the machine lock itself).
            code = os.spawnv(os.P_WAIT, sys.executable,
                             [sys.executable, "-m", "bench.scenarios.monitoring_poller",
                              "--db", db, "--targets", str(args.targets), "--checks",
                              str(args.checks), "--concurrency", str(args.concurrency)])
            if code:
                return code
            continue
        with machine_lock():
            result = run_db(db, args)
        (RESULTS_DIR / f"{NAME}-{db}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(NAME, "monitoring_poller", __doc__, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
