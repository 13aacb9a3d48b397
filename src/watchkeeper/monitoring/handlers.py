"""Outbox subscriptions of the monitoring app (imported by MonitoringConfig.ready).

Agent-offline checks follow the agents app's agent.offline / agent.online events; script
checks follow command.finished. Notifications are wired in notify (a provider and a
resolver on the outbox). Each handler is idempotent: a redelivered event repeats a reading
the state machine has already counted, which at worst adds one repeat to an open alert.
"""

from __future__ import annotations

from watchkeeper.agents.events import AgentOffline, AgentOnline
from watchkeeper.core.events import subscribe

from . import notify  # noqa: F401  (registers the notification provider and resolver)
from .alerts import record_results
from .evaluate import offline_results, script_results


@subscribe("agent.offline", name="monitoring.agent_offline")
def on_agent_offline(event: AgentOffline, handler_name) -> None:
    if event.device_id:
        record_results(offline_results(event.device_id, event.envelope.client_id, True))


@subscribe("agent.online", name="monitoring.agent_online")
def on_agent_online(event: AgentOnline, handler_name) -> None:
    if event.device_id:
        record_results(offline_results(event.device_id, event.envelope.client_id, False))


@subscribe("command.finished", name="monitoring.script_check")
def on_command_finished(event, handler_name) -> None:
    from watchkeeper.agents.models import Command

    payload = event.payload or {}
    if not payload.get("run") or not payload.get("device"):
        return
    command = (Command.objects.filter(pk=payload.get("id"))
               .select_related("run__script_version").first())
    if command is None or command.run is None:
        return
    script_id = command.run.script_version.script_id
    output = command.stdout + (f"\n{command.stderr}" if command.stderr else "")
    results = script_results(payload["device"], event.client_id, script_id,
                             command.exit_code, output, command.finished_at)
    if results:
        record_results(results)
