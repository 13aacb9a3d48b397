"""The event outbox delivers every committed event to each handler at least once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.event_kinds import TestHappened
from watchkeeper.core import actions, events
from watchkeeper.core.choices import AuditAction, DeliveryStatus
from watchkeeper.core.models import AuditEntry, Event, EventDelivery


@pytest.fixture
def handler():
    """Register a test handler for `test.*` events whose behaviour each test scripts."""
    registered = []

    def _register(func, pattern="test.*", name="tests.outbox"):
        events.subscribe(pattern, name=name)(func)
        registered.append(name)
        return name

    yield _register
    for name in registered:
        events._handlers.pop(name, None)


def let_backoff_elapse(delivery: EventDelivery) -> None:
    """Move the retry time into the past, as if the backoff had passed."""
    EventDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_flaky_handler_is_retried_until_it_succeeds(db, handler):
    # given a handler that fails on its first call and succeeds on its second
    calls = []

    def flaky(event, name):
        calls.append(event.envelope.id)
        if len(calls) == 1:
            raise ConnectionError("peer not ready")

    handler(flaky)
    event = events.emit(TestHappened(n=1))
    delivery = EventDelivery.objects.get(event=event)

    # when the dispatcher runs, then the first attempt fails and is scheduled later
    assert events.dispatch_due() == {"due": 1, "delivered": 0, "failed": 1}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now()
    assert "ConnectionError: peer not ready" in delivery.last_error
    # and nothing is retried before the backoff has passed
    assert events.dispatch_due()["due"] == 0

    # when the backoff has passed and the dispatcher runs again
    let_backoff_elapse(delivery)
    assert events.dispatch_due()["delivered"] == 1

    # then the delivery is done after exactly two attempts, with the same event both times
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DONE
    assert delivery.attempts == 2
    assert delivery.delivered_at is not None
    assert delivery.last_error == ""
    assert calls == [event.id, event.id]


def test_always_failing_handler_becomes_dead_letter_and_replay_redelivers(
        db, handler, owner, settings):
    # given a handler that fails until it is fixed, and three attempts allowed
    settings.OUTBOX_MAX_ATTEMPTS = 3
    state = {"broken": True, "calls": 0}

    def broken(event, name):
        state["calls"] += 1
        if state["broken"]:
            raise RuntimeError("downstream is down")

    handler(broken)
    event = events.emit(TestHappened())
    delivery = EventDelivery.objects.get(event=event)

    # when it has failed OUTBOX_MAX_ATTEMPTS times
    for _ in range(3):
        let_backoff_elapse(delivery)
        events.dispatch_due()

    # then it is a dead letter that no dispatcher picks up again
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == 3
    let_backoff_elapse(delivery)
    assert events.dispatch_due()["due"] == 0
    assert state["calls"] == 3

    # when the handler is fixed and a person replays the dead letter
    state["broken"] = False
    actions.replay_delivery(actor=owner, delivery=delivery)

    # then it is delivered, and the replay is in the audit log
    assert events.dispatch_due()["delivered"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DONE
    assert state["calls"] == 4
    entry = AuditEntry.objects.get(action=AuditAction.REPLAY)
    assert entry.actor == owner
    assert entry.object_id == str(delivery.pk)
    # and the replay is announced as an event like every other write
    replayed = Event.objects.get(kind="delivery.replayed")
    assert replayed.payload["id"] == delivery.pk


def test_crash_between_handler_and_mark_done_redelivers_after_lease_expiry(db, handler):
    # given a handler whose worker dies right after the handler ran, before marking done
    calls = []

    def crashes_once(event, name):
        calls.append(event.envelope.id)
        if len(calls) == 1:
            raise SystemExit("worker killed")  # not an Exception: nothing catches it

    handler(crashes_once)
    event = events.emit(TestHappened())
    with pytest.raises(SystemExit):
        events.dispatch_due()
    delivery = EventDelivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.locked_until > timezone.now()

    # when another dispatcher runs while the lease is held, then it leaves the row alone
    assert events.dispatch_due()["due"] == 0

    # when the lease expires
    EventDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1))
    assert events.dispatch_due()["delivered"] == 1

    # then the event is delivered again (at least once) and marked done
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DONE
    assert calls == [event.id, event.id]


def test_emit_in_rolled_back_transaction_leaves_no_event(db, handler,
                                                         django_capture_on_commit_callbacks):
    # given a subscribed handler
    handler(lambda event, name: None)

    # when an event is emitted in a transaction that rolls back
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ValueError):
            with transaction.atomic():
                events.emit(TestHappened(n=1))
                raise ValueError("the change failed")

    # then neither the event, nor a delivery, nor a dispatcher kick exists
    assert not Event.objects.filter(kind="test.happened").exists()
    assert not EventDelivery.objects.exists()
    assert callbacks == []


def test_committed_emit_enqueues_a_dispatch(db, handler, django_capture_on_commit_callbacks):
    # given a subscribed handler, and a probe on the configured task backend
    from django_tasks.signals import task_enqueued

    handler(lambda event, name: None)
    queued = []

    def on_enqueued(sender, task_result, **kwargs):
        queued.append(task_result.task.module_path)

    task_enqueued.connect(on_enqueued)
    try:
        # when an event is emitted in a transaction that commits
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                events.emit(TestHappened())
    finally:
        task_enqueued.disconnect(on_enqueued)

    # then a dispatch_outbox task is queued for a worker
    assert queued == ["watchkeeper.core.tasks.dispatch_outbox"]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_on_postgresql_deliver_each_row_once(handler):
    # given many pending deliveries on PostgreSQL
    if connection.vendor != "postgresql":
        pytest.skip("concurrent dispatchers need PostgreSQL (WATCHKEEPER_DATABASE_URL)")
    seen: list = []
    lock = threading.Lock()

    def record(event, name):
        with lock:
            seen.append(event.envelope.id)

    handler(record)
    ids = {events.emit(TestHappened(n=n)).id for n in range(120)}
    barrier = threading.Barrier(2)
    results = []

    def dispatcher():
        try:
            barrier.wait()
            results.append(events.dispatch_due())
        finally:
            connection.close()

    # when two dispatchers sweep at the same time
    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then every row was delivered exactly once, split between them
    assert sorted(map(str, seen)) == sorted(map(str, ids))
    assert sum(r["delivered"] for r in results) == 120
    assert EventDelivery.objects.filter(status=DeliveryStatus.DONE).count() == 120


def test_many_events_in_one_transaction_enqueue_one_dispatch(
        db, handler, django_capture_on_commit_callbacks):
    # given a subscribed handler
    handler(lambda event, name: None)

    # when a transaction emits many events, one of them in a savepoint that rolls back
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    events.emit(TestHappened(n=0))
                    raise ValueError("undo this part")
            except ValueError:
                pass
            for n in range(1, 20):
                events.emit(TestHappened(n=n))

    # then one dispatch is scheduled for the commit, and 19 events wait for it
    assert len(callbacks) == 1
    assert Event.objects.filter(kind="test.happened").count() == 19


def test_dispatch_task_works_through_more_than_one_batch(db, handler, monkeypatch):
    # given more due rows than one batch holds
    from watchkeeper.core import tasks

    monkeypatch.setattr(tasks, "DISPATCH_BATCH", 5)
    delivered = []
    handler(lambda event, name: delivered.append(event.envelope.id))
    for n in range(12):
        events.emit(TestHappened(n=n))

    # when one dispatch task runs
    result = tasks.dispatch_outbox.call()

    # then it delivered all of them
    assert result["delivered"] == 12
    assert len(delivered) == 12
