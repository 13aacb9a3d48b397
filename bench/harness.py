"""The benchmark harness: a real server stack on loopback, driven by a light HTTP client.

One run of a scenario on one database:

1. a fresh data directory (and, for PostgreSQL, a fresh `watchkeeper_bench` database);
2. `watchkeeper migrate`, then the scenario's `seed()` in a subprocess with Django set up,
   writing through the project's own actions and returning what the load needs (tokens,
   session cookies) as JSON;
3. the server as it runs in production — `watchkeeper web --workers 1` (uvicorn serving
   `watchkeeper.asgi`) — in its own process group;
4. for the baseline (/healthz: the framework's ceiling on this machine) and then each target:
   one checked request (status and content, so a redirect to the login page is an error and
   not a fast number), a warm-up, and a measured window bounded by both time and request
   count, driven by N keep-alive connections from this process;
5. server RSS (peak, sampled) and server CPU seconds per request from psutil on the server's
   process tree, written to bench/results/<name>-<db>.json and, with --write-docs, as a
   table in docs/benchmarks.md.

The load generator is a minimal asyncio HTTP/1.1 client (keep-alive, Content-Length and
chunked bodies) rather than httpx: on a two-core machine the client shares the CPU with the
server, and a client that spends ~10x less CPU per request disturbs the measurement less.
Its own CPU per request is recorded next to the server's so that can be checked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import pkgutil
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
DOCS_FILE = REPO / "docs" / "benchmarks.md"
HOST = "127.0.0.1"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "watchkeeper_bench"
SEED_MARKER = "BENCH-SEED "
DB_LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


class BenchError(RuntimeError):
    """The run cannot produce an honest number (server down, wrong response, bad seed)."""


# --- Scenarios ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One URL to measure. `validate(status, body)` raises BenchError on a wrong answer."""

    label: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    expect_status: int = 200
    validate: Callable[[int, bytes], None] | None = None


BASELINE = Target("GET /healthz (baseline)", "/healthz")


class Scenario:
    """A named benchmark. Subclasses live in bench/scenarios/ as `SCENARIO = MyScenario()`."""

    name: str = ""
    description: str = ""

    def seed(self) -> dict:
        """Runs inside Django on the fresh database; returns JSON the targets need."""
        raise NotImplementedError

    def targets(self, seeded: dict) -> list[Target]:
        raise NotImplementedError


def scenarios() -> dict[str, Scenario]:
    from bench import scenarios as package

    found: dict[str, Scenario] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if isinstance(scenario, Scenario):
            found[scenario.name] = scenario
    return dict(sorted(found.items()))


# --- Statistics ---------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, interpolating between the two
    closest ranks (the 'linear' method of numpy and of Python's statistics.quantiles
    'inclusive')."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    position = (len(sorted_values) - 1) * q / 100
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


@dataclass
class LoadResult:
    """What the client saw in one measured window."""

    latencies: list[float]  # seconds, successful responses only
    errors: int
    elapsed: float  # seconds, wall clock of the window
    statuses: Counter = field(default_factory=Counter)
    client_cpu: float = 0.0  # CPU seconds this process spent driving the window


@dataclass
class Measurement:
    """One row of a benchmark table."""

    target: str
    path: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms_per_req: float
    client_cpu_ms_per_req: float
    server_rss_mb: float
    server_fds: int = 0  # peak open file descriptors of the server's process tree
    db_connections: int | None = None  # peak backends on the bench database (PostgreSQL)
    ratio: float | None = None  # rps / baseline rps, None for the baseline itself
    statuses: dict[str, int] = field(default_factory=dict)
    profile: dict | None = None  # with --profile: top frames by share of py-spy samples


def summarize(target: Target, load: LoadResult, *, server_cpu: float, server_rss: int,
              baseline_rps: float | None, server_fds: int = 0,
              db_connections: int | None = None) -> Measurement:
    ok = sorted(load.latencies)
    done = len(ok) + load.errors
    if not ok:
        raise BenchError(f"{target.label}: no successful response in the measured window "
                         f"(statuses {dict(load.statuses)})")
    rps = len(ok) / load.elapsed if load.elapsed > 0 else 0.0
    return Measurement(
        target=target.label,
        path=target.path,
        requests=done,
        errors=load.errors,
        rps=round(rps, 1),
        p50_ms=round(percentile(ok, 50) * 1000, 2),
        p95_ms=round(percentile(ok, 95) * 1000, 2),
        p99_ms=round(percentile(ok, 99) * 1000, 2),
        server_cpu_ms_per_req=round(server_cpu * 1000 / done, 3),
        client_cpu_ms_per_req=round(load.client_cpu * 1000 / done, 3),
        server_rss_mb=round(server_rss / 2**20, 1),
        server_fds=server_fds,
        db_connections=db_connections,
        ratio=round(rps / baseline_rps, 3) if baseline_rps else None,
        statuses={str(k): v for k, v in sorted(load.statuses.items(), key=str)},
    )


# --- Report -------------------------------------------------------------------------------

TABLE_HEAD = ("| Target | req/s | vs /healthz | p50 ms | p95 ms | p99 ms | requests | errors "
              "| server CPU ms/req | server RSS MB | server FDs | DB conns |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def render_table(rows: list[dict]) -> str:
    lines = [TABLE_HEAD]
    for row in rows:
        if row.get("skipped"):
            lines.append(f"| {row['target']} | not measured: {row['skipped']} "
                         "| | | | | | | | | | |")
            continue
        ratio = "1.00 (baseline)" if row.get("ratio") is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['target']} | {row['rps']:,.0f} | {ratio} | {row['p50_ms']:.1f} "
            f"| {row['p95_ms']:.1f} | {row['p99_ms']:.1f} | {row['requests']:,} "
            f"| {row['errors']:,} | {row['server_cpu_ms_per_req']:.2f} "
            f"| {row['server_rss_mb']:.0f} | {row.get('server_fds', 0)} "
            f"| {'—' if row.get('db_connections') is None else row['db_connections']} |"
        )
    return "\n".join(lines)


def render_run(result: dict) -> str:
    """One database's table with the facts needed to compare it with another run."""
    meta = result["meta"]
    db = DB_LABELS.get(meta["db"], meta["db"])
    head = (
        f"**{db}** ({meta['db_version']}) — measured {meta['date']} on {meta['cores']} cores "
        f"(load average {meta['loadavg']:.2f} at start), Python {meta['python']}, "
        f"Django {meta['django']}; {meta['concurrency']} connections, "
        f"{meta['duration']:g} s or {meta['max_requests']:,} requests per target in "
        f"{meta.get('rounds', 1)} interleaved rounds after {meta['warmup']:g} s warm-up; "
        f"server `{meta['server']}`"
        + "".join(f", `{k}={v}`" for k, v in sorted(meta.get("env", {}).items())) + "."
    )
    return f"{head}\n\n{render_table(result['rows'])}"


def begin_marker(name: str) -> str:
    return (f"<!-- bench:{name}:begin — generated by `python -m bench run {name} "
            f"--write-docs`; edit outside these markers -->")


def write_standalone_docs(name: str, module: str, description: str, render) -> None:
    """Rewrite the docs section of a scenario that has its own driver (python -m
    bench.scenarios.<module>) from the results stored for each database."""
    stored = [json.loads(p.read_text()) for db in ("sqlite", "postgres")
              if (p := RESULTS_DIR / f"{name}-{db}.json").exists()]
    begin = (f"<!-- bench:{name}:begin — generated by `python -m bench.scenarios.{module} "
             f"--write-docs`; edit outside these markers -->")
    body = "\n\n".join([begin, description.split("\n\nRun")[0].strip(),
                         *(render(r) for r in stored), end_marker(name)])
    DOCS_FILE.write_text(replace_section(DOCS_FILE.read_text(), name, body))


def end_marker(name: str) -> str:
    return f"<!-- bench:{name}:end -->"


def render_section(name: str, description: str, results: list[dict]) -> str:
    parts = [begin_marker(name), description.strip()]
    parts += [render_run(result) for result in results]
    parts.append(end_marker(name))
    return "\n\n".join(parts)


DOCS_INTRO = """# Benchmarks

Named benchmarks of the real server stack on loopback, run with `python -m bench` (see
bench/README.md). Each target is reported beside /healthz measured on the same server in the
same run: "vs /healthz" is the target's requests/s divided by that ceiling. Numbers depend on
the machine and on what else runs on it; compare rows of one table, not tables of two machines.
"""


def replace_section(doc: str, name: str, generated: str) -> str:
    """Put `generated` under the `## name` heading of `doc`.

    Only that heading's section changes; inside it, only the text between the benchmark's
    markers is replaced, so hand-written notes in the section (e.g. "what limits it") stay.
    A missing section is appended.
    """
    lines = doc.splitlines()
    heading = f"## {name}"
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    except StopIteration:
        return doc.rstrip("\n") + f"\n\n{heading}\n\n{generated}\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    section = "\n".join(lines[start + 1:end])
    begin, finish = begin_marker(name).split(" — ")[0], end_marker(name)
    b, e = section.find(begin), section.find(finish)
    if b != -1 and e > b:
        body = section[:b] + generated + section[e + len(finish):]
    else:
        body = f"\n{generated}\n"
    pieces = ["\n".join(lines[:start + 1]), body.strip("\n")]
    if end < len(lines):
        pieces.append("\n".join(lines[end:]))
    return "\n\n".join(pieces).rstrip("\n") + "\n"


def write_docs(scenario: Scenario, path: Path = DOCS_FILE,
               results_dir: Path = RESULTS_DIR) -> Path:
    """Render every stored result of the scenario (SQLite first) into its docs section."""
    results = []
    for db in ("sqlite", "postgres"):
        file = results_dir / f"{scenario.name}-{db}.json"
        if file.exists():
            results.append(json.loads(file.read_text()))
    if not results:
        raise BenchError(f"no results for {scenario.name} in {results_dir}")
    doc = path.read_text() if path.exists() else DOCS_INTRO
    path.write_text(replace_section(doc, scenario.name,
                                    render_section(scenario.name, scenario.description,
                                                   results)))
    return path


# --- Load generator -----------------------------------------------------------------------

def build_request(path: str, port: int, headers: dict[str, str]) -> bytes:
    merged = {"Host": f"{HOST}:{port}", "User-Agent": "watchkeeper-bench", "Accept": "*/*"}
    merged.update(headers)
    lines = [f"GET {path} HTTP/1.1", *(f"{name}: {value}" for name, value in merged.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response: (status, body, connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise BenchError(f"not an HTTP response: {status_line!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    reusable = headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            chunks += await reader.readexactly(size)
            await reader.readexactly(2)
        return status, bytes(chunks), reusable
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"])), reusable
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", reusable
    return status, await reader.read(), False  # delimited by close


async def fetch(port: int, target: Target) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(build_request(target.path, port, target.headers))
        await writer.drain()
        status, body, _ = await read_response(reader)
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def drive(port: int, target: Target, *, concurrency: int, duration: float,
                max_requests: int) -> LoadResult:
    """Send `target` over `concurrency` keep-alive connections until `duration` seconds or
    `max_requests` requests, whichever comes first."""
    request = build_request(target.path, port, target.headers)
    return await drive_requests(port, lambda: (request, None),
                                lambda status, _body, _ctx: status == target.expect_status,
                                concurrency=concurrency, duration=duration,
                                max_requests=max_requests)


async def drive_requests(port: int, make_request: Callable[[], tuple[bytes, Any]],
                         accept: Callable[[int, bytes, Any], bool], *, concurrency: int,
                         duration: float, max_requests: int | None = None) -> LoadResult:
    """The load loop of every scenario: `concurrency` keep-alive connections, each sending
    `make_request()` -> (raw request, context) until `duration` seconds (or `max_requests`
    requests); an answer counts as a success, with its latency, when
    `accept(status, body, context)` is true."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    state = {"issued": 0, "errors": 0}
    clock = time.perf_counter
    deadline = clock() + duration

    async def connection() -> None:
        reader = writer = None
        while clock() < deadline and (max_requests is None or state["issued"] < max_requests):
            state["issued"] += 1
            request, context = make_request()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                started = clock()
                writer.write(request)
                status, body, reusable = await read_response(reader)
                elapsed = clock() - started
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError, BenchError) as exc:
                statuses[type(exc).__name__] += 1
                state["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            statuses[status] += 1
            if accept(status, body, context):
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


# --- Server process -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def has_command(name: str, env: dict[str, str]) -> bool:
    probe = subprocess.run(python_cmd("watchkeeper.cli", "help", name), env=env,
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0


def server_command(port: int, env: dict[str, str]) -> list[str]:
    """`watchkeeper web` when the project has it, else the same uvicorn it wraps."""
    if has_command("web", env):
        return python_cmd("watchkeeper.cli", "web", "--host", HOST, "--port", str(port),
                          "--workers", "1")
    return python_cmd("uvicorn", "watchkeeper.asgi:application", "--host", HOST, "--port",
                      str(port), "--workers", "1", "--no-access-log", "--log-level", "warning")


class Server:
    """The server subprocess in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.port = free_port()
        self.command = server_command(self.port, env)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def log_tail(self, chars: int = 3000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
            with contextlib.suppress(OSError, BenchError, asyncio.IncompleteReadError):
                status, _ = asyncio.run(fetch(self.port, BASELINE))
                if status == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"server not answering /healthz after {timeout:g}s:\n"
                         f"{self.log_tail()}")

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def fds(self) -> int:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.num_fds()
        return total

    def rss(self) -> int:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total


class Peaks:
    """Samples the server while a window runs and keeps the peaks: RSS, open file descriptors
    and, on PostgreSQL, backends connected to the bench database. The last two show
    connections that outlive their request (a leak grows them with the request count)."""

    def __init__(self, server: Server, pg_url: str | None = None, interval: float = 0.2):
        self.server, self.pg_url, self.interval = server, pg_url, interval
        self.rss = self.fds = 0
        self.db_connections: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, pg) -> None:
        self.rss = max(self.rss, self.server.rss())
        self.fds = max(self.fds, self.server.fds())
        if pg is not None:
            count = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                               [PG_BENCH_DB]).fetchone()[0]
            self.db_connections = max(self.db_connections or 0, count)

    def _run(self) -> None:
        with contextlib.ExitStack() as stack:
            pg = None
            if self.pg_url:
                import psycopg

                pg = stack.enter_context(psycopg.connect(self.pg_url, autocommit=True))
            while not self._stop.is_set():
                self._sample(pg)
                self._stop.wait(self.interval)
            self._sample(pg)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# --- Databases ----------------------------------------------------------------------------

BENCH_DB_NAME = re.compile(r"watchkeeper_bench[a-z0-9_]{0,46}")


@contextlib.contextmanager
def database(db: str, data_dir: Path, admin_url: str,
             name: str = PG_BENCH_DB) -> Iterator[str]:
    """Yield a WATCHKEEPER_DATABASE_URL for a fresh database, dropped afterwards.

    On PostgreSQL the database is `name` (default `watchkeeper_bench`), dropped first if a
    crashed run left it behind and dropped again on the way out (WITH FORCE, so connections
    the run forgot to close do not keep it alive). Because it is dropped unasked, `name`
    must start with `watchkeeper_bench` (lowercase letters, digits, underscores): a typo
    can never name a real database. On SQLite it is `bench.db` in `data_dir`, whatever
    `name` says (the data directory is fresh per run already).
    """
    if not BENCH_DB_NAME.fullmatch(name):
        raise ValueError(f"bench database name {name!r}: must start with 'watchkeeper_bench' "
                         "and hold only lowercase letters, digits and underscores "
                         "(at most 63 characters)")
    if db == "sqlite":
        yield f"sqlite:///{data_dir / 'bench.db'}"
        return
    import psycopg
    from psycopg import sql

    def admin(statement: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

    admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
    admin("CREATE DATABASE {}")
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def bench_env(data_dir: Path, database_url: str,
              extra: dict[str, str] | None = None) -> dict[str, str]:
    """The developer's environment without their WATCHKEEPER_* settings, plus ours and the
    run's explicit `--env` settings (recorded in the results)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    env.update({
        "WATCHKEEPER_DATA_DIR": str(data_dir),
        "WATCHKEEPER_DATABASE_URL": database_url,
        "WATCHKEEPER_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "watchkeeper.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    })
    env.update(extra or {})
    return env


def run_step(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-4000:]}")
    return done.stdout


def seed_in_subprocess(name: str, env: dict[str, str]) -> dict:
    out = run_step(python_cmd("bench", "_seed", name), env, f"seeding {name}")
    for line in reversed(out.splitlines()):
        if line.startswith(SEED_MARKER):
            return json.loads(line[len(SEED_MARKER):])
    raise BenchError(f"seed of {name} printed no result:\n{out[-2000:]}")


def seed_here(name: str) -> None:
    """Entry point of the seed subprocess (`python -m bench _seed NAME`)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "watchkeeper.settings")
    django.setup()
    seeded = scenarios()[name].seed()
    print(SEED_MARKER + json.dumps(seeded), flush=True)


def versions(env: dict[str, str]) -> dict[str, str]:
    """Django and database server versions as the server sees them."""
    code = ("import json, django; django.setup(); from django.db import connection;"
            "connection.ensure_connection();"
            "v = connection.Database.sqlite_version if connection.vendor == 'sqlite' "
            "else connection.cursor().connection.info.server_version;"
            "print(json.dumps({'django': django.get_version(), 'vendor': connection.vendor,"
            " 'db_version': str(v)}))")
    info = json.loads(run_step([sys.executable, "-c", code], env, "version probe")
                      .strip().splitlines()[-1])
    if info["vendor"] == "postgresql":
        raw = int(info["db_version"])  # e.g. 170002 -> 17.2
        info["db_version"] = f"PostgreSQL {raw // 10000}.{raw % 10000}"
    else:
        info["db_version"] = f"SQLite {info['db_version']}"
    return info


@contextlib.contextmanager
def machine_lock(path: Path | None = None, wait: float = 1800) -> Iterator[None]:
    """One benchmark run at a time on this machine: two runs would share the CPU (and, on
    PostgreSQL, the one `watchkeeper_bench` database), so the second waits for the first."""
    import fcntl

    path = path or Path(tempfile.gettempdir()) / "watchkeeper-bench.lock"
    with path.open("a+") as fh:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError(f"another benchmark held {path} for {wait:g}s") from None
                if not announced:
                    fh.seek(0)
                    print(f"waiting for another benchmark run ({fh.read().strip()})",
                          file=sys.stderr, flush=True)
                    announced = True
                time.sleep(1)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {' '.join(sys.argv)}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- A run --------------------------------------------------------------------------------

@dataclass
class Options:
    duration: float = 12.0
    rounds: int = 3
    concurrency: int = 8
    max_requests: int = 50_000
    warmup: float = 2.0
    pg_admin_url: str = PG_ADMIN_URL
    keep: bool = False
    profile: bool = False
    env: dict[str, str] = field(default_factory=dict)  # WATCHKEEPER_* settings of the run
    tag: str = ""  # names a variant's results file; only untagged results go to the docs


def check_target(port: int, target: Target) -> None:
    status, body = asyncio.run(fetch(port, target))
    if status != target.expect_status:
        # First line: the reason shown in the table; the rest: the body, for the log.
        raise BenchError(f"HTTP {status} where {target.expect_status} was expected\n"
                         f"{body[:300]!r}")
    if target.validate:
        target.validate(status, body)


@dataclass
class Window:
    """What one target got over all its measured windows (one per round)."""

    load: LoadResult
    server_cpu: float = 0.0
    rss: int = 0
    fds: int = 0
    db_connections: int | None = None

    def add(self, load: LoadResult, server_cpu: float, peaks: Peaks) -> None:
        self.load = merge_loads(self.load, load)
        self.server_cpu += server_cpu
        self.rss, self.fds = max(self.rss, peaks.rss), max(self.fds, peaks.fds)
        if peaks.db_connections is not None:
            self.db_connections = max(self.db_connections or 0, peaks.db_connections)


def merge_loads(a: LoadResult, b: LoadResult) -> LoadResult:
    return LoadResult(latencies=a.latencies + b.latencies, errors=a.errors + b.errors,
                      elapsed=a.elapsed + b.elapsed, statuses=a.statuses + b.statuses,
                      client_cpu=a.client_cpu + b.client_cpu)


def measure_window(server: Server, target: Target, opts: Options, pg_url: str | None,
                   into: Window) -> None:
    seconds = opts.duration / opts.rounds
    cap = -(-opts.max_requests // opts.rounds)
    cpu_before = server.cpu_seconds()
    with Peaks(server, pg_url) as peaks:
        load = asyncio.run(drive(server.port, target, concurrency=opts.concurrency,
                                 duration=seconds, max_requests=cap))
    into.add(load, server.cpu_seconds() - cpu_before, peaks)


def measure_all(server: Server, targets: list[Target], opts: Options, pg_url: str | None,
                log=print) -> tuple[list[Measurement], list[dict]]:
    """Check and warm up every target, then measure them in `rounds` interleaved rounds
    (baseline, target 1, target 2, baseline, ...), so that a change in what else runs on the
    machine weighs on the baseline and the targets alike and the ratio stays meaningful."""
    live: list[Target] = []
    skipped: list[dict] = []
    for target in targets:
        try:
            check_target(server.port, target)
        except BenchError as exc:
            if target is BASELINE:
                raise
            # Reported, not hidden: the table shows which target has no number and why.
            log(f"{target.label}: NOT MEASURED: {exc}\n{server.log_tail(1500)}")
            skipped.append({"target": target.label, "path": target.path,
                            "skipped": str(exc).splitlines()[0][:160]})
            continue
        asyncio.run(drive(server.port, target, concurrency=opts.concurrency,
                          duration=opts.warmup, max_requests=opts.max_requests))
        live.append(target)
    windows = {t.label: Window(LoadResult(latencies=[], errors=0, elapsed=0.0)) for t in live}
    for n in range(opts.rounds):
        for target in live:
            measure_window(server, target, opts, pg_url, windows[target.label])
        log(f"round {n + 1}/{opts.rounds} done")
    rows: list[Measurement] = []
    baseline_rps = None
    for target in live:
        w = windows[target.label]
        row = summarize(target, w.load, server_cpu=w.server_cpu, server_rss=w.rss,
                        server_fds=w.fds, db_connections=w.db_connections,
                        baseline_rps=baseline_rps)
        if target is BASELINE:
            baseline_rps = row.rps
        rows.append(row)
    return rows, skipped


# --- Profiling ----------------------------------------------------------------------------

def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_target(server: Server, target: Target, opts: Options, out: Path) -> dict:
    """Sample the server with py-spy during an extra window of load (after the measured one,
    so the profiler's own CPU never shows in the numbers) and summarise the stacks.

    Only samples of the thread holding the GIL are kept (--gil): with one worker that is
    where the server's Python CPU goes; idle pool threads would otherwise dominate. Time in
    C code that releases the GIL (the SQLite engine, socket I/O) is therefore not in it."""
    seconds = max(2, round(opts.duration))
    spy = subprocess.Popen(
        [py_spy(), "record", "--pid", str(server.proc.pid), "--subprocesses",
         "--duration", str(seconds), "--rate", "200", "--format", "raw", "--nolineno",
         "--gil", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # py-spy attaches before the load starts
    asyncio.run(drive(server.port, target, concurrency=opts.concurrency,
                      duration=seconds + 1, max_requests=opts.max_requests))
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed ({spy.returncode}): {err[-500:]}")
    return profile_summary(out.read_text())


def profile_summary(folded: str, top: int = 12) -> dict:
    """From py-spy's raw (folded) stacks, "frame;frame;... count" per line: the functions
    with the largest share of samples, inclusive (anywhere on the stack, counted once per
    stack) and self (the leaf, where the CPU actually was), and self time per package."""
    inclusive: Counter = Counter()
    leaf: Counter = Counter()
    packages: Counter = Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
        # The first frame names the process/thread when --subprocesses is on, not code.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        leaf[frames[-1]] += n
        packages[frame_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n

    def share(counter: Counter) -> list[list]:
        return [[frame, round(100 * n / total, 1)] for frame, n in counter.most_common(top)]

    return {"samples": total, "inclusive": share(inclusive) if total else [],
            "self": share(leaf) if total else [],
            "packages": share(packages) if total else []}


def frame_package(frame: str) -> str:
    """'execute (django/db/backends/utils.py)' -> 'django/db'; a top-level module such as
    'wait (threading.py)' -> 'threading'."""
    _, _, where = frame.rpartition(" (")
    parts = where.rstrip(")").split("/")
    if len(parts) == 1:
        return parts[0].removesuffix(".py") or frame
    return "/".join(parts[:min(2, len(parts) - 1)])


def result_stem(name: str, db: str, tag: str = "") -> str:
    return f"{name}-{db}-{tag}" if tag else f"{name}-{db}"


def run_scenario(scenario: Scenario, db: str, opts: Options, log=print) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix=f"wk-bench-{scenario.name}-{db}-"))
    (data_dir / "static").mkdir()  # STATIC_ROOT; WhiteNoise warns on every start without it
    try:
        with database(db, data_dir, opts.pg_admin_url) as url:
            env = bench_env(data_dir, url, opts.env)
            log(f"[{db}] migrate")
            run_step(python_cmd("watchkeeper.cli", "migrate", "--noinput", "--skip-checks"),
                     env, "migrate")
            log(f"[{db}] seed {scenario.name}")
            seeded = seed_in_subprocess(scenario.name, env)
            info = versions(env)
            meta = {
                "benchmark": scenario.name, "db": db, "db_version": info["db_version"],
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "cores": os.cpu_count(), "loadavg": os.getloadavg()[0],
                "python": platform.python_version(), "django": info["django"],
                "machine": f"{platform.system()} {platform.machine()}",
                "duration": opts.duration, "rounds": opts.rounds, "warmup": opts.warmup,
                "concurrency": opts.concurrency, "max_requests": opts.max_requests,
                "env": opts.env, "tag": opts.tag,
            }
            with Server(env, data_dir / "server.log") as server:
                shown = (["watchkeeper", *server.command[3:]]
                         if server.command[2] == "watchkeeper.cli" else server.command[2:])
                meta["server"] = " ".join(shown).replace(f" {server.port} ", " <free> ")
                log(f"[{db}] server up on port {server.port}: {meta['server']}")
                pg_url = opts.pg_admin_url if db == "postgres" else None
                targets = scenario.targets(seeded)
                rows, skipped = measure_all(server, [BASELINE, *targets], opts, pg_url,
                                            log=lambda msg: log(f"[{db}] {msg}"))
                for row in rows:
                    log(f"[{db}] {row.target}: {row.rps:,.0f} req/s"
                        + (f" ({row.ratio:.2f} of baseline)" if row.ratio else "")
                        + f", p95 {row.p95_ms:.1f} ms, {row.errors} errors")
                if opts.profile:
                    for n, target in enumerate([BASELINE, *targets]):
                        row = next((r for r in rows if r.target == target.label), None)
                        if row is None:
                            continue
                        out = RESULTS_DIR / f"{result_stem(scenario.name, db, opts.tag)}-{n}.folded"
                        row.profile = profile_target(server, target, opts, out)
                        log(f"[{db}] profile of {target.label} ({out.name}, "
                            f"{row.profile['samples']} samples), inclusive %:")
                        for frame, pct in row.profile["inclusive"]:
                            log(f"    {pct:5.1f}  {frame}")
                        for key in ("self", "packages"):
                            log(f"  {key} %:")
                            for frame, pct in row.profile[key]:
                                log(f"    {pct:5.1f}  {frame}")
        return {"meta": meta, "rows": [asdict(r) for r in rows] + skipped}
    finally:
        if opts.keep:
            log(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


# --- Command line -------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the benchmarks")
    run = sub.add_parser("run", help="run one benchmark")
    run.add_argument("name")
    run.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    run.add_argument("--duration", type=float, default=Options.duration,
                     help="seconds measured per target (default %(default)s)")
    run.add_argument("--concurrency", type=int, default=Options.concurrency,
                     help="keep-alive connections (default %(default)s)")
    run.add_argument("--rounds", type=int, default=Options.rounds,
                     help="interleaved rounds the duration is split into (default %(default)s)")
    run.add_argument("--max-requests", type=int, default=Options.max_requests,
                     help="request cap per target (default %(default)s)")
    run.add_argument("--warmup", type=float, default=Options.warmup,
                     help="warm-up seconds per target (default %(default)s)")
    run.add_argument("--pg-admin-url", default=PG_ADMIN_URL,
                     help="PostgreSQL URL used to create/drop watchkeeper_bench")
    run.add_argument("--keep", action="store_true", help="keep the data dir (server log)")
    run.add_argument("--env", action="append", default=[], metavar="WATCHKEEPER_X=VALUE",
                     help="a setting for the whole stack of the run (repeatable)")
    run.add_argument("--tag", default="",
                     help="results file suffix for a variant (tagged runs skip the docs)")
    run.add_argument("--profile", action="store_true",
                     help="after measuring, sample each target with py-spy (extra: bench)")
    run.add_argument("--write-docs", action="store_true",
                     help="write the results into docs/benchmarks.md")
    seed = sub.add_parser("_seed")  # internal: runs in the seed subprocess
    seed.add_argument("name")
    args = parser.parse_args(argv)

    if args.command == "_seed":
        seed_here(args.name)
        return 0
    available = scenarios()
    if args.command == "list":
        for name, scenario in available.items():
            print(f"{name:20} {scenario.description.strip().splitlines()[0]}")
        return 0
    if args.name not in available:
        parser.error(f"unknown benchmark {args.name!r}; try: {', '.join(available)}")
    if args.duration <= 0 or min(args.concurrency, args.max_requests, args.rounds) < 1:
        parser.error("duration, concurrency, max-requests and rounds must be positive")
    scenario = available[args.name]
    extra_env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("WATCHKEEPER_"):
            parser.error(f"--env takes WATCHKEEPER_NAME=VALUE, not {item!r}")
        extra_env[key] = value
    if args.tag and not args.tag.replace("-", "").replace("_", "").isalnum():
        parser.error("--tag takes letters, digits, - and _")
    if args.tag and args.write_docs:
        parser.error("--write-docs renders the untagged results; run without --tag")
    opts = Options(duration=args.duration, concurrency=args.concurrency, rounds=args.rounds,
                   max_requests=args.max_requests, warmup=args.warmup,
                   pg_admin_url=args.pg_admin_url, keep=args.keep, profile=args.profile,
                   env=extra_env, tag=args.tag)
    if opts.profile and py_spy() is None:
        parser.error("--profile needs py-spy: pip install -e '.[bench]'")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    status = 0
    for db in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
        try:
            with machine_lock():
                result = run_scenario(scenario, db, opts)
        except BenchError as exc:
            print(f"bench {scenario.name} on {db}: {exc}", file=sys.stderr)
            return 1
        out = RESULTS_DIR / f"{result_stem(scenario.name, db, opts.tag)}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\n{render_run(result)}\n\nwrote {out.relative_to(REPO)}")
        if any(row.get("skipped") for row in result["rows"]):
            status = 1
    if args.write_docs:
        path = write_docs(scenario)
        print(f"wrote {path.relative_to(REPO)}")
    return status
