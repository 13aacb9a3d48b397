"""agent_checkin: agent check-in ingestion — N simulated agents, each POSTing signed metric
batches (the values its device of the demo's fleet generator, agents/simulator, reports:
about 15, like the real agent's minute report) to /agent/v1/checkin, through the
whole path: signature check, nonce insert, validation, idempotent seq claim, bulk metric
insert, last-seen update, pending-command lookup, acknowledgement after commit.
Target: 100,000 agents at a 60 s interval on one 2-core PostgreSQL node ≈ 1,700 check-ins/s.

Run with `python -m bench.scenarios.agent_checkin [--db sqlite|postgres|both]` (signed,
unique POSTs need their own load driver; `python -m bench run` only replays fixed GETs).
`--baseline-ref main` adds the lean path of another commit's code (a git worktree of it,
served against the same database, windows interleaved with the others): a before/after of
a change in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
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
    machine_lock,
    merge_loads,
    python_cmd,
    read_response,
    run_step,
    seed_in_subprocess,
    summarize,
    versions,
    write_standalone_docs,
)

AGENTS = int(os.environ.get("BENCH_AGENTS", "1000"))
CHECKIN = "/agent/v1/checkin"
PG_DB = "watchkeeper_bench_agent_checkin"  # its own PostgreSQL database, dropped after
CHECKIN_TARGET = Target("POST /agent/v1/checkin (signed metrics batch), lean path", CHECKIN)
DJANGO_TARGET = Target("POST /agent/v1/checkin via the Django view "
                       "(WATCHKEEPER_AGENT_LEAN_CHECKIN=false)", CHECKIN)
# The version the simulated agents report. They are enrolled with it: a check-in reporting a
# version other than the stored one goes to the Django view (a fleet upgrade), and with the
# seed's "" every agent's first check-in did, so a run through the lean path alone measured
# the Django view until each of the fleet had checked in once.
AGENT_VERSION = "bench"


def agent_key(n: int):
    """Deterministic key of simulated agent n: the seed and the load agree without a file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"bench-agent-{n}".encode())
                                                .digest())


class AgentCheckin(Scenario):
    name = "agent_checkin"
    description = __doc__

    def seed(self) -> dict:
        from cryptography.hazmat.primitives import serialization

        from watchkeeper.agents import actions
        from watchkeeper.core import actions as core_actions

        def raw_public(key) -> str:
            return base64.b64encode(key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()

        signer = agent_key(-1)
        actions.register_signer_key(actor="bench", public_key_raw=base64.b64decode(
            raw_public(signer)))
        client = core_actions.create_client(actor=None, name="Bench Fleet Ltd")
        site = core_actions.create_site(actor=None, client=client, name="Datacentre")
        token, _ = actions.create_enrollment_token(actor="bench", client=client, site=site,
                                                   auto_approve=True, hours=24)
        uids = []
        for n in range(AGENTS):
            agent = actions.enroll_agent(token=token, public_key=raw_public(agent_key(n)),
                                         facts={"hostname": f"host-{n:06d}"},
                                         agent_version=AGENT_VERSION)
            uids.append(str(agent.uid))
        # Steady state: the fleet has been checking in for a while, so the measured window
        # is ordinary check-ins, not each agent's one-off agent.online transition.
        from django.utils import timezone

        from watchkeeper.agents.models import Agent

        now = timezone.now()
        Agent.objects.update(connectivity="online", last_seen_at=now,
                             next_due_at=now + actions.offline_after())
        return {"agents": uids}

    def targets(self, seeded: dict) -> list[Target]:
        raise BenchError("agent_checkin needs its own driver: "
                         "python -m bench.scenarios.agent_checkin")


SCENARIO = AgentCheckin()


class Fleet:
    """The simulated agents: keys, sequence numbers, request bytes."""

    def __init__(self, uids: list[str], port: int):
        from watchkeeper.agents.protocol import canonical_request
        from watchkeeper.agents.simulator.profiles import ClientInfo, fleet

        self.canonical = canonical_request
        self.uids = uids
        # The demo's device generator: each agent reports what its simulated device would
        # (CPU and memory over a working day, its disks), not one constant vector.
        self.profiles = fleet([ClientInfo(1, "Bench Fleet Ltd", "UTC", (1,))], len(uids),
                              seed="bench")
        self.values_sent = 0
        self.keys = [agent_key(n) for n in range(len(uids))]
        self.seq = [0] * len(uids)
        self.port = port
        self.next = 0

    def request(self) -> bytes:
        n = self.next % len(self.uids)
        self.next += 1
        self.seq[n] += 1
        now = time.time()
        values = self.profiles[n].metrics(now)
        self.values_sent += len(values)
        body = json.dumps({"seq": self.seq[n], "kind": "metrics", "agent_version": AGENT_VERSION,
                           "metrics": {"ts": now, "values": values},
                           "dropped": {}}, separators=(",", ":")).encode()
        ts, nonce = int(time.time()), secrets.token_hex(16)
        signature = base64.b64encode(self.keys[n].sign(self.canonical(
            method="POST", path=CHECKIN, timestamp=ts, nonce=nonce, body=body,
            agent_id=self.uids[n]))).decode()
        head = (f"POST {CHECKIN} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-WK-Agent: {self.uids[n]}\r\nX-WK-Timestamp: {ts}\r\n"
                f"X-WK-Nonce: {nonce}\r\nX-WK-Signature: {signature}\r\n\r\n")
        return head.encode("latin-1") + body


def _stored(body: bytes) -> bool:
    """A fresh batch the server stored (not a duplicate, not an error)."""
    try:
        return json.loads(body).get("duplicate") is False
    except ValueError:
        return False


async def drive_checkins(fleet: Fleet, *, concurrency: int, duration: float) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter = Counter()
    state = {"errors": 0}
    clock = time.perf_counter
    deadline = clock() + duration

    async def connection() -> None:
        reader = writer = None
        while clock() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, fleet.port)
                request = fleet.request()
                started = clock()
                writer.write(request)
                status, body, reusable = await read_response(reader)
                elapsed = clock() - started
            except (OSError, asyncio.IncompleteReadError, ValueError, BenchError) as exc:
                statuses[type(exc).__name__] += 1
                state["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            statuses[status] += 1
            if status == 200 and _stored(body):
                latencies.append(elapsed)
            else:
                state["errors"] += 1
            if not reusable:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    cpu_before, started = time.process_time(), clock()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return LoadResult(latencies=latencies, errors=state["errors"], elapsed=clock() - started,
                      statuses=statuses, client_cpu=time.process_time() - cpu_before)


def stored_samples(env: dict[str, str]) -> int:
    out = run_step(python_cmd("watchkeeper.cli", "shell", "-c",
                              "from watchkeeper.agents.models import MetricSample;"
                              "print(MetricSample.objects.count())"), env, "count samples")
    return int(out.strip().splitlines()[-1])


def baseline_tree(ref: str, into: Path) -> tuple[Path, str]:
    """A detached git worktree of `ref` (its `src/` is put first on the baseline server's
    PYTHONPATH, so that server runs the baseline's code on the same database) and the
    short commit it is at."""
    from bench.harness import REPO

    commit = run_step(["git", "-C", str(REPO), "rev-parse", "--short", f"{ref}^{{commit}}"],
                      dict(os.environ), f"resolve {ref}").strip()
    tree = into / "baseline-tree"
    run_step(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
             dict(os.environ), f"worktree of {ref}")
    return tree, commit


def drop_tree(tree: Path) -> None:
    from bench.harness import REPO

    run_step(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
             dict(os.environ), "remove the baseline worktree")


def run_db(db: str, args) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"wk-bench-agent-{db}-"))
    (data_dir / "static").mkdir()
    tree = None
    try:
        with database(db, data_dir, PG_ADMIN_URL, name=PG_DB) as url:
            env = bench_env(data_dir, url, {"BENCH_AGENTS": str(args.agents)})
            print(f"[{db}] migrate")
            run_step(python_cmd("watchkeeper.cli", "migrate", "--noinput", "--skip-checks"),
                     env, "migrate")
            print(f"[{db}] seed {args.agents} agents")
            uids = seed_in_subprocess(SCENARIO.name, env)["agents"]
            info = versions(env)
            fleet = Fleet(uids, 0)
            pg_url = PG_ADMIN_URL if db == "postgres" else None
            window = args.duration / args.rounds
            # The same database and fleet through each path: the Django view
            # (WATCHKEEPER_AGENT_LEAN_CHECKIN=false), the lean path, and with
            # --baseline-ref the lean path of that commit's code. Every server runs for the
            # whole measurement and the windows are interleaved (/healthz, path 1, path 2,
            # ..., /healthz, ...), so a change in the machine's load weighs on all alike.
            paths = [("django", {"WATCHKEEPER_AGENT_LEAN_CHECKIN": "false"}, DJANGO_TARGET),
                     ("lean", {}, CHECKIN_TARGET)]
            if args.path != "both":
                paths = [p for p in paths if p[0] == args.path]
            if args.baseline_ref:
                tree, commit = baseline_tree(args.baseline_ref, data_dir)
                base_path = os.pathsep.join([str(tree / "src"), env["PYTHONPATH"]])
                ref = "" if commit.startswith(args.baseline_ref) else f" ({args.baseline_ref})"
                paths.insert(0, ("baseline", {"PYTHONPATH": base_path}, Target(
                    f"POST /agent/v1/checkin, lean path at baseline {commit}{ref}", CHECKIN)))
            empty = LoadResult(latencies=[], errors=0, elapsed=0.0)
            loads = {key: (empty, 0.0, 0, 0) for key in ["base", *(p[0] for p in paths)]}
            with contextlib.ExitStack() as stack:
                servers = {}
                for name, extra, _ in paths:
                    server = Server({**env, **extra}, data_dir / f"server-{name}.log")
                    if "--workers" in server.command:
                        server.command[server.command.index("--workers") + 1] = str(
                            args.workers)
                    servers[name] = stack.enter_context(server)
                first = servers[paths[0][0]]
                for server in servers.values():
                    fleet.port = server.port
                    asyncio.run(drive_checkins(fleet, concurrency=args.concurrency,
                                               duration=args.warmup))
                asyncio.run(drive(first.port, BASELINE, concurrency=args.concurrency,
                                  duration=args.warmup, max_requests=10**9))
                for _ in range(args.rounds):
                    for key in ["base", *servers]:
                        server = first if key == "base" else servers[key]
                        cpu = server.cpu_seconds()
                        with Peaks(server, pg_url) as peaks:
                            if key == "base":
                                load = asyncio.run(drive(
                                    server.port, BASELINE, concurrency=args.concurrency,
                                    duration=window, max_requests=10**9))
                            else:
                                fleet.port = server.port
                                load = asyncio.run(drive_checkins(
                                    fleet, concurrency=args.concurrency, duration=window))
                        prev = loads[key]
                        loads[key] = (merge_loads(prev[0], load),
                                      prev[1] + server.cpu_seconds() - cpu,
                                      max(prev[2], peaks.rss), max(prev[3], peaks.fds))
            base = summarize(BASELINE, loads["base"][0], server_cpu=loads["base"][1],
                             server_rss=loads["base"][2], server_fds=loads["base"][3],
                             baseline_rps=None)
            rows = [asdict(base)]
            for name, _, target in paths:
                load, cpu, rss, fds = loads[name]
                rows.append(asdict(summarize(target, load, server_cpu=cpu, server_rss=rss,
                                             server_fds=fds, baseline_rps=base.rps)))
            sent = sum(fleet.seq)
            samples = stored_samples(env)
            meta = {"benchmark": SCENARIO.name, "db": db, "db_version": info["db_version"],
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "cores": os.cpu_count(), "loadavg": os.getloadavg()[0],
                    "python": info.get("python", ""), "django": info["django"],
                    "duration": args.duration, "rounds": args.rounds, "warmup": args.warmup,
                    "concurrency": args.concurrency, "max_requests": 0, "env": {},
                    "server": f"watchkeeper web --workers {args.workers}",
                    "agents": args.agents, "baseline_ref": args.baseline_ref or "",
                    "checkins_sent": sent, "samples_stored": samples,
                    "samples_expected": fleet.values_sent}
            return {"meta": meta, "rows": rows}
    finally:
        if tree is not None:
            drop_tree(tree)
        shutil.rmtree(data_dir, ignore_errors=True)


def render(result: dict) -> str:
    from bench.harness import render_run

    meta = result["meta"]
    meta.setdefault("python", "")
    text = render_run(result).replace(" or 0 requests per target", " per target")
    rps = max(r["rps"] for r in result["rows"] if r["target"] != BASELINE.label)
    return (f"{text}\n\n{meta['agents']:,} agents; {meta['checkins_sent']:,} check-ins sent, "
            f"{meta['samples_stored']:,} metric rows stored of {meta['samples_expected']:,} "
            f"expected (warm-up included; every path). At 60 s per agent the faster path "
            f"sustains **{rps * 60:,.0f} agents** with `{meta['server']}`.")


def main(argv: list[str] | None = None) -> int:
    import platform

    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.agent_checkin")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--agents", type=int, default=AGENTS)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="web worker processes")
    parser.add_argument("--path", choices=["django", "lean", "both"], default="both",
                        help="which check-in path(s) to measure (default: both, Django first)")
    parser.add_argument("--baseline-ref", default="", metavar="REV",
                        help="also measure the lean path of this commit's code (a git "
                             "worktree), in the same run and on the same database")
    parser.add_argument("--tag", default="", help="keep results apart (not rendered)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true",
                        help="render the stored results into docs/benchmarks.md, run nothing")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    for db in ([] if args.docs_only else
               ["sqlite", "postgres"] if args.db == "both" else [args.db]):
        with machine_lock():
            result = run_db(db, args)
        result["meta"]["python"] = platform.python_version()
        result["meta"]["machine"] = f"{platform.system()} {platform.machine()}"
        stem = f"{SCENARIO.name}-{db}" + (f"-{args.tag}" if args.tag else "")
        (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(result, indent=2))
        print(render(result))
        results.append(result)
    if args.write_docs or args.docs_only:
        write_standalone_docs(SCENARIO.name, "agent_checkin", SCENARIO.description, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
