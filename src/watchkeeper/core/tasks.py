"""Background tasks (django-tasks API: the backend — database or RQ — is configuration).

The scheduler (core.scheduler) enqueues the periodic ones; `emit()` enqueues
`dispatch_outbox` after each commit that produced deliveries.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from . import events

DISPATCH_BATCH = 500
DISPATCH_ROUNDS = 20


@task()
def dispatch_outbox() -> dict[str, int]:
    """Deliver due outbox rows; enqueued after each commit that emits, and swept periodically.

    Works in batches until nothing more is due (at most DISPATCH_ROUNDS batches, so one task
    never runs unbounded; the periodic sweep takes over from there)."""
    total = {"due": 0, "delivered": 0, "failed": 0}
    for _ in range(DISPATCH_ROUNDS):
        result = events.dispatch_due(limit=DISPATCH_BATCH)
        for key in total:
            total[key] += result[key]
        if result["due"] < DISPATCH_BATCH:
            break
    return total


@task()
def prune_task_results() -> int:
    """Delete finished results of the database task backend older than the retention.

    RQ expires its own results (result_ttl), so there is nothing to do on Redis.
    """
    from django_tasks import default_task_backend
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    if not isinstance(default_task_backend, DatabaseBackend):
        return 0
    cutoff = timezone.now() - timedelta(days=settings.TASK_RESULT_RETENTION_DAYS)
    deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
    return deleted


@task()
def prune_login_attempts() -> int:
    """Delete sign-in attempts older than the retention (the rate limit needs minutes)."""
    from .models import LoginAttempt

    cutoff = timezone.now() - timedelta(days=settings.LOGIN_ATTEMPT_RETENTION_DAYS)
    deleted, _ = LoginAttempt.objects.filter(at__lt=cutoff).delete()
    return deleted


@task()
def prune_heartbeats() -> int:
    """Forget processes not seen for a day (stopped workers, old host names)."""
    from .models import ProcessHeartbeat

    cutoff = timezone.now() - timedelta(days=1)
    deleted, _ = ProcessHeartbeat.objects.filter(last_seen__lt=cutoff).delete()
    return deleted


def recover_stale_tasks(own: str | None = None) -> int:
    """Put RUNNING tasks of the database queue back to READY when the worker that claimed
    them is gone (no heartbeat for WORKER_STALE_SECONDS: killed, host lost) or is `own`
    (the calling worker, which runs nothing at this moment: a database error cut its task).

    Without this a task killed mid-run stays RUNNING forever. Running it again is the
    at-least-once promise of the queue: tasks are written to be idempotent."""
    from django_tasks_db.models import DBTaskResult

    from .models import ProcessHeartbeat

    running = list(DBTaskResult.objects.running().values_list("id", "worker_ids"))
    if not running:
        return 0
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
    live = {name[:64] for name in ProcessHeartbeat.objects.filter(
        role="worker", last_seen__gte=cutoff).values_list("name", flat=True)}
    live.discard(own)
    stale = [pk for pk, workers in running if not workers or workers[-1] not in live]
    if not stale:
        return 0
    from django_tasks_db.compat import TaskResultStatus

    return DBTaskResult.objects.filter(pk__in=stale, status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.READY, started_at=None)


@task()
def recover_stale_tasks_job() -> int:
    """The periodic sweep of recover_stale_tasks (database queue only)."""
    from django_tasks import default_task_backend
    from django_tasks_db.backend import DatabaseBackend

    if not isinstance(default_task_backend, DatabaseBackend):
        return 0
    return recover_stale_tasks()
