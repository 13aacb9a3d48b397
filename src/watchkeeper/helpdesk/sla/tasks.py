"""Background tasks of the SLA clocks (enqueued by the scheduler, run by a worker)."""

from __future__ import annotations

from django_tasks import task


@task()
def sla_sweep() -> dict[str, int]:
    """Announce due SLA warnings and breaches (each exactly once; see sla.sweep)."""
    from . import actions as sla

    return sla.sweep()
