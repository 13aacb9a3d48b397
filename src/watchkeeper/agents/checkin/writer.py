"""The check-in writer: the one place the metric part of a check-in is stored, for the lean
path (batch.py: many agents' check-ins in one transaction) and the Django view (ingest.py:
one agent's check-in, whose extra sections — inventory, command results, spool-drop totals —
the view stores itself after this returned).

`store(entries, now)` runs inside the caller's transaction, after the caller claimed each
request's nonce (`auth.claim_nonces`), and writes, set-based whatever the number of agents:

1. the sequence claim — one `UPDATE agent … FROM (VALUES …) WHERE last_seq < seq AND
   status = 'approved' RETURNING id`: only the first delivery of a batch moves last_seq
   past it (with last-seen, next-due, last IP and a newer agent_version), and an agent
   revoked since it was verified is no longer 'approved';
2. last-seen for repeats (a batch already stored is still a sign of life);
3. refusals for agents revoked, rejected, set back to pending or deleted meanwhile;
4. one multi-row INSERT of every fresh batch's samples;
5. the offline→online transitions, claimed with one conditional UPDATE, and their
   `agent.online` events in the outbox;
6. the devices' last_seen_at, written when older than DEVICE_TOUCH_SECONDS.

Each entry's outcome is `("ok", {"ack_seq", "duplicate", "inventory_hashes"})` or
`("problem", AuthError)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.db import connection, transaction

from watchkeeper.core import events
from watchkeeper.inventory import services as inventory_services

from ..actions import offline_after
from ..choices import AgentStatus, Connectivity
from ..events import AgentOnline
from ..models import Agent, MetricName, MetricSample
from ..sqlrows import values_rows, vendor_casts
from . import auth

# Rows per multi-row INSERT of samples: 4 parameters each stays far below SQLite's 32,766
# and PostgreSQL's 65,535 bind parameters.
SAMPLE_CHUNK = 2000
# Refresh the device's last_seen_at (an UPDATE of the inventory's hot row) only when the
# device's own last_seen_at is older than this; the agent row carries the exact time. Kept
# well inside the inventory's online window (15 min) plus one check-in interval.
DEVICE_TOUCH_SECONDS = 300

# Metric name -> id, filled lazily; names are never renamed or deleted, so entries stay valid.
_metric_ids: dict[str, int] = {}


class Entry(Protocol):
    """A verified check-in: its agent (as read before the transaction), the validated
    batch, the client's IP."""

    agent: Agent
    batch: dict[str, Any]
    ip: str | None


def metric_ids(names: list[str]) -> dict[str, int]:
    known = {n: _metric_ids[n] for n in names if n in _metric_ids}
    missing = [n for n in names if n not in known]
    if missing:
        MetricName.objects.bulk_create([MetricName(name=n) for n in missing],
                                       ignore_conflicts=True)
        fetched = dict(MetricName.objects.filter(name__in=missing).values_list("name", "id"))
        known.update(fetched)
        # Cache only once committed: a rolled-back transaction takes new names with it.
        transaction.on_commit(lambda: _metric_ids.update(fetched))
    return known


def _insert_rows(batches: Iterable[tuple[int, datetime, dict[str, float]]]) -> None:
    """Multi-row INSERTs with placeholders: the ORM's bulk_create costs several times more
    CPU per row, and this is the hottest write of the platform."""
    batches = [b for b in batches if b[2]]
    if not batches:
        return
    ids = metric_ids(sorted({name for _, _, values in batches for name in values}))
    adapt = connection.ops.adapt_datetimefield_value
    rows: list[tuple] = []
    for device, ts, values in batches:
        ts_db = adapt(ts)
        rows.extend((device, ids[name], ts_db, float(value)) for name, value in values.items())
    table = connection.ops.quote_name(MetricSample._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), SAMPLE_CHUNK):
            chunk = rows[start:start + SAMPLE_CHUNK]
            cursor.execute(
                f"INSERT INTO {table} (device_id, metric_id, ts, value) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s, %s, %s)"] * len(chunk)),
                [v for row in chunk for v in row])


def insert_samples(device_id: int, ts: datetime, values: dict[str, float]) -> None:
    """Store one device's samples of one moment (the monitoring tests and benches seed
    history with it)."""
    _insert_rows([(device_id, ts, values)])


def _claim_seqs(entries: Sequence[Entry], now: datetime) -> set[int]:
    """The set-based claim: moves last_seq only where the batch is newer and the agent is
    still approved. Returns the agent ids whose batch is fresh."""
    table = connection.ops.quote_name(Agent._meta.db_table)
    ops = connection.ops
    params: list[Any] = []
    for entry in entries:
        params.extend((entry.agent.pk, entry.batch["seq"], entry.ip,
                       entry.batch.get("agent_version") or ""))
    cast = vendor_casts()
    params += [ops.adapt_datetimefield_value(now),
               ops.adapt_datetimefield_value(now + offline_after())]
    ts = "%s" + cast["timestamptz"]
    sql = (f"WITH v(id, seq, ip, version) AS "  # noqa: S608
           f"(VALUES {values_rows(len(entries), ('int', 'int', 'text', 'text'))}) "
           f"UPDATE {table} SET last_seq = v.seq, last_seen_at = {ts}, next_due_at = {ts}, "
           f"last_ip = v.ip{cast['inet']}, agent_version = CASE WHEN v.version = '' "
           f"THEN {table}.agent_version ELSE v.version END FROM v "
           f"WHERE {table}.id = v.id AND {table}.last_seq < v.seq "
           f"AND {table}.status = %s RETURNING {table}.id")
    # Parameter order follows the SQL text: the VALUES, the two times, then the status.
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, AgentStatus.APPROVED])
        return {int(row[0]) for row in cursor.fetchall()}


def _returning_update(sql_set: str, set_params: list[Any], ids: list[int],
                      where: str, where_params: list[Any]) -> set[int]:
    table = connection.ops.quote_name(Agent._meta.db_table)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {sql_set} WHERE id IN ({marks}) "  # noqa: S608
                       f"AND {where} RETURNING id", [*set_params, *ids, *where_params])
        return {int(row[0]) for row in cursor.fetchall()}


def _refusals(gone: Sequence[Entry]) -> dict[int, auth.AuthError]:
    """Why agents that were approved when verified may no longer talk: refused as the
    verification would refuse them now."""
    status = dict(Agent.objects.filter(pk__in=[e.agent.pk for e in gone])
                  .values_list("pk", "status"))
    errors = {}
    for entry in gone:
        now_status = status.get(entry.agent.pk)
        if now_status is None:
            errors[entry.agent.pk] = auth.unknown_agent()
        elif now_status == AgentStatus.PENDING:
            errors[entry.agent.pk] = auth.pending()
        else:
            errors[entry.agent.pk] = auth.AuthError(403, now_status,
                                                    f"This agent is {now_status}.")
    return errors


def emit_online(agent: Agent) -> None:
    """The outbox event of an offline (or never seen) agent checking in; the caller claimed
    the transition with a conditional UPDATE in its transaction."""
    events.emit(AgentOnline.of(agent), client=agent.client_id)


def store(entries: Sequence[Entry], now: datetime) -> list[tuple[str, Any]]:
    """Write the metric part of verified check-ins (at most one per agent), inside the
    caller's transaction. Returns each entry's outcome, in order."""
    adapt = connection.ops.adapt_datetimefield_value
    fresh_ids = _claim_seqs(entries, now)
    fresh = [e for e in entries if e.agent.pk in fresh_ids]
    repeats = [e.agent.pk for e in entries if e.agent.pk not in fresh_ids]
    seen_ids = set(fresh_ids)
    if repeats:
        # A batch already stored: still a sign of life, if the agent may still talk.
        seen_ids |= _returning_update(
            "last_seen_at = %s, next_due_at = %s",
            [adapt(now), adapt(now + offline_after())], repeats, "status = %s",
            [AgentStatus.APPROVED])
    gone = [e for e in entries if e.agent.pk not in seen_ids]
    refused = _refusals(gone) if gone else {}
    _insert_rows((e.agent.device_id, datetime.fromtimestamp(e.batch["metrics"]["ts"], tz=UTC),
                  e.batch["metrics"]["values"])
                 for e in fresh if (e.batch.get("metrics") or {}).get("values"))
    # Offline (or never seen) agents come online: claimed once, event in the outbox.
    coming = {e.agent.pk: e.agent for e in entries if e.agent.pk in seen_ids
              and e.agent.connectivity != Connectivity.ONLINE}
    if coming:
        flipped = _returning_update(
            "connectivity = %s", [Connectivity.ONLINE], sorted(coming),
            "connectivity IN (%s, %s)", [Connectivity.OFFLINE, Connectivity.UNKNOWN])
        for pk in sorted(flipped):
            emit_online(coming[pk])
    # Every fresh check-in is a sign of life of its device: one set-based UPDATE of the
    # devices whose own last_seen_at is older than DEVICE_TOUCH_SECONDS.
    if fresh:
        inventory_services.touch_last_seen([e.agent.device_id for e in fresh], now,
                                           older_than=timedelta(seconds=DEVICE_TOUCH_SECONDS))
    outcomes: list[tuple[str, Any]] = []
    for entry in entries:
        pk = entry.agent.pk
        if pk in refused:
            outcomes.append(("problem", refused[pk]))
        else:
            outcomes.append(("ok", {"ack_seq": entry.batch["seq"],
                                    "duplicate": pk not in fresh_ids,
                                    "inventory_hashes": entry.agent.inventory_hashes or {}}))
    return outcomes
