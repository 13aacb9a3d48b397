"""alert_ingest: alerts per second from other tools through HTTP — `POST
/api/v1/ingest/alerts` with an ingestion source's token, in batches of 100 and one alert per
request (token lookup, JSON validation, the dedup write: one locked read of the open alerts of
the request's keys, one `INSERT ... ON CONFLICT DO NOTHING RETURNING` of the new ones, one
`UPDATE count = count + n` of the repeats, an alert.opened event per new alert in the outbox,
all in one transaction). Consecutive requests carry the same keys (request 2k and 2k+1), so
half the alerts are repeats, often of a key another connection is inserting at that moment.
Afterwards the alerts in the database are counted: exactly one per key acknowledged, and
their counts add up to the alerts acknowledged.

Run with `python -m bench.scenarios.alert_ingest [--db sqlite|postgres|both]` (unique POST
bodies need their own driver).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import tempfile
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import (
    BASELINE,
    HOST,
    PG_ADMIN_URL,
    RESULTS_DIR,
    BenchError,
    LoadResult,
    Peaks,
    Scenario,
    Server,
    Target,
    bench_env,
    database,
    drive,
    drive_requests,
    machine_lock,
    merge_loads,
    python_cmd,
    run_step,
    seed_in_subprocess,
    summarize,
    versions,
    write_standalone_docs,
)

PATH = "/api/v1/ingest/alerts"
BATCH = 100
TARGETS = {"batch": Target(f"POST {PATH} (batch of {BATCH} alerts)", PATH, expect_status=202),
           "single": Target(f"POST {PATH} (one alert per request)", PATH, expect_status=202)}


class AlertIngest(Scenario):
    name = "alert_ingest"
    description = __doc__

    def seed(self) -> dict:
        from watchkeeper.core import accounts
        from watchkeeper.core import actions as core_actions
        from watchkeeper.core.choices import Role
        from watchkeeper.monitoring.ingest import actions

        owner, _ = accounts.create_user(actor=None, email="owner@bench.test", role=Role.OWNER,
                                        name="Bench Owner")
        client = core_actions.create_client(actor=owner, name="Bench Client Ltd")
        _, token = actions.create_source(actor=owner, client=client, name="Bench Alertmanager")
        return {"token": token}

    def targets(self, seeded: dict) -> list[Target]:
        raise BenchError("alert_ingest needs its own driver: "
                         "python -m bench.scenarios.alert_ingest")


SCENARIO = AlertIngest()


class Ledger:
    """Request numbers shared by the connections, and what was acknowledged."""

    def __init__(self):
        self._next = itertools.count(1)
        self._lock = threading.Lock()
        self.keys: set[str] = set()
        self.alerts = 0

    def take(self) -> int:
        return next(self._next)

    def done(self, keys: list[str]) -> None:
        with self._lock:
            self.keys.update(keys)
            self.alerts += len(keys)


def _keys(kind: str, n: int) -> list[str]:
    pair = n // 2  # two consecutive requests carry the same keys
    size = BATCH if kind == "batch" else 1
    return [f"{kind}-{pair}-{j}" for j in range(size)]


def _request(port: int, token: str, keys: list[str]) -> bytes:
    alerts = [{"resource": f"host-{k.rsplit('-', 1)[-1]}", "event": "disk_full",
               "severity": "critical", "summary": "Volume / is 97% full", "dedup_key": k,
               "attributes": {"volume": "/", "used_pct": 97}} for k in keys]
    body = json.dumps({"alerts": alerts} if len(alerts) > 1 else alerts[0],
                      separators=(",", ":")).encode()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


async def drive_ingest(port: int, token: str, kind: str, ledger: Ledger, *,
                       concurrency: int, duration: float) -> LoadResult:
    def make_request() -> tuple[bytes, list[str]]:
        keys = _keys(kind, ledger.take())
        return _request(port, token, keys), keys

    def accept(status: int, body: bytes, keys: list[str]) -> bool:
        if status == 202 and json.loads(body)["accepted"] == len(keys):
            ledger.done(keys)
            return True
        return False

    return await drive_requests(port, make_request, accept, concurrency=concurrency,
                                duration=duration)


def stored(env: dict[str, str]) -> dict[str, int]:
    out = run_step(python_cmd(
        "watchkeeper.cli", "shell", "-c",
        "import json;from django.db.models import Count, Sum, Max;"
        "from watchkeeper.monitoring.models import Alert;"
        "a=Alert.objects.filter(source__isnull=False);"
        "print(json.dumps({'alerts': a.count(), 'count_sum': a.aggregate(s=Sum('count'))['s'],"
        "'max_per_key': a.values('key').annotate(n=Count('id')).aggregate(m=Max('n'))['m']}))"),
        env, "count alerts")
    return json.loads(out.strip().splitlines()[-1])


def run_db(db: str, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"wk-bench-ingest-{db}-"))
    (data_dir / "static").mkdir()
    try:
        with database(db, data_dir, PG_ADMIN_URL) as url:
            env = bench_env(data_dir, url, {})
            print(f"[{db}] migrate")
            run_step(python_cmd("watchkeeper.cli", "migrate", "--noinput", "--skip-checks"),
                     env, "migrate")
            print(f"[{db}] seed")
            seeded = seed_in_subprocess(SCENARIO.name, env)
            info = versions(env)
            ledger = Ledger()
            pg_url = PG_ADMIN_URL if db == "postgres" else None
            with Server(env, data_dir / "server.log") as server:
                def run(key: str, duration: float) -> LoadResult:
                    if key == "base":
                        return asyncio.run(drive(server.port, BASELINE,
                                                 concurrency=args.concurrency,
                                                 duration=duration, max_requests=10**9))
                    return asyncio.run(drive_ingest(server.port, seeded["token"], key, ledger,
                                                    concurrency=args.concurrency,
                                                    duration=duration))

                for key in ("batch", "single", "base"):
                    run(key, args.warmup)
                empty = LoadResult(latencies=[], errors=0, elapsed=0.0)
                loads = {key: (empty, 0.0, 0, 0) for key in ("base", "batch", "single")}
                conns: dict[str, int] = {}
                window = args.duration / args.rounds
                for _ in range(args.rounds):
                    for key in ("base", "batch", "single"):
                        cpu = server.cpu_seconds()
                        with Peaks(server, pg_url) as peaks:
                            load = run(key, window)
                        if peaks.db_connections is not None:
                            conns[key] = max(conns.get(key, 0), peaks.db_connections)
                        prev = loads[key]
                        loads[key] = (merge_loads(prev[0], load),
                                      prev[1] + server.cpu_seconds() - cpu,
                                      max(prev[2], peaks.rss), max(prev[3], peaks.fds))
                if server.proc.poll() is not None:
                    raise BenchError("the server died during the run")
            base = summarize(BASELINE, loads["base"][0], server_cpu=loads["base"][1],
                             server_rss=loads["base"][2], server_fds=loads["base"][3],
                             baseline_rps=None, db_connections=conns.get("base"))
            rows = [base]
            for key in ("batch", "single"):
                rows.append(summarize(TARGETS[key], loads[key][0], server_cpu=loads[key][1],
                                      server_rss=loads[key][2], server_fds=loads[key][3],
                                      baseline_rps=base.rps, db_connections=conns.get(key)))
            found = stored(env)
            meta = {"benchmark": SCENARIO.name, "db": db, "db_version": info["db_version"],
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "cores": os.cpu_count(), "loadavg": os.getloadavg()[0],
                    "python": platform.python_version(), "django": info["django"],
                    "duration": args.duration, "rounds": args.rounds, "warmup": args.warmup,
                    "concurrency": args.concurrency, "max_requests": 0, "env": {},
                    "server": "watchkeeper web --workers 1",
                    "acknowledged": {"keys": len(ledger.keys), "alerts": ledger.alerts},
                    "stored": found}
            if found["alerts"] != len(ledger.keys) or found["max_per_key"] != 1 or \
                    found["count_sum"] != ledger.alerts:
                raise BenchError(f"not exactly once: acknowledged {meta['acknowledged']}, "
                                 f"stored {found}")
            return {"meta": meta, "rows": [asdict(r) for r in rows]}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def render(result: dict) -> str:
    from bench.harness import render_run

    meta = result["meta"]
    text = render_run(result).replace(" or 0 requests per target", " per target")
    per = {r["target"]: r for r in result["rows"]}
    batch, single = per[TARGETS["batch"].label], per[TARGETS["single"].label]
    ack, found = meta["acknowledged"], meta["stored"]
    return (f"{text}\n\nAlerts/s: **{batch['rps'] * BATCH:,.0f}** in batches of {BATCH} "
            f"({batch['server_cpu_ms_per_req'] / BATCH:.3f} ms server CPU per alert), "
            f"**{single['rps']:,.0f}** one per request "
            f"({single['server_cpu_ms_per_req']:.2f} ms per alert). Acknowledged (warm-up "
            f"included): {ack['alerts']:,} alerts on {ack['keys']:,} keys; stored: "
            f"{found['alerts']:,} alerts (at most {found['max_per_key']} per key), counts "
            f"adding up to {found['count_sum']:,}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.alert_ingest")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds per target, split over the rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tag", default="", help="keep results apart (not rendered)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true",
                        help="render the stored results into docs/benchmarks.md, run nothing")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for db in ([] if args.docs_only else
               ["sqlite", "postgres"] if args.db == "both" else [args.db]):
        with machine_lock():
            result = run_db(db, args)
        result["meta"]["machine"] = f"{platform.system()} {platform.machine()}"
        stem = f"{SCENARIO.name}-{db}" + (f"-{args.tag}" if args.tag else "")
        (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(SCENARIO.name, "alert_ingest", SCENARIO.description, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
