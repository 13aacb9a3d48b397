"""Helpers for the agent tests: a real HTTP server (the Django app in a thread on a loopback
port, stoppable and restartable on the same port), the real `watchkeeper-agent` CLI run as a
subprocess, and the command signer run with a key file of its own.

Not a test module: tests/test_agent_*.py import it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections
from django.test.testcases import LiveServerThread

AGENT_BIN = shutil.which("watchkeeper-agent", path=str(Path(sys.executable).parent))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass


class _ReusableServerThread(LiveServerThread):
    """Django's live-server thread, allowed to rebind the same port after a stop."""

    def _create_server(self, connections_override=None):
        return ThreadedWSGIServer((self.host, self.port), _QuietHandler,
                                  allow_reuse_address=True,
                                  connections_override=connections_override)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackServer:
    def __init__(self):
        self.port = free_port()
        self.thread: LiveServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        override = {c.alias: c for c in connections.all()
                    if c.vendor == "sqlite" and c.is_in_memory_db()}
        # In-memory SQLite: the server thread must use the test's connection. Keep it
        # from being closed by the thread's cleanup.
        for conn in override.values():
            conn.inc_thread_sharing()
        self.thread = _ReusableServerThread("127.0.0.1", StaticFilesHandler, override,
                                            self.port)
        self.thread.daemon = True
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.terminate()
            for conn in self.thread.connections_override.values():
                conn.dec_thread_sharing()
            self.thread = None


@dataclass
class AgentRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)


class AgentCLI:
    """The real agent, run as a separate process with its own state directory."""

    def __init__(self, state_dir: Path, spool_bytes: int | None = None):
        self.state_dir = state_dir
        self.spool_bytes = spool_bytes

    def __call__(self, *args: str, timeout: float = 120) -> AgentRun:
        argv = [AGENT_BIN, "--state-dir", str(self.state_dir)]
        if self.spool_bytes:
            argv += ["--spool-bytes", str(self.spool_bytes)]
        proc = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)
        return AgentRun(proc.returncode, proc.stdout, proc.stderr)

    def enroll(self, server: str, token: str, *extra: str, insecure: bool = True) -> AgentRun:
        """Enroll; the loopback test server speaks plain http, so --insecure by default."""
        return self("enroll", "--server", server, "--token", token,
                    *(["--insecure"] if insecure else []), *extra)

    def once(self, inventory: str = "never") -> AgentRun:
        return self("run", "--once", "--inventory", inventory)

    def status(self) -> dict:
        return self("status", "--offline").json

    @property
    def agent_id(self) -> str:
        return json.loads((self.state_dir / "enrollment.json").read_text())["agent_id"]


class LeanResponse:
    """What django.test.Client returns, as far as the agent tests read it."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status
        self.headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in headers}
        self.content = body

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def json(self):
        return json.loads(self.content)


def asgi_post(path: str, body: bytes, headers: dict[str, str] | None = None,
              client_addr: str = "127.0.0.1") -> LeanResponse:
    """POST through watchkeeper.asgi.application (the lean check-in path in front of
    Django) in this thread's database connection, as Django's AsyncClient does: the
    connection-closing request signals are held off so a test's transaction survives."""
    from watchkeeper.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "server": ("testserver", 80), "client": (client_addr, 50000),
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *[(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]],
    }
    return run_asgi(application, scope,
                    [{"type": "http.request", "body": body, "more_body": False}])


def run_asgi(app, scope: dict, messages: list[dict]) -> LeanResponse:
    """Run one request through an ASGI app in this thread's database connection, feeding
    `messages` as the body arrives, with the connection-closing request signals held off
    (as Django's AsyncClient does) so a test's transaction survives."""
    import asyncio

    from asgiref.sync import async_to_sync
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    pending = list(messages)
    sent: list[dict] = []

    async def receive():
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # no disconnect while the app works

    async def send(message):
        sent.append(message)

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(app)(scope, receive, send)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return LeanResponse(start["status"], start.get("headers", []), body_out)
