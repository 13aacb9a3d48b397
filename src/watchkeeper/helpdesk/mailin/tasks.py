"""Background tasks of mail intake (enqueued by the scheduler, run by a worker)."""

from __future__ import annotations

from django_tasks import task


@task()
def purge_raw_mail() -> int:
    """Drop kept messages' bytes past WATCHKEEPER_MAIL_RAW_RETENTION_DAYS."""
    from . import intake

    return intake.purge_raw()
