"""The scheduler enqueues each run of a periodic job once, however many schedulers run."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks import task
from django_tasks.signals import task_enqueued

from watchkeeper.core import scheduler
from watchkeeper.core.models import LoginAttempt, ScheduledJob
from watchkeeper.core.tasks import prune_login_attempts

PROBE_PATH = "tests.test_scheduler.probe"


@task()
def probe() -> str:
    return "ran"


_enqueued: list[str] = []


def _on_enqueued(sender, task_result, **kwargs):
    if task_result.task.module_path == PROBE_PATH:
        _enqueued.append(task_result.id)


@pytest.fixture
def probe_job():
    """A registered job whose enqueues are counted, on whichever task backend is configured."""
    _enqueued.clear()
    task_enqueued.connect(_on_enqueued)
    job = scheduler.register("tests.probe", timedelta(minutes=5), probe)
    yield job
    scheduler.unregister("tests.probe")
    task_enqueued.disconnect(_on_enqueued)


def enqueued_probes() -> int:
    return len(_enqueued)


def test_core_jobs_are_registered():
    # given the core app, then its periodic jobs are in the registry
    jobs = scheduler.registered()
    assert jobs["core.dispatch_outbox"].interval == timedelta(seconds=15)
    assert jobs["core.prune_task_results"].interval == timedelta(days=1)
    assert jobs["core.prune_login_attempts"].interval == timedelta(days=1)


def test_register_refuses_a_plain_function_and_a_bad_interval():
    with pytest.raises(TypeError):
        scheduler.register("tests.bad", 60, lambda: None)
    with pytest.raises(ValueError):
        scheduler.register("tests.bad", 0, probe)
    assert "tests.bad" not in scheduler.registered()


def test_two_schedulers_claiming_the_same_due_job_enqueue_it_once(db, probe_job):
    # given a due job, seen as due by two schedulers in the same sweep
    scheduler.ensure_rows()
    first_sweep = [r for r in scheduler.due() if r.name == "tests.probe"]
    second_sweep = [r for r in scheduler.due() if r.name == "tests.probe"]
    assert len(first_sweep) == len(second_sweep) == 1

    # when both try to claim and enqueue it
    by_first = scheduler.enqueue_claimed(first_sweep)
    by_second = scheduler.enqueue_claimed(second_sweep)

    # then exactly one enqueued it, and the next run is one interval later
    assert by_first == ["tests.probe"]
    assert by_second == []
    assert enqueued_probes() == 1
    row = ScheduledJob.objects.get(name="tests.probe")
    assert row.runs == 1
    assert row.next_run_at - row.last_run_at == timedelta(minutes=5)
    # and a later sweep finds nothing due until then
    assert "tests.probe" not in scheduler.run_due()
    assert enqueued_probes() == 1
    assert "tests.probe" in scheduler.run_due(now=row.next_run_at)
    assert enqueued_probes() == 2


def test_interval_shortened_in_code_takes_effect(db, probe_job):
    # given a job scheduled far away (its interval used to be long)
    far = timezone.now() + timedelta(days=30)
    ScheduledJob.objects.create(name="tests.probe", next_run_at=far)

    # when the scheduler starts
    scheduler.ensure_rows()

    # then the next run is at most one (new) interval away
    row = ScheduledJob.objects.get(name="tests.probe")
    assert row.next_run_at <= timezone.now() + timedelta(minutes=5)


def test_prune_login_attempts_keeps_recent_ones(db, settings):
    # given an old and a recent sign-in attempt
    settings.LOGIN_ATTEMPT_RETENTION_DAYS = 90
    LoginAttempt.objects.create(email="old@x.test", at=timezone.now() - timedelta(days=91))
    LoginAttempt.objects.create(email="new@x.test", at=timezone.now() - timedelta(days=1))

    # when the daily prune runs
    deleted = prune_login_attempts.call()

    # then only the old one is gone
    assert deleted == 1
    assert list(LoginAttempt.objects.values_list("email", flat=True)) == ["new@x.test"]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_on_postgresql_enqueue_once(probe_job):
    # given a due job and eight schedulers sweeping at the same moment on PostgreSQL
    if connection.vendor != "postgresql":
        pytest.skip("concurrent schedulers need PostgreSQL (WATCHKEEPER_DATABASE_URL)")
    scheduler.ensure_rows()
    barrier = threading.Barrier(8)
    won = []

    def run():
        try:
            rows = [r for r in scheduler.due() if r.name == "tests.probe"]
            barrier.wait()
            won.extend(scheduler.enqueue_claimed(rows))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then one of them enqueued it
    assert won == ["tests.probe"]
    assert enqueued_probes() == 1


def test_outbox_sweep_enqueues_only_when_a_delivery_is_due(db):
    # given the outbox sweep job and a probe on the configured task backend
    from watchkeeper.core import events

    queued = []

    def on_enqueued(sender, task_result, **kwargs):
        queued.append(task_result.task.module_path)

    task_enqueued.connect(on_enqueued)
    from tests.event_kinds import TestOther

    events.subscribe("test.other", name="tests.sweep")(lambda event, name: None)
    try:
        scheduler.ensure_rows()
        # when it is due with an empty outbox, then nothing is enqueued
        scheduler.run_due()
        assert "watchkeeper.core.tasks.dispatch_outbox" not in queued

        # when an event waits for delivery and the sweep is due again
        events.emit(TestOther())
        row = ScheduledJob.objects.get(name="core.dispatch_outbox")
        scheduler.run_due(now=row.next_run_at)

        # then the dispatch is enqueued
        assert queued.count("watchkeeper.core.tasks.dispatch_outbox") == 1
    finally:
        task_enqueued.disconnect(on_enqueued)
        events._handlers.pop("tests.sweep", None)
