"""Periodic jobs: a registry in code, a `ScheduledJob` row per job in the database.

Any app registers a job with `register(name, interval, task)` (from its AppConfig.ready()
or from a `schedules.py` module, which the scheduler imports from every installed app).
`watchkeeper scheduler` then loops: one sweep query finds the due rows, each is claimed
with a compare-and-set UPDATE on `next_run_at` (so when several schedulers run, exactly one
wins each run), and the winner enqueues the job's django-task. The work itself happens in a
worker; the scheduler only decides *when*.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django_tasks.base import Task

from .models import ScheduledJob

log = logging.getLogger(__name__)

# How soon to try again when enqueueing failed (queue unreachable).
ENQUEUE_RETRY = timedelta(seconds=30)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval: timedelta
    task: Task
    # Optional cheap check run by the scheduler: when it returns False the run is skipped
    # (claimed, but nothing is enqueued), e.g. "is any outbox row due?".
    when: Callable[[], bool] | None = None


_registry: dict[str, PeriodicJob] = {}


def register(name: str, interval: timedelta | float | int, task: Task,
             when: Callable[[], bool] | None = None) -> PeriodicJob:
    """Run `task` (a django-tasks Task, no arguments) every `interval` (seconds or timedelta),
    optionally only when `when()` is true at that moment.

    Registering the same name again replaces the job (its row and schedule are kept).
    """
    if not isinstance(interval, timedelta):
        interval = timedelta(seconds=interval)
    if interval <= timedelta(0):
        raise ValueError(f"interval of {name!r} must be positive")
    if not isinstance(task, Task):
        raise TypeError(f"{name!r}: task must be a django-tasks Task (use @task())")
    job = PeriodicJob(name=name, interval=interval, task=task, when=when)
    _registry[name] = job
    return job


def unregister(name: str) -> None:
    _registry.pop(name, None)


def registered() -> dict[str, PeriodicJob]:
    return dict(_registry)


def _outbox_has_due_rows() -> bool:
    from .choices import DeliveryStatus
    from .models import EventDelivery

    return EventDelivery.objects.filter(status=DeliveryStatus.PENDING,
                                        next_attempt_at__lte=timezone.now()).exists()


def _register_core_jobs() -> None:
    from . import tasks

    register("core.dispatch_outbox", settings.OUTBOX_SWEEP_SECONDS, tasks.dispatch_outbox,
             when=_outbox_has_due_rows)
    register("core.prune_task_results", timedelta(days=1), tasks.prune_task_results)
    register("core.prune_login_attempts", timedelta(days=1), tasks.prune_login_attempts)
    register("core.prune_heartbeats", timedelta(days=1), tasks.prune_heartbeats)
    register("core.recover_stale_tasks", timedelta(seconds=60), tasks.recover_stale_tasks_job)


_register_core_jobs()


def discover() -> None:
    """Import `<app>.schedules` of every installed app so their register() calls run."""
    autodiscover_modules("schedules")


def ensure_rows(now=None) -> None:
    """Create missing rows (due now) and pull in rows scheduled beyond one interval
    (an interval shortened in code takes effect at once)."""
    now = now or timezone.now()
    jobs = registered()
    existing = dict(ScheduledJob.objects.filter(name__in=jobs).values_list("name", "next_run_at"))
    missing = [ScheduledJob(name=name, next_run_at=now) for name in jobs if name not in existing]
    if missing:
        ScheduledJob.objects.bulk_create(missing, ignore_conflicts=True)
    for name, next_run_at in existing.items():
        latest = now + jobs[name].interval
        if next_run_at > latest:
            ScheduledJob.objects.filter(name=name, next_run_at=next_run_at).update(
                next_run_at=latest)


def due(now=None) -> list[ScheduledJob]:
    """The sweep: every registered job whose next run is not in the future."""
    now = now or timezone.now()
    return list(ScheduledJob.objects.filter(name__in=registered(), next_run_at__lte=now)
                .order_by("next_run_at"))


def claim(row: ScheduledJob, now=None) -> bool:
    """Compare-and-set on next_run_at: True for exactly one of several concurrent claimers."""
    now = now or timezone.now()
    job = _registry[row.name]
    won = ScheduledJob.objects.filter(pk=row.pk, next_run_at=row.next_run_at).update(
        next_run_at=now + job.interval, last_run_at=now, runs=F("runs") + 1,
    )
    return bool(won)


def run_due(now=None) -> list[str]:
    """Claim and enqueue every due job; returns the names this caller enqueued."""
    now = now or timezone.now()
    return enqueue_claimed(due(now), now)


def enqueue_claimed(rows: list[ScheduledJob], now=None) -> list[str]:
    """Claim each swept row and enqueue the job of every claim won."""
    now = now or timezone.now()
    enqueued = []
    for row in rows:
        if row.name not in _registry or not claim(row, now):
            continue  # another scheduler won this run
        job = _registry[row.name]
        try:
            if job.when is not None and not job.when():
                continue  # nothing to do this time; the claim moved the next run on
            job.task.enqueue()
        except Exception as exc:
            from .processes import is_dependency_error

            log.warning("could not enqueue %s (%s); retrying in %ss", job.name,
                        type(exc).__name__, int(ENQUEUE_RETRY.total_seconds()),
                        exc_info=not is_dependency_error(exc))
            ScheduledJob.objects.filter(pk=row.pk, next_run_at=now + job.interval).update(
                next_run_at=now + min(job.interval, ENQUEUE_RETRY))
            continue
        log.info("enqueued %s", job.name)
        enqueued.append(job.name)
    return enqueued


class Scheduler:
    """The loop behind `watchkeeper scheduler`: sweep every `tick` seconds until stopped."""

    def __init__(self, tick: float = 1.0):
        self.tick = tick
        self.stopped = threading.Event()

    def stop(self, *_args) -> None:
        self.stopped.set()

    def run(self) -> None:
        from .processes import Backoff, is_dependency_error, run_retrying

        # Starting needs the database too: wait for it like a sweep would.
        backoff = Backoff()
        while not self.stopped.is_set():
            try:
                discover()
                ensure_rows()
                break
            except Exception as exc:
                if not is_dependency_error(exc):
                    raise
                log.warning("scheduler: database unavailable at start (%s); retrying",
                            type(exc).__name__)
                self.stopped.wait(backoff.next_delay())
        log.info("scheduler started with jobs: %s", ", ".join(
            f"{j.name} every {int(j.interval.total_seconds())}s" for j in registered().values()))
        # A lost database: one warning, retries with backoff and jitter, one line when back.
        run_retrying("scheduler", _sweep, self.stopped, tick=self.tick)


def _sweep() -> None:
    from .processes import is_dependency_error

    try:
        run_due()
    except Exception as exc:
        if is_dependency_error(exc):
            raise  # run_retrying backs off
        log.exception("scheduler sweep failed")  # a bug in one job: keep sweeping
