"""Check-in ingestion: one validated batch from one agent, written in one transaction.

Idempotent by sequence number: the agent numbers its batches and replays them in order
after an outage, and the conditional UPDATE of `last_seq` decides, inside the transaction,
whether this batch is new. A repeat is acknowledged without storing anything twice. The
agent is acknowledged only after the transaction committed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction

from .actions import offline_after
from .choices import FINISHED_COMMAND_STATES, AgentStatus, CommandStatus, Connectivity, RunStatus
from .events import AgentOnline
from .models import Agent, Command, MetricName, MetricSample, ScriptRun
from .protocol import canonical_json
from .signer import open_payload

log = logging.getLogger(__name__)

# Metric name -> id, filled lazily; names are never renamed or deleted, so entries stay valid.
_metric_ids: dict[str, int] = {}
# Refresh the device's last_seen_at (an UPDATE of the inventory's hot row) only when the
# device's own last_seen_at is older than this; the agent row carries the exact time. Kept
# well inside the inventory's online window (15 min) plus one check-in interval.
DEVICE_TOUCH_SECONDS = 300


def touch_devices(device_ids: list[int], now: datetime) -> None:
    """Every fresh check-in is a sign of life of its device: one set-based UPDATE of the
    devices whose last_seen_at is older than DEVICE_TOUCH_SECONDS (shared by the Django
    view and the lean path's batch writer)."""
    from watchkeeper.inventory import services as inventory_services

    inventory_services.touch_last_seen(device_ids, now,
                                       older_than=timedelta(seconds=DEVICE_TOUCH_SECONDS))


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


def _sha256(value: Any) -> str:
    import hashlib

    return hashlib.sha256(canonical_json(value)).hexdigest()


def ingest_checkin(agent: Agent, batch: dict[str, Any], *, ip: str | None) -> dict[str, Any]:
    """Store one batch (already validated) and return the acknowledgement. Runs inside the
    caller's transaction; only an inventory delta (which the inventory app may refuse) gets
    a savepoint of its own."""
    now = timezone.now()
    seq = batch["seq"]
    with transaction.atomic(savepoint=bool(batch.get("inventory"))):
        fields = {"last_seq": seq, "last_seen_at": now, "next_due_at": now + offline_after(),
                  "last_ip": ip}
        if batch.get("agent_version") and batch["agent_version"] != agent.agent_version:
            fields["agent_version"] = batch["agent_version"]
        # The claim: only the first delivery of a batch moves last_seq past it.
        fresh = Agent.objects.filter(pk=agent.pk, last_seq__lt=seq).update(**fields)
        hashes = agent.inventory_hashes or {}
        if not fresh:
            # A replay of a batch already stored: still a sign of life.
            Agent.objects.filter(pk=agent.pk).update(last_seen_at=now,
                                                     next_due_at=now + offline_after())
        else:
            hashes = _store(agent, batch, now) or hashes
        _went_online(agent)
    return {"ack_seq": seq, "duplicate": not fresh, "inventory_hashes": hashes}


def _insert_samples(device_id: int, ts: datetime, values: dict[str, float]) -> None:
    """One multi-row INSERT with placeholders: the ORM's bulk_create costs several times
    more CPU per row, and this is the hottest write of the platform."""
    ids = metric_ids(sorted(values))
    ts_db = connection.ops.adapt_datetimefield_value(ts)
    table = connection.ops.quote_name(MetricSample._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(values))
    params: list[Any] = []
    for name, value in values.items():
        params.extend((device_id, ids[name], ts_db, float(value)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (device_id, metric_id, ts, value) VALUES {rows}",  # noqa: S608
            params)


def _store(agent: Agent, batch: dict[str, Any], now: datetime) -> dict[str, str] | None:
    """Write the batch; returns the new inventory hashes when an inventory was stored."""
    hashes = None
    metrics = batch.get("metrics")
    if metrics and metrics.get("values"):
        _insert_samples(agent.device_id, datetime.fromtimestamp(metrics["ts"], tz=UTC),
                        metrics["values"])
    inventory = batch.get("inventory")
    if inventory and inventory.get("sections"):
        hashes = _store_inventory(agent, inventory["sections"], now)
    else:
        touch_devices([agent.device_id], now)
    if batch.get("results"):
        _store_results(agent, batch["results"], now)
    _note_drops(agent, batch.get("dropped") or {})
    return hashes


def _store_inventory(agent: Agent, sections: dict[str, Any], now: datetime) -> dict[str, str]:
    from watchkeeper.inventory import services as inventory_services

    known = {k: v for k, v in sections.items() if k in inventory_services.SECTIONS}
    inventory_services.apply_agent_inventory(device_id=agent.device_id, sections=known,
                                             agent_ref=str(agent.uid), observed_at=now)
    # Hash what we stored (the agent hashes the same canonical JSON) so the next delta is
    # computed against what the server really holds.
    current = Agent.objects.select_for_update().values_list(
        "inventory_hashes", flat=True).get(pk=agent.pk) or {}
    current.update({name: _sha256(data) for name, data in known.items()})
    Agent.objects.filter(pk=agent.pk).update(inventory_hashes=current)
    return current


_RESULT_STATUS = {"timeout": CommandStatus.TIMED_OUT, "refused": CommandStatus.REFUSED}


def _store_results(agent: Agent, results: list[dict[str, Any]], now: datetime) -> None:
    by_uid = {r["id"]: r for r in results}
    commands = {str(c.uid): c for c in Command.objects.filter(
        agent=agent, uid__in=list(by_uid)).select_related("run")}
    runs = set()
    for uid, result in by_uid.items():
        command = commands.get(uid)
        if command is None or command.status in FINISHED_COMMAND_STATES:
            continue  # unknown, another agent's, or already reported
        status = _RESULT_STATUS.get(result["status"])
        if status is None:
            status = (CommandStatus.SUCCEEDED if result.get("exit_code") == 0
                      else CommandStatus.FAILED)
        updated = Command.objects.filter(
            pk=command.pk, status__in=(CommandStatus.SIGNED, CommandStatus.DELIVERED)).update(
            status=status, finished_at=now, exit_code=result.get("exit_code"),
            stdout=result.get("stdout", ""), stderr=result.get("stderr", ""),
            truncated=bool(result.get("truncated")), duration_ms=result.get("duration_ms"),
            reason=str(result.get("reason", ""))[:200])
        if not updated:
            continue
        audit.record(actor=f"agent:{agent.uid}", action=AuditAction.UPDATE, obj=command,
                     client_id=agent.client_id, object_repr=f"command on {agent}",
                     changes={"status": [command.status, status],
                              "exit_code": [None, result.get("exit_code")],
                              "reason": [None, result.get("reason", "")]})
        events.emit("command.finished", client=agent.client_id, payload={
            "id": command.pk, "uid": uid, "run": command.run_id, "agent": agent.pk,
            "device": agent.device_id, "status": status, "exit_code": result.get("exit_code")})
        if command.run_id:
            runs.add(command.run_id)
    for run_id in runs:
        open_left = Command.objects.filter(run_id=run_id).exclude(
            status__in=FINISHED_COMMAND_STATES).exists()
        if not open_left and ScriptRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                status=RunStatus.DONE):
            run = ScriptRun.objects.get(pk=run_id)
            events.emit("script_run.finished", client=run.client_id, payload={"id": run_id})


def _note_drops(agent: Agent, dropped: dict[str, int]) -> None:
    """Keep the agent's running totals of spool drops (they only ever grow)."""
    current = dict(agent.spool_dropped or {})
    merged = {k: max(int(v), int(current.get(k, 0))) for k, v in dropped.items()}
    merged = {**current, **merged}
    if merged == current:
        return
    Agent.objects.filter(pk=agent.pk).update(spool_dropped=merged)
    agent.spool_dropped = merged
    events.emit("agent.spool_overflow", client=agent.client_id, payload={
        "id": agent.pk, "uid": str(agent.uid), "dropped_total": merged,
        "dropped_new": {k: merged[k] - int(current.get(k, 0)) for k in merged}})


def _went_online(agent: Agent) -> None:
    if agent.connectivity == Connectivity.ONLINE:
        return
    if Agent.objects.filter(pk=agent.pk).filter(
            Q(connectivity=Connectivity.OFFLINE) | Q(connectivity=Connectivity.UNKNOWN)).update(
            connectivity=Connectivity.ONLINE):
        emit_online(agent)


def emit_online(agent: Agent) -> None:
    """The outbox event of an offline (or never seen) agent checking in; the caller claimed
    the transition with a conditional UPDATE in its transaction."""
    events.emit(AgentOnline.of(agent), client=agent.client_id)


def pending_commands(agent: Agent) -> list[dict[str, Any]]:
    """Signed, unexpired commands for this agent, marked delivered. Delivered ones are sent
    again until a result arrives: the agent's nonce ledger makes the second copy harmless."""
    if not agent.commands_waiting:
        return []
    now = timezone.now()
    rows = list(Command.objects.filter(
        agent=agent, status__in=(CommandStatus.SIGNED, CommandStatus.DELIVERED),
        expires_at__gt=now).order_by("id").values_list("id", "uid", "payload", "signature",
                                                       "status"))
    if not rows:
        # Nothing left: clear the flag unless the signer signed something since we read it.
        Agent.objects.filter(pk=agent.pk, commands_version=agent.commands_version).update(
            commands_waiting=False)
        return []
    first = [pk for pk, _, _, _, status in rows if status == CommandStatus.SIGNED]
    if first:
        Command.objects.filter(pk__in=first, status=CommandStatus.SIGNED).update(
            status=CommandStatus.DELIVERED, delivered_at=now)
    return [{"id": str(uid), "payload": open_payload(payload), "signature": signature}
            for _, uid, payload, signature, _ in rows]


def agent_is_active(agent: Agent) -> bool:
    return agent.status == AgentStatus.APPROVED and agent.device_id is not None
