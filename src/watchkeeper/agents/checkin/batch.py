"""The batch writer of the lean check-in path: concurrent check-ins of many agents, verified
together and written in ONE transaction.

Per batch (at most one check-in per agent per transaction; a second one of the same agent is
written in a transaction after the first, so a replay inside a batch meets the first
one's committed nonce):

1. read — one SELECT of the batch's agents, outside the transaction; each request's
   signature is verified against its agent's key, revoked/rejected agents refused
   (auth.py's functions, as the Django view). A check-in that needs what only the Django
   view does (pending commands to hand out, new spool-drop totals, an approved agent
   without a device) is handed back untouched: no nonce is written, and the
   Django view then runs every check again on the same bytes.
2. write, in one transaction — one multi-row nonce INSERT … ON CONFLICT DO NOTHING
   RETURNING (`auth.claim_nonces`; a nonce not returned is a replay), then the check-in
   writer (`writer.store`, which the Django view uses too): the set-based sequence claim
   (a revocation committed after step 1 is still honoured: the agent is no longer
   'approved'), last-seen for repeats, one multi-row INSERT of every sample, the
   offline→online transitions with their `agent.online` events, devices' last_seen_at.
3. answers — only after the commit. If anything in step 2 fails, every request that
   needed the transaction gets 503 + Retry-After: nothing was written, and the agent keeps
   the batch in its spool and sends it again.

Back-pressure: the queue is bounded (`AGENT_BATCH_QUEUE_MAX` check-ins and
`AGENT_BATCH_QUEUE_BYTES` of bodies, queued or being written); past either bound a check-in
is answered 503 + Retry-After at once instead of queuing (the signature is checked by the
writer, so a flood of forged check-ins must not pile up memory). A request waits at most
`AGENT_BATCH_TIMEOUT_S` for its answer, then gets 503 as well: the agent re-sends the
same batch, and if the first copy did commit meanwhile its sequence number makes the
second an acknowledged duplicate, never a second copy.

The writer owns one thread and so one long-lived database connection per web process
(on PostgreSQL borrowed once from the psycopg pool and kept): no per-request connection
open/close on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from ..choices import AgentStatus
from ..models import Agent
from . import auth
from . import writer as checkin_writer

log = logging.getLogger(__name__)

AGENT_FIELDS = ("id", "uid", "client_id", "device_id", "public_key", "status", "connectivity",
                "last_seen_at", "agent_version", "spool_dropped", "inventory_hashes",
                "commands_waiting")
RETRY_AFTER = 5


@dataclass
class CheckinItem:
    """One lean check-in: signature headers parsed, body validated, waiting for its answer."""

    headers: auth.SignedHeaders
    method: str
    path: str
    body: bytes
    batch: dict[str, Any]
    ip: str | None
    # Set by the writer: ("ok", answer) | ("problem", AuthError) | ("handoff", None) |
    # ("retry", None).
    outcome: tuple[str, Any] | None = None
    agent: Agent | None = field(default=None, repr=False)
    pending: bool = False


def _needs_django(agent: Agent, batch: dict[str, Any]) -> bool:
    """What the lean path leaves to the Django view: the rare check-ins."""
    if agent.device_id is None or agent.commands_waiting:
        return True
    # A new agent_version is written by the set-based claim (_claim_seqs), as the view
    # does: a fleet-wide upgrade must not send every agent's next check-in to the view.
    # New spool-drop totals: the Django view stores them and emits agent.spool_overflow
    # (the same comparison as ingest._note_drops).
    current = dict(agent.spool_dropped or {})
    dropped = batch.get("dropped") or {}
    merged = {**current, **{k: max(int(v), int(current.get(k, 0))) for k, v in dropped.items()}}
    return merged != current


def verify(items: list[CheckinItem]) -> list[CheckinItem]:
    """Step 1: look the agents up (one query), verify, classify. Returns the items that
    need the write transaction; the others have their outcome."""
    uids = {item.headers.agent_uuid for item in items}
    agents = {a.uid: a for a in Agent.objects.filter(uid__in=uids).order_by().only(
        *AGENT_FIELDS)}
    to_write = []
    for item in items:
        agent = agents.get(item.headers.agent_uuid)
        try:
            if agent is None:
                raise auth.unknown_agent()
            auth.verify_signature(agent.public_key, item.headers, method=item.method,
                                  path=item.path, body=item.body)
            auth.check_allowed(agent.status)
        except auth.AuthError as exc:
            item.outcome = ("problem", exc)
            continue
        item.agent = agent
        if agent.status == AgentStatus.PENDING:
            item.pending = True  # its nonce is claimed, then it is told to wait (as Django)
        elif agent.status != AgentStatus.APPROVED or _needs_django(agent, item.batch):
            item.outcome = ("handoff", None)
            continue
        to_write.append(item)
    return to_write


def write(items: list[CheckinItem]) -> list[tuple[CheckinItem, tuple[str, Any]]]:
    """Step 2, one transaction: the nonces, then the check-in writer (writer.store). Returns
    each item's outcome; the caller hands them out only after this returned, i.e. after
    the commit."""
    now = timezone.now()
    answers: list[tuple[CheckinItem, tuple[str, Any]]] = []
    with transaction.atomic():
        claimed = auth.claim_nonces([(i.agent.pk, i.headers.nonce) for i in items], now)
        unclaimed = [i.agent.pk for i in items if (i.agent.pk, i.headers.nonce) not in claimed]
        existing = set(Agent.objects.filter(pk__in=unclaimed).values_list(
            "pk", flat=True)) if unclaimed else set()
        live = []
        for item in items:
            if (item.agent.pk, item.headers.nonce) not in claimed:
                answers.append((item, ("problem", auth.replay() if item.agent.pk in existing
                                       else auth.unknown_agent())))
            elif item.pending:
                answers.append((item, ("problem", auth.pending())))
            else:
                live.append(item)
        if live:
            answers.extend(zip(live, checkin_writer.store(live, now), strict=True))
    return answers


def _rounds(items: list[CheckinItem]) -> list[list[CheckinItem]]:
    """Split so that each agent appears once per transaction: a second check-in of the same
    agent (or a replay of its nonce) is written after the first one committed, and meets
    its nonce and last_seq there."""
    rounds: list[list[CheckinItem]] = []
    seen: list[set] = []
    for item in items:
        uid = item.headers.agent_uuid
        for batch, agents in zip(rounds, seen, strict=True):
            if uid not in agents:
                batch.append(item)
                agents.add(uid)
                break
        else:
            rounds.append([item])
            seen.append({uid})
    return rounds


def _attempt(batch: list[CheckinItem]) -> Exception | None:
    """Verify and write one round; the exception if it failed (nothing of it was kept)."""
    try:
        to_write = verify(batch)
        if to_write:
            for item, outcome in write(to_write):
                item.outcome = outcome
    except Exception as exc:
        log.exception("agent check-in batch of %d failed", len(batch))
        # A broken connection must not poison the next batch: the writer thread opens
        # a fresh one (a caller's own transaction, as in tests, is left to the caller).
        if not connection.in_atomic_block:
            try:
                connection.close()
            except Exception:  # noqa: S110 - already failing; the next batch reconnects
                pass
        return exc
    return None


def process(items: list[CheckinItem]) -> None:
    """Verify and write check-ins; every item leaves with an outcome. A failure of the read
    or of a transaction answers 'retry' to each item that needed it."""
    for batch in _rounds(items):
        error = _attempt(batch)
        left = [item for item in batch if item.outcome is None]
        if error is not None and len(left) > 1 and not isinstance(
                error, OperationalError | InterfaceError):
            # Not the database going away but something in the data: write each check-in
            # on its own, so that one agent's unstorable batch cannot fail the others'
            # (and, resent from its spool, every batch it lands in).
            for item in left:
                _attempt([item])
    for item in items:
        if item.outcome is None:
            item.outcome = ("retry", None)


class BatchWriter:
    """One thread per process that takes queued check-ins in batches (at most `max_batch`,
    waiting up to `wait_ms` for more once one arrived) and runs `process` on them."""

    def __init__(self, *, max_batch: int, wait_ms: float, max_items: int = 5000,
                 max_bytes: int = 64 * 2**20, timeout_s: float = 30.0):
        self.max_batch = max(1, max_batch)
        self.wait = max(0.0, wait_ms) / 1000
        self.max_items, self.max_bytes = max(1, max_items), max(1, max_bytes)
        self.timeout = max(0.001, timeout_s)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.batches = 0
        self.in_flight = 0        # check-ins queued or being written
        self.in_flight_bytes = 0
        self.refused = 0          # answered 503 because the queue was full
        self.timed_out = 0        # answered 503 because the writer took too long

    async def submit(self, item: CheckinItem) -> tuple[str, Any]:
        size = len(item.body)
        with self.lock:
            if (self.in_flight >= self.max_items
                    or self.in_flight_bytes + size > self.max_bytes):
                self.refused += 1
                return ("retry", None)
            self.in_flight += 1
            self.in_flight_bytes += size
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        try:
            self._ensure_thread()
            self.queue.put((item, loop, future))
        except BaseException:
            self._done(size)
            raise
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            with self.lock:
                self.timed_out += 1
            return ("retry", None)

    def _done(self, size: int) -> None:
        with self.lock:
            self.in_flight -= 1
            self.in_flight_bytes -= size

    def _ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="agent-batch-writer",
                                               daemon=True)
                self.thread.start()

    def _take(self) -> list:
        batch = [self.queue.get()]
        deadline = time.monotonic() + self.wait
        while len(batch) < self.max_batch:
            try:
                remaining = deadline - time.monotonic()
                batch.append(self.queue.get(timeout=remaining) if remaining > 0
                             else self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            try:
                process([entry[0] for entry in batch])
            except BaseException:  # process() answers every item; this is a last resort
                log.exception("agent batch writer")
                for entry in batch:
                    entry[0].outcome = entry[0].outcome or ("retry", None)
            self.batches += 1
            for item, loop, future in batch:
                self._done(len(item.body))
                try:
                    loop.call_soon_threadsafe(_resolve, future, item.outcome)
                except RuntimeError:  # that request's event loop is closed: nobody waits
                    pass


def _resolve(future: asyncio.Future, outcome: tuple[str, Any]) -> None:
    if not future.done():  # the client may have gone away meanwhile
        future.set_result(outcome)


_writer: BatchWriter | None = None


def writer() -> BatchWriter:
    global _writer
    if _writer is None:
        _writer = BatchWriter(max_batch=settings.AGENT_BATCH_MAX,
                              wait_ms=settings.AGENT_BATCH_WAIT_MS,
                              max_items=settings.AGENT_BATCH_QUEUE_MAX,
                              max_bytes=settings.AGENT_BATCH_QUEUE_BYTES,
                              timeout_s=settings.AGENT_BATCH_TIMEOUT_S)
    return _writer
