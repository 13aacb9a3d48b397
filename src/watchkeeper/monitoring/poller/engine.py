"""The poller: runs server-side checks (ping, TCP, HTTP(S), TLS, DNS, SNMP) on schedule.

One asyncio loop per process. Every `tick` it sweeps the due checks of its shard with one
indexed query (selectors.due_server_checks), claims each with a conditional UPDATE on
`next_run_at` (so pollers sharing a shard never run a check twice), and starts it; at most
`concurrency` checks are in flight (a semaphore). Outcomes are buffered and written in
batches from one database thread: alerts.record_results (the alert state machine) plus a
PollSample row per run for the charts.

Schedules are jittered: the next run is `interval` after this one, shifted by up to ±10 %
(at most 30 s), so checks created together drift apart instead of all starting at the
top of the minute; a check found overdue by more than one interval (poller was down) is
spread over the next interval instead of all running at once.

Database work runs in a single dedicated thread (one connection, SQLite-friendly); checks
never touch the database.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from watchkeeper.core import crypto, netguard

from ..alerts import CheckResult, record_results
from ..history.models import PollSample
from ..models import Check
from ..selectors import DueCheck, due_server_checks
from . import checks as poller_checks
from .checks import ConfigError, Outcome, PollerContext

log = logging.getLogger(__name__)

SECRET_PURPOSE = "monitoring.check-secret"
MAX_JITTER = 30.0
MAX_BUFFER = 50_000  # results kept in memory while the database is unreachable
HARD_LIMIT_FACTOR = 3  # a check is abandoned after 3x its own timeout (+30 s)


# --- Configs: secrets and targets -------------------------------------------------------

def seal_secrets(kind: str, config: dict) -> dict:
    """A copy of `config` with its secret fields (SNMP community and keys) encrypted as
    {"enc": token}; values already sealed are kept. Store this, never the plain value."""
    sealed = dict(config)
    for key in poller_checks.SECRET_FIELDS.get(kind, ()):
        value = sealed.get(key)
        if isinstance(value, str) and value:
            sealed[key] = {"enc": crypto.encrypt(value, SECRET_PURPOSE)}
    return sealed


MASK = "••••••"
TARGET_FIELDS = ("host", "port", "target", "url", "name", "version", "user")


def keep_secrets(kind: str, config: dict, previous_kind: str | None = None,
                 previous: dict | None = None, same_device: bool = True) -> dict:
    """A copy of an edited `config` in which a secret sent back as the mask (or left out)
    keeps its stored value, but only while the check still points at the same target
    (kind, host, port, SNMP version and user, device): a stored community or key is never
    carried over to a new destination, it has to be entered again."""
    config = dict(config)
    previous = previous or {}
    same_target = (same_device and previous_kind == kind
                   and all(config.get(k) == previous.get(k) for k in TARGET_FIELDS))
    for key in poller_checks.SECRET_FIELDS.get(kind, ()):
        if config.get(key) in (MASK, None):
            if same_target and key in previous:
                config[key] = previous[key]
            else:
                config.pop(key, None)
    return config


def open_secrets(kind: str, config: dict) -> dict:
    opened = dict(config)
    for key in poller_checks.SECRET_FIELDS.get(kind, ()):
        value = opened.get(key)
        if isinstance(value, dict) and "enc" in value:
            opened[key] = crypto.decrypt(value["enc"], SECRET_PURPOSE)
    return opened


def masked(kind: str, config: dict) -> dict:
    """The config for display: secret fields shown as set or not, never their value."""
    shown = dict(config)
    for key in poller_checks.SECRET_FIELDS.get(kind, ()):
        if shown.get(key):
            shown[key] = MASK
    return shown


def with_target(kind: str, config: dict, device_ip: str | None,
                device_hostname: str | None = None) -> dict:
    """Fill the target from the check's device when the config names none: `target` is
    accepted as an alias of host; a device's primary IP (else its host name) is the
    default host (for HTTP, `http://<host>/`; for DNS, the name to resolve)."""
    config = dict(config)
    target = config.pop("target", None) or device_ip or device_hostname
    if kind == "http":
        if not config.get("url") and target:
            config["url"] = target if "://" in str(target) else f"http://{target}/"
    elif kind == "dns":
        if not config.get("name") and target:
            config["name"] = target
    elif not config.get("host") and target:
        config["host"] = target
    return config


def prepare(kind: str, config: dict, device_ip: str | None = None,
            device_hostname: str | None = None) -> dict:
    """The runnable config of a stored check (secrets opened, target filled, validated);
    ConfigError when it cannot run."""
    return poller_checks.validate(kind, with_target(kind, open_secrets(kind, config),
                                                    device_ip, device_hostname))


def validate_for_storage(kind: str, config: dict) -> dict:
    """Validate a server-side check config as entered (before sealing). A missing host is
    accepted here when the check will be bound to a device (filled at run time)."""
    probe = with_target(kind, config, "192.0.2.1")  # a placeholder only for validation
    poller_checks.validate(kind, open_secrets(kind, probe))
    return config


def next_run(now: datetime, previous: datetime, interval: int) -> datetime:
    """When to run a check again after running it now (see the module docstring)."""
    jitter = min(interval * 0.1, MAX_JITTER)
    if (now - previous).total_seconds() > interval:
        return now + timedelta(seconds=random.uniform(0, interval))  # backlog: spread out
    return now + timedelta(seconds=interval + random.uniform(-jitter, jitter))


def claim(due: list[DueCheck], now: datetime) -> list[DueCheck]:
    """Conditional UPDATE per swept check, in one transaction: a check whose next_run_at
    changed since the sweep was taken by another poller and is dropped."""
    won = []
    with transaction.atomic():
        for item in due:
            nxt = next_run(now, item.next_run_at, item.interval_seconds)
            if Check.objects.filter(pk=item.id, next_run_at=item.next_run_at).update(
                    next_run_at=nxt):
                won.append(item)
    return won


def _close_connection() -> None:
    connection.close()  # the calling (database) thread's own connection


# --- Running -----------------------------------------------------------------------------

@dataclass
class Ran:
    check: DueCheck
    outcome: Outcome
    observed_at: datetime


@dataclass
class PollerStats:
    swept: int = 0
    claimed: int = 0
    ran: int = 0
    recorded: int = 0
    config_errors: int = 0
    in_flight_max: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


def write_results(ran: list[Ran]) -> dict[str, int]:
    """Record a batch of outcomes: the alert state machine and the history rows."""
    results = [CheckResult(check_id=r.check.id, device_id=r.check.device_id,
                           client_id=r.check.client_id, state=r.outcome.state,
                           value=r.outcome.value, message=r.outcome.message[:500],
                           observed_at=r.observed_at, extra=r.outcome.details)
               for r in ran]
    counters = record_results(results)
    PollSample.objects.bulk_create(
        [PollSample(check_template_id=r.check.id, client_id=r.check.client_id,
                    ts=r.observed_at, state=r.outcome.state, value=r.outcome.value,
                    message=r.outcome.message[:500]) for r in ran], batch_size=500)
    return counters


class Poller:
    """The loop behind `watchkeeper poller`."""

    def __init__(self, *, shard: int = 0, shards: int = 1, concurrency: int | None = None,
                 tick: float = 1.0, batch: int = 2000, flush_every: float = 1.0,
                 ping_mode: str | None = None, ca_file: str | None = None):
        if shards < 1 or not 0 <= shard < shards:
            raise ValueError("--shard must be between 0 and --shards - 1")
        self.shard, self.shards = shard, shards
        self.concurrency = concurrency or settings.POLLER_CONCURRENCY
        self.tick, self.batch, self.flush_every = tick, batch, flush_every
        self.ctx_options = {"concurrency": self.concurrency, "ping_mode": ping_mode,
                            "ca_file": ca_file or settings.POLLER_CA_FILE or None}
        self.stats = PollerStats()
        self._buffer: list[Ran] = []
        self._running: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poller-db")
        self._in_flight = 0

    # Database calls, all on the one DB thread.
    async def _in_db(self, fn, *args):
        def call():
            close_old_connections()
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._db, call)

    def _sweep_and_claim(self, now: datetime) -> tuple[int, list[DueCheck]]:
        limit = max(0, self.batch - len(self._running))
        if limit == 0:
            return 0, []
        due = [d for d in due_server_checks(now, self.shard, self.shards, limit)
               if d.id not in self._running]
        return len(due), claim(due, now) if due else []

    async def _run_one(self, sem: asyncio.Semaphore, ctx: PollerContext,
                       item: DueCheck) -> None:
        try:
            try:
                config = prepare(item.kind, item.config, item.device_ip, item.device_hostname)
            except (ConfigError, ValueError) as exc:
                self.stats.config_errors += 1
                outcome = Outcome("unknown", f"configuration error: {exc}"[:500])
            else:
                async with sem:
                    self._in_flight += 1
                    self.stats.in_flight_max = max(self.stats.in_flight_max, self._in_flight)
                    try:
                        with netguard.allow(item.probe_networks):
                            outcome = await self._bounded_run(item.kind, config, ctx)
                    finally:
                        self._in_flight -= 1
            self.stats.ran += 1
            self.stats.by_state[outcome.state] = self.stats.by_state.get(outcome.state, 0) + 1
            self._buffer.append(Ran(item, outcome, timezone.now()))
        finally:
            self._running.discard(item.id)

    @staticmethod
    async def _bounded_run(kind: str, config: dict, ctx: PollerContext) -> Outcome:
        """Every kind bounds itself by its timeout; this is the backstop so one stuck check
        can never hold a slot of the semaphore for good."""
        limit = HARD_LIMIT_FACTOR * float(config.get("timeout") or 10) * \
            max(1, int(config.get("count") or 1)) + 30
        try:
            async with asyncio.timeout(limit):
                return await poller_checks.run_check(kind, config, ctx)
        except TimeoutError:
            return Outcome("unknown", f"the poller gave up after {limit:.0f} s")

    async def _flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            await self._in_db(write_results, batch)
            self.stats.recorded += len(batch)
        except Exception as exc:
            from watchkeeper.core.processes import is_dependency_error

            log.warning("could not record %d poller results (%s); keeping them for the next "
                        "flush", len(batch), type(exc).__name__,
                        exc_info=not is_dependency_error(exc))
            self._buffer[:0] = batch
            if len(self._buffer) > MAX_BUFFER:  # database away for long: keep the newest
                dropped = len(self._buffer) - MAX_BUFFER
                del self._buffer[:dropped]
                log.error("dropped the %d oldest poller results (buffer full)", dropped)

    def _start(self, sem, ctx, claimed: list[DueCheck]) -> None:
        for item in claimed:
            self._running.add(item.id)
            task = asyncio.create_task(self._run_one(sem, ctx, item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def run_once(self, now: datetime | None = None) -> PollerStats:
        """One sweep: claim what is due, run it all, record it. For tests and `--once`."""
        sem = asyncio.Semaphore(self.concurrency)
        async with PollerContext(**self.ctx_options) as ctx:
            swept, claimed = await self._in_db(self._sweep_and_claim, now or timezone.now())
            self.stats.swept += swept
            self.stats.claimed += len(claimed)
            self._start(sem, ctx, claimed)
            if self._tasks:
                await asyncio.gather(*list(self._tasks))
            await self._flush()
        await self._in_db(_close_connection)
        return self.stats

    async def run(self, stop: asyncio.Event) -> PollerStats:
        """Sweep every tick and flush every `flush_every` seconds until `stop` is set; then
        finish the checks in flight and flush once more."""
        sem = asyncio.Semaphore(self.concurrency)
        last_flush = time.monotonic()
        from watchkeeper.core.processes import is_dependency_error

        database_away = False
        async with PollerContext(**self.ctx_options) as ctx:
            while not stop.is_set():
                try:
                    swept, claimed = await self._in_db(self._sweep_and_claim, timezone.now())
                    self.stats.swept += swept
                    self.stats.claimed += len(claimed)
                    self._start(sem, ctx, claimed)
                    if database_away:
                        log.warning("poller: the database is back")
                    database_away = False
                except Exception as exc:  # database away: keep looping, retry next tick
                    if not is_dependency_error(exc):
                        log.exception("poller sweep failed")
                    elif not database_away:  # one line per outage
                        log.warning("poller sweep failed: %s; retrying every tick",
                                    type(exc).__name__)
                        database_away = True
                if time.monotonic() - last_flush >= self.flush_every or \
                        len(self._buffer) >= self.batch:
                    await self._flush()
                    last_flush = time.monotonic()
                try:
                    async with asyncio.timeout(self.tick):
                        await stop.wait()
                except TimeoutError:
                    pass
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await self._flush()
        await self._in_db(_close_connection)
        self._db.shutdown(wait=True)
        return self.stats


# --- Test now ------------------------------------------------------------------------------

def probe_client_id(*, policy=None, device=None) -> int | None:
    """Whose allowed networks a check's probes use: its policy's client, else its device's
    (None: the MSP's own list, SecurityPolicy.probe_networks)."""
    return getattr(policy, "client_id", None) or getattr(device, "client_id", None)


def run_now(kind: str, config: dict, device_ip: str | None = None,
            device_hostname: str | None = None, *, client_id: int | None = None) -> Outcome:
    """Run one check immediately (the "Test now" button); nothing is recorded. It reaches
    only the networks allowed for `client_id`'s probes (the MSP's when None)."""
    try:
        clean = prepare(kind, config, device_ip, device_hostname)
    except ConfigError as exc:
        return Outcome("unknown", f"configuration error: {exc}")

    networks = netguard.networks_for(client_id)

    async def go() -> Outcome:
        with netguard.allow(networks):
            async with PollerContext(ca_file=settings.POLLER_CA_FILE or None) as ctx:
                return await poller_checks.run_check(kind, clean, ctx)

    return asyncio.run(go())


def summary(stats: PollerStats) -> dict[str, Any]:
    return {"swept": stats.swept, "claimed": stats.claimed, "ran": stats.ran,
            "recorded": stats.recorded, "config_errors": stats.config_errors,
            "in_flight_max": stats.in_flight_max, **stats.by_state}
