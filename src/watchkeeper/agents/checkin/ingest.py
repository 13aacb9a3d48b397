"""Check-in ingestion of the Django view: one validated batch from one agent, written in
one transaction.

The metric part (sequence claim, samples, online state, agent_version, device last-seen)
is stored by the check-in writer (writer.py) that the lean path uses too; this module adds
what only the view handles: the inventory delta, command results, spool-drop totals, and
the hand-out of pending commands.

Idempotent by sequence number: the agent numbers its batches and replays them in order
after an outage, and the writer's conditional UPDATE of `last_seq` decides, inside the
transaction, whether this batch is new. A repeat is acknowledged without storing anything
twice. The agent is acknowledged only after the transaction committed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db import transaction
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.canonical import canonical_hash
from watchkeeper.core.choices import AuditAction

from .. import events as ev
from ..choices import FINISHED_COMMAND_STATES, AgentStatus, CommandStatus, RunStatus
from ..commands.signer import open_payload
from ..models import Agent, Command, ScriptRun
from . import writer

log = logging.getLogger(__name__)


def ingest_checkin(agent: Agent, batch: dict[str, Any], *, ip: str | None) -> dict[str, Any]:
    """Store one batch (already validated, its nonce claimed) and return the
    acknowledgement. The metric part goes through the check-in writer, as the lean path's;
    the sections only this view handles follow when the batch is fresh. Runs inside the
    caller's transaction; only an inventory delta (which the inventory app may refuse)
    gets a savepoint of its own, so a refusal stores nothing of the batch."""
    now = timezone.now()
    with transaction.atomic(savepoint=bool(batch.get("inventory"))):
        kind, answer = writer.store([SimpleNamespace(agent=agent, batch=batch, ip=ip)], now)[0]
        if kind == "problem":
            raise answer  # revoked, rejected or deleted since it was authenticated
        if not answer["duplicate"]:
            inventory = batch.get("inventory")
            if inventory and inventory.get("sections"):
                answer["inventory_hashes"] = _store_inventory(agent, inventory["sections"], now)
            if batch.get("results"):
                _store_results(agent, batch["results"], now)
            _note_drops(agent, batch.get("dropped") or {})
    return answer


def _store_inventory(agent: Agent, sections: dict[str, Any], now: datetime) -> dict[str, str]:
    from watchkeeper.inventory import services as inventory_services

    known = {k: v for k, v in sections.items() if k in inventory_services.SECTIONS}
    inventory_services.apply_agent_inventory(device_id=agent.device_id, sections=known,
                                             agent_ref=str(agent.uid), observed_at=now)
    _store_patch_state(agent, known, now)
    # Hash what we stored (the agent hashes the same canonical JSON) so the next delta is
    # computed against what the server really holds.
    current = Agent.objects.select_for_update().values_list(
        "inventory_hashes", flat=True).get(pk=agent.pk) or {}
    current.update({name: canonical_hash(data) for name, data in known.items()})
    Agent.objects.filter(pk=agent.pk).update(inventory_hashes=current)
    return current


def _store_patch_state(agent: Agent, known: dict[str, Any], now: datetime) -> None:
    """The updates section (and the reboot flag) to the patching app, the patch state's
    source of truth, in this transaction: a value it refuses (ValueError) is quarantined."""
    reboot = (known.get("system") or {}).get("reboot_required")
    if "updates" not in known and not isinstance(reboot, bool):
        return
    from watchkeeper.inventory import services as inventory_services
    from watchkeeper.patching import services as patching_services

    device = inventory_services.device_status_summary([agent.device_id])[agent.device_id]
    patching_services.apply_agent_updates(
        device_id=agent.device_id, client_id=device["client_id"], agent_ref=str(agent.uid),
        observed_at=now, items=known.get("updates"),
        reboot_pending=reboot if isinstance(reboot, bool) else None)


_RESULT_STATUS = {"timeout": CommandStatus.TIMED_OUT, "refused": CommandStatus.REFUSED,
                  "interrupted": CommandStatus.INTERRUPTED}


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
        events.emit(ev.CommandFinished.of(command, agent=agent, status=status,
                                          exit_code=result.get("exit_code")),
                    client=agent.client_id)
        if command.run_id:
            runs.add(command.run_id)
    for run_id in runs:
        open_left = Command.objects.filter(run_id=run_id).exclude(
            status__in=FINISHED_COMMAND_STATES).exists()
        if not open_left and ScriptRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                status=RunStatus.DONE):
            run = ScriptRun.objects.get(pk=run_id)
            events.emit(ev.ScriptRunFinished.of(run), client=run.client_id)


def _note_drops(agent: Agent, dropped: dict[str, int]) -> None:
    """Keep the agent's running totals of spool drops (they only ever grow)."""
    current = dict(agent.spool_dropped or {})
    merged = {k: max(int(v), int(current.get(k, 0))) for k, v in dropped.items()}
    merged = {**current, **merged}
    if merged == current:
        return
    Agent.objects.filter(pk=agent.pk).update(spool_dropped=merged)
    agent.spool_dropped = merged
    events.emit(ev.AgentSpoolOverflow.of(
        agent, total=merged, new={k: merged[k] - int(current.get(k, 0)) for k in merged}),
        client=agent.client_id)


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
