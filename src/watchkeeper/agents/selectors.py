"""Reads other apps need (the inventory's device page chiefly). Callers pass ids they have
already scoped to the user; these functions do no tenant filtering of their own."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from .models import Agent, Command, MetricName, MetricSample


def agent_for_device(device_id: int) -> Agent | None:
    return Agent.objects.filter(device_id=device_id).first()


def metric_names(device_id: int, since: datetime | None = None) -> list[str]:
    since = since or timezone.now() - timedelta(days=1)
    ids = (MetricSample.objects.filter(device_id=device_id, ts__gte=since)
           .values_list("metric_id", flat=True).distinct())
    return sorted(MetricName.objects.filter(pk__in=list(ids)).values_list("name", flat=True))


def metric_series(device_id: int, metric: str, since: datetime, until: datetime | None = None,
                  max_points: int = 500) -> list[tuple[datetime, float]]:
    """[(ts, value)] oldest first; averaged into at most `max_points` equal time buckets."""
    until = until or timezone.now()
    metric_id = MetricName.objects.filter(name=metric).values_list("id", flat=True).first()
    if metric_id is None:
        return []
    rows = list(MetricSample.objects.filter(device_id=device_id, metric_id=metric_id,
                                            ts__gte=since, ts__lte=until)
                .order_by("ts").values_list("ts", "value"))
    if len(rows) <= max_points or max_points < 1:
        return rows
    span = (until - since).total_seconds() / max_points
    buckets: dict[int, list[float]] = {}
    for ts, value in rows:
        buckets.setdefault(int((ts - since).total_seconds() // span), []).append(value)
    return [(since + timedelta(seconds=(i + 0.5) * span), sum(vals) / len(vals))
            for i, vals in sorted(buckets.items())]


def latest_metrics(device_ids: Iterable[int],
                   names: Iterable[str] = ("cpu.percent", "mem.percent")
                   ) -> dict[int, dict[str, float]]:
    """{device_id: {metric: latest value}} for the given metrics (two queries)."""
    ids = list(device_ids)
    metric_ids = dict(MetricName.objects.filter(name__in=list(names)).values_list("id", "name"))
    if not ids or not metric_ids:
        return {}
    latest = (MetricSample.objects.filter(device_id__in=ids, metric_id__in=list(metric_ids),
                                          ts__gte=timezone.now() - timedelta(hours=1))
              .values("device_id", "metric_id").annotate(ts=Max("ts")))
    result: dict[int, dict[str, float]] = {}
    for row in latest:
        value = (MetricSample.objects.filter(device_id=row["device_id"],
                                             metric_id=row["metric_id"], ts=row["ts"])
                 .values_list("value", flat=True).first())
        if value is not None:
            result.setdefault(row["device_id"], {})[metric_ids[row["metric_id"]]] = value
    return result


def script_runs_for_device(device_id: int, limit: int = 50) -> list[Command]:
    """The device's commands (one per run), newest first, with their script and outcome."""
    return list(Command.objects.filter(agent__device_id=device_id)
                .select_related("run__script_version__script", "run__requested_by")
                .order_by("-created_at")[:limit])


def agents_without_device(user) -> list[Agent]:
    """Agents the user may see that have no inventory record yet (waiting for approval)."""
    from watchkeeper.core.tenancy import scoped

    from .choices import AgentStatus

    return list(scoped(Agent.objects.filter(device__isnull=True,
                                            status=AgentStatus.PENDING), user)
                .order_by("created_at")[:500])


def offline_agents(user, limit: int = 10) -> list[Agent]:
    """Approved agents that stopped checking in, longest silent first (scoped)."""
    from watchkeeper.core.tenancy import scoped

    from .choices import AgentStatus, Connectivity

    return list(scoped(Agent.objects.filter(status=AgentStatus.APPROVED,
                                            connectivity=Connectivity.OFFLINE,
                                            device__isnull=False)
                       .select_related("device", "client"), user)
                .order_by("last_seen_at")[:limit])


def offline_agent_count(user) -> int:
    from watchkeeper.core.tenancy import scoped

    from .choices import AgentStatus, Connectivity

    return scoped(Agent.objects.filter(status=AgentStatus.APPROVED,
                                       connectivity=Connectivity.OFFLINE), user).count()


# --- Querysets for other apps ---------------------------------------------------------------
# Other apps never import the agents' models: they start from these.

def all_metric_names():
    return MetricName.objects.all()


def all_metric_samples():
    return MetricSample.objects.all()


def all_commands():
    return Command.objects.all()


def all_scripts():
    from .scripts.models import Script

    return Script.objects.all()
