"""Process plumbing shared by the platform roles: heartbeats and the `up` supervisor.

A worker or scheduler proves it is alive by updating its `ProcessHeartbeat` row (name
`<host>:<pid>`) every HEARTBEAT_SECONDS from a daemon thread; /readyz reads those rows.
`Supervisor` runs several role commands as children of `watchkeeper up`, prefixes their
output, restarts a child that dies (backoff with jitter, a crash loop reported) and stops
them all when it is told to stop. `run_retrying`/`Backoff` keep a role's loop alive through
a database or queue outage; `cannot_start` ends a role that cannot start with one line.
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
        try:
            beat(self.role, self.name)  # visible before the first task is taken
        except Exception as exc:
            if not is_dependency_error(exc):
                raise
            # The database is away: the role starts anyway and waits for it; the thread
            # beats as soon as it is back.
            log.warning("%s: no heartbeat yet (%s); the database is unavailable", self.role,
                        type(exc).__name__)
            connection.close()
        self._thread.start()
        return self

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                close_old_connections()
                beat(self.role, self.name)
                if failing:
                    log.warning("heartbeat of %s: the database is back", self.name)
                failing = False
            except Exception as exc:  # a database hiccup must not kill the process
                if not failing:  # one line per outage, a traceback only for a bug
                    log.warning("heartbeat of %s failed: %s", self.name, type(exc).__name__,
                                exc_info=not is_dependency_error(exc))
                failing = True
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


# --- Retrying a role's loop when a dependency goes away ------------------------------------

# A role that cannot start for a reason a restart will not fix by itself soon (a port taken,
# a setting wrong) exits with this status after one line saying why (sysexits EX_CONFIG);
# `up` then waits the longest backoff before trying again, and systemd's unit does the same.
EXIT_CANNOT_START = 78


def cannot_start(role: str, reason: str, out: TextIO | None = None) -> None:
    """Say in one line why `role` cannot start and exit with EXIT_CANNOT_START (no
    traceback)."""
    stream = out or sys.stderr
    stream.write(f"{role}: cannot start: {reason}\n")
    stream.flush()
    raise SystemExit(EXIT_CANNOT_START)


def port_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port now, or None when it could."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"the address {host!r} does not resolve ({exc.strerror})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except PermissionError:
            return f"port {port} on {host} needs privileges this user does not have"
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                return f"port {port} on {host} is already in use by another program"
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def is_dependency_error(exc: BaseException) -> bool:
    """A database or queue that is unreachable, full or restarting: worth retrying."""
    from django.db import DatabaseError

    if isinstance(exc, DatabaseError):
        return True
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


class Backoff:
    """Exponential backoff with full jitter: base * 2**n capped at `cap`, times a random
    factor in [0.5, 1]. `reset()` after a success."""

    def __init__(self, base: float = 1.0, cap: float = 30.0):
        self.base, self.cap, self.failures = base, cap, 0

    def next_delay(self) -> float:
        import random

        delay = min(self.base * (2 ** self.failures), self.cap)
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.failures = 0


def run_retrying(role: str, step, stop: threading.Event, *, tick: float = 1.0,
                 backoff: Backoff | None = None) -> None:
    """Call `step()` every `tick` seconds until `stop` is set. A database or queue error is
    logged once per outage (a warning, no traceback), retried with backoff and jitter, and
    the recovery is logged; any other exception propagates (a bug: the process exits and
    its supervisor restarts it)."""
    backoff = backoff or Backoff(cap=10.0)
    down_since: float | None = None
    while not stop.is_set():
        close_old_connections()
        try:
            step()
        except Exception as exc:
            if not is_dependency_error(exc):
                raise
            connection.close()
            if down_since is None:
                down_since = time.monotonic()
                log.warning("%s: %s: %s; retrying with backoff", role, type(exc).__name__,
                            str(exc).strip().splitlines()[0][:200] if str(exc) else "")
            stop.wait(backoff.next_delay())
            continue
        if down_since is not None:
            log.warning("%s: recovered after %.1f s", role, time.monotonic() - down_since)
            down_since = None
            backoff.reset()
        stop.wait(tick)


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
    started_at: float = 0.0
    starts: int = 0
    failures: int = 0  # consecutive short-lived runs
    restart_at: float | None = None  # when a dead child is started again
    crash_loop_reported: bool = False
    first_line: threading.Event = field(default_factory=threading.Event, repr=False)


class Supervisor:
    """Run role commands as children in our process group and keep them running.

    A child that exits (crash, kill -9, a dependency gone, exit 0 even) is started again
    after a backoff with jitter: `restart_base` doubling per consecutive short run (one that
    lasted less than `stable_after` seconds), capped at `restart_cap`. `crash_loop` short
    runs in a row are reported once as a crash loop; the supervisor keeps retrying at the
    cap, so the platform comes back by itself when the cause goes away. A child exiting with
    EXIT_CANNOT_START (it said why in one line) waits the cap at once. Only a requested stop
    (Ctrl-C, SIGTERM) stops everything; `up` never exits because one role died.
    """

    def __init__(self, children: Sequence[tuple[str, list[str]]], out: TextIO | None = None,
                 grace: float = 15.0, restart_base: float = 1.0, restart_cap: float = 60.0,
                 stable_after: float = 60.0, crash_loop: int = 5):
        self.children = [Child(label, argv) for label, argv in children]
        self.out = out or sys.stdout
        self.grace = grace
        self.restart_base, self.restart_cap = restart_base, restart_cap
        self.stable_after, self.crash_loop = stable_after, crash_loop
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.width = max((len(c.label) for c in self.children), default=0)

    def write(self, label: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{label.ljust(self.width)} | {line.rstrip()}\n")
            self.out.flush()

    def _pump(self, child: Child, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self.write(child.label, raw.decode("utf-8", "replace"))
            child.first_line.set()
        proc.stdout.close()
        child.first_line.set()

    def write_block(self, text: str) -> None:
        """Unprefixed lines (the one-time passwords), never interleaved with a child's."""
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def wait_started(self, timeout: float) -> None:
        """Until every child has said its first line (or ended), at most `timeout` s."""
        deadline = time.monotonic() + timeout
        for child in self.children:
            child.first_line.wait(max(deadline - time.monotonic(), 0))

    def _spawn(self, child: Child) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            child.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, preexec_fn=self._preexec,
        )
        child.started_at = time.monotonic()
        child.starts += 1
        child.restart_at = None
        child.reader = threading.Thread(target=self._pump, args=(child, child.proc),
                                        daemon=True)
        child.reader.start()
        if child.starts > 1:
            self.write(child.label, f"restarted (pid {child.proc.pid}, start {child.starts})")

    def start(self) -> None:
        self._preexec = _death_signal_setter()
        for child in self.children:
            self._spawn(child)

    def request_stop(self, *_args) -> None:
        self._stopping.set()

    def _schedule_restart(self, child: Child) -> None:
        import random

        code = child.proc.returncode
        ran = time.monotonic() - child.started_at
        if ran >= self.stable_after:
            child.failures = 0
            child.crash_loop_reported = False
        child.failures += 1
        if code == EXIT_CANNOT_START:
            delay = self.restart_cap
        else:
            delay = min(self.restart_base * 2 ** (child.failures - 1), self.restart_cap)
            delay *= random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not security
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        if code == EXIT_CANNOT_START:
            how = "cannot start (see above)"
        self.write(child.label, f"{how} after {ran:.1f} s; restarting in {delay:.1f} s")
        if child.failures >= self.crash_loop and not child.crash_loop_reported:
            child.crash_loop_reported = True
            self.write(child.label, f"ERROR: crash loop: {child.failures} exits in a row, "
                                    "each within a minute of starting; still retrying every "
                                    f"{self.restart_cap:.0f} s at most")
        child.restart_at = time.monotonic() + delay

    def wait(self) -> int:
        """Keep the children running until asked to stop; then stop them all. Returns 0."""
        while not self._stopping.is_set():
            for child in self.children:
                if self._stopping.is_set():
                    break
                if child.restart_at is not None:
                    if time.monotonic() >= child.restart_at:
                        self._spawn(child)
                elif child.proc is not None and child.proc.poll() is not None:
                    # Ctrl-C in a terminal reaches the children too; give our own handler a
                    # moment so a requested stop is not mistaken for a crash.
                    if self._stopping.wait(0.5):
                        break
                    if child.reader is not None:
                        child.reader.join(timeout=2)
                    self._schedule_restart(child)
            self._stopping.wait(0.2)
        self.stop()
        return 0

    def stop(self) -> None:
        """SIGTERM every live child, wait up to `grace` seconds, then SIGKILL stragglers."""
        live = [c for c in self.children if c.proc is not None and c.restart_at is None]
        for child in live:
            if child.proc.poll() is None:
                try:
                    child.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.grace
        for child in live:
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.write(child.label, "did not stop in time; killing")
                child.proc.kill()
                child.proc.wait()
        for child in live:
            if child.reader is not None:
                child.reader.join(timeout=2)
            self.write(child.label, f"stopped ({child.proc.returncode})")
