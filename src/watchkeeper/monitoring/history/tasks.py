"""Periodic work on history: metric and check-run rollups, predictive checks, pruning (check
runs, rollups, transitions, heartbeat pings), registered with the scheduler on import
(imported by monitoring/schedules.py)."""

from __future__ import annotations

from django_tasks import task

from watchkeeper.core.scheduler import register

from ..heartbeats import actions as heartbeats


@task()
def monitoring_rollups() -> dict[str, int]:
    from . import actions as rollups

    return rollups.run_rollups()


@task()
def monitoring_predictive() -> dict[str, int]:
    from . import predictive

    return predictive.run_predictive()


@task()
def monitoring_prune_poller() -> dict[str, int]:
    from . import actions as rollups

    # Check runs, their rollups and transitions, metric rollups: each deleted in bounded
    # chunks (rollups.prune_chunked), runs the rollup has not taken in yet kept.
    return {**rollups.enforce_poll_retention(), "heartbeat_pings": heartbeats.prune_pings(),
            **rollups.enforce_retention()}


register("monitoring.rollups", 300, monitoring_rollups)
register("monitoring.predictive", 3600, monitoring_predictive)
register("monitoring.prune_poller", 86400, monitoring_prune_poller)
