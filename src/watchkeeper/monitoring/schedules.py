"""Periodic jobs of the monitoring app (discovered by core.scheduler)."""

from watchkeeper.core.scheduler import register

from . import tasks

# Agent-side checks: every new slice of check-in samples, a few seconds behind ingest.
register("monitoring.evaluate", 15, tasks.monitoring_evaluate)
register("monitoring.alert_sweeps", 30, tasks.monitoring_alert_sweeps)

# The poller side's jobs: heartbeat sweep, metric rollups, predictive checks, pruning.
from .heartbeats import tasks as heartbeat_tasks  # noqa: E402,F401,I001
from .history import tasks as history_tasks  # noqa: E402,F401,I001
