"""Process plumbing shared by the platform roles: heartbeats and the `up` supervisor.

A worker or scheduler proves it is alive by updating its `ProcessHeartbeat` row (name
`<host>:<pid>`) every HEARTBEAT_SECONDS from a daemon thread; /readyz reads those rows.
`Supervisor` runs several role commands as children of `watchkeeper up`, prefixes their
output, and stops them all when it is told to stop or when one of them dies.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)


def process_name() -> str:
    """Unique among the processes of a deployment: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def beat(role: str, name: str | None = None) -> None:
    """Record a sign of life now (one UPSERT-like update, insert on first beat)."""
    from .models import ProcessHeartbeat

    name = name or process_name()
    now = timezone.now()
    if not ProcessHeartbeat.objects.filter(name=name).update(role=role, last_seen=now):
        ProcessHeartbeat.objects.update_or_create(
            name=name, defaults={"role": role, "last_seen": now, "started_at": now}
        )


class Heartbeat:
    """A daemon thread that beats every `interval` seconds until stopped.

    The thread closes its database connection after every beat: an RQ worker forks a work
    horse per job, and a child must never inherit (and later close) a live connection.
    """

    def __init__(self, role: str, interval: float | None = None, name: str | None = None):
        self.role = role
        self.name = name or process_name()
        self.interval = float(interval if interval is not None else settings.HEARTBEAT_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{role}",
                                        daemon=True)

    def start(self) -> Heartbeat:
        beat(self.role, self.name)  # visible before the first task is taken
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                close_old_connections()
                beat(self.role, self.name)
            except Exception:  # a database hiccup must not kill the process; retry next beat
                log.warning("heartbeat of %s failed", self.name, exc_info=True)
            finally:
                connection.close()  # this thread's connection only

    def stop(self, forget: bool = True) -> None:
        """Stop beating; with `forget`, delete the row so /readyz stops counting us now."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if forget:
            from .models import ProcessHeartbeat

            try:
                ProcessHeartbeat.objects.filter(name=self.name).delete()
            except Exception:
                log.warning("could not remove heartbeat %s", self.name, exc_info=True)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- Supervisor for `watchkeeper up` ------------------------------------------------------

# Long-running roles beyond web, worker and scheduler. `watchkeeper up` runs each one whose
# management command exists (`watchkeeper <role>` with no arguments must run until SIGTERM).
_up_roles: list[str] = ["signer", "poller", "mail-in"]


def register_role(command: str) -> None:
    """Have `watchkeeper up` also run `watchkeeper <command>` as a child process."""
    if command not in _up_roles:
        _up_roles.append(command)


def up_roles() -> list[str]:
    return list(_up_roles)


def _death_signal_setter():
    """Linux: a function that asks the kernel to SIGTERM the calling process when its parent
    dies (even by SIGKILL), so children of `up` are never orphaned. Resolved in the parent:
    the forked child must not import or allocate before exec."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    signum = int(signal.SIGTERM)

    def set_death_signal() -> None:  # pragma: no cover - runs in the forked child
        prctl(pr_set_pdeathsig, signum)

    return set_death_signal


@dataclass
class Child:
    label: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Run role commands as children in our process group; stop them all together."""

    def __init__(self, children: Sequence[tuple[str, list[str]]], out: TextIO | None = None,
                 grace: float = 15.0):
        self.children = [Child(label, argv) for label, argv in children]
        self.out = out or sys.stdout
        self.grace = grace
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.width = max((len(c.label) for c in self.children), default=0)

    def write(self, label: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{label.ljust(self.width)} | {line.rstrip()}\n")
            self.out.flush()

    def _pump(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for raw in iter(child.proc.stdout.readline, b""):
            self.write(child.label, raw.decode("utf-8", "replace"))
        child.proc.stdout.close()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        preexec = _death_signal_setter()
        for child in self.children:
            child.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                child.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, preexec_fn=preexec,
            )
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()
            self.write(child.label, f"started (pid {child.proc.pid})")

    def request_stop(self, *_args) -> None:
        self._stopping.set()

    def wait(self) -> int:
        """Block until asked to stop or a child exits; stop the rest. 0 on a requested stop."""
        failed: Child | None = None
        while not self._stopping.is_set():
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    failed = child
                    break
            if failed:
                # Ctrl-C in a terminal reaches the children too; give our own handler a
                # moment so a requested stop is not mistaken for a crash.
                self._stopping.wait(0.5)
                if self._stopping.is_set():
                    failed = None
                break
            self._stopping.wait(0.5)
        if failed is not None:
            self.write(failed.label, f"exited with status {failed.proc.returncode}; "
                                     "stopping the others")
        self.stop()
        return 0 if failed is None else (failed.proc.returncode or 1)

    def stop(self) -> None:
        """SIGTERM every live child, wait up to `grace` seconds, then SIGKILL stragglers."""
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                try:
                    child.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.grace
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.write(child.label, "did not stop in time; killing")
                child.proc.kill()
                child.proc.wait()
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)
            if child.proc is not None:
                self.write(child.label, f"stopped ({child.proc.returncode})")
