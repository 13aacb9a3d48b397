"""Periodic work of the agents app (registered with the scheduler in schedules.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from . import actions
from .choices import AgentStatus, CommandStatus, Connectivity
from .models import Agent, AgentNonce, Command, MetricSample


def sweep_offline(now=None, limit: int = 5000) -> int:
    """One indexed query finds approved, online agents past their due time; each
    transition is claimed with a conditional UPDATE, so two schedulers never both emit."""
    now = now or timezone.now()
    due = list(Agent.objects.filter(status=AgentStatus.APPROVED,
                                    connectivity=Connectivity.ONLINE, next_due_at__lt=now)
               .order_by("next_due_at").values_list("id", flat=True)[:limit])
    return sum(actions.mark_offline(agent_id=pk, now=now) for pk in due)


def expire_commands(now=None) -> int:
    now = now or timezone.now()
    return Command.objects.filter(
        status__in=(CommandStatus.QUEUED, CommandStatus.SIGNED, CommandStatus.DELIVERED,
                    CommandStatus.AWAITING_APPROVAL),
        expires_at__lte=now).update(status=CommandStatus.EXPIRED, finished_at=now,
                                    reason="expired without a result")


@task()
def agents_offline_sweep() -> dict[str, int]:
    return {"offline": sweep_offline(), "expired_commands": expire_commands()}


@task()
def agents_prune() -> dict[str, int]:
    now = timezone.now()
    nonces, _ = AgentNonce.objects.filter(expires_at__lt=now).delete()
    cutoff = now - timedelta(days=settings.METRIC_RETENTION_DAYS)
    # Samples have no dependants and no signals, so Django deletes them with one range
    # DELETE on the ts index (its fast path), without loading them.
    samples, _ = MetricSample.objects.filter(ts__lt=cutoff).delete()
    return {"nonces": nonces, "samples": samples}
