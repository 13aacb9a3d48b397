"""`watchkeeper up` runs the whole platform and stops all of it on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

# Starts its own platform on SQLite / builds packages: the PostgreSQL pass skips it.
pytestmark = pytest.mark.engine_agnostic

STARTUP_LIMIT = 300  # seconds: a fresh SQLite migrate plus six interpreters, on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Up:
    """`watchkeeper up` in a subprocess on a fresh data directory (SQLite, DB task queue)."""

    def __init__(self, data_dir, port: int, *args: str, env: dict | None = None):
        extra_env = env
        env = {k: v for k, v in os.environ.items()
               if k not in ("WATCHKEEPER_DATABASE_URL", "WATCHKEEPER_TASKS_URL")}
        # Roles that listen (mail-in) get free ports too, so a running instance never clashes.
        env.update(WATCHKEEPER_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1",
                   WATCHKEEPER_MAIL_IN_PORT=str(free_port()))
        env.update(extra_env or {})
        self.data_dir = data_dir
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchkeeper.cli", "up", "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, path: str, status: int = 200) -> httpx.Response:
        deadline = time.monotonic() + STARTUP_LIMIT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"up exited early ({self.proc.returncode}):\n{self.output}")
            try:
                last = httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)
                if last.status_code == status:
                    return last
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        detail = f"{last} {last.text}" if last is not None else "no answer"
        pytest.fail(f"{path} never answered {status} ({detail}):\n{self.output}")

    def kill(self):
        if self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def run_up(tmp_path):
    started: list[Up] = []

    def _run(*args: str, port: int | None = None, env: dict | None = None) -> Up:
        up = Up(tmp_path / "data", port or free_port(), *args, env=env)
        started.append(up)
        return up

    yield _run
    for up in started:
        up.kill()


def test_up_serves_prints_owner_password_and_stops_every_child_on_sigint(run_up):
    # given `watchkeeper up` on a fresh data directory
    up = run_up()

    # when it has started, then /healthz answers and, once the worker beats, /readyz too
    assert up.wait_for("/healthz").json() == {"status": "ok"}
    assert up.wait_for("/readyz").json()["checks"]["worker"]["ok"] is True

    # and the one-time owner password was printed (last, once every role said it started),
    # and it is the owner's real password
    assert wait_for_text(up, "mode 0600"), up.output
    match = re.search(r"email:\s+(\S+)\s+password:\s+(\S+)", up.output)
    assert match, up.output
    email, password = match.groups()
    assert email == "owner@localhost"
    db = sqlite3.connect(up.data_dir / "watchkeeper.db")
    stored, role, must_change = db.execute(
        "SELECT password, role, must_change_password FROM core_user WHERE email = ?",
        (email,)).fetchone()
    db.close()
    from django.contrib.auth.hashers import check_password

    assert check_password(password, stored)
    assert (role, must_change) == ("owner", 1)

    # and web, worker and scheduler run as its children
    children = psutil.Process(up.proc.pid).children(recursive=True)
    commands = {" ".join(c.cmdline()[3:4]) for c in children}
    assert {"web", "worker", "scheduler"} <= commands, commands

    # when it receives SIGINT (Ctrl-C)
    up.proc.send_signal(signal.SIGINT)
    returncode = up.proc.wait(timeout=40)

    # then it exits 0 and no child is left behind
    assert returncode == 0, up.output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{up.port}/healthz", timeout=2)


def test_up_reports_a_taken_web_port_in_one_line_and_starts_nothing(run_up):
    # given the web port is already taken by another program
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        # when `watchkeeper up` starts on that port
        up = run_up(port=port)
        returncode = up.proc.wait(timeout=STARTUP_LIMIT)
    finally:
        blocker.close()

    # then it says so in one line, without a traceback, and exits 2 having started nothing
    up.reader.join(timeout=5)
    assert returncode == 2, up.output
    assert up.output.strip() == (f"up: cannot start: port {port} on 127.0.0.1 is already in "
                                 "use by another program; choose another with --port N")


def test_up_without_its_smtp_port_still_serves_and_restarts_a_killed_role(run_up, tmp_path):
    # given the default mail-in port is taken by another program
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    smtp = blocker.getsockname()[1]
    try:
        up = run_up(env={"WATCHKEEPER_MAIL_IN_PORT": str(smtp)})
        # then the platform starts all the same, the mail-in line names the way out
        up.wait_for("/healthz")
        assert (f"up: mail-in not started: port {smtp} on 127.0.0.1 is already in use by "
                "another program; choose another with --smtp-port N") in up.output
        assert "Traceback" not in up.output
        # and the one-time password comes last, and is kept in a 0600 file
        assert wait_for_text(up, "mode 0600")
        lines = [line for line in up.output.splitlines() if line.strip()]
        assert lines[-1].strip().startswith("(also in"), lines[-6:]
        secret_file = up.data_dir / "initial-passwords.txt"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
        assert re.search(r"password:\s+(\S+)", up.output).group(1) in secret_file.read_text()

        # when the worker is killed -9
        children = psutil.Process(up.proc.pid).children()
        worker = next(c for c in children if c.cmdline()[3:4] == ["worker"])
        worker.kill()

        # then up restarts it (not exiting), and the web keeps answering throughout
        assert wait_for_text(up, "worker    | killed by signal 9")
        assert wait_for_text(up, "worker    | restarted (pid")
        assert up.proc.poll() is None
        assert up.wait_for("/readyz").json()["checks"]["worker"]["ok"] is True
    finally:
        blocker.close()


def wait_for_text(up, text: str) -> bool:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if text in up.output:
            return True
        if up.proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def test_second_up_creates_no_second_owner_and_a_killed_up_leaves_no_child(run_up):
    # given a data directory where the owner exists (first run, stopped with Ctrl-C)
    first = run_up()
    first.wait_for("/healthz")
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(timeout=40) == 0
    assert "password:" in first.output

    # when up runs again on the same data
    second = run_up()
    second.wait_for("/healthz")

    # then no new owner password is printed
    assert "password:" not in second.output

    # when it is killed outright (no chance to stop its children itself)
    children = psutil.Process(second.proc.pid).children(recursive=True)
    assert len(children) >= 3
    second.proc.kill()
    second.proc.wait(timeout=10)

    # then the kernel's parent-death signal stops every child as well
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]
