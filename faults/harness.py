"""Private PostgreSQL and Redis instances, a Watchkeeper platform on them, load and probes.

Never the machine's shared services: PostgreSQL is a cluster initdb'd in a temporary
directory on a free port (run as the `postgres` system user when we are root), Redis a
`redis-server` on a free port with its own directory. Everything is removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, limit: float, step: float = 0.2) -> float | None:
    """Seconds it took for predicate() to hold, or None if it never did within limit."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - start
        time.sleep(step)
    return None


def _pg_bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
    candidates = [Path(out.stdout.strip())] if out.returncode == 0 else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "initdb").exists():
            return path
    raise RuntimeError("initdb not found (apt-get install postgresql)")


class PrivatePostgres:
    def __init__(self, workdir: Path):
        self.bindir = _pg_bindir()
        self.dir = workdir / "pg"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as `postgres`
            self.user = "postgres"
        self.dir.mkdir(parents=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(workdir, pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-instructions")
        self.start()
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", "watchkeeper"], check=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(self.bindir / tool), *args]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=check)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/watchkeeper"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                        "-c max_connections=200", "start")

    def stop_immediate(self) -> None:
        """A crash: no checkpoint, connections cut (pg_ctl stop -m immediate)."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop",
                  check=False)

    def psql(self, sql: str) -> list[list[str]]:
        out = subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "-d", "watchkeeper", "-At", "-F", "\t", "-c", sql],
            capture_output=True, text=True, check=True)
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def close(self) -> None:
        self.stop_immediate()


class PrivateRedis:
    def __init__(self, workdir: Path):
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.dir), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), 1).close()
                   or True, 20)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.kill()


class Receiver:
    """A webhook receiver recording each delivery's event id (X-Watchkeeper-Delivery)."""

    def __init__(self, delay: float = 0.0):
        self.received: list[dict] = []
        self.delay = delay
        self.in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.in_flight += 1
                if outer.delay:
                    time.sleep(outer.delay)
                outer.in_flight -= 1
                outer.received.append({"event": self.headers.get("X-Watchkeeper-Delivery"),
                                       "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def site_ids(self) -> list[int]:
        return [r["body"]["payload"].get("id") for r in self.received
                if r["body"].get("kind") == "site.created"]

    def close(self) -> None:
        self.server.shutdown()


SETUP = r"""
import json
from watchkeeper.core import accounts, actions
from watchkeeper.core.choices import Role, TokenScope
from watchkeeper.core.models import User
user = User.objects.filter(email="faults@localhost").first()
if user is None:
    user, _ = accounts.create_user(actor="faults", email="faults@localhost", role=Role.OWNER,
                                   name="Faults")
_, token = accounts.create_token(actor=user, user=user, name="faults", scope=TokenScope.WRITE)
client = actions.create_client(actor=user, name=f"Faults {__import__('uuid').uuid4().hex[:6]}")
actions.create_webhook(actor=user, name="faults", url=URL, secret="s" * 32, client=client,
                       event_kinds=["site.created"])
print("SETUP " + json.dumps({"token": token, "client": client.pk}))
"""


class Platform:
    """`watchkeeper up` on the private services, with short timings for the suite."""

    def __init__(self, workdir: Path, database_url: str, tasks_url: str = ""):
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
        self.env.update(
            WATCHKEEPER_DATA_DIR=str(self.data), WATCHKEEPER_DATABASE_URL=database_url,
            WATCHKEEPER_TASKS_URL=tasks_url, PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="watchkeeper.settings",
            WATCHKEEPER_HEARTBEAT_SECONDS="1", WATCHKEEPER_WORKER_STALE_SECONDS="4",
            WATCHKEEPER_OUTBOX_SWEEP_SECONDS="2", WATCHKEEPER_OUTBOX_LEASE_SECONDS="15",
            WATCHKEEPER_DB_CONNECT_TIMEOUT="2", WATCHKEEPER_DB_POOL_TIMEOUT="3",
            WATCHKEEPER_HEADER_TIMEOUT="5", WATCHKEEPER_BODY_IDLE_TIMEOUT="5",
            WATCHKEEPER_DISK_MIN_FREE_MB="1", WATCHKEEPER_LOG_LEVEL="WARNING",
            WATCHKEEPER_POLLER_CONCURRENCY="10")
        self.log_path = workdir / f"up-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "watchkeeper.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, limit: float = 600) -> float:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchkeeper.cli", "up", "--port", str(self.port),
             "--no-mail-in"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        took = wait_until(self.ready, limit, 0.5)
        if took is None:
            raise RuntimeError(f"platform never became ready; see {self.log_path}")
        return took

    def ready(self) -> bool:
        return httpx.get(f"{self.base}/readyz", timeout=3).status_code == 200

    def setup(self, receiver_url: str) -> tuple[str, int]:
        out = self.cli("shell", "-c", f"URL = {receiver_url!r}\n" + SETUP)
        for line in out.stdout.splitlines():
            if line.startswith("SETUP "):
                data = json.loads(line[6:])
                return data["token"], data["client"]
        raise RuntimeError(f"setup failed: {out.stdout}\n{out.stderr}")

    def role(self, name: str) -> psutil.Process | None:
        if self.proc is None:
            return None
        for child in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.Error):
                if child.cmdline()[3:4] == [name]:
                    return child
        return None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
                self.proc.kill()
                self.proc.wait()


class SiteLoad:
    """Creates sites through the REST API as fast as one client can, recording each answer:
    a 201 is an acknowledgement (the site and its event are committed)."""

    def __init__(self, base: str, token: str, client: int, prefix: str, pause: float = 0.05):
        self.base, self.token, self.client, self.prefix = base, token, client, prefix
        self.pause = pause
        self.answers: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}) as http:
            while not self._stop.is_set():
                n += 1
                name = f"{self.prefix}-{n}"
                started = time.monotonic()
                try:
                    r = http.post(f"{self.base}/api/v1/sites/", timeout=30,
                                  json={"client": self.client, "name": name})
                    status = r.status_code
                    site = r.json().get("id") if status == 201 else None
                    retry_after = r.headers.get("retry-after")
                except httpx.HTTPError as exc:
                    status, site, retry_after = type(exc).__name__, None, None
                self.answers.append({"name": name, "status": status, "site": site,
                                     "latency": time.monotonic() - started,
                                     "retry_after": retry_after})
                self._stop.wait(self.pause)

    def start(self) -> SiteLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def acked(self) -> list[dict]:
        return [a for a in self.answers if a["status"] == 201]


def tempdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="wk-faults-"))
    os.chmod(path, 0o755)
    return path


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
