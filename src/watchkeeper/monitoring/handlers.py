"""Outbox subscriptions of the monitoring app (imported by MonitoringConfig.ready).

Agent-offline checks follow the agents app's agent.offline / agent.online events; script
checks follow command.finished. Notifications are wired in notify (a provider and a
resolver on the outbox). Each handler is idempotent: a redelivered event repeats a reading
the state machine has already counted, which at worst adds one repeat to an open alert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchkeeper.core.events import subscribe

from .alerts import record_results
from .channels import notify  # noqa: F401  (registers the notification provider and resolver)
from .evaluate import offline_results, script_results

if TYPE_CHECKING:  # the other apps' event contracts, for the handlers' signatures
    from watchkeeper.agents.events import AgentOffline, AgentOnline, CommandFinished
    from watchkeeper.helpdesk.events import TicketChanged


@subscribe("agent.offline", name="monitoring.agent_offline")
def on_agent_offline(event: AgentOffline, handler_name) -> None:
    if event.device_id:
        record_results(offline_results(event.device_id, event.envelope.client_id, True))


@subscribe("agent.online", name="monitoring.agent_online")
def on_agent_online(event: AgentOnline, handler_name) -> None:
    if event.device_id:
        record_results(offline_results(event.device_id, event.envelope.client_id, False))


@subscribe("command.finished", name="monitoring.script_check")
def on_command_finished(event: CommandFinished, handler_name) -> None:
    from watchkeeper.agents.selectors import all_commands

    if not event.run_id or not event.device_id:
        return
    command = (all_commands().filter(pk=event.id)
               .select_related("run__script_version").first())
    if command is None or command.run is None:
        return
    script_id = command.run.script_version.script_id
    output = command.stdout + (f"\n{command.stderr}" if command.stderr else "")
    results = script_results(event.device_id, event.envelope.client_id, script_id,
                             command.exit_code, output, command.finished_at)
    if results:
        record_results(results)


@subscribe("ticket.changed", name="monitoring.alert_ticket")
def on_alert_ticket_changed(event: TicketChanged, handler_name) -> None:
    """The helpdesk's side of an alert, back to the alert (through events only):
    a person taking the alert's ticket (assigning it, or starting work) acknowledges the
    alert — so its escalation no longer fires; a person resolving the ticket while the alert
    is active snoozes or resolves the alert when they chose so (`alert_action`).

    Changes nobody made (by_id null: the helpdesk's own notes and automatic resolutions,
    made in answer to alert events) are ignored, so the two sides never loop; and the
    alert actions skip alerts already in the target state, so a redelivery changes
    nothing."""
    from watchkeeper.core.models import User

    from . import actions
    from .choices import OPEN_STATUSES
    from .models import Alert

    if event.alert_id is None or event.by_id is None:
        return
    alert = Alert.objects.filter(pk=event.alert_id, client_id=event.envelope.client_id,
                                 status__in=OPEN_STATUSES).first()
    if alert is None:
        return
    user = User.objects.filter(pk=event.by_id).first()
    by = f"{user or 'helpdesk'} (ticket {event.reference})"
    changed = set(event.changed)
    if event.alert_action == "resolve":
        actions.resolve_alerts(actor=user, alerts=[alert], by=by)
    elif event.alert_action == "snooze":
        actions.snooze_alerts(actor=user, alerts=[alert], minutes=event.snooze_minutes or 60,
                              by=by)
    elif ("assignee_id" in changed and event.assignee_id is not None) or \
            ("status" in changed and event.status == "in_progress"):
        actions.acknowledge_alerts(actor=user, alerts=[alert], by=by)
