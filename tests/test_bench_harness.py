"""The benchmark harness's statistics, report and HTTP client code (bench/harness.py).

Only the arithmetic, the Markdown and the response parsing are tested here; the timed runs
themselves live in `python -m bench run`, never in CI.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import harness
from bench.harness import (
    BenchError,
    LoadResult,
    Target,
    percentile,
    render_table,
    replace_section,
    summarize,
)

TARGET = Target("GET /x", "/x")


# --- percentile ---------------------------------------------------------------------------

def test_percentile_interpolates_between_closest_ranks():
    # Given five sorted values
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    # Then the median is the middle one and others interpolate linearly (numpy's default)
    assert percentile(values, 50) == 3.0
    assert percentile(values, 25) == 2.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0


def test_percentile_of_one_value_is_that_value():
    assert percentile([7.5], 99) == 7.5


def test_percentile_refuses_empty_input_and_bad_q():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# --- summarize ----------------------------------------------------------------------------

def test_summarize_computes_rates_latencies_cpu_and_ratio():
    # Given 100 successes of 1..100 ms and 4 errors over 2 seconds, 0.52 s of server CPU
    load = LoadResult(latencies=[i / 1000 for i in range(100, 0, -1)], errors=4, elapsed=2.0,
                      client_cpu=0.104)
    # When it is summarised against a 200 req/s baseline
    row = summarize(TARGET, load, server_cpu=0.52, server_rss=150 * 2**20, baseline_rps=200.0,
                    server_fds=40, db_connections=12)
    # Then req/s counts successes only, CPU is per completed request, ratio is rps/baseline
    assert row.requests == 104
    assert row.errors == 4
    assert row.rps == 50.0
    assert row.ratio == 0.25
    assert row.p50_ms == 50.5
    assert row.p99_ms == pytest.approx(99.01)
    assert row.server_cpu_ms_per_req == 5.0
    assert row.client_cpu_ms_per_req == 1.0
    assert row.server_rss_mb == 150.0
    assert (row.server_fds, row.db_connections) == (40, 12)


def test_rounds_merge_into_one_window():
    # Given two interleaved windows of the same target
    a = LoadResult(latencies=[0.001, 0.003], errors=1, elapsed=2.0, client_cpu=0.01,
                   statuses=harness.Counter({200: 2, 500: 1}))
    b = LoadResult(latencies=[0.002], errors=0, elapsed=1.0, client_cpu=0.02,
                   statuses=harness.Counter({200: 1}))
    # When they are merged
    merged = harness.merge_loads(a, b)
    # Then counts, time and CPU add up and the latencies are pooled for the percentiles
    assert sorted(merged.latencies) == [0.001, 0.002, 0.003]
    assert (merged.errors, merged.elapsed, merged.statuses) == (1, 3.0, {200: 3, 500: 1})
    assert merged.client_cpu == pytest.approx(0.03)


def test_summarize_baseline_has_no_ratio():
    load = LoadResult(latencies=[0.001] * 10, errors=0, elapsed=1.0)
    row = summarize(TARGET, load, server_cpu=0.01, server_rss=0, baseline_rps=None)
    assert row.ratio is None
    assert row.rps == 10.0


def test_summarize_refuses_a_window_without_success():
    # Given a window where every response was an error
    load = LoadResult(latencies=[], errors=12, elapsed=1.0)
    # Then there is no honest number to report
    with pytest.raises(BenchError):
        summarize(TARGET, load, server_cpu=0.1, server_rss=0, baseline_rps=100.0)


# --- profile summary ----------------------------------------------------------------------

def test_profile_summary_ranks_frames_inclusive_and_self():
    # Given folded stacks as py-spy writes them (process frame first with --subprocesses)
    folded = "\n".join([
        "process 1:\"web\";main (cli.py);view (views.py);render (template.py) 6",
        "process 1:\"web\";main (cli.py);view (views.py);execute (db.py) 3",
        "process 1:\"web\";main (cli.py);loop (asyncio.py) 1",
        "garbage line",
    ])
    # When it is summarised
    summary = harness.profile_summary(folded, top=3)
    # Then shares are of all samples; a frame counts once per stack; self is the leaf
    assert summary["samples"] == 10
    assert summary["inclusive"] == [["main (cli.py)", 100.0], ["view (views.py)", 90.0],
                                    ["render (template.py)", 60.0]]
    assert summary["self"] == [["render (template.py)", 60.0], ["execute (db.py)", 30.0],
                               ["loop (asyncio.py)", 10.0]]
    assert summary["packages"] == [["template", 60.0], ["db", 30.0], ["asyncio", 10.0]]


def test_frame_package_groups_by_the_first_two_path_parts():
    assert harness.frame_package("execute (django/db/backends/utils.py)") == "django/db"
    assert harness.frame_package("render (django/template/base.py)") == "django/template"
    assert harness.frame_package("get (rest_framework/generics.py)") == "rest_framework"
    assert harness.frame_package("wait (threading.py)") == "threading"


def test_profile_summary_of_nothing_is_empty():
    assert harness.profile_summary("") == {"samples": 0, "inclusive": [], "self": [],
                                           "packages": []}


# --- report -------------------------------------------------------------------------------

def _row(target, rps, ratio):
    return {"target": target, "path": "/", "requests": 1000, "errors": 0, "rps": rps,
            "p50_ms": 1.234, "p95_ms": 2.5, "p99_ms": 9.99, "server_cpu_ms_per_req": 1.5,
            "client_cpu_ms_per_req": 0.1, "server_rss_mb": 91.4, "ratio": ratio,
            "server_fds": 15, "db_connections": None}


def test_render_table_marks_baseline_ratio_and_unmeasured_targets():
    rows = [_row("GET /healthz (baseline)", 1500.0, None), _row("GET /api", 300.0, 0.2),
            {"target": "GET /", "path": "/", "skipped": "HTTP 404 where 200 was expected"}]
    table = render_table(rows).splitlines()
    assert table[0].startswith("| Target | req/s | vs /healthz |")
    assert table[2] == ("| GET /healthz (baseline) | 1,500 | 1.00 (baseline) | 1.2 | 2.5 | 10.0 "
                        "| 1,000 | 0 | 1.50 | 91 | 15 | — |")
    assert "| GET /api | 300 | 0.20 |" in table[3]
    assert table[4].startswith("| GET / | not measured: HTTP 404 where 200 was expected |")
    # every row has the same number of cells as the header
    assert {line.count("|") for line in table} == {13}


DOC = """# Benchmarks

Intro text.

## other_bench

Other numbers stay.

## api_dashboard

old generated text

## last_bench

Last.
"""


def test_replace_section_changes_only_its_own_section():
    # Given a document with three benchmark sections
    # When the middle one is written
    doc = replace_section(DOC, "api_dashboard", "NEW TABLE")
    # Then only its body changed and the neighbours are intact
    assert "old generated text" not in doc
    assert "## other_bench\n\nOther numbers stay.\n\n## api_dashboard\n\nNEW TABLE\n\n" \
           "## last_bench\n\nLast.\n" in doc
    assert doc.startswith("# Benchmarks\n\nIntro text.\n")


def test_replace_section_keeps_hand_written_notes_outside_the_markers():
    # Given a section written by the harness, then annotated by hand below the markers
    generated = harness.render_section("api_dashboard", "Desc one.", [])
    doc = replace_section(DOC, "api_dashboard", generated)
    doc = doc.replace("## last_bench", "### What limits it\n\nTemplate rendering.\n\n"
                                       "## last_bench")
    # When the benchmark is written again
    doc = replace_section(doc, "api_dashboard",
                          harness.render_section("api_dashboard", "Desc two.", []))
    # Then the generated part is new and the notes stay
    assert "Desc two." in doc and "Desc one." not in doc
    assert "### What limits it\n\nTemplate rendering." in doc
    assert doc.count(harness.end_marker("api_dashboard")) == 1
    assert "Last.\n" in doc


def test_replace_section_appends_a_missing_section():
    doc = replace_section("# Benchmarks\n\nIntro.\n", "new_bench", "TABLE")
    assert doc == "# Benchmarks\n\nIntro.\n\n## new_bench\n\nTABLE\n"


def test_write_docs_renders_each_stored_database_result(tmp_path):
    # Given stored results of one benchmark on both databases
    results = tmp_path / "results"
    results.mkdir()
    for db, rps in (("sqlite", 700.0), ("postgres", 650.0)):
        meta = {"db": db, "db_version": f"{db} 1", "date": "2026-11-25 03:00 UTC", "cores": 2,
                "loadavg": 0.5, "python": "3.11.7", "django": "5.2.19", "concurrency": 8,
                "duration": 10.0, "max_requests": 50000, "warmup": 2.0,
                "server": "watchkeeper web"}
        (results / f"api_dashboard-{db}.json").write_text(json.dumps(
            {"meta": meta, "rows": [_row("GET /healthz (baseline)", rps, None)]}))
    docs = tmp_path / "benchmarks.md"
    # When the docs are written
    harness.write_docs(harness.scenarios()["api_dashboard"], docs, results)
    # Then both tables are there, SQLite first, with the facts needed to compare runs
    text = docs.read_text()
    assert text.startswith("# Benchmarks")
    assert text.index("**SQLite**") < text.index("**PostgreSQL**")
    assert "| GET /healthz (baseline) | 700 |" in text
    assert "| GET /healthz (baseline) | 650 |" in text
    assert "on 2 cores" in text and "Django 5.2.19" in text


# --- one run at a time ----------------------------------------------------------------------

def test_machine_lock_makes_a_second_run_wait(tmp_path):
    # Given a run holding the lock
    lock = tmp_path / "bench.lock"
    with harness.machine_lock(lock):
        # When a second run asks for it without waiting
        # Then it is refused instead of running beside the first
        with pytest.raises(BenchError), harness.machine_lock(lock, wait=0):
            pass
    # And once the first run is done the lock is free again
    with harness.machine_lock(lock, wait=0):
        assert "pid" in lock.read_text()


# --- the fresh database of a run --------------------------------------------------------

def _pg_admin():
    """A connection to the local PostgreSQL server's maintenance database, or a skip."""
    import psycopg

    try:
        return psycopg.connect(harness.PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {harness.PG_ADMIN_URL}: {exc}")


def _pg_exists(admin, name: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                         [name]).fetchone() is not None


def test_database_creates_and_drops_a_named_postgres_database(tmp_path):
    import psycopg
    from psycopg import sql

    name = f"watchkeeper_bench_test_{uuid.uuid4().hex[:12]}"
    base = harness.PG_ADMIN_URL.rsplit("/", 1)[0]
    with _pg_admin() as admin:
        # Given a database of that name left behind by a crashed run, with a table in it
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(f"{base}/{name}", autocommit=True) as old:
            old.execute("CREATE TABLE leftover (id integer)")
        try:
            # When the harness provides the database under that name
            with harness.database("postgres", tmp_path, harness.PG_ADMIN_URL,
                                  name=name) as url:
                # Then the URL names it, and it is a fresh one (the leftover was dropped)
                assert url == f"{base}/{name}"
                with psycopg.connect(url) as conn:
                    assert conn.execute("SELECT current_database()").fetchone()[0] == name
                    assert conn.execute("SELECT to_regclass('leftover')").fetchone() == (None,)
                # and a connection the run forgot to close
                forgotten = psycopg.connect(url)
            # Then afterwards it is dropped all the same
            assert not _pg_exists(admin, name)
            forgotten.close()
            # And it is dropped too when the run fails
            with pytest.raises(RuntimeError, match="run failed"), harness.database(
                    "postgres", tmp_path, harness.PG_ADMIN_URL, name=name):
                assert _pg_exists(admin, name)
                raise RuntimeError("run failed")
            assert not _pg_exists(admin, name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(name)))


def test_database_on_sqlite_is_a_file_in_the_data_dir_whatever_the_name(tmp_path):
    # The default, as every harness run calls it, and with a scenario's own name
    with harness.database("sqlite", tmp_path, harness.PG_ADMIN_URL) as url:
        assert url == f"sqlite:///{tmp_path / 'bench.db'}"
    with harness.database("sqlite", tmp_path, harness.PG_ADMIN_URL,
                          name="watchkeeper_bench_eval") as url:
        assert url == f"sqlite:///{tmp_path / 'bench.db'}"


@pytest.mark.parametrize("name", ["postgres", "template1", "watchkeeper",
                                  "Watchkeeper_bench_x", "watchkeeper_bench-x",
                                  "watchkeeper_bench; DROP DATABASE postgres",
                                  "watchkeeper_bench_" + "x" * 46])
def test_database_refuses_a_name_that_is_not_a_bench_database(tmp_path, name):
    # Given an admin URL nothing listens on: a name that got as far as SQL would fail there
    admin_url = "postgresql://postgres@127.0.0.1:1/postgres"
    # When the harness is asked for a database that could be a real one, it refuses first
    with pytest.raises(ValueError, match="must start with 'watchkeeper_bench'"), \
            harness.database("postgres", tmp_path, admin_url, name=name):
        pass


# --- the HTTP client, against a real server on loopback ------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        status = 500 if self.path == "/fail" else 200
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization")})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_fetch_reads_content_length_and_chunked_bodies(http_port):
    status, body = asyncio.run(harness.fetch(http_port, Target(
        "x", "/api", headers={"Authorization": "Bearer wk_a_b"})))
    assert status == 200
    assert json.loads(body) == {"path": "/api", "auth": "Bearer wk_a_b"}
    status, body = asyncio.run(harness.fetch(http_port, Target("c", "/chunked")))
    assert (status, body) == (200, b"hello chunked world")


def test_drive_stops_at_the_request_cap_and_counts_wrong_statuses(http_port):
    # Given a generous time bound, so the request cap is what stops the window
    ok = asyncio.run(harness.drive(http_port, Target("ok", "/ok"), concurrency=3,
                                   duration=60, max_requests=25))
    # Then exactly the capped number was sent over keep-alive connections, all successful
    assert len(ok.latencies) == 25 and ok.errors == 0
    assert ok.statuses == {200: 25}
    # And responses with the wrong status are errors, not latencies
    bad = asyncio.run(harness.drive(http_port, Target("bad", "/fail"), concurrency=2,
                                    duration=60, max_requests=10))
    assert bad.latencies == [] and bad.errors == 10
    assert bad.statuses == {500: 10}
