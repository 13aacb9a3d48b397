"""Background tasks (django-tasks API: the backend — database or RQ — is configuration)."""

from __future__ import annotations

from django_tasks import task

from . import events


@task()
def dispatch_outbox() -> dict[str, int]:
    """Deliver due outbox rows; enqueued after each commit that emits, and swept periodically."""
    return events.dispatch_due()
