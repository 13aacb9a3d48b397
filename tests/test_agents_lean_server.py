"""The lean check-in path through a real server: `watchkeeper web` (uvicorn, the ASGI app with
the lean path and its batch writer thread) as a separate process on its own database,
many agents checking in at once, and a failed batch transaction that the real agent
survives through its spool.

The server's database is its own (a fresh SQLite file, or a fresh PostgreSQL database when
WATCHKEEPER_DATABASE_URL points to PostgreSQL), so the test reads it through
`watchkeeper shell`, as an operator would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent_harness import AgentCLI, free_port
from watchkeeper.agents.protocol import canonical_request

CHECKIN = "/agent/v1/checkin"
AGENTS = 40
ME = [sys.executable, "-m", "watchkeeper.cli"]

SEED = """
import json, sys
from django.utils import timezone
from watchkeeper.agents import actions
from watchkeeper.agents.models import Agent
from watchkeeper.core import actions as core_actions
spec = json.load(open(sys.argv[-1]))
actions.register_signer_key(actor="test", public_key_raw=bytes(range(32)))
client = core_actions.create_client(actor=None, name="Fleet")
site = core_actions.create_site(actor=None, client=client, name="DC")
token, raw = actions.create_enrollment_token(actor="test", client=client, site=site,
                                             auto_approve=True, hours=2)
uids = [str(actions.enroll_agent(token=token, public_key=k, facts={}).uid)
        for k in spec["keys"]]
Agent.objects.update(connectivity="online", last_seen_at=timezone.now())
print(json.dumps({"uids": uids, "token": raw}))
"""


class LeanServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        self.env.update({"WATCHKEEPER_DATA_DIR": str(root / "data"),
                         "WATCHKEEPER_TASKS_URL": "immediate", "PYTHONUNBUFFERED": "1"})
        self.pg_admin = self.pg_name = None
        url = os.environ.get("WATCHKEEPER_DATABASE_URL", "")
        if url.startswith("postgres"):
            parts = urlsplit(url)
            self.pg_name = f"wk_lean_srv_{secrets.token_hex(4)}"
            self.pg_admin = urlunsplit(parts._replace(path="/postgres"))
            self._pg(f'CREATE DATABASE "{self.pg_name}"')
            self.env["WATCHKEEPER_DATABASE_URL"] = urlunsplit(
                parts._replace(path=f"/{self.pg_name}"))
        else:
            self.env.pop("WATCHKEEPER_DATABASE_URL", None)
        self.proc: subprocess.Popen | None = None

    def _pg(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.pg_admin, autocommit=True) as conn:
            conn.execute(sql)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run([*ME, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    def python(self, code: str, *argv: str):
        """Run code in `watchkeeper shell` against the server's database; its last printed
        line, as JSON."""
        prelude = f"import sys; sys.argv = sys.argv[:1] + {list(argv)!r}\n"
        out = self.run("shell", "-c", prelude + code)
        return json.loads(out.strip().splitlines()[-1])

    def start(self) -> None:
        self.log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen([*ME, "web", "--port", str(self.port)], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise AssertionError("server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        if self.pg_name:
            self._pg(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("lean-server")
    srv = LeanServer(root)
    try:
        srv.run("migrate", "--noinput", "--skip-checks")
        keys = [Ed25519PrivateKey.generate() for _ in range(AGENTS)]
        spec = root / "keys.json"
        spec.write_text(json.dumps({"keys": [base64.b64encode(k.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
            for k in keys]}))
        seeded = srv.python(SEED, str(spec))
        srv.keys, srv.uids, srv.token = keys, seeded["uids"], seeded["token"]
        srv.start()
        yield srv
    finally:
        srv.stop()


def signed_request(srv: LeanServer, n: int, seq: int, *, nonce: str | None = None):
    body = json.dumps({"seq": seq, "metrics": {"ts": 1_700_000_000 + seq,
                                               "values": {"cpu.percent": n, "load.1": seq}}},
                      separators=(",", ":")).encode()
    ts, nonce = int(time.time()), nonce or secrets.token_hex(16)
    signature = base64.b64encode(srv.keys[n].sign(canonical_request(
        method="POST", path=CHECKIN, timestamp=ts, nonce=nonce, body=body,
        agent_id=srv.uids[n]))).decode()
    return body, {"Content-Type": "application/json", "X-WK-Agent": srv.uids[n],
                  "X-WK-Timestamp": str(ts), "X-WK-Nonce": nonce,
                  "X-WK-Signature": signature}


async def post_all(srv: LeanServer, requests: list[tuple[bytes, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=srv.url, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.post(CHECKIN, content=body, headers=headers)
                                      for body, headers in requests))


COUNT = """
import json
from django.db.models import Count
from watchkeeper.agents.models import Agent, MetricSample
rows = MetricSample.objects.count()
distinct = MetricSample.objects.values("device_id", "metric_id", "ts").distinct().count()
seqs = sorted(set(Agent.objects.filter(uid__in=%r).values_list("last_seq", flat=True)))
print(json.dumps({"rows": rows, "distinct": distinct, "seqs": seqs}))
"""


def test_many_agents_at_once_store_every_sample_exactly_once(server):
    # Given 40 agents checking in at the same moment, three times over; in the second wave
    # each agent also re-sends its first batch (a retry after a lost answer), and one
    # request is sent twice with the same nonce (a replay inside the same batch)
    uids = server.uids
    first = asyncio.run(post_all(server, [signed_request(server, n, 1) for n in range(AGENTS)]))
    replayed = signed_request(server, 0, 2)
    second = asyncio.run(post_all(server, [replayed, replayed]
                                  + [signed_request(server, n, 2) for n in range(1, AGENTS)]
                                  + [signed_request(server, n, 1) for n in range(AGENTS)]))
    third = asyncio.run(post_all(server, [signed_request(server, n, 3) for n in range(AGENTS)]))
    # Then every fresh batch was acknowledged as stored, every re-send as a duplicate
    assert [r.status_code for r in first + third] == [200] * (2 * AGENTS)
    assert all(r.json()["duplicate"] is False for r in first + third)
    pair = second[:2]
    assert sorted(r.status_code for r in pair) == [200, 401]
    assert next(r for r in pair if r.status_code == 401).json()["code"] == "replay"
    fresh, resent = second[2:AGENTS + 1], second[AGENTS + 1:]
    assert all(r.status_code == 200 and not r.json()["duplicate"] for r in fresh)
    assert all(r.status_code == 200 and r.json()["duplicate"] for r in resent)
    assert all(r.json()["commands"] == [] and r.json()["status"] == "approved"
               for r in first + fresh + resent + third)
    # And every sample is stored exactly once: 40 agents x 3 batches x 2 values
    counted = server.python(COUNT % uids)
    assert counted == {"rows": AGENTS * 3 * 2, "distinct": AGENTS * 3 * 2, "seqs": [3]}


TRIGGER = {
    "sqlite": ["CREATE TRIGGER wk_test_refuse BEFORE INSERT ON agents_metricsample "
               "BEGIN SELECT RAISE(ABORT, 'forced'); END"],
    "postgresql": ["CREATE FUNCTION wk_test_refuse() RETURNS trigger AS $$ BEGIN RAISE "
                   "EXCEPTION 'forced failure'; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER wk_test_refuse BEFORE INSERT ON agents_metricsample FOR "
                   "EACH ROW EXECUTE FUNCTION wk_test_refuse()"],
}
SQL = """
import json, sys
from django.db import connection
statements = json.loads(sys.argv[-1])[connection.vendor]
with connection.cursor() as cursor:
    for sql in statements:
        cursor.execute(sql)
print("{}")
"""
DROP = {"sqlite": ["DROP TRIGGER wk_test_refuse"],
        "postgresql": ["DROP TRIGGER wk_test_refuse ON agents_metricsample",
                       "DROP FUNCTION wk_test_refuse()"]}
AGENT_SAMPLES = """
import json
from watchkeeper.agents.models import Agent, MetricSample
agent = Agent.objects.get(uid=%r)
qs = MetricSample.objects.filter(device_id=agent.device_id, metric__name="cpu.percent")
print(json.dumps({"rows": qs.count(), "distinct": len(set(qs.values_list("ts", flat=True))),
                  "last_seq": agent.last_seq}))
"""


def test_a_failed_batch_answers_503_and_the_real_agent_resends_from_its_spool(server,
                                                                              tmp_path):
    # Given a real agent enrolled against the server, that checked in twice (the first
    # check-in, carrying a new agent version, goes to the Django view; the second is lean)
    cli = AgentCLI(tmp_path / "agent")
    assert cli.enroll(server.url, server.token).returncode == 0
    assert cli.once().returncode == 0 and cli.once().returncode == 0
    # When the database refuses sample rows, so that the batch transaction fails
    server.python(SQL, json.dumps(TRIGGER))
    try:
        failed = cli.once()
        others = asyncio.run(post_all(server, [signed_request(server, n, 100)
                                               for n in range(5)]))
    finally:
        server.python(SQL, json.dumps(DROP))
    # Then the agent was told to retry (503) and kept the batch in its spool
    assert failed.returncode == 3 and failed.json["outcome"] == "unreachable"
    status = cli.status()
    assert status["spooled_batches"]["metrics"] == 1
    assert "503" in (status.get("last_error") or "")
    # And so was every other waiter of the failed batches, with Retry-After
    assert [r.status_code for r in others] == [503] * 5
    assert all(r.headers["Retry-After"] and r.json()["code"] == "retry" for r in others)
    # When the database accepts rows again, the agent re-sends from its spool
    again = cli.once()
    assert again.returncode == 0 and again.json["sent"] == 2
    # Then nothing was lost and nothing stored twice: 4 batches, 4 samples of cpu.percent
    stored = server.python(AGENT_SAMPLES % cli.agent_id)
    assert stored == {"rows": 4, "distinct": 4, "last_seq": 4}


def test_unknown_agents_are_refused_by_the_running_server(server):
    body, headers = signed_request(server, 0, 1)
    headers["X-WK-Agent"] = str(uuid.uuid4())
    response = httpx.post(f"{server.url}{CHECKIN}", content=body, headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "unknown_agent"
