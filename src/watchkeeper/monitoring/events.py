"""The events of monitoring: alerts, notification channels, heartbeat jobs, policies and
their settings (see core.catalogue).

Every `alert.*` kind carries the same description of the alert, built in one place
(`AlertEvent.of`), including what its policy asks of the helpdesk (`wants_ticket`,
`resolve_ticket`), so a consumer never guesses a missing key."""

from __future__ import annotations

from typing import Literal

from watchkeeper.core.catalogue import EventData, declare, declare_crud, shape

AlertChange = Literal["severity", "flapping", "acknowledged", "snoozed", "woke"]


def _policy_of(alert) -> tuple[list[str], bool]:
    check = alert.check_template if alert.check_template_id else None
    policy = check.policy if check is not None else None
    if policy is None:
        return [], False
    return list(policy.ticket_severities or []), bool(policy.ticket_resolve_on_recovery)


@shape
class AlertEvent(EventData):
    """What every alert event tells of the alert (one builder: `of`)."""

    alert_id: int
    device_id: int | None
    check: str
    check_id: int | None
    severity: str
    summary: str
    status: str
    count: int
    # "" or why nobody is told of it: maintenance, dependency, flapping.
    suppressed: str
    is_flapping: bool
    # What the alert's policy asks of the helpdesk: a ticket for this severity, and
    # whether recovery resolves that ticket.
    wants_ticket: bool
    resolve_ticket: bool
    # Who made the change: a user, "monitoring", or "helpdesk" (from the alert's ticket).
    by: str

    @classmethod
    def of(cls, alert, *, by: str = "monitoring", ticket_severities: list[str] | None = None,
           resolve_on_recovery: bool | None = None, **extra):
        """`ticket_severities`/`resolve_on_recovery`: the policy's, when the caller has
        them at hand (the evaluator); otherwise read from the alert's check."""
        if ticket_severities is None or resolve_on_recovery is None:
            ticket_severities, resolve_on_recovery = _policy_of(alert)
        return cls(alert_id=alert.pk, device_id=alert.device_id, check=alert.check_name,
                   check_id=alert.check_template_id, severity=alert.severity,
                   summary=alert.summary, status=alert.status, count=alert.count,
                   suppressed=alert.suppressed or "", is_flapping=bool(alert.is_flapping),
                   wants_ticket=alert.severity in ticket_severities,
                   resolve_ticket=bool(resolve_on_recovery), by=by, **extra)


@declare("alert.opened")
class AlertOpened(AlertEvent):
    """A check failed on a device for `fail_after` readings in a row: an alert opened."""

    LABEL = "Opened"


@declare("alert.changed")
class AlertChanged(AlertEvent):
    """An open alert changed; `change` says how (severity, flapping, acknowledged,
    snoozed, woke from a snooze)."""

    LABEL = "Changed (severity, acknowledge, snooze)"

    change: AlertChange
    previous_severity: str | None = None
    worse: bool = False
    snoozed_until: str | None = None


@declare("alert.resolved")
class AlertResolved(AlertEvent):
    """An alert was resolved: its check recovered (`recovered`), or a person (or its
    ticket) resolved it."""

    LABEL = "Resolved"

    recovered: bool
    recovery_summary: str = ""


@declare("alert.escalated")
class AlertEscalated(AlertEvent):
    """An alert stayed active and unacknowledged past its policy's escalation time."""

    LABEL = "Escalated (not acknowledged in time)"


@declare("alert.catchup", directed=True)
class AlertCatchup(AlertEvent):
    """Directed to one notification channel: an alert already open when the channel was
    created, enabled or widened (sent once)."""

    channel_id: int


@declare("notificationchannel.caught_up")
class NotificationChannelCaughtUp(EventData):
    """A notification channel was queued one catch-up notice per open alert it missed."""

    id: int
    count: int
    alerts: list[int]


for _model in ("monitoring.Policy", "monitoring.Check", "monitoring.PolicyAssignment",
               "monitoring.CheckOverride", "monitoring.DeviceGroup",
               "monitoring.MaintenanceWindow",
               "monitoring.NotificationChannel", "monitoring.HeartbeatJob",
               "monitoring.IngestSource"):
    declare_crud(_model, module=__name__)
