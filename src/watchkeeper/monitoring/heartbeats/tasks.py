"""Periodic work of heartbeats (the sweep that alerts on late jobs), registered with the
scheduler on import (imported by monitoring/schedules.py)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from watchkeeper.core.scheduler import register

from . import actions as heartbeats
from .models import HeartbeatJob


@task()
def monitoring_heartbeat_sweep() -> dict[str, int]:
    return heartbeats.sweep()


def _heartbeats_due() -> bool:
    return HeartbeatJob.objects.filter(next_due_at__lte=timezone.now()).exists()


register("monitoring.heartbeat_sweep", 10, monitoring_heartbeat_sweep, when=_heartbeats_due)
