"""Periodic work of the monitoring app (registered with the scheduler in schedules.py)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from . import actions, evaluate
from .channels import notify
from .choices import AlertStatus
from .models import Alert


def sweep_escalations(now=None, limit: int = 1000) -> int:
    """One indexed query for open alerts past their escalation time; each claimed by a
    compare-and-set so two workers never escalate one alert twice."""
    now = now or timezone.now()
    due = list(Alert.objects.filter(escalate_at__lte=now, status=AlertStatus.OPEN)
               .order_by("escalate_at").values_list("id", flat=True)[:limit])
    return sum(actions.escalate_alert(alert_id=pk, now=now) for pk in due)


@task()
def monitoring_evaluate() -> dict[str, int]:
    return evaluate.run_evaluation()


@task()
def monitoring_alert_sweeps() -> dict[str, int]:
    now = timezone.now()
    return {"escalated": sweep_escalations(now),
            "woken": actions.wake_snoozed_alerts(now=now), **notify.send_due_digests(now)}
