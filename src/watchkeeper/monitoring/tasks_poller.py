"""Periodic work of the poller side (heartbeat sweep, metric and check-run rollups and their
retention, predictive checks, history pruning), registered with the scheduler on import
(imported by schedules.py)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from watchkeeper.core.scheduler import register

from . import heartbeats
from .models_poller import HeartbeatJob


@task()
def monitoring_heartbeat_sweep() -> dict[str, int]:
    return heartbeats.sweep()


def _heartbeats_due() -> bool:
    return HeartbeatJob.objects.filter(next_due_at__lte=timezone.now()).exists()


@task()
def monitoring_rollups() -> dict[str, int]:
    from . import rollups

    return rollups.run_rollups()


@task()
def monitoring_predictive() -> dict[str, int]:
    from . import predictive

    return predictive.run_predictive()


@task()
def monitoring_prune_poller() -> dict[str, int]:
    from . import rollups

    # Check runs, their rollups and transitions, metric rollups: each deleted in bounded
    # chunks (rollups.prune_chunked), runs the rollup has not taken in yet kept.
    return {**rollups.enforce_poll_retention(), "heartbeat_pings": heartbeats.prune_pings(),
            **rollups.enforce_retention()}


register("monitoring.heartbeat_sweep", 10, monitoring_heartbeat_sweep, when=_heartbeats_due)
register("monitoring.rollups", 300, monitoring_rollups)
register("monitoring.predictive", 3600, monitoring_predictive)
register("monitoring.prune_poller", 86400, monitoring_prune_poller)
