"""Periodic jobs of the agents app (discovered by core.scheduler)."""

from watchkeeper.core.scheduler import register

from . import tasks

register("agents.offline_sweep", 30, tasks.agents_offline_sweep)
register("agents.prune", 3600, tasks.agents_prune)
