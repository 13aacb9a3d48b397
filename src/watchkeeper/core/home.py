"""The work-first home page: what each role acts on first, read through the selectors of
the apps that own the data.

- technician: my open tickets by SLA due (breached and at risk counted), active alerts of
  my clients, offline devices, my running timer;
- dispatcher: the unassigned queue and each technician's load;
- owner, admin, read-only: the MSP at a glance — clients by health, SLA attainment, open
  alerts, the latest billing run — plus the queue.
"""

from __future__ import annotations

from typing import Any

from . import hooks
from .choices import Role
from .permissions import has_capability

TECH, DISPATCH, OWNER = "technician", "dispatcher", "owner"


def view_of(user) -> str:
    if user.role == Role.TECHNICIAN:
        return TECH
    if user.role == Role.DISPATCHER:
        return DISPATCH
    return OWNER


def panels(user) -> dict[str, Any]:
    view = view_of(user)
    data: dict[str, Any] = {"home_view": view}
    # The apps' selectors come through core.hooks (core imports no app).
    helpdesk = hooks.first("helpdesk.selectors")
    agents = hooks.first("agents.selectors")
    monitoring_selectors = hooks.first("monitoring.selectors")
    tickets = has_capability(user, "tickets.view") and helpdesk is not None
    monitoring = has_capability(user, "monitoring.view") and None not in (
        agents, monitoring_selectors)
    if tickets:

        if view == TECH:
            data["my_tickets"] = helpdesk.my_open_tickets(user)
            data["sla"] = helpdesk.sla_counts(user, mine=True)
            data["timers"] = helpdesk.running_timers(user)
        else:
            data["queue"] = helpdesk.unassigned_queue(user)
            data["sla"] = helpdesk.sla_counts(user)
            data["workload"], data["unassigned"] = helpdesk.workload(user)
        if view == OWNER:
            data["attainment"] = helpdesk.sla_attainment(user)
            if has_capability(user, "billing.view"):
                data["billing_run"] = helpdesk.latest_billing_run()
    if monitoring:

        data["alerts"] = monitoring_selectors.active_alerts(user)
        data["alert_counts"] = monitoring_selectors.alert_counts(user)
        data["offline"] = agents.offline_agents(user)
        data["offline_count"] = agents.offline_agent_count(user)
        if view == OWNER:
            data["health"] = monitoring_selectors.clients_by_health(user)
    return data
