"""Read-side helpers of the monitoring app that other modules (the poller, pages, API)
share. Reads for people go through core.tenancy.scoped() in the views; these selectors are
for the background processes, which see every tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F

from watchkeeper.core import netguard

from .choices import SERVER_KINDS
from .models import Check


@dataclass
class DueCheck:
    """A server-side check the poller should run now."""

    id: int
    kind: str
    name: str
    config: dict[str, Any]
    interval_seconds: int
    next_run_at: datetime
    device_id: int | None
    client_id: int | None
    device_ip: str | None
    device_hostname: str | None
    probe_networks: list[str] = field(default_factory=list)  # netguard: what it may reach


def due_server_checks(now: datetime, shard: int = 0, shards: int = 1,
                      limit: int = 1000) -> list[DueCheck]:
    """The sweep: enabled server-side checks of enabled policies whose next run is not in
    the future, in the given shard (check id modulo shards), oldest first. One query on
    the partial index of next_run_at."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError("shard must be in 0..shards-1")
    qs = Check.objects.filter(next_run_at__lte=now, kind__in=sorted(SERVER_KINDS),
                              is_enabled=True, policy__is_enabled=True)
    if shards > 1:
        qs = qs.annotate(wk_shard=F("id") % shards).filter(wk_shard=shard)
    rows = qs.order_by("next_run_at", "id").values(
        "id", "kind", "name", "config", "interval_seconds", "next_run_at", "device_id",
        "policy__client_id", "device__client_id", "device__primary_ip", "device__hostname",
        "policy__client__probe_networks", "device__client__probe_networks",
    )[:limit]
    msp_networks = None

    def networks(r) -> list[str]:
        nonlocal msp_networks
        if r["policy__client_id"]:
            return r["policy__client__probe_networks"] or []
        if r["device__client_id"]:
            return r["device__client__probe_networks"] or []
        if msp_networks is None:
            msp_networks = netguard.networks_for(None)
        return msp_networks

    return [DueCheck(id=r["id"], kind=r["kind"], name=r["name"], config=r["config"] or {},
                     interval_seconds=r["interval_seconds"], next_run_at=r["next_run_at"],
                     device_id=r["device_id"],
                     client_id=r["policy__client_id"] or r["device__client_id"],
                     device_ip=r["device__primary_ip"], device_hostname=r["device__hostname"],
                     probe_networks=networks(r))
            for r in rows]


def server_checks_queryset():
    """Every server-side check (for the network checks pages; scope it in the view)."""
    return Check.objects.filter(kind__in=sorted(SERVER_KINDS))


# --- Home pages ---------------------------------------------------------------------------

def active_alerts(user, limit: int = 10) -> list:
    """Open (not snoozed) alerts the user sees, worst and newest first."""
    from django.db.models import Case, IntegerField, Value, When

    from watchkeeper.core.tenancy import scoped

    from .choices import AlertStatus, State
    from .models import Alert

    rank = Case(When(severity=State.CRITICAL, then=Value(0)),
                When(severity=State.WARNING, then=Value(1)), default=Value(2),
                output_field=IntegerField())
    qs = scoped(Alert.objects.filter(status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
                .select_related("client", "device"), user)
    return list(qs.annotate(rank=rank).order_by("rank", "-opened_at")[:limit])


def alert_counts(user) -> dict[str, int]:
    from django.db.models import Count

    from watchkeeper.core.tenancy import scoped

    from .choices import OPEN_STATUSES
    from .models import Alert

    rows = scoped(Alert.objects.filter(status__in=OPEN_STATUSES), user).values(
        "severity").annotate(n=Count("id")).values_list("severity", "n")
    return dict(rows)


def clients_by_health(user, limit: int = 12) -> list[dict]:
    """Clients with their open critical / warning alerts, the worst first."""
    from collections import defaultdict

    from django.db.models import Count

    from watchkeeper.core.models import Client
    from watchkeeper.core.tenancy import scoped

    from .choices import OPEN_STATUSES, State
    from .models import Alert

    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for cid, sev, n in scoped(Alert.objects.filter(status__in=OPEN_STATUSES), user).values(
            "client_id", "severity").annotate(n=Count("id")).values_list("client_id",
                                                                         "severity", "n"):
        counts[cid][sev] = n
    rows = [{"client": c, "critical": counts[c.pk].get(State.CRITICAL, 0),
             "warning": counts[c.pk].get(State.WARNING, 0)}
            for c in scoped(Client.objects.filter(is_active=True), user)]
    rows.sort(key=lambda r: (-r["critical"], -r["warning"], r["client"].name))
    return rows[:limit]


def alert_is_active(alert_id: int | None) -> bool:
    """Whether the alert is still open, acknowledged or snoozed (for the helpdesk, which
    asks what to do with it when its ticket is resolved)."""
    from .choices import OPEN_STATUSES
    from .models import Alert

    return bool(alert_id) and Alert.objects.filter(pk=alert_id,
                                                   status__in=OPEN_STATUSES).exists()
