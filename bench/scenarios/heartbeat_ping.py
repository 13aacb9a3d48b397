"""heartbeat_ping: server CPU per heartbeat ping (`GET /hb/<uid>`: one UPDATE of the job, one
INSERT ... SELECT of the ping log row), through the lean ASGI path
(monitoring/heartbeat_lean.py) and through the Django view (`WATCHKEEPER_HEARTBEAT_LEAN=false`),
two servers on the same database with their windows interleaved with the `/healthz` baseline.

Run with `python -m bench.scenarios.heartbeat_ping [--db sqlite|postgres|both]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import (
    BASELINE,
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
    machine_lock,
    merge_loads,
    python_cmd,
    run_step,
    seed_in_subprocess,
    summarize,
    versions,
    write_standalone_docs,
)


class HeartbeatPing(Scenario):
    name = "heartbeat_ping"
    description = __doc__

    def seed(self) -> dict:
        from watchkeeper.core import actions as core_actions
        from watchkeeper.monitoring import heartbeats

        client = core_actions.create_client(actor=None, name="Bench Client Ltd")
        job = heartbeats.create_heartbeat(actor="bench", client=client, name="Nightly backup",
                                          period_seconds=3600, grace_seconds=600)
        return {"uid": str(job.uid)}

    def targets(self, seeded: dict) -> list[Target]:
        raise BenchError("heartbeat_ping needs two servers: "
                         "python -m bench.scenarios.heartbeat_ping")


SCENARIO = HeartbeatPing()


def _ok(status: int, body: bytes) -> None:
    if status != 200 or body != b"OK\n":
        raise BenchError(f"ping answered {status} {body[:80]!r}")


def run_db(db: str, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"wk-bench-hb-{db}-"))
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
            path = f"/hb/{seeded['uid']}"
            targets = {"lean": Target("GET /hb/<uid> (lean ASGI path)", path, validate=_ok),
                       "django": Target("GET /hb/<uid> (Django view, before)", path,
                                        validate=_ok)}
            pg_url = PG_ADMIN_URL if db == "postgres" else None
            with Server(env, data_dir / "lean.log") as lean, \
                    Server({**env, "WATCHKEEPER_HEARTBEAT_LEAN": "false"},
                           data_dir / "django.log") as plain:
                servers = {"base": lean, "lean": lean, "django": plain}
                target_of = {"base": BASELINE, **targets}

                def run(key: str, duration: float) -> LoadResult:
                    return asyncio.run(drive(servers[key].port, target_of[key],
                                             concurrency=args.concurrency, duration=duration,
                                             max_requests=10**9))

                for key in ("lean", "django", "base"):
                    run(key, args.warmup)
                empty = LoadResult(latencies=[], errors=0, elapsed=0.0)
                loads = {key: (empty, 0.0, 0, 0) for key in servers}
                window = args.duration / args.rounds
                for _ in range(args.rounds):
                    for key in ("base", "lean", "django"):
                        server = servers[key]
                        cpu = server.cpu_seconds()
                        with Peaks(server, pg_url) as peaks:
                            load = run(key, window)
                        prev = loads[key]
                        loads[key] = (merge_loads(prev[0], load),
                                      prev[1] + server.cpu_seconds() - cpu,
                                      max(prev[2], peaks.rss), max(prev[3], peaks.fds))
            base = summarize(BASELINE, loads["base"][0], server_cpu=loads["base"][1],
                             server_rss=loads["base"][2], server_fds=loads["base"][3],
                             baseline_rps=None)
            rows = [base] + [summarize(targets[k], loads[k][0], server_cpu=loads[k][1],
                                       server_rss=loads[k][2], server_fds=loads[k][3],
                                       baseline_rps=base.rps) for k in ("lean", "django")]
            meta = {"benchmark": SCENARIO.name, "db": db, "db_version": info["db_version"],
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "cores": os.cpu_count(), "loadavg": os.getloadavg()[0],
                    "python": platform.python_version(), "django": info["django"],
                    "duration": args.duration, "rounds": args.rounds, "warmup": args.warmup,
                    "concurrency": args.concurrency, "max_requests": 0, "env": {},
                    "server": "watchkeeper web --workers 1 (two: lean on and off)"}
            return {"meta": meta, "rows": [asdict(r) for r in rows]}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def render(result: dict) -> str:
    from bench.harness import render_run

    rows = {r["target"]: r for r in result["rows"]}
    lean = next(r for k, r in rows.items() if "lean" in k)
    plain = next(r for k, r in rows.items() if "Django" in k)
    text = render_run(result).replace(" or 0 requests per target", " per target")
    return (f"{text}\n\nServer CPU per ping: lean {lean['server_cpu_ms_per_req']:.2f} ms, "
            f"Django view {plain['server_cpu_ms_per_req']:.2f} ms "
            f"({plain['server_cpu_ms_per_req'] / max(lean['server_cpu_ms_per_req'], 1e-9):.1f}"
            f"× as much).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.heartbeat_ping")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tag", default="")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for db in ([] if args.docs_only else
               ["sqlite", "postgres"] if args.db == "both" else [args.db]):
        with machine_lock():
            result = run_db(db, args)
        stem = f"{SCENARIO.name}-{db}" + (f"-{args.tag}" if args.tag else "")
        (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
    if args.write_docs or args.docs_only:
        write_standalone_docs(SCENARIO.name, "heartbeat_ping", SCENARIO.description, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
